"""Run inside the peer venv (made by bench/run.py): txtai on the same chunks and queries.

    python peer_txtai.py INPUT.json OUTPUT.json

INPUT: {"model": MiniLM folder, "chunks": [[chunk_id, text], ...], "queries": [text, ...],
"k": int}. OUTPUT: {"index_s", "latency_ms": [...], "results": [[chunk_id, ...], ...]}.
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    started = time.perf_counter()
    from txtai import Embeddings

    embeddings = Embeddings(path=spec["model"], backend="faiss", content=False,
                            normalize=True)
    embeddings.index([(cid, text, None) for cid, text in spec["chunks"]])
    index_s = time.perf_counter() - started
    embeddings.search(spec["queries"][0], spec["k"])  # warm-up, as for ragmini
    latency, results = [], []
    for query in spec["queries"]:
        t = time.perf_counter()
        hits = embeddings.search(query, spec["k"])
        latency.append((time.perf_counter() - t) * 1000)
        results.append([int(cid) for cid, _ in hits])
    with open(sys.argv[2], "w") as out:
        json.dump({"index_s": index_s, "latency_ms": latency, "results": results}, out)


if __name__ == "__main__":
    main()
