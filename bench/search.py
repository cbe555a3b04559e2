"""What one search costs through each public path, against its bound and against the
searcher held open.

    python -m bench.search [--store DIR] [--dataset DIR] [--queries N] [--methods a,b]
    make bench-search

On a copy of the man-page store (the server may write in a store; `--no-copy` for a
store too large to copy, such as a 1M-vector one), per method and per query of the
dataset's test split, k=10, every path timed in turn on the same query so that
the machine's load falls on all of them alike:

- bound: what a search cannot avoid, measured in two parts: encoding the query
  (the embedder; bm25's tokenizer and stemmer) and the index scan (FAISS; bm25s
  scoring). Fusions have no single bound.
- held: the method's searcher opened once and reused (`search_one`).
- open per call: `open_searcher` then the search, as every front end did before
  searchers were kept (`retrieval/searchers.py`).
- Store.search: `ragmini.open(store).search(q, method, k)`, the Python API.
- HTTP: `GET /api/search` on a live `ragmini serve` (loopback, keep-alive client).
- CLI: `ragmini search --json`, a process per query (a few queries only).

Memory: a fresh process's RSS before and after loading each method's model and
opening its searcher. Targets: Store.search p50 within 1.2x of the held p50, HTTP
p50 within 3 ms of it. Writes bench/search_results.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    RAGMINI,
    REPO,
    Target,
    dir_mb,
    summary_ms,
    targets_table,
    temp_dir,
    write_results,
)

STORE = Path("/work/data/stores/manpages")
DATASET = Path("/work/data/manpages")
K = 10
STORE_RATIO = 1.2  # Store.search p50 / held p50
HTTP_EXTRA_MS = 3.0  # HTTP p50 - held p50
# Filters on the man pages: every section 3 page (a third of them), one package's pages,
# a title word (a scan of the titles).
FILTERS = ["source=*.3", "source=git-*", "title~socket"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bound_parts(searcher, query: str):
    """(encode, scan) callables for one query: the two parts of a search no caching
    removes. None for a method with no single index (a fusion)."""
    from retrieval.bm25 import Bm25Searcher
    from retrieval.dense import DenseSearcher

    if isinstance(searcher, DenseSearcher):
        vector = searcher.embedder.embed([query])
        return (lambda: searcher.embedder.embed([query]),
                lambda: searcher.vectors.search(vector, K))
    if isinstance(searcher, Bm25Searcher):
        import bm25s

        vocab = searcher.bm25.vocab_dict

        def encode():
            tokens = bm25s.tokenize([query], stopwords="en", stemmer=searcher._stemmer,
                                    return_ids=False, show_progress=False)
            return [[t for t in q if t in vocab] for q in tokens]

        tokens = encode()
        if not tokens[0]:  # no word of the query in the corpus: nothing to score
            return None
        return encode, lambda: searcher.bm25.retrieve(tokens, k=K, show_progress=False,
                                                      n_threads=0)
    return None


def in_process(store_dir: Path, methods: list[str], queries: list[str], base: str | None
               ) -> dict:
    """Every in-process path (and HTTP, when `base` is a running server), per method,
    timed in turn on each query."""
    import httpx
    import numpy as np

    import ragmini
    from ingest.store import Store
    from retrieval.methods import open_searcher
    from retrieval.searchers import find

    out = {}
    client = httpx.Client(base_url=base, timeout=60) if base else None
    api = ragmini.open(store_dir)
    try:
        with Store.open(store_dir) as db:
            for method in methods:
                held = open_searcher(db, method)
                times: dict[str, list[float]] = {p: [] for p in (
                    "encode", "scan", "bound", "held", "open_per_call", "store_search",
                    "http")}
                found = 0
                for i, q in enumerate([queries[0], *queries]):  # the first is a warm-up
                    parts = bound_parts(held, q)
                    result, response = [], []
                    paths = {
                        "encode": parts and parts[0],
                        "scan": parts and parts[1],
                        "held": lambda: find(held, q, K),
                        "open_per_call": lambda: find(open_searcher(db, method), q, K),
                        "store_search": lambda: result.append(
                            api.search(q, method=method, k=K)),
                        "http": client and (lambda: response.append(client.get(
                            "/api/search", params={"q": q, "method": method, "k": K}))),
                    }
                    order = [name for name, fn in paths.items() if fn]
                    shift = i % len(order)  # no path always runs first, or right after HTTP
                    row = {name: _timed(paths[name]) for name in order[shift:] + order[:shift]}
                    if "encode" in row:
                        row["bound"] = row["encode"] + row["scan"]
                    if response and response[0].status_code not in (200, 400):
                        raise RuntimeError(f"/api/search: {response[0].text[:300]}")
                    if i == 0:
                        continue
                    found += bool(len(result[0]))
                    for path, seconds in row.items():
                        times[path].append(seconds)
                out[method] = {path: summary_ms(t) for path, t in times.items() if t}
                out[method]["queries_with_hits"] = found
                # Paired per query (the same query, moments apart): robust to a
                # machine whose load drifts during the run.
                out[method]["paired_ms"] = {
                    f"{path} - held": round(float(np.median(
                        np.subtract(times[path], times["held"]))) * 1000, 3)
                    for path in ("store_search", "http", "open_per_call") if times[path]}
    finally:
        api.close()
        if client is not None:
            client.close()
    return out


def filtered(store_dir: Path, method: str, wheres: list[str], queries: list[str]) -> dict:
    """What a `where` filter adds: choosing the kept chunks (an SQL condition on the
    documents, then their chunks), and a filtered Store.search, per filter."""
    import ragmini
    from ingest.filters import parse_where
    from ingest.store import Store
    from retrieval.methods import select

    out = {}
    with Store.open(store_dir) as db, ragmini.open(store_dir) as api:
        for where in wheres:
            parsed = parse_where([where])
            kept = select(db, parsed)
            api.search(queries[0], method=method, k=K, where=[where])
            chosen, searched = [], []
            for q in queries:
                chosen.append(_timed(lambda: select(db, parsed)))
                searched.append(_timed(lambda: api.search(q, method=method, k=K,
                                                          where=[where])))
            out[where] = {"kept_chunks": len(kept), "select": summary_ms(chosen),
                          "store_search": summary_ms(searched)}
    return out


def over_cli(store_dir: Path, methods: list[str], queries: list[str]) -> dict:
    """Wall time of `ragmini search --json`, one process per query."""
    out = {}
    for method in methods:
        times = []
        for q in queries:
            started = time.perf_counter()
            done = subprocess.run([str(RAGMINI), "search", q, "--method", method, "-k", str(K),
                                   "--store", str(store_dir), "--json"], capture_output=True,
                                  text=True, cwd=REPO)
            times.append(time.perf_counter() - started)
            if done.returncode not in (0, 1):
                raise RuntimeError(f"ragmini search failed: {done.stderr[-500:]}")
        out[method] = summary_ms(times)
    return out


def measure_open(store_dir: Path, method: str, query: str) -> dict:
    """In this (fresh) process, with every library imported first: RSS before and
    after loading the method's model (and one embed), then after opening its
    searcher and one search: the index and what the searcher keeps."""
    import gc

    import bm25s  # noqa: F401  (imports are not what a searcher holds)
    import faiss  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401

    from core.errors import QueryError
    from ingest.store import Store
    from retrieval.contract import search_one
    from retrieval.methods import get_embedder, index_parts, open_searcher

    with Store.open(store_dir) as db:
        gc.collect()
        start = _rss_mb()
        for part in index_parts([method]):
            try:
                get_embedder(part, db).embed([query])
            except QueryError:
                pass  # bm25 and tfidf have no model
        gc.collect()
        model = _rss_mb()
        searcher = open_searcher(db, method)
        search_one(searcher, query, K)
        gc.collect()
        opened = _rss_mb()
    return {"model_mb": round(model - start, 1), "searcher_mb": round(opened - model, 1)}


def memory(store_dir: Path, methods: list[str], query: str) -> dict:
    out = {}
    for method in methods:
        done = subprocess.run([sys.executable, "-m", "bench.search", "--measure-open", method,
                               "--store", str(store_dir), "--no-copy", "--query", query],
                              capture_output=True, text=True, cwd=REPO, check=True)
        out[method] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def index_sizes(store_dir: Path, methods: list[str]) -> dict:
    """Index files on disk by method (MB)."""
    from retrieval.methods import index_parts

    out = {}
    for part in index_parts(methods):
        files = [p for p in (store_dir / "index").glob(f"{part}-g*")]
        out[part] = round(sum(dir_mb(f) if f.is_dir() else f.stat().st_size / 2**20
                              for f in files), 2)
    return out


def add_methods(store_dir: Path, dataset: Path, methods: list[str]) -> None:
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    with Store.open(store_dir) as db:
        done = ingest_and_index(db, [dataset / "corpus.jsonl"], methods, progress=False)
    if done.report.new or done.report.changed:
        raise RuntimeError(f"{dataset} is not the corpus of {store_dir}: "
                           f"{done.report.new} documents were new")


def default_methods(store_dir: Path) -> list[str]:
    from ingest.store import Store

    with Store.open(store_dir) as db:
        have = db.methods()
    chosen = [m for m in ("sbert", "bm25", "glove", "glove-sif", "tfidf", "w2v") if m in have]
    if {"sbert", "bm25"} <= set(have):
        chosen.append("hybrid")
    return chosen


def run(store_dir: Path, dataset: Path, n_queries: int | None, methods: list[str] | None,
        n_cli: int, http: bool, wheres: list[str]) -> tuple[dict, list[Target]]:
    from eval.beir import load_beir
    from ingest.store import Store
    from ragmini.server.process import running_server

    queries = list(load_beir(dataset, "test").queries.values())[:n_queries]
    methods = methods or default_methods(store_dir)
    with Store.open(store_dir) as db:
        chunks = db.count("chunks")
    started = time.perf_counter()
    if http:
        with running_server(store_dir, timeout=300) as base:
            paths = in_process(store_dir, methods, queries, base)
    else:
        paths = in_process(store_dir, methods, queries, None)
    cli = over_cli(store_dir, methods, queries[:n_cli]) if n_cli else {}
    filters = filtered(store_dir, methods[0], wheres, queries[:100]) if wheres else {}
    results = {
        "store": str(store_dir), "chunks": chunks, "queries": len(queries), "k": K,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "paths_ms": paths, "cli_ms": cli, "cli_queries": min(n_cli, len(queries)),
        "filters_ms": filters,
        "memory_mb": memory(store_dir, methods, queries[0]),
        "index_files_mb": index_sizes(store_dir, methods),
        "seconds": round(time.perf_counter() - started, 1),
    }
    targets = []
    for method, row in paths.items():
        held = row["held"]["p50"]
        targets.append(Target(f"{method}: Store.search p50 / held p50",
                              round(row["store_search"]["p50"] / held, 3), STORE_RATIO))
        if "http" in row:
            targets.append(Target(f"{method}: HTTP p50 - held p50",
                                  round(row["http"]["p50"] - held, 2), HTTP_EXTRA_MS,
                                  unit=" ms"))
    return results, targets


def table(results: dict) -> str:
    """The measured paths as a Markdown table (p50 / p95, ms)."""
    cols = ("encode", "scan", "bound", "held", "store_search", "http", "open_per_call")
    names = ("encode", "index scan", "bound", "held open", "Store.search", "HTTP",
             "opened per call")
    rows = ["| method | " + " | ".join(names) + " | CLI (process) |",
            "|---" * (len(cols) + 2) + "|"]
    for method, row in results["paths_ms"].items():
        cells = [f"{row[c]['p50']:.2f} / {row[c]['p95']:.2f}" if c in row else "n/a"
                 for c in cols]
        cli = results["cli_ms"].get(method)
        cells.append(f"{cli['p50']:.0f}" if cli else "n/a")
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=STORE)
    parser.add_argument("--dataset", type=Path, default=DATASET,
                        help="BEIR folder whose test-split queries are searched")
    parser.add_argument("--queries", type=int, default=None, help="first N queries only")
    parser.add_argument("--methods", default=None,
                        help="comma-separated; default: sbert, bm25, glove, tfidf as the "
                             "store has them, and hybrid")
    parser.add_argument("--cli", type=int, default=10, help="queries run as CLI processes")
    parser.add_argument("--no-http", action="store_true", help="skip the server")
    parser.add_argument("--where", action="append", default=None,
                        help="a filter to time (repeatable); default: three man-page "
                             "filters on the man-page store, none on another")
    parser.add_argument("--no-copy", action="store_true",
                        help="use the store in place (searched only; SQLite and the server "
                             "still create their lock and WAL files)")
    parser.add_argument("--add-methods", default=None,
                        help="index these methods into the copy first (from the dataset's "
                             "corpus.jsonl, whose documents the store already holds)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for FAISS here and in the server and CLI "
                             "processes (default: as the environment says)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--measure-open", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--query", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_open:
        print(json.dumps(measure_open(args.store, args.measure_open, args.query)))
        return
    if args.threads:  # before FAISS is imported; children inherit it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    with temp_dir("ragmini-bench-search-") as tmp:
        store_dir = args.store
        if not args.no_copy:
            store_dir = tmp / "store"
            shutil.copytree(args.store, store_dir)
        if args.add_methods:
            add_methods(store_dir, args.dataset, args.add_methods.split(","))
        wheres = args.where if args.where is not None else (
            FILTERS if args.store == STORE else [])
        results, targets = run(store_dir, args.dataset, args.queries, methods, args.cli,
                               not args.no_http, wheres)
    results["store"] = str(args.store)
    path = write_results("search", results, targets, out=args.out)
    print(table(results))
    print()
    print(json.dumps(results["memory_mb"]))
    print(targets_table(targets))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
