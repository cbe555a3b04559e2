"""Past one machine, measured on this one: Milvus Lite against FAISS, Ray against a
plain ingest.

Vector stores, on the man-page sbert vectors (28,173 chunks, 384-d) and the
test-split queries, each of FAISS flat, FAISS HNSW, Milvus Lite FLAT and Milvus
Lite HNSW:

    build      the index built from the stored vectors (`ragmini reindex`), s
    update     the index brought up to date after 1% of the documents changed:
               FAISS rebuilds, Milvus writes only the changed chunks, s
    size       bytes a vector on disk (FAISS file; Milvus Lite folder)
    query      one query's top 10 through the method's vector store, p50 / p95 ms,
               unfiltered and filtered (`source=*.1*` keeps about half the chunks,
               `source=*.8*` about a tenth), and agreement (recall@10) with FAISS flat

Ray: `ragmini ingest` as a whole process, plain against `--engine ray`, on the
bundled corpus (glove, sbert, bm25; 3 runs each, medians), on the first 200 man
pages (the same methods) and on all man pages with glove and bm25 (1 run each).

    python -m bench.backends [--dataset data/manpages] [--queries 300] [--skip-ray]  # make bench-backends
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # `python bench/backends.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    CORPUS,
    MANPAGES,
    RAGMINI,
    REPO,
    machine,
    temp_dir,
    write_results,
)

FILTERS = {"none": None, "source=*.1*": ["source=*.1*"], "source=*.8*": ["source=*.8*"]}
BACKENDS = [("faiss", "flat"), ("faiss", "hnsw"), ("milvus", "flat"), ("milvus", "hnsw")]


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _pcts(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3)}


def _copy_store(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    with sqlite3.connect(source / "ragmini.db") as src, \
            sqlite3.connect(target / "ragmini.db") as dst:
        src.backup(dst)


def _change_one_percent(store, seed: int = 0) -> int:
    """Replace 1% of the documents by themselves (new chunk rows, the same vectors),
    as an ingest of changed files would; returns the chunks rewritten."""
    from ingest.chunk import Chunk
    from ingest.load import Document

    rng = np.random.default_rng(seed)
    sources = sorted(store.documents())
    chosen = [sources[i] for i in rng.choice(len(sources), max(1, len(sources) // 100),
                                             replace=False)]
    batch, old_ids = [], []
    documents = store.documents()
    for source in chosen:
        doc = documents[source]
        title = store.db.execute("SELECT title FROM documents WHERE id = ?", [doc.id]).fetchone()[0]
        rows = store.db.execute(
            "SELECT c.id, c.position, c.text, c.start_char, c.end_char, c.n_tokens FROM chunks "
            "c JOIN documents d ON d.id = c.document WHERE d.source = ? AND c.deleted_gen IS "
            "NULL ORDER BY c.position", [source]).fetchall()
        old_ids += [r[0] for r in rows]
        chunks = [Chunk(r[1], r[2], r[3], r[4], r[5]) for r in rows]
        batch.append((Document(source, doc.doc_id, title, ""), "changed", chunks))
    ids, vectors = store.vectors("sbert", ids=np.array(old_ids))
    vectors = vectors[np.searchsorted(ids, old_ids)]  # in the order the rows are rewritten
    store.replace_documents(batch)
    new_ids = np.array([r.chunk_id for r in store.chunks_without_vectors("sbert")])
    store.put_vectors("sbert", new_ids.tolist(), vectors)
    return len(new_ids)


def vector_stores(dataset: Path, n_queries: int, work: Path) -> list[dict]:
    from eval.beir import dataset_store_dir, load_beir
    from ingest.filters import parse_where
    from ingest.store import Store
    from retrieval import milvus
    from retrieval.indexing import reindex, update_index
    from retrieval.methods import open_searcher

    source = dataset_store_dir(dataset, 200, 30)
    queries = list(load_beir(dataset, "test").queries.values())[:n_queries]
    rows, truth = [], {}
    with Store.open(source) as original:
        qv = open_searcher(original, "sbert").embedder.embed(queries)
    for backend, index_type in BACKENDS:
        path = work / f"{backend}-{index_type}"
        _copy_store(source, path)
        row = {"backend": backend, "index": index_type}
        with Store.open(path) as store:
            with store.writer_lock():
                store.set_meta("vector_store", backend)  # sbert alone is built here
                started = time.perf_counter()
                reindex(store, ["sbert"], index_type)
                row["build_s"] = round(time.perf_counter() - started, 2)
            n = len(store.vector_ids("sbert"))
            row["vectors"] = n
            files = [path / "milvus.db"] if backend == "milvus" else \
                list((path / "index").glob("sbert-g*.faiss"))
            row["bytes_per_vector"] = round(sum(_du(f) for f in files) / n)
            searcher = open_searcher(store, "sbert")
            vectors = searcher.vectors
            for name, where in FILTERS.items():
                allowed = store.select_chunks(parse_where(where)) if where else None
                times, found = [], []
                for i in range(len(qv)):
                    started = time.perf_counter()
                    _, ids = vectors.search(qv[i:i + 1], 10, allowed)
                    times.append((time.perf_counter() - started) * 1000)
                    found.append({int(x) for x in ids[0] if x >= 0})
                if (backend, index_type) == ("faiss", "flat"):
                    truth[name] = found
                agree = np.mean([len(f & t) / max(1, len(t)) for f, t in zip(found, truth[name])])
                row[name] = {**_pcts(times), "recall_at_10_vs_faiss_flat": round(float(agree), 4),
                             "kept_share": round(len(allowed) / n, 3) if where else 1.0}
            with store.writer_lock():
                changed = _change_one_percent(store)
                started = time.perf_counter()
                update_index(store, "sbert", progress=False)
                row["update_1pct_s"] = round(time.perf_counter() - started, 2)
                row["update_chunks"] = changed
            if backend == "milvus":
                milvus.release(store)
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(path, ignore_errors=True)
    return rows


def _ingest(paths: list[Path], store: Path, methods: str, engine: str) -> float:
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([str(RAGMINI), "ingest", *map(str, paths), "--store",
                    str(store), "--methods", methods, "--engine", engine, "--no-progress"],
                   check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def ray_overhead(dataset: Path, work: Path) -> list[dict]:
    subset = work / "manpages-200"
    subset.mkdir()
    with open(dataset / "corpus.jsonl") as src, open(subset / "corpus.jsonl", "w") as out:
        for i, line in enumerate(src):
            if i == 200:
                break
            out.write(line)
    cases = [("bundled corpus (84 chunks)", [CORPUS], "glove,sbert,bm25", 3),
             ("first 200 man pages", [subset], "glove,sbert,bm25", 1),
             ("all man pages (28,173 chunks)", [dataset / "corpus.jsonl"], "glove,bm25", 1)]
    rows = []
    for name, paths, methods, runs in cases:
        times = {e: [] for e in ("local", "ray")}
        for _ in range(runs):
            for engine in times:
                times[engine].append(_ingest(paths, work / f"ray-{engine}", methods, engine))
        with sqlite3.connect(work / "ray-local" / "ragmini.db") as db:
            chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        plain, ray = statistics.median(times["local"]), statistics.median(times["ray"])
        row = {"corpus": name, "methods": methods, "chunks": chunks, "runs": runs,
               "plain_s": round(plain, 2), "ray_s": round(ray, 2),
               "overhead_s": round(ray - plain, 2), "ratio": round(ray / plain, 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=MANPAGES)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "backends_results.json")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time, as a server thread runs it
    with temp_dir("ragmini-backends-") as work:
        result = {"machine": machine(),
                  "queries": args.queries,
                  "vector_stores": vector_stores(args.dataset, args.queries, work)}
        if not args.skip_ray:
            result["ray"] = ray_overhead(args.dataset, work)
    print(f"wrote {write_results('backends', result, out=args.out)}")


if __name__ == "__main__":
    main()
