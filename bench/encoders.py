"""The sbert encoders side by side: torch (sentence-transformers), ONNX fp32 and
ONNX int8, on the same texts in one run; cold start and peak RSS of the CLI;
retrieval quality with the eval's paired tests. (txtai and the other peer libraries
against ragmini: bench/peers.py.)

    python -m bench.encoders [--sample 1000]     # make bench-encoders

Writes bench/encoders_results.json (bench/run.py reads its targets from there).
Sections:
- throughput: `embed` on a fixed sample of man-page chunks (~200 tokens each)
  and on the man-page queries (~8 tokens), encoders interleaved, median of rounds.
- cold: whole-process `ragmini search` wall time and peak RSS, bundled corpus,
  on stores embedded by each encoder, and for glove.
- bundled / manpages: recall@10, MRR@10, nDCG@10 of sbert with the torch vectors
  against the default encoder's, paired bootstrap CI and randomization p. The man
  pages' default-encoder store is a full `ingest` of data/manpages (timed: the
  whole-collection ingest figure); the torch one is the eval's cached store.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # `python bench/encoders.py`: import the repository's packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import (  # noqa: E402  (sets the offline environment first)
    BENCH,
    CORPUS,
    MANPAGES,
    QUERIES,
    RAGMINI,
    command_peak_rss_mb,
    machine,
    write_results,
)

EXE = RAGMINI
ENCODERS = ("torch", "onnx", "onnx-int8")


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def sample_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n man-page chunks (as stored: title + text) and the man-page queries."""
    from eval.beir import dataset_store_dir
    from ingest.store import Store
    from retrieval.contract import passage_text

    with Store.open(dataset_store_dir(MANPAGES, 200, 30)) as store:
        chunks = [passage_text(c.title, c.text) for b in store.iter_chunks() for c in b]
    random.Random(seed).shuffle(chunks)
    queries = [json.loads(line)["text"] for line in open(MANPAGES / "queries.jsonl")]
    return chunks[:n], queries


def bench_throughput(chunks: list[str], queries: list[str], rounds: int) -> dict:
    from retrieval.methods import sbert_encoder

    encoders = {e: sbert_encoder(e) for e in ENCODERS}
    for enc in encoders.values():
        enc.embed(chunks[:16])  # warm-up
    rates = {e: {"chunks": [], "queries": []} for e in ENCODERS}
    for r in range(rounds):
        for name, enc in encoders.items():
            for kind, texts in (("chunks", chunks), ("queries", queries)):
                t = time.perf_counter()
                enc.embed(texts)
                rates[name][kind].append(len(texts) / (time.perf_counter() - t))
            log("round", r, name, {k: round(v[-1], 1) for k, v in rates[name].items()})
    out = {e: {f"{k}_per_s": statistics.median(v) for k, v in r.items()}
           for e, r in rates.items()}
    for e in ENCODERS:
        for kind in ("chunks", "queries"):
            out[e][f"{kind}_ratio_to_torch"] = (out[e][f"{kind}_per_s"]
                                                / out["torch"][f"{kind}_per_s"])
    import numpy as np

    ref_c, ref_q = encoders["torch"].embed(chunks[:300]), encoders["torch"].embed(queries[:300])
    for e in ("onnx", "onnx-int8"):
        cc = (encoders[e].embed(chunks[:300]) * ref_c).sum(axis=1)
        cq = (encoders[e].embed(queries[:300]) * ref_q).sum(axis=1)
        out[e]["cosine_to_torch"] = {"chunks_mean": float(np.mean(cc)),
                                     "chunks_min": float(np.min(cc)),
                                     "queries_mean": float(np.mean(cq)),
                                     "queries_min": float(np.min(cq))}
    out["sample"] = {"chunks": len(chunks), "queries": len(queries), "rounds": rounds}
    return out


def ingest_bundled(store: Path, encoder: str, methods: str = "sbert") -> float:
    t = time.perf_counter()
    subprocess.run([str(EXE), "ingest", str(CORPUS), "--store", str(store),
                    "--methods", methods, "--encoder", encoder, "--no-progress"],
                   check=True, capture_output=True)
    return time.perf_counter() - t


def bench_cold(stores: dict[str, Path], repeats: int) -> dict:

    def run(args: list[str]) -> tuple[float, float]:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([str(EXE), *args], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times), command_peak_rss_mb([str(EXE), *args])

    out = {}
    for encoder, store in stores.items():
        s, mb = run(["search", "cosine similarity", "--method", "sbert", "--store", str(store)])
        out[f"search_sbert_{encoder}"] = {"s": s, "peak_rss_mb": mb}
    s, mb = run(["search", "cosine similarity", "--method", "glove", "--store",
                 str(stores["torch"])])
    out["search_glove"] = {"s": s, "peak_rss_mb": mb}
    out["repeats"] = repeats
    return out


def paired(store_a: Path, store_b: Path, query_set, labels: tuple[str, str]) -> dict:
    """sbert in two stores on the same queries: means and the eval's paired tests."""
    from eval.harness import evaluate_methods
    from eval.metrics import HEADLINE
    from eval.stats import compare
    from ingest.store import Store

    per_query, means, latency = {}, {}, {}
    for label, path in zip(labels, (store_a, store_b)):
        with Store.open(path) as store:
            result = evaluate_methods(store, query_set, ["sbert"], ks=(10,), full=True)
        r = result.methods["sbert"]
        per_query[label], means[label] = r.per_query, {m: r.metrics[m] for m in HEADLINE}
        latency[label] = r.latency_ms
    rows = compare(per_query, HEADLINE)
    return {"n_queries": len(next(iter(per_query.values()))), "means": means,
            "latency_ms": latency, "comparisons": [c.to_dict() for c in rows]}


def bench_manpages(tmp: Path, split: str) -> tuple[dict, Path]:
    """A full ingest of the man pages with the default encoder (sbert only), then its
    sbert against the torch vectors of the eval's cached store."""
    from eval.beir import dataset_store_dir, load_beir
    from ingest.chunk import ChunkConfig
    from ingest.store import Store
    from retrieval.ingesting import ingest_and_index

    torch_store = dataset_store_dir(MANPAGES, 200, 30)
    path = tmp / "manpages-default"
    log("ingesting the man pages with the default encoder")
    with Store.open(path, create=True) as store:
        t = time.perf_counter()
        done = ingest_and_index(store, [MANPAGES / "corpus.jsonl"], ["sbert"],
                                config=ChunkConfig(200, 30), progress=False)
        seconds = time.perf_counter() - t
        model = store.method_info("sbert")["model"]
    out = {"ingest_s": seconds, "chunks": done.chunks, "documents": done.documents,
           "chunks_per_s": done.chunks / seconds, "model": model}
    log("man-page ingest", out)
    out["quality"] = paired(torch_store, path, load_beir(MANPAGES, split),
                            ("torch", "onnx-int8"))
    out["split"] = split
    return out, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=1000, help="man-page chunks to encode")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--split", default="test")
    parser.add_argument("--no-manpages", action="store_true", help="skip the full ingest")
    parser.add_argument("--out", type=Path, default=BENCH / "encoders_results.json")
    args = parser.parse_args()
    from eval.queries import load_queries
    from retrieval.onnx_minilm import ensure_exported

    t = time.perf_counter()
    folder = ensure_exported()
    results = {"machine": machine(),
               "export": json.loads((folder / "params.json").read_text())}
    results["export"]["ensure_s"] = time.perf_counter() - t
    chunks, queries = sample_texts(args.sample)
    results["throughput"] = bench_throughput(chunks, queries, args.rounds)
    log("throughput", json.dumps(results["throughput"])[:400])
    tmp = Path(tempfile.mkdtemp(prefix="ragmini-enc-"))
    try:
        stores = {e: tmp / f"bundled-{e}" for e in ("torch", "onnx-int8")}
        results["bundled_ingest_s"] = {e: ingest_bundled(p, e, "sbert,glove")
                                       for e, p in stores.items()}
        results["cold"] = bench_cold(stores, repeats=3)
        log("cold", results["cold"])
        results["bundled"] = paired(stores["torch"], stores["onnx-int8"],
                                    load_queries(QUERIES),
                                    ("torch", "onnx-int8"))
        log("bundled", results["bundled"]["means"])
        if not args.no_manpages:
            results["manpages"], _ = bench_manpages(tmp, args.split)
            log("manpages", results["manpages"]["quality"]["means"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_results("encoders", results, out=args.out)
    print(json.dumps({k: v for k, v in results.items() if k != "export"}, indent=1)[:6000])


if __name__ == "__main__":
    main()
