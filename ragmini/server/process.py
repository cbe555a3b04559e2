"""Start and stop a real `ragmini serve` process on a free loopback port (tests, bench)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The base URL of a running server (a plain str), with the server's `pid` and
    what it has logged so far (`log()`)."""

    pid: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(store: Path, *args: str, env: dict | None = None, timeout: float = 60.0):
    """Yield the base URL of `ragmini serve --store STORE ARGS` until the block ends
    (a str; `.pid` is the server process, for benchmarks that watch its memory);
    the process is stopped (and killed if it must be) whatever happens.

    The server's output goes to a file, not a pipe: nobody reads a pipe while the
    block runs, and a server that logs 64 KB (tracebacks under load) would block."""
    port = free_port()
    cmd = [sys.executable, "-m", "ragmini.cli", "serve", "--store", str(store), "--port",
           str(port), *args]
    fd, log_path = tempfile.mkstemp(prefix="ragmini-serve-log-", suffix=".log")
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    base = ServerURL(f"http://127.0.0.1:{port}")
    base.pid, base.log_path = proc.pid, Path(log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {base.log()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in time: {base.log()}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.unlink(log_path)
