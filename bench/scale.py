"""Benchmark sections at scale: encoders, FAISS index types, memory.

Called by bench/run.py and bench/encoders.py (a library: no command of its own). Real data comes from the man-page benchmark
(`data/manpages`, built on demand with apt-get); the 100k-vector figures use
synthetic unit vectors, and say so.
"""

from __future__ import annotations

import glob
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import MANPAGES, RAGMINI, REPO, cache_root, command_peak_rss_mb, percentile

BANDWIDTH_GBS = 12.0  # the figure for this machine; measured below as well


def ensure_manpages() -> Path:
    if not (MANPAGES / "corpus.jsonl").is_file():
        subprocess.run([str(RAGMINI), "datasets", "build", "manpages",
                        "--out", str(MANPAGES), "--no-progress"], check=True)
    return MANPAGES


def mini_benchmark(n_chunks_target: int, folder: Path) -> tuple[Path, dict, dict]:
    """A slice of the man-page test split: whole pages of test queries, until about
    `n_chunks_target` chunks (about 14 chunks a page). Returns (BEIR folder, queries, qrels)."""
    from eval.beir import load_beir

    test = load_beir(MANPAGES, "test")
    corpus = {}
    with open(MANPAGES / "corpus.jsonl") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[row["_id"]] = line
    pages_wanted = max(8, n_chunks_target // 14)
    chosen, queries, qrels = [], {}, {}
    for qid in sorted(test.qrels):
        pages = list(test.qrels[qid])
        if len(chosen) + len(pages) > pages_wanted:
            break
        chosen.extend(p for p in pages if p not in chosen)
        queries[qid], qrels[qid] = test.queries[qid], test.qrels[qid]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as out:
        out.writelines(corpus[p] for p in chosen)
    return folder, queries, qrels


def bench_throughput(n_chunks: int, glove_chunks: int) -> dict:
    """ragmini ingest vs the raw encoders on the same chunk texts."""
    from ingest.store import Store
    from retrieval.contract import passage_text
    from retrieval.glove import GloveEmbedder, tokenize
    from retrieval.ingesting import ingest_and_index
    from retrieval.methods import sbert_encoder

    ensure_manpages()
    tmp = Path(tempfile.mkdtemp())
    folder, queries, qrels = mini_benchmark(n_chunks, tmp / "mini")
    sbert = sbert_encoder()  # the default encoder; bench/encoders.py compares them
    with Store.open(tmp / "store", create=True) as store:
        started = time.perf_counter()
        ingest_and_index(store, [folder / "corpus.jsonl"], ["sbert"], progress=False,
                         embedders={"sbert": sbert})
        ingest_s = time.perf_counter() - started
        chunks = [c for batch in store.iter_chunks() for c in batch]
    texts = [passage_text(c.title, c.text) for c in chunks]
    started = time.perf_counter()
    sbert.embed(texts)
    raw_s = time.perf_counter() - started

    glove = GloveEmbedder.packaged()
    many = (texts * (glove_chunks // max(len(texts), 1) + 1))[:glove_chunks]
    started = time.perf_counter()
    glove.embed(many)
    glove_s = time.perf_counter() - started
    # The raw baseline: a plain vectorised numpy mean over looked-up word ids.
    vocab, vectors = glove.keyed_vectors.key_to_index, np.asarray(glove.vectors)
    started = time.perf_counter()
    ids = [np.fromiter((vocab[w] for w in tokenize(t) if w in vocab), dtype=np.int64) for t in many]
    lengths = np.array([len(i) for i in ids])
    flat = np.concatenate(ids)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    sums = np.add.reduceat(vectors[flat], starts[lengths > 0], axis=0)
    raw_glove_s = time.perf_counter() - started
    shutil.rmtree(tmp, ignore_errors=True)
    return {"chunks": len(texts), "sbert_ingest_s": ingest_s, "sbert_raw_encode_s": raw_s,
            "sbert_ratio": ingest_s / raw_s, "glove_chunks": len(many),
            "glove_chunks_per_s": len(many) / glove_s,
            "glove_raw_numpy_chunks_per_s": len(many) / raw_glove_s,
            "glove_ratio_to_raw": raw_glove_s / glove_s, "_sums_shape": list(sums.shape)}


def measured_bandwidth_gbs() -> float:
    a = np.ones(256 * 2**20 // 4, dtype=np.float32)  # 256 MiB
    a.sum()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t)
    return a.nbytes / min(times) / 1e9


def _search_times(index, queries: np.ndarray, k: int = 10) -> list[float]:
    index.search(queries[:1], k)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
    return times


def _recall_vs_flat(index, flat, queries: np.ndarray, k: int = 10) -> float:
    _, truth = flat.search(queries, k)
    _, got = index.search(queries, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth)]))


def _unit(rng, n, dim):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_index_types(synthetic_n: int, n_queries: int, use_real: bool = True) -> dict:
    """Each FAISS index type on real man-page vectors (if that store is built) and
    on synthetic ones."""
    import faiss

    from retrieval.index import build_index, search_params, apply_search_params

    out: dict = {"types": {}}
    rng = np.random.default_rng(0)
    real = _real_vectors() if use_real else None
    sets = []
    if real is not None:
        ids, vecs, queries = real
        sets.append(("real", ids, vecs, queries[:n_queries]))
    # Synthetic: clustered unit vectors (real embeddings are clustered, not uniform);
    # queries are perturbed data points, so each has true near neighbours.
    centres = _unit(rng, max(synthetic_n // 200, 1), 384)
    synth = centres[rng.integers(0, len(centres), synthetic_n)] + 0.35 * _unit(rng, synthetic_n, 384)
    synth /= np.linalg.norm(synth, axis=1, keepdims=True)
    q = synth[rng.integers(0, synthetic_n, n_queries)] + 0.1 * _unit(rng, n_queries, 384)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    sets.append(("synthetic", np.arange(synthetic_n, dtype=np.int64), synth.astype(np.float32), q))
    for label, ids, vecs, queries in sets:
        flat = None
        for index_type in ("flat", "sq8", "hnsw", "ivf-pq"):
            t = time.perf_counter()
            index = build_index(ids, vecs, index_type)
            build_s = time.perf_counter() - t
            apply_search_params(index, search_params(index_type))
            if index_type == "flat":
                flat = index
            times = _search_times(index, queries)
            out["types"].setdefault(index_type, {})[label] = {
                "n": len(ids), "build_s": build_s,
                "size_mb": faiss.serialize_index(index).nbytes / 2**20,
                "p50_ms": statistics.median(times), "p95_ms": percentile(times, 95),
                "recall_at_10_vs_flat": _recall_vs_flat(index, flat, queries),
            }
    out["real_source"] = "man-page test queries on the man-page sbert vectors" if real else None
    out["synthetic_n"] = synthetic_n
    bound_ms = synthetic_n * 384 * 4 / (BANDWIDTH_GBS * 1e9) * 1000
    gbs = measured_bandwidth_gbs()
    out["flat_bound_ms_at_12gbs"] = bound_ms
    out["measured_bandwidth_gbs"] = gbs
    out["flat_bound_ms_measured"] = synthetic_n * 384 * 4 / (gbs * 1e9) * 1000
    return out


def _real_vectors():
    """(ids, sbert vectors, query vectors) from the cached man-page store, if built."""
    from eval.beir import load_beir
    from ingest.store import Store
    from retrieval.sbert import SbertEmbedder

    stores = sorted(glob.glob(str(cache_root() / "datasets" / "manpages-*-c200o30")))
    if not stores or not (MANPAGES / "qrels" / "test.tsv").is_file():
        return None
    with Store.open(stores[-1]) as store:
        ids, vecs = store.vectors("sbert")
    if len(ids) < 1000:
        return None
    queries = list(load_beir(MANPAGES, "test").queries.values())
    return ids, vecs, SbertEmbedder.packaged().embed(queries)


def bench_memory(store_dir: Path) -> dict:
    exe = str(RAGMINI)
    with tempfile.TemporaryDirectory() as tmp:
        ingest = command_peak_rss_mb([exe, "ingest", str(REPO / "corpus" / "docs"), "--store", tmp,
                              "--no-progress"])
    return {
        "ingest_bundled_mb": ingest,
        "search_glove_mb": command_peak_rss_mb([exe, "search", "cosine", "--method", "glove", "--store",
                                        str(store_dir)]),
        "search_sbert_mb": command_peak_rss_mb([exe, "search", "cosine", "--method", "sbert", "--store",
                                        str(store_dir)]),
    }


def plot_index_types(index_types: dict, path: Path) -> Path:
    """recall@10 (relative to flat) against p50 latency, one point per index type and data set."""
    from eval.plots import pyplot

    from adjustText import adjust_text

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    markers = {"real": "o", "synthetic": "s"}
    labels = []
    colours = dict(zip(index_types["types"], plt.get_cmap("tab10").colors))
    for kind, by_set in index_types["types"].items():
        for label, r in by_set.items():
            ax.scatter(r["p50_ms"], r["recall_at_10_vs_flat"], s=80, marker=markers[label],
                       color=colours[kind], edgecolor="black", linewidth=0.5)
            labels.append(ax.text(r["p50_ms"], r["recall_at_10_vs_flat"],
                                  f"{kind} ({label}, {r['n']:,})", fontsize=8))
    ax.set_xscale("log")
    ax.set_ylim(min(0.2, ax.get_ylim()[0]), 1.08)
    adjust_text(labels, ax=ax, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    ax.set_xlabel("query p50 (ms, log scale, one query at a time)")
    ax.set_ylabel("recall@10 relative to flat")
    ax.set_title("FAISS index types: accuracy against speed\n"
                 "circles: man-page sbert vectors; squares: synthetic clustered vectors")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
