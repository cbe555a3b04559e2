"""llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) on a GGUF, on
a free loopback port: for the tests, the bench, and to try an `openai:` generator
without installing anything else.

    with llama_server(smollm2_gguf(), alias="smollm2") as server:
        load_generator("openai:smollm2", base_url=server.base_url)

The server is stopped when the block ends, whatever happens in it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelUnavailable
from generation.llamacpp import default_threads

START_TIMEOUT = 60.0


@dataclass
class LlamaServer:
    process: subprocess.Popen
    base_url: str  # http://127.0.0.1:PORT/v1
    model: str  # the name it serves the model under
    api_key: str | None
    log: Path  # its stderr and stdout

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Die at once, as a crashed server does."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(model: Path, *, alias: str = "smollm2", api_key: str | None = None,
                 threads: int | None = None, context: int = 4096) -> Iterator[LlamaServer]:
    """Run `python -m llama_cpp.server` on `model` for the length of the block.

    `threads` defaults to generation.llamacpp.default_threads() (the server's
    own default is half the cores);
    `api_key`, when given, is required of every request. Raises ModelUnavailable
    when the server cannot start (its log's last lines say why).
    """
    threads = threads or default_threads()
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
               "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
               "--n_threads", str(threads), "--n_threads_batch", str(threads),
               "--n_ctx", str(context), "--verbose", "False"]
    if api_key:
        command += ["--api_key", api_key]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    server = LlamaServer(process, f"http://127.0.0.1:{port}/v1", alias, api_key, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            log.unlink()


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM when the process that started us dies, so a
    killed test run or bench leaves no server behind (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(server: LlamaServer) -> None:
    request = urllib.request.Request(f"{server.base_url}/models")
    if server.api_key:
        request.add_header("Authorization", f"Bearer {server.api_key}")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    tail = _tail(server.log)
    server.stop()
    raise ModelUnavailable(f"llama_cpp.server did not start on {server.base_url}: {tail}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"


if __name__ == "__main__":  # python -m generation.llama_server: serve the packaged model
    from core.models import smollm2_gguf

    with llama_server(smollm2_gguf(), api_key=os.environ.get("OPENAI_API_KEY")) as s:
        print(f"serving {s.model} at {s.base_url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            s.process.wait()
