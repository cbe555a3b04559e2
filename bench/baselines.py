"""The classic baselines at scale: w2v training time, tfidf build time, and how many
query words GloVe's fixed vocabulary misses against the corpus-trained w2v's.

    python -m bench.baselines --dataset data/manpages --split dev    # make bench-baselines
    python -m bench.baselines --store .ragmini --queries corpus/queries.jsonl

With --dataset (a BEIR folder) the dataset's eval store is used (the one
`ragmini eval --dataset` builds, chunked 200/30 unless told otherwise), and
made first if it does not exist. Its database is copied to a temporary folder
and the baselines are built there, so the store itself gains no method; the
timings are of that copy: tfidf's fit and commit, w2v's training (tokenizing
included), then embedding every chunk and building its index. Writes
bench/baselines_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if not __package__:  # `python bench/baselines.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    machine,
    write_results,
)

METHODS = ("tfidf", "w2v", "w2v-sif")


def copy_store(source: Path, target: Path) -> Path:
    """A consistent copy of the store's database (SQLite's backup API: safe while
    another process writes); its indexes are not needed."""
    target.mkdir(parents=True)
    src = sqlite3.connect(f"file:{source / 'ragmini.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(target / "ragmini.db")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


def dataset_store(dataset: Path, size: int, overlap: int) -> Path:
    """The dataset's eval store, ingested (no method) if it does not exist yet."""
    from eval.beir import dataset_store_dir
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    path = dataset_store_dir(dataset, size, overlap)
    if not (path / "ragmini.db").is_file():
        with Store.open(path, create=True) as store:
            ingest_and_index(store, [dataset / "corpus.jsonl"], [],
                             config=ChunkConfig(size=size, overlap=overlap), progress=False)
    return path


def build(store) -> dict:
    """Build tfidf, train w2v and index both w2v methods, whatever the store held
    before; seconds of each step."""
    from retrieval.indexing import update_index
    from retrieval.methods import get_embedder
    from retrieval.tfidf import TfidfMethod
    from retrieval.w2v import train_for_store

    out = {"chunks": store.count("chunks")}
    t = time.perf_counter()
    report = TfidfMethod().rebuild(store)
    tfidf_s = time.perf_counter() - t
    params = json.loads((store.index_dir / "tfidf.json").read_text())
    folder = store.index_dir / params["folder"]
    out["tfidf"] = {"build_s": round(tfidf_s, 2), "n_terms": params["n_terms"],
                    "index_mb": round(sum(f.stat().st_size for f in folder.iterdir()) / 1e6, 1),
                    "model": report.model}
    t = time.perf_counter()
    p = train_for_store(store)
    out["w2v"] = {"train_s": round(time.perf_counter() - t, 2), "tokens": p.n_tokens,
                  "epochs": p.epochs, "n_words": p.n_words, "model": p.model}
    out["w2v-sif"] = {}
    for method in ("w2v", "w2v-sif"):  # load the model, embed every chunk, build FAISS
        t = time.perf_counter()
        update_index(store, method, get_embedder(method, store), progress=False,
                     force_rebuild=True)
        out[method]["embed_index_s"] = round(time.perf_counter() - t, 2)
    return out


def oov(queries: dict[str, str], vocabularies: dict[str, set]) -> dict:
    """Per vocabulary: the share of query tokens it lacks, of queries with at least
    one such token, of queries with no known token at all, and the commonest misses."""
    from retrieval.glove import tokenize

    tokens = {qid: tokenize(text) for qid, text in queries.items()}
    n_tokens = sum(len(t) for t in tokens.values())
    out = {}
    for name, vocab in vocabularies.items():
        missing = Counter(w for t in tokens.values() for w in t if w not in vocab)
        out[name] = {
            "vocabulary": len(vocab),
            "token_oov_rate": round(sum(missing.values()) / max(n_tokens, 1), 4),
            "queries_with_oov": round(sum(any(w not in vocab for w in t) for t in tokens.values())
                                      / max(len(tokens), 1), 4),
            "queries_all_oov": round(sum(bool(t) and all(w not in vocab for w in t)
                                         for t in tokens.values()) / max(len(tokens), 1), 4),
            "commonest_missing": [w for w, _ in missing.most_common(15)],
        }
    out["queries"], out["tokens"] = len(tokens), n_tokens
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dataset", type=Path, help="a BEIR folder, e.g. data/manpages")
    where.add_argument("--store", type=Path, help="a ragmini store folder")
    parser.add_argument("--split", default="dev", help="qrels split of --dataset (default dev)")
    parser.add_argument("--queries", type=Path, help="with --store: a queries .jsonl file")
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=30)
    parser.add_argument("--no-eval", action="store_true", help="skip recall on the queries")
    parser.add_argument("--out", type=Path, default=BENCH / "baselines_results.json")
    args = parser.parse_args()

    from eval.harness import evaluate_methods
    from ingest.store import Store
    from retrieval.glove import GloveEmbedder
    from retrieval.w2v import w2v_for_store

    query_set = None
    if args.dataset:
        from eval.beir import load_beir

        query_set = load_beir(args.dataset, args.split)
        source = dataset_store(args.dataset, args.chunk_size, args.overlap)
    else:
        source = args.store
        if args.queries:
            from eval.queries import load_queries

            query_set = load_queries(args.queries)
    results = {
        "machine": {**machine(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "source": str(args.dataset or args.store), "store": str(source),
        "split": args.split if args.dataset else None,
    }
    with tempfile.TemporaryDirectory(prefix="ragmini-baselines-") as tmp:
        with Store.open(copy_store(source, Path(tmp) / "store")) as store:
            results.update(build(store))
            if query_set is not None:
                w2v_vocab = set(w2v_for_store(store, train=False).keyed_vectors.key_to_index)
                glove_vocab = set(GloveEmbedder.packaged().keyed_vectors.key_to_index)
                results["oov"] = oov(query_set.queries, {"glove": glove_vocab, "w2v": w2v_vocab})
                if not args.no_eval:
                    result = evaluate_methods(store, query_set, list(METHODS), ks=(1, 5, 10))
                    results["eval"] = {m: {k: round(v, 4) for k, v in r.metrics.items()}
                                       | {"unanswerable": r.unanswerable,
                                          "p50_ms": round(r.latency_ms.get("p50", 0.0), 2)}
                                       for m, r in result.methods.items()}
                    results["eval"]["n_queries"] = result.n_queries
    write_results("baselines", results, out=args.out)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
