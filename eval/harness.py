"""Run labelled queries through each method and score them at document level."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from eval.metrics import DEFAULT_KS, evaluate
from eval.queries import QuerySet
from ingest.store import Store
from retrieval.search import Retriever

QUERY_BATCH = 32


@dataclass(frozen=True)
class MethodResult:
    metrics: dict[str, float]
    latency_ms_p50: float  # per query, batched embed + search, divided evenly
    run: dict[str, dict[str, float]]


@dataclass(frozen=True)
class EvalResult:
    n_queries: int
    n_dropped: int  # queries with no relevant document, left out of every mean
    ks: tuple[int, ...]
    methods: dict[str, MethodResult]

    def to_dict(self) -> dict:
        return {
            "n_queries": self.n_queries,
            "n_dropped": self.n_dropped,
            "ks": list(self.ks),
            "methods": {m: r.metrics for m, r in self.methods.items()},
            "latency_ms_p50": {m: r.latency_ms_p50 for m, r in self.methods.items()},
        }


def doc_run(hits) -> dict[str, float]:
    """Document-level ranking from chunk hits: a document ranks at its best chunk.

    Scores are 1/rank so trec_eval, which sorts by score, keeps our order exactly.
    """
    ranked: dict[str, float] = {}
    for hit in hits:
        if hit.doc_id not in ranked:
            ranked[hit.doc_id] = 1.0 / (len(ranked) + 1)
    return ranked


def run_method(retriever: Retriever, queries: dict[str, str], depth: int
               ) -> tuple[dict[str, dict[str, float]], float]:
    """({qid: {doc_id: score}}, median ms per query) for one method."""
    qids = list(queries)
    run: dict[str, dict[str, float]] = {}
    per_query_ms: list[float] = []
    for i in range(0, len(qids), QUERY_BATCH):
        batch = qids[i : i + QUERY_BATCH]
        started = time.perf_counter()
        results = retriever.search_many([queries[q] for q in batch], k=depth)
        per_query_ms.extend([(time.perf_counter() - started) * 1000 / len(batch)] * len(batch))
        for qid, hits in zip(batch, results):
            run[qid] = doc_run(hits)
    return run, statistics.median(per_query_ms) if per_query_ms else 0.0


def evaluate_methods(store: Store, query_set: QuerySet, methods: list[str],
                     ks: tuple[int, ...] = DEFAULT_KS, chunks_per_doc: int = 10) -> EvalResult:
    """Score each method on the queries that have relevant documents.

    Each query retrieves max(ks) * chunks_per_doc chunks, enough that the top
    max(ks) distinct documents are nearly always among them.
    """
    judged = {q: t for q, t in query_set.queries.items() if q in query_set.qrels}
    depth = max(ks) * chunks_per_doc
    results = {}
    for method in methods:
        retriever = Retriever(store, method)
        run, p50 = run_method(retriever, judged, depth)
        results[method] = MethodResult(evaluate(query_set.qrels, run, ks), p50, run)
    return EvalResult(len(judged), len(query_set.queries) - len(judged), tuple(ks), results)


def format_table(result: EvalResult) -> str:
    names = [f"recall@{k}" for k in result.ks] + ["mrr@10"]
    header = f"{'method':<8}" + "".join(f"{n:>11}" for n in names)
    lines = [header, "-" * len(header)]
    for method, r in result.methods.items():
        lines.append(f"{method:<8}" + "".join(f"{r.metrics[n]:>11.3f}" for n in names))
    lines.append(f"({result.n_queries} queries with relevant documents"
                 + (f"; {result.n_dropped} without, left out" if result.n_dropped else "") + ")")
    return "\n".join(lines)
