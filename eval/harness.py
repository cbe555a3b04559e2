"""Run labelled queries through each method and score them at document level."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.errors import QueryError
from core.timing import latency_summary
from eval.metrics import DEFAULT_KS, HEADLINE, evaluate_per_query, mean_metrics, metric_names
from eval.queries import QuerySet
from eval.stats import DEFAULT_RESAMPLES, Comparison, compare
from ingest.store import Store
from retrieval.contract import search_one
from retrieval.methods import open_searcher


@dataclass(frozen=True)
class MethodResult:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: dict[str, dict[str, float]]  # {qid: {doc_id: score}}, document level
    latency_ms: dict[str, float]  # p50, p95 of single-query search
    unanswerable: int = 0  # queries the method cannot embed or match at all: scored 0


@dataclass(frozen=True)
class EvalResult:
    n_queries: int
    n_dropped: int  # queries with no relevant document, left out of every mean
    ks: tuple[int, ...]
    methods: dict[str, MethodResult]
    comparisons: list[Comparison] = field(default_factory=list)
    dataset: str = ""
    split: str = ""
    chunking: dict | None = None
    where: str = ""  # the metadata filter of a slice, "" for the whole collection

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "where": self.where,
            "chunking": self.chunking,
            "n_queries": self.n_queries,
            "n_dropped": self.n_dropped,
            "ks": list(self.ks),
            "methods": {m: r.metrics for m, r in self.methods.items()},
            "comparisons": [c.to_dict() for c in self.comparisons],
            "latency_ms": {m: r.latency_ms for m, r in self.methods.items()},
            "unanswerable": {m: r.unanswerable for m, r in self.methods.items()},
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


def run_method(searcher, queries: dict[str, str], depth: int, max_docs: int,
               allowed=None) -> tuple[dict[str, dict[str, float]], dict[str, float], int]:
    """({qid: {doc_id: score}}, latency p50/p95 in ms, unanswerable count), one
    query at a time. A query the method cannot handle at all (GloVe: no known
    word; bm25: no word in the corpus) gets an empty ranking and scores 0."""
    run: dict[str, dict[str, float]] = {}
    times: list[float] = []
    unanswerable = 0
    for qid, text in queries.items():
        started = time.perf_counter()
        try:
            hits = search_one(searcher, text, depth, allowed)
        except QueryError:
            hits = []
            unanswerable += 1
        times.append((time.perf_counter() - started) * 1000)
        run[qid] = dict(list(doc_run(hits).items())[:max_docs])
    return run, latency_summary(times), unanswerable


def evaluate_methods(store: Store, query_set: QuerySet, methods: list[str],
                     ks: tuple[int, ...] = DEFAULT_KS, chunks_per_doc: int = 10,
                     full: bool = False, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                     dataset: str = "", split: str = "", where=None) -> EvalResult:
    """Score each method on the queries that have relevant documents.

    Each query retrieves max(ks) * chunks_per_doc chunks, enough that the top
    max(ks) distinct documents are nearly always among them. With full=True,
    precision@k, nDCG@10 and MAP are added and every pair of methods is compared
    on recall@10, MRR@10 and nDCG@10 with paired tests.

    With `where` (ingest.filters.Where), the evaluation runs on a slice: every
    method ranks only the chunks of matching documents, relevance judgements
    outside the slice are dropped, and so are queries left with none.
    """
    allowed = None
    if where is not None:
        allowed = store.select_chunks(where)
        query_set = slice_queries(query_set, store.select_doc_ids(where))
    judged = {q: t for q, t in query_set.queries.items() if q in query_set.qrels}
    depth = max(ks) * chunks_per_doc
    results = {}
    for method in methods:
        searcher = open_searcher(store, method)
        run, latency, unanswerable = run_method(searcher, judged, depth, max(max(ks), 100),
                                                allowed)
        per_query = evaluate_per_query(query_set.qrels, run, ks, full)
        means = mean_metrics(per_query, metric_names(ks, full))
        results[method] = MethodResult(means, per_query, run, latency, unanswerable)
    comparisons = []
    if full and len(results) > 1:
        headline = tuple(m for m in HEADLINE if m in next(iter(results.values())).metrics)
        comparisons = compare({m: r.per_query for m, r in results.items()}, headline,
                              resamples, seed)
    return EvalResult(len(judged), len(query_set.queries) - len(judged), tuple(ks), results,
                      comparisons, dataset, split, store.chunk_config(),
                      where=str(where) if where else "")


def slice_queries(query_set: QuerySet, doc_ids: set[str]) -> QuerySet:
    """The query set restricted to judgements of `doc_ids`; a query left without a
    relevant document drops out of every mean (it is counted as dropped)."""
    from dataclasses import replace

    qrels = {}
    for qid, judged in query_set.qrels.items():
        kept = {d: g for d, g in judged.items() if d in doc_ids}
        if any(g > 0 for g in kept.values()):
            qrels[qid] = kept
    return replace(query_set, qrels=qrels)


@dataclass(frozen=True)
class Disagreement:
    qid: str
    query: str
    relevant: list[str]
    rank_a: int | None  # rank of the first relevant document, None if not in the top 10
    rank_b: int | None
    top_a: str  # what the method ranked first instead
    top_b: str


def disagreements(result: EvalResult, query_set: QuerySet, a: str, b: str, limit: int = 5,
                  depth: int = 10) -> tuple[list[Disagreement], list[Disagreement], int, int]:
    """Queries where `a` finds a relevant document in the top `depth` and `b` does
    not, and the reverse: (a-only examples, b-only examples, a-only count, b-only count)."""

    def first_relevant(method: str, qid: str) -> int | None:
        for rank, doc in enumerate(result.methods[method].run.get(qid, {}), 1):
            if rank > depth:
                return None
            if doc in query_set.qrels[qid]:
                return rank
        return None

    def top(method: str, qid: str) -> str:
        return next(iter(result.methods[method].run.get(qid, {})), "")

    a_only, b_only = [], []
    for qid in sorted(result.methods[a].per_query):
        ra, rb = first_relevant(a, qid), first_relevant(b, qid)
        if (ra is None) == (rb is None):
            continue
        row = Disagreement(qid, query_set.queries[qid], sorted(query_set.qrels[qid]), ra, rb,
                           top(a, qid), top(b, qid))
        (a_only if rb is None else b_only).append(row)
    # The most telling first: the winner ranked it highest.
    a_only.sort(key=lambda d: d.rank_a)
    b_only.sort(key=lambda d: d.rank_b)
    return a_only[:limit], b_only[:limit], len(a_only), len(b_only)


def format_table(result: EvalResult) -> str:
    names = [n for n in metric_names(result.ks, full=False)]
    extra = [n for n in ("ndcg@10", "map") if n in next(iter(result.methods.values())).metrics]
    names += extra
    width = max(8, *(len(m) + 1 for m in result.methods))
    header = f"{'method':<{width}}" + "".join(f"{n:>11}" for n in names) + f"{'p50 ms':>9}"
    lines = [header, "-" * len(header)]
    for method, r in result.methods.items():
        lines.append(f"{method:<{width}}" + "".join(f"{r.metrics[n]:>11.3f}" for n in names)
                     + f"{r.latency_ms['p50']:>9.1f}")
    lines.append(f"({result.n_queries} queries with relevant documents"
                 + (f"; {result.n_dropped} without, left out" if result.n_dropped else "") + ")")
    for method, r in result.methods.items():
        if r.unanswerable:
            lines.append(f"{method}: {r.unanswerable} queries had nothing it could match "
                         "(scored 0)")
    significant = [c for c in result.comparisons if c.significant]
    if result.comparisons:
        lines.append("")
        lines.append(f"paired tests ({len(result.comparisons)} comparisons; significant: "
                     "Holm-adjusted p < 0.05 and 95% bootstrap CI excluding 0):")
        lines.extend(c.line() for c in result.comparisons)
        if not significant:
            lines.append("  no difference is significant")
    return "\n".join(lines)
