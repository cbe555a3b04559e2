"""HTTP overhead and throughput of `ragmini serve`, measured against in-process search.

On the bundled corpus (every method indexed), in one run:
- single-query search latency p50/p95 for glove and sbert, in-process and over
  HTTP (keep-alive client, loopback), and the difference at p50 (target < 3 ms);
- 8 concurrent clients for 30 s (glove and sbert searches over the labelled
  queries): requests/s, errors (target 0), and the server's RSS sampled each
  second (target: no growth after warm-up).

    python -m bench.serve [--seconds 30] [--clients 8] [--out bench/serve_results.json]   # make bench-serve
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

if not __package__:  # `python bench/serve.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    CORPUS,
    QUERIES,
    write_results,
)
from core.timing import latency_summary  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def in_process(store_dir: Path, queries: list[str], repeats: int) -> dict:
    from ingest.store import Store
    from retrieval.contract import search_one
    from retrieval.methods import open_searcher

    out = {}
    with Store.open(store_dir) as store:
        for method in ("glove", "sbert"):
            searcher = open_searcher(store, method)
            search_one(searcher, queries[0], 10)
            times = []
            for _ in range(repeats):
                for q in queries:
                    t = time.perf_counter()
                    search_one(searcher, q, 10)
                    times.append((time.perf_counter() - t) * 1000)
            out[method] = latency_summary(times)
    return out


def over_http(base: str, queries: list[str], repeats: int) -> dict:
    import httpx

    out = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for method in ("glove", "sbert"):
            client.get("/api/search", params={"q": queries[0], "method": method, "k": 10})
            times = []
            for _ in range(repeats):
                for q in queries:
                    t = time.perf_counter()
                    r = client.get("/api/search", params={"q": q, "method": method, "k": 10})
                    times.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
            out[method] = latency_summary(times)
    return out


def load(base: str, queries: list[str], clients: int, seconds: float, pid: int) -> dict:
    import httpx

    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors = [0] * clients
    rss: list[float] = []

    def client(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            n = i
            while time.monotonic() < stop:
                method = ("glove", "sbert")[n % 2]
                try:
                    r = c.get("/api/search", params={"q": queries[n % len(queries)],
                                                     "method": method, "k": 10})
                    if r.status_code != 200:
                        errors[i] += 1
                except httpx.HTTPError:
                    errors[i] += 1
                counts[i] += 1
                n += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss.append(round(rss_mib(pid), 1))
        time.sleep(1)
    elapsed = time.monotonic() - started
    third = max(1, len(rss) // 3)
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": sum(counts),
            "requests_per_s": round(sum(counts) / elapsed, 1), "errors": sum(errors),
            "rss_mib_first_third_max": max(rss[:third]), "rss_mib_last_third_max": max(rss[-third:]),
            "rss_mib_samples": rss}


def main() -> None:
    from eval.queries import load_queries
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index
    from ragmini.server.process import running_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "serve_results.json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ragmini-serve-bench-"))
    try:
        store_dir = tmp / "store"
        with Store.open(store_dir, create=True) as store:
            ingest_and_index(store, [CORPUS], ["glove", "sbert", "bm25"],
                             progress=False)
        queries = list(load_queries(QUERIES).queries.values())
        local = in_process(store_dir, queries, args.repeats)
        with running_server(store_dir) as base:
            pid = _server_pid(base)
            http = over_http(base, queries, args.repeats)
            throughput = load(base, queries, args.clients, args.seconds, pid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "corpus": "corpus/docs (bundled)", "queries": len(queries), "repeats": args.repeats,
        "in_process_ms": local, "http_ms": http,
        "http_overhead_p50_ms": {m: round(http[m]["p50"] - local[m]["p50"], 3) for m in local},
        "throughput": throughput,
        "targets": {"http_overhead_p50_ms": "< 3", "errors": "0",
                    "rss": "last third no higher than first third + 10 MiB"},
    }
    write_results("serve", result, out=args.out)
    for m in local:
        print(f"{m:<6} in-process p50 {local[m]['p50']:.2f} ms p95 {local[m]['p95']:.2f} | "
              f"HTTP p50 {http[m]['p50']:.2f} ms p95 {http[m]['p95']:.2f} | "
              f"overhead p50 {result['http_overhead_p50_ms'][m]:+.2f} ms")
    t = throughput
    print(f"{t['clients']} clients, {t['seconds']} s: {t['requests_per_s']} req/s, {t['errors']} errors, "
          f"RSS max {t['rss_mib_first_third_max']} MiB (first third) -> "
          f"{t['rss_mib_last_third_max']} MiB (last third)")


def _server_pid(base: str) -> int:
    """The pid of the process listening on base's port (ours: started by running_server)."""
    port = base.rsplit(":", 1)[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[1].endswith(f":{int(port):04X}") and parts[3] == "0A":
            inode = parts[9]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return int(proc.name)
        except OSError:
            continue
    raise RuntimeError("cannot find the server process")


if __name__ == "__main__":
    main()
