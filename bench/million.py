"""A million vectors on one machine, through the real store and index code.

    python -m bench.million [--sizes 100000,300000,1000000] [--types flat,hnsw,sq8]
        [--milvus flat,hnsw] [--queries 200] [--store DIR]

The data: the man-page store's real MiniLM vectors (sbert, onnx-int8; the shared
store at /work/data/stores/manpages, read-only, else the eval's cached one) and
their chunk texts, repeated until the collection has the size asked for. Copy 0
of each chunk is the chunk itself; every other copy is its vector plus Gaussian
noise (--noise 0.5 of the vector's length spread over its dimensions, so a copy
sits at cosine ~0.89 from its original: near neighbours, not duplicates),
normalised again. The queries are real: the man-page test queries, encoded by
the default encoder. So latency, memory and recall against exact search are
measured on a collection shaped like real MiniLM vectors, but it is not a
collection anyone would search for answers: no relevance figure is made here.

Everything goes through the store's own code: chunk rows by
`Store.replace_documents`, vectors by `Store.put_vectors` (the precomputed sbert
vectors, so no encoder time: bench/peers.py and bench/encoders.py measure that),
GloVe vectors by the ingest's embed pass (`update_index`, which embeds the chunks
without a vector and rebuilds the index: the ingest path after chunking), and
every index by `ragmini reindex` (`Store.reindex`). Each build and each search
runs in a fresh process, whose peak RSS is its own.

Per size (100k, 300k, 1M by default), grown in one store:
- glove embed pass (embed the new chunks, rebuild the index of all): time, peak RSS
- sbert flat reindex: time, peak RSS
At the largest size, per index type (flat, hnsw, sq8 by default; ivf-pq if asked)
and on Milvus Lite (flat, hnsw): build time and peak RSS; index size; single-query
p50/p95 of the vector store alone and of `Store.search` end to end; recall@10
against flat; for flat, the bound (every vector read once at the measured memory
bandwidth); for HNSW, the distance computations and hops per query (faiss
hnsw_stats) and what they cost at the measured rates.

Writes bench/million_results.json with its targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import BENCH, REPO, Target, dir_mb, percentile, temp_dir, write_results

SOURCE_STORE = Path(os.environ.get("RAGMINI_MANPAGES_STORE", "/work/data/stores/manpages"))
DOCS_PER_COMMIT = 200


def manpages_dir() -> Path:
    """The man-page benchmark: $RAGMINI_MANPAGES, data/manpages, or the shared copy;
    built into data/manpages (`ragmini datasets build manpages`) when there is none."""
    for folder in (os.environ.get("RAGMINI_MANPAGES"), REPO / "data" / "manpages",
                   "/work/data/manpages"):
        if folder and (Path(folder) / "corpus.jsonl").is_file():
            return Path(folder)
    from bench.scale import ensure_manpages

    return ensure_manpages()


MANPAGES = manpages_dir()


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


# -- the data -------------------------------------------------------------------

def source_store() -> Path:
    """A store of the man pages with sbert vectors: the shared one (read only), else
    one ingested into the cache once (sbert only, the default encoder)."""
    if (SOURCE_STORE / "ragmini.db").is_file():
        return SOURCE_STORE
    from bench.common import cache_root

    folder = cache_root() / "bench" / "manpages-sbert"
    if not (folder / "ragmini.db").is_file():
        import ragmini

        log(f"ingesting the man pages into {folder} (once)")
        with ragmini.open(folder) as store:
            store.ingest([MANPAGES / "corpus.jsonl"], methods=["sbert"])
    return folder


def load_source(path: Path) -> dict:
    """The man-page store's documents, chunks (as rows to copy) and sbert vectors."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path / 'ragmini.db'}?mode=ro", uri=True)
    try:
        model, dim = conn.execute("SELECT model, dim FROM methods WHERE name = 'sbert'").fetchone()
        rows = conn.execute(
            "SELECT d.doc_id, d.title, c.id, c.text, c.start_char, c.end_char, c.n_tokens, "
            "v.vector FROM chunks c JOIN documents d ON d.id = c.document JOIN vectors v ON "
            "v.chunk_id = c.id AND v.method = 'sbert' WHERE c.deleted_gen IS NULL AND "
            "v.vector IS NOT NULL ORDER BY d.id, c.position").fetchall()
    finally:
        conn.close()
    docs: dict[str, dict] = {}
    vectors = np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    for i, (doc_id, title, _, text, start, end, n_tokens, _) in enumerate(rows):
        doc = docs.setdefault(doc_id, {"title": title, "chunks": [], "rows": []})
        doc["chunks"].append((text, start, end, n_tokens))
        doc["rows"].append(i)
    return {"model": model, "dim": int(dim), "docs": list(docs.items()), "vectors": vectors,
            "text_bytes": sum(len(r[1].encode()) + len(r[3].encode()) for r in rows)}


def perturbed(vectors: np.ndarray, copy: int, noise: float) -> np.ndarray:
    """Copy `copy` of `vectors`: itself for copy 0, else each row plus noise, normalised."""
    if copy == 0:
        return vectors
    rng = np.random.default_rng(copy)
    out = vectors + rng.standard_normal(vectors.shape, dtype=np.float32) * (
        noise / np.sqrt(vectors.shape[1]))
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def grow(store_path: Path, source: dict, target: int, noise: float) -> dict:
    """Add copies of the man pages (chunk rows, then sbert vectors) until the store
    has about `target` chunks; whole pages, so a little over."""
    from ingest.chunk import Chunk
    from ingest.load import Document
    from ingest.store import Store

    started = time.perf_counter()
    with Store.open(store_path, create=True) as store:
        if store.chunk_config() is None:
            store.set_chunk_config({"size": 200, "overlap": 30})
            store.register_method("sbert", source["model"], source["dim"])
        have = store.count("chunks")
        copy = int(store.get_meta("bench.copies") or 0)
        while have < target:
            batch, rows = [], []
            for doc_id, doc in source["docs"]:
                name = f"{doc_id}~{copy}"
                chunks = [Chunk(i, text, start, end, n)
                          for i, (text, start, end, n) in enumerate(doc["chunks"])]
                batch.append((Document(source=name, doc_id=name, title=doc["title"], text=""),
                              f"copy{copy}", chunks))
                rows.extend(doc["rows"])
                if len(batch) >= DOCS_PER_COMMIT:
                    have += _commit(store, batch, rows, source, copy, noise)
                    batch, rows = [], []
                if have >= target:
                    break
            if batch:
                have += _commit(store, batch, rows, source, copy, noise)
            copy += 1
            store.set_meta("bench.copies", str(copy))
        return {"chunks": store.count("chunks"), "seconds": time.perf_counter() - started}


def _commit(store, batch, rows, source, copy, noise) -> int:
    before = store.max_chunk_id()
    store.replace_documents(batch)
    n = sum(len(c) for _, _, c in batch)
    ids = np.arange(before + 1, before + 1 + n, dtype=np.int64)
    store.put_vectors("sbert", ids, perturbed(source["vectors"][rows], copy, noise))
    return n


# -- work in a fresh process ----------------------------------------------------

def child(task: str, spec: dict) -> dict:
    """Run `task` in a fresh python; its JSON output with its own peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.million", "--child", task,
                           json.dumps(spec)], capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    from bench.peer_driver import peak_rss_mb

    return peak_rss_mb()


def task_glove(spec: dict) -> dict:
    """The ingest's embed pass for GloVe: embed the chunks without a vector, rebuild."""
    from ingest.store import Store
    from retrieval.indexing import update_index

    with Store.open(spec["store"]) as store:
        t = time.perf_counter()
        report = update_index(store, "glove", progress=False)
        return {"seconds": time.perf_counter() - t, "embedded": report.embedded,
                "vectors": report.n_vectors, "peak_rss_mb": _peak_mb()}


def task_reindex(spec: dict) -> dict:
    import ragmini

    with ragmini.open(spec["store"]) as store:
        t = time.perf_counter()
        store.reindex(["sbert"], index_type=spec.get("index_type"),
                      vector_store=spec.get("vector_store"))
        return {"seconds": time.perf_counter() - t, "peak_rss_mb": _peak_mb()}


def task_search(spec: dict) -> dict:
    """Single queries, warm: the vector store alone, then `Store.search` end to end;
    every query's top 10 for recall; for HNSW, faiss's walk statistics."""
    import ragmini
    from ingest.store import Store
    from retrieval.methods import open_searcher

    queries = np.load(spec["queries"])
    k = spec["k"]
    db = Store.open(spec["store"])
    t = time.perf_counter()
    searcher = open_searcher(db, "sbert")
    open_s = time.perf_counter() - t
    vectors = searcher.vectors
    vectors.search(queries[:1], k)
    stats = _hnsw_stats(vectors)
    index_ms, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = vectors.search(q[None, :], k)
        index_ms.append((time.perf_counter() - t) * 1000)
        found.append([int(i) for i in ids[0]])
    walk = stats() if stats else None
    texts = json.loads(Path(spec["texts"]).read_text())
    store = ragmini.open(spec["store"])
    store.search(texts[0], method="sbert", k=k)
    end_to_end = []
    for text in texts[: spec["end_to_end"]]:
        t = time.perf_counter()
        store.search(text, method="sbert", k=k)
        end_to_end.append((time.perf_counter() - t) * 1000)
    store.close()
    db.close()
    return {"open_s": open_s, "index_ms": index_ms, "store_search_ms": end_to_end,
            "found": found, "walk": walk, "peak_rss_mb": _peak_mb()}


def _hnsw_stats(vectors):
    """A function returning per-query distance computations and hops of the HNSW
    walks since now (None for another index)."""
    if getattr(vectors, "index_type", "") != "hnsw" or getattr(vectors, "backend", "") != "faiss":
        return None
    import faiss

    faiss.cvar.hnsw_stats.reset()
    before = 0

    def read() -> dict:
        s = faiss.cvar.hnsw_stats
        return {"ndis": int(s.ndis), "nhops": int(s.nhops), "n1": int(s.n1),
                "calls": before}

    return read


TASKS = {"glove": task_glove, "reindex": task_reindex, "search": task_search}


# -- bounds ---------------------------------------------------------------------

def gemv_gflops(dim: int = 384, n: int = 200_000) -> float:
    """Measured inner products per second as GFLOP/s on vectors in cache-sized blocks
    (the compute side of a scan, without the memory stream)."""
    rng = np.random.default_rng(0)
    block = rng.standard_normal((4096, dim), dtype=np.float32)
    q = rng.standard_normal(dim, dtype=np.float32)
    block @ q
    reps = n // len(block)
    t = time.perf_counter()
    for _ in range(reps):
        block @ q
    return 2 * reps * len(block) * dim / (time.perf_counter() - t) / 1e9


def summary(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "n": len(values)}


# -- the run --------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--types", default="flat,hnsw,sq8",
                        help="FAISS index types at the largest size (ivf-pq: k-means on "
                             "the whole collection, many minutes more)")
    parser.add_argument("--milvus", default="flat,hnsw",
                        help="Milvus Lite index types at the largest size ('' for none)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--end-to-end", type=int, default=50,
                        help="queries timed through Store.search (encoder included)")
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--store", type=Path, default=None,
                        help="build the store here and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("TASK", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(TASKS[args.child[0]](json.loads(args.child[1]))))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    types = [t for t in args.types.split(",") if t]
    milvus_types = [t for t in args.milvus.split(",") if t]
    started = time.perf_counter()
    if args.store:
        run(args, sizes, types, milvus_types, args.store, started)
    else:
        with temp_dir("ragmini-million-") as tmp:
            run(args, sizes, types, milvus_types, tmp / "store", started)


def run(args, sizes, types, milvus_types, store_path: Path, started: float) -> None:
    from bench.scale import measured_bandwidth_gbs
    from eval.beir import load_beir
    from retrieval.methods import sbert_encoder

    source = load_source(source_store())
    log(f"source: {len(source['vectors'])} man-page chunks, {source['model']}")
    qs = load_beir(MANPAGES, "test")
    texts = list(qs.queries.values())[: args.queries]
    work = store_path.parent
    np.save(work / "queries.npy", sbert_encoder().embed(texts))
    (work / "texts.json").write_text(json.dumps(texts))
    search_spec = {"store": str(store_path), "queries": str(work / "queries.npy"),
                   "texts": str(work / "texts.json"), "k": 10, "end_to_end": args.end_to_end}
    growth = []
    for n in sizes:
        added = grow(store_path, source, n, args.noise)
        log(f"store at {added['chunks']} chunks ({added['seconds']:.0f} s)")
        glove = child("glove", {"store": str(store_path)})
        log("glove embed pass", glove)
        flat = child("reindex", {"store": str(store_path), "index_type": "flat"})
        log("sbert flat reindex", flat)
        growth.append({"chunks": added["chunks"], "rows_s": round(added["seconds"], 1),
                       "glove_embed_pass": glove, "sbert_flat_reindex": flat,
                       "store_mb": dir_mb(store_path)})
    n = growth[-1]["chunks"]
    gbs = measured_bandwidth_gbs()
    gflops = gemv_gflops()
    indexes: dict[str, dict] = {}
    truth = None
    for kind in types:
        build = child("reindex", {"store": str(store_path), "index_type": kind})
        size = sum(f.stat().st_size for f in (store_path / "index").glob("sbert-*.faiss"))
        found = child("search", search_spec)
        indexes[f"faiss {kind}"] = _figures(build, found, size)
        if kind == "flat":
            truth = found["found"]
        log(kind, {k: v for k, v in indexes[f"faiss {kind}"].items() if k != "found"})
    for kind in milvus_types:
        build = child("reindex", {"store": str(store_path), "index_type": kind,
                                  "vector_store": "milvus"})
        lite = store_path / "milvus.db"  # retrieval.milvus.LITE_FOLDER
        size = int(dir_mb(lite) * 2**20) if lite.is_dir() else (
            lite.stat().st_size if lite.exists() else 0)
        found = child("search", search_spec)
        indexes[f"milvus lite {kind}"] = _figures(build, found, size)
        log("milvus", kind, {k: v for k, v in indexes[f"milvus lite {kind}"].items()
                             if k != "found"})
    if milvus_types:  # back to FAISS: the store is left as it was made
        child("reindex", {"store": str(store_path), "index_type": "flat", "vector_store": "faiss"})
    for name, r in indexes.items():
        got = r.pop("found")
        r["recall_at_10_vs_flat"] = None if truth is None else round(float(np.mean(
            [len(set(a) & set(b)) / 10 for a, b in zip(got, truth)])), 4)
    flat_bound_ms = n * source["dim"] * 4 / (gbs * 1e9) * 1000
    bounds = {"bandwidth_gbs": round(gbs, 2), "gemv_gflops": round(gflops, 2),
              "flat_scan_bound_ms": round(flat_bound_ms, 2)}
    hnsw = indexes.get("faiss hnsw")
    if hnsw and hnsw.get("walk"):
        walk = hnsw["walk"]
        per_query = walk["ndis"] / max(walk["queries"], 1)
        # each distance reads one 1,536-byte vector from a random place: the bound is
        # the bytes at the measured bandwidth, or the flops at the measured rate
        bounds["hnsw_distances_per_query"] = round(per_query, 1)
        bounds["hnsw_hops_per_query"] = round(walk["nhops"] / max(walk["queries"], 1), 1)
        bounds["hnsw_bound_ms"] = round(max(per_query * source["dim"] * 4 / (gbs * 1e9),
                                            per_query * 2 * source["dim"] / (gflops * 1e9))
                                        * 1000, 4)
    results = {
        "data": {"source": str(source_store()), "source_chunks": len(source["vectors"]),
                 "text_kb_per_chunk": round(source["text_bytes"] / len(source["vectors"])
                                            / 1024, 3),
                 "model": source["model"], "dim": source["dim"], "noise": args.noise,
                 "queries": len(texts), "note": "real MiniLM vectors of the man-page chunks, "
                 "repeated with Gaussian noise (copy 0 exact); real test queries"},
        "chunks": n, "growth": growth, "indexes": indexes, "bounds": bounds,
        "run_s": round(time.perf_counter() - started, 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    results["table_md"] = markdown(results)
    path = write_results("million", results, targets_of(results), out=args.out or (
        BENCH / ("million_results.json" if n >= 1_000_000 else "million_quick_results.json")))
    print(results["table_md"])
    log(f"wrote {path}")


def _figures(build: dict, found: dict, size: int) -> dict:
    walk = found.get("walk")
    if walk:
        walk["queries"] = len(found["index_ms"])
    return {"build_s": round(build["seconds"], 1), "build_peak_rss_mb": build["peak_rss_mb"],
            "size_mb": round(size / 2**20, 1), "open_s": round(found["open_s"], 2),
            "index_ms": summary(found["index_ms"]),
            "store_search_ms": summary(found["store_search_ms"]),
            "search_peak_rss_mb": found["peak_rss_mb"], "walk": walk, "found": found["found"]}


def targets_of(results: dict) -> list[Target]:
    n, ix, b = results["chunks"], results["indexes"], results["bounds"]
    out = []
    hnsw = ix.get("faiss hnsw")
    if hnsw:
        out.append(Target(f"hnsw p50 at {n:,} vectors", hnsw["index_ms"]["p50"], 0.5, "<",
                          " ms"))
        out.append(Target(f"hnsw recall@10 against flat at {n:,}",
                          hnsw["recall_at_10_vs_flat"], 0.95, ">="))
    flat = ix.get("faiss flat")
    if flat:
        out.append(Target(f"flat p50 at {n:,} / bandwidth bound ({b['flat_scan_bound_ms']} ms)",
                          round(flat["index_ms"]["p50"] / b["flat_scan_bound_ms"], 3), 1.3, "<=",
                          "x"))
    growth = results["growth"]
    if len(growth) >= 2:
        # the slope between the two largest sizes: fixed costs (imports, a read batch,
        # the GloVe pages a vocabulary touches) are paid by then
        a, b = growth[-2], growth[-1]
        chunks = b["chunks"] - a["chunks"]

        def kb_per_chunk(step: str) -> float:
            return (b[step]["peak_rss_mb"] - a[step]["peak_rss_mb"]) * 1024 / chunks

        text_kb = results["data"]["text_kb_per_chunk"]
        # Holding every text once would grow the embed pass by at least a text a chunk
        # (its 50-d GloVe index adds 0.2 KB a chunk); held a batch at a time, far less.
        out.append(Target(f"glove embed pass, {a['chunks']:,} -> {b['chunks']:,} chunks: peak "
                          f"RSS growth per chunk / text per chunk ({text_kb:.2f} KB)",
                          round(kb_per_chunk("glove_embed_pass") / text_kb, 3), 0.5, "<=", "x"))
        # The flat reindex holds the index (1.5 KB a vector) plus a read batch: twice the
        # vectors would be 2x and more
        out.append(Target(f"sbert flat reindex, {a['chunks']:,} -> {b['chunks']:,} chunks: peak "
                          "RSS growth per chunk / 1.5 KB vector",
                          round(kb_per_chunk("sbert_flat_reindex") / 1.5, 3), 1.5, "<=", "x"))
    return out


def markdown(results: dict) -> str:
    rows = ["| chunks | glove embed pass s / peak RSS MB | sbert flat reindex s / peak RSS MB "
            "| store MB |", "|---|---|---|---|"]
    for g in results["growth"]:
        e, r = g["glove_embed_pass"], g["sbert_flat_reindex"]
        rows.append(f"| {g['chunks']:,} | {e['seconds']:.1f} / {e['peak_rss_mb']:.0f} | "
                    f"{r['seconds']:.1f} / {r['peak_rss_mb']:.0f} | {g['store_mb']:.0f} |")
    rows += ["", "| index | build s | build peak RSS MB | size MB | p50 / p95 ms (index) | "
             "Store.search p50 ms | recall@10 vs flat | search RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results["indexes"].items():
        rows.append(f"| {name} | {r['build_s']} | {r['build_peak_rss_mb']:.0f} | {r['size_mb']} | "
                    f"{r['index_ms']['p50']:.3f} / {r['index_ms']['p95']:.3f} | "
                    f"{r['store_search_ms']['p50']:.1f} | {r['recall_at_10_vs_flat']} | "
                    f"{r['search_peak_rss_mb']:.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
