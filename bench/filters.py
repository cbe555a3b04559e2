"""Filtered dense search on the man-page vectors: latency and recall@10 by selectivity.

For filters keeping about 1%, 10% and 50% of the chunks (by man section, a
glob on the page id), each query's top 10 is computed four ways:

    exact      the kept vectors read from the store and scanned exactly (the truth)
    flat+sel   a flat index searched with a FAISS IDSelector (inside the index)
    hnsw+sel   an HNSW index (M=32, efSearch=128) with the same selector
    ragmini    what DenseSearcher does, over the flat and over the HNSW index (flat:
               the selector; HNSW: its stored vectors scanned exactly with the
               selector below HNSW_WALK_FROM of the chunks, the walk above)

plus unfiltered flat and HNSW for reference. A sweep of smaller selections
places the cut-over between the exact scan and the selector.

    python -m bench.filters [--dataset data/manpages] [--queries 300]   # make bench-filters
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # `python bench/filters.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    MANPAGES,
    write_results,
)

TARGETS = (0.01, 0.10, 0.50)
CANDIDATES = [["source=*.4*"], ["source=*.8*"], ["source=*.5*"], ["source=*.6*"], ["source=*.8*"],
              ["source=*.1*"], ["source=*.2*"], ["source=*.3*"], ["source=*.7*"],
              ["source!=*.3*", "source!=*.7*"], ["source!=*.3*"], ["source=*.1*"],
              ["source=a*"], ["source=g*"], ["source=s*"], ["source=systemd*"]]


def _median_ms(fn, queries) -> tuple[float, list]:
    times, out = [], []
    for q in queries:
        started = time.perf_counter()
        out.append(fn(q[None, :]))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), out


def _recall(found: list, truth: list) -> float:
    scores = []
    for (_, ids), (_, true_ids) in zip(found, truth):
        t = {int(i) for i in true_ids[0] if i >= 0}
        f = {int(i) for i in ids[0] if i >= 0}
        scores.append(len(t & f) / len(t) if t else 1.0)
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=MANPAGES)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=BENCH / "filters_results.json")
    args = parser.parse_args()

    import faiss

    import retrieval.vectorstore as dense
    from eval.beir import dataset_store_dir, load_beir
    from ingest.filters import parse_where
    from ingest.store import Store
    from retrieval.index import build_index, exact_top_k, filtered_params, search_params
    from retrieval.methods import open_searcher

    faiss.omp_set_num_threads(1)
    store = Store.open(dataset_store_dir(args.dataset, 200, 30))
    ids, vectors = store.vectors("sbert")
    n = len(ids)
    queries = list(load_beir(args.dataset, "dev").queries.values())[: args.queries]
    searcher = open_searcher(store, "sbert")
    qv = searcher.embedder.embed(queries)
    flat = build_index(ids, vectors, "flat")
    started = time.perf_counter()
    hnsw = build_index(ids, vectors, "hnsw")
    hnsw_build = time.perf_counter() - started
    faiss.downcast_index(hnsw.index).hnsw.efSearch = 128
    hp = search_params("hnsw")
    # ragmini's own vector stores (what a filtered search runs) over each index.
    from retrieval.vectorstore import FaissVectors

    def exact(ids):
        return store.vectors("sbert", ids=ids)

    ours = FaissVectors(searcher.vectors.index, "flat", None, exact)
    hnsw_ours = FaissVectors(hnsw, "hnsw", hp, exact)

    shares = {}
    for where in CANDIDATES:
        shares[" AND ".join(where)] = len(store.select_chunks(parse_where(where))) / n
    chosen = {}
    for target in TARGETS:
        name = min(shares, key=lambda w: abs(np.log(shares[w]) - np.log(target)))
        chosen[target] = name

    rows = []
    base_flat, _ = _median_ms(lambda q: flat.search(q, 10), qv)
    base_hnsw, _ = _median_ms(lambda q: hnsw.search(q, 10), qv)
    for target, name in chosen.items():
        allowed = store.select_chunks(parse_where(name.split(" AND ")))
        exact_ms, truth = _median_ms(lambda q: exact_top_k(
            *store.vectors("sbert", ids=allowed), q, 10), qv)
        flat_ms, flat_out = _median_ms(lambda q: flat.search(
            q, 10, params=filtered_params(allowed, None, 10)), qv)
        hnsw_ms, hnsw_out = _median_ms(lambda q: hnsw.search(
            q, 10, params=filtered_params(allowed, hp, 10)), qv)
        ours_ms, ours_out = _median_ms(lambda q: ours.search(q, 10, allowed), qv)
        hnsw_ours_ms, hnsw_ours_out = _median_ms(lambda q: hnsw_ours.search(q, 10, allowed), qv)
        rows.append({"target": target, "filter": name, "kept_share": round(len(allowed) / n, 4),
                     "kept_chunks": int(len(allowed)),
                     "exact_ms": round(exact_ms, 3), "flat_sel_ms": round(flat_ms, 3),
                     "hnsw_sel_ms": round(hnsw_ms, 3), "ragmini_ms": round(ours_ms, 3),
                     "ragmini_hnsw_ms": round(hnsw_ours_ms, 3),
                     "recall_ragmini_hnsw": round(_recall(hnsw_ours_out, truth), 4),
                     "recall_flat_sel": round(_recall(flat_out, truth), 4),
                     "recall_hnsw_sel": round(_recall(hnsw_out, truth), 4),
                     "recall_ragmini": round(_recall(ours_out, truth), 4)})

    # The cut-over: random selections of growing size, exact scan vs the selector.
    rng = np.random.default_rng(0)
    sweep = []
    for kept in (100, 300, 1000, 2000, 3000, 5000, 10000):
        if kept >= n:
            break
        allowed = np.sort(rng.choice(ids, kept, replace=False))
        exact_ms, truth = _median_ms(lambda q: exact_top_k(
            *store.vectors("sbert", ids=allowed), q, 10), qv[:100])
        flat_ms, _ = _median_ms(lambda q: flat.search(
            q, 10, params=filtered_params(allowed, None, 10)), qv[:100])
        hnsw_ms, hnsw_out = _median_ms(lambda q: hnsw.search(
            q, 10, params=filtered_params(allowed, hp, 10)), qv[:100])
        sweep.append({"kept_chunks": kept, "exact_ms": round(exact_ms, 3),
                      "flat_sel_ms": round(flat_ms, 3), "hnsw_sel_ms": round(hnsw_ms, 3),
                      "recall_hnsw_sel": round(_recall(hnsw_out, truth), 4)})

    result = {"chunks": n, "queries": len(qv), "dim": int(vectors.shape[1]),
              "faiss_threads": 1, "hnsw_build_s": round(hnsw_build, 2),
              "unfiltered_flat_ms": round(base_flat, 3), "unfiltered_hnsw_ms": round(base_hnsw, 3),
              "filter_exact_below": dense.FILTER_EXACT_BELOW,
              "hnsw_walk_from": dense.HNSW_WALK_FROM, "rows": rows, "cutover": sweep,
              "shares": {k: round(v, 4) for k, v in shares.items()}}
    write_results("filters", result, out=args.out)
    print(f"{n} chunks, {len(qv)} queries; unfiltered flat {base_flat:.2f} ms, "
          f"hnsw {base_hnsw:.2f} ms (median per query, 1 thread)")
    print(f"{'filter':<32}{'kept':>7}{'exact':>8}{'flat+sel':>9}{'hnsw+sel':>9}{'R':>6}"
          f"{'ours flat':>10}{'R':>6}{'ours hnsw':>10}{'R':>6}")
    for r in rows:
        print(f"{r['filter']:<32}{r['kept_share']:>7.1%}{r['exact_ms']:>8.2f}"
              f"{r['flat_sel_ms']:>9.2f}{r['hnsw_sel_ms']:>9.2f}{r['recall_hnsw_sel']:>6.3f}"
              f"{r['ragmini_ms']:>10.2f}{r['recall_ragmini']:>6.3f}"
              f"{r['ragmini_hnsw_ms']:>10.2f}{r['recall_ragmini_hnsw']:>6.3f}")
    print("cut-over sweep (random selections):")
    for r in sweep:
        print(f"  {r['kept_chunks']:>6} kept: exact {r['exact_ms']:.2f} ms, flat+sel "
              f"{r['flat_sel_ms']:.2f}, hnsw+sel {r['hnsw_sel_ms']:.2f} "
              f"(recall {r['recall_hnsw_sel']:.3f})")
    store.close()


if __name__ == "__main__":
    main()
