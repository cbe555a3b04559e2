"""The loop every peer driver shares (bench/peer_*.py), stdlib only: each peer runs it
in its own venv, where ragmini is not installed.

    python bench/peer_NAME.py build SPEC.json OUT.json
    python bench/peer_NAME.py query SPEC.json OUT.json

build: SPEC {"model": MiniLM folder, "chunks": file of [[chunk_id, text], ...],
"folder": where the peer persists its index, "options": keyword arguments of its
build}. OUT {"phases": {name: seconds},
"wall_s": seconds from the driver's start, "peak_rss_mb"}.

query (a fresh process): SPEC {"model", "folder", "queries": [text, ...], "k": 10,
"depth": 100, "latency_queries": n}. The first query is answered as soon as the
index is open: OUT "first_answer_epoch" (time.time(), so the caller, which
noted when it started the process, has the cold start). Then, warm, one query at
a time: "latency_ms" (the peer's own search call, k), "encode_ms" (its
embedding model on the query alone), "index_ms" (its index searched with the
encoded query), each over the first `latency_queries` queries; "results": the
`depth` best chunk ids of every query, for recall; "peak_rss_mb".

A peer module gives `build(model, chunks, folder) -> dict of phase seconds` and
`open_index(model, folder) -> Peer`, where Peer has `search(text, k) -> [chunk id]`,
`encode(text) -> vector` and `search_vector(vector, k) -> [chunk id]`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

STARTED = time.perf_counter()
for _key, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                     ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                     ("TRANSFORMERS_VERBOSITY", "error"), ("ANONYMIZED_TELEMETRY", "False"),
                     ("TQDM_DISABLE", "1")):
    os.environ.setdefault(_key, _value)


def peak_rss_mb() -> float:
    """This process's peak resident set since it started (VmHWM). Not ru_maxrss: on
    Linux that carries the parent's peak across fork and exec."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timed_ms(fn, items) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(build, open_index) -> None:
    command, spec_path, out_path = sys.argv[1:4]
    with open(spec_path) as handle:
        spec = json.load(handle)
    if command == "build":
        chunks = None
        if spec.get("chunks"):
            with open(spec["chunks"]) as handle:
                chunks = [(int(cid), text) for cid, text in json.load(handle)]
        phases = build(spec["model"], chunks, spec["folder"], **spec.get("options", {}))
        out = {"phases": phases, "wall_s": time.perf_counter() - STARTED,
               "peak_rss_mb": peak_rss_mb()}
    elif command == "query":
        queries, k, depth = spec["queries"], spec["k"], spec["depth"]
        t = time.perf_counter()
        peer = open_index(spec["model"], spec["folder"])
        open_s = time.perf_counter() - t
        first = peer.search(queries[0], k)
        first_epoch = time.time()
        first_s = time.perf_counter() - STARTED
        timed = queries[: spec["latency_queries"]]
        latency = _timed_ms(lambda q: peer.search(q, k), timed)
        encode = _timed_ms(peer.encode, timed)
        vectors = [peer.encode(q) for q in timed]
        index = _timed_ms(lambda v: peer.search_vector(v, k), vectors)
        results = [[int(c) for c in peer.search(q, depth)] for q in queries]
        out = {"open_s": open_s, "first_answer_epoch": first_epoch,
               "first_answer_in_process_s": first_s, "first_hits": [int(c) for c in first],
               "latency_ms": latency, "encode_ms": encode, "index_ms": index,
               "results": results, "peak_rss_mb": peak_rss_mb()}
    else:
        raise SystemExit(f"unknown command {command}: build or query")
    tmp = out_path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(out, handle)
    os.replace(tmp, out_path)
