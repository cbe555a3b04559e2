"""`eval --tune FUSION`: fit a fusion's weights (and normalisation) on a dev split.

Each part is searched once per query; every candidate setting then fuses the
same rankings, so a grid of 60 settings costs one search per part plus
milliseconds of arithmetic each. The objective is the mean of the three
headline metrics (recall@10, MRR@10, nDCG@10), so no single one is traded away
for another. The winner is recorded in the store beside the index parameters
and opened by every later search with that fusion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import QueryError, RagminiError
from eval.harness import doc_run
from eval.metrics import HEADLINE, evaluate_per_query, mean_metrics, metric_names
from eval.queries import QuerySet
from ingest.store import Store
from retrieval.hybrid import NORMS, FusionParams, fuse, part_hits
from retrieval.methods import FUSION_META, FUSIONS, open_searcher

WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 1.0001, 0.1))  # of the second part


@dataclass(frozen=True)
class TuneRow:
    params: FusionParams
    metrics: dict[str, float]

    @property
    def objective(self) -> float:
        return objective(self.metrics)


@dataclass(frozen=True)
class TuneResult:
    fusion: str
    parts: tuple[str, str]
    n_queries: int
    dataset: str
    rows: list[TuneRow]  # every setting tried
    parts_metrics: dict[str, dict[str, float]]  # each part alone
    best: FusionParams
    recorded: bool = False

    def table(self, top: int = 8) -> str:
        """The parts alone, the best settings and what was recorded, as text."""
        return format_tuning(self, top)

    def to_dict(self) -> dict:
        return {"fusion": self.fusion, "parts": list(self.parts), "n_queries": self.n_queries,
                "dataset": self.dataset, "best": self.best.__dict__ | {
                    "weights": list(self.best.weights)},
                "recorded": self.recorded, "parts_metrics": self.parts_metrics,
                "rows": [{"setting": r.params.label(), "kind": r.params.kind,
                          "norm": r.params.norm, "weights": list(r.params.weights),
                          "objective": round(r.objective, 6), **r.metrics}
                         for r in self.rows]}


def objective(metrics: dict[str, float]) -> float:
    return float(np.mean([metrics[m] for m in HEADLINE]))


def grid(kinds: tuple[str, ...] = ("convex",)) -> list[FusionParams]:
    """Every setting tried: weights 0..1 in tenths on the second part, for each
    normalisation (convex) or for rank fusion."""
    out = []
    for kind in kinds:
        for norm in NORMS if kind == "convex" else ("minmax",):
            out.extend(FusionParams(kind, (round(1 - w, 2), w), norm) for w in WEIGHTS)
    return out


def part_rankings(store: Store, parts: tuple[str, str], queries: dict[str, str], depth: int
                  ) -> tuple[list[dict], tuple]:
    """{qid: hits or QueryError} per part, and each part's score floor."""
    rankings, floors = [], []
    for part in parts:
        searcher = open_searcher(store, part)
        floors.append(getattr(searcher, "score_floor", None))
        rankings.append({qid: part_hits(searcher, [text], depth, None)[0]
                         for qid, text in queries.items()})
    return rankings, tuple(floors)


def fused_metrics(rankings: list[dict], floors: tuple, params: FusionParams,
                  qrels: dict[str, dict[str, int]], depth: int,
                  ks: tuple[int, ...] = (10,)) -> dict[str, dict[str, float]]:
    """Per-query metrics of one fusion setting over precomputed part rankings."""
    run = {}
    for qid in rankings[0]:
        per_part = [r[qid] for r in rankings]
        lists = [[] if isinstance(h, QueryError) else h for h in per_part]
        run[qid] = doc_run(fuse(lists, params, depth, floors))
    return evaluate_per_query(qrels, run, ks, full=True)


def tune_fusion(store: Store, query_set: QuerySet, fusion: str, *, dataset: str = "",
                kinds: tuple[str, ...] | None = None, record: bool = True,
                chunks_per_doc: int = 10) -> TuneResult:
    """Try every setting of `fusion` on the labelled queries; record the best."""
    if fusion not in FUSIONS:
        raise RagminiError(f"unknown fusion '{fusion}'; choose from {', '.join(FUSIONS)}",
                           param="tune")
    spec = FUSIONS[fusion]
    if not spec.tunable:
        raise RagminiError(f"'{fusion}' has no weights to tune (it is plain RRF)",
                           param="tune")
    missing = [p for p in spec.parts if p not in store.methods()]
    if missing:
        raise RagminiError(f"tuning {fusion} needs the {', '.join(missing)} index; ingest "
                           f"with --methods {','.join(spec.parts)}", param="tune")
    judged = {q: t for q, t in query_set.queries.items() if q in query_set.qrels}
    if not judged:
        raise RagminiError("no labelled query has a relevant document here", param="tune")
    depth = 10 * chunks_per_doc
    rankings, floors = part_rankings(store, spec.parts, judged, depth)
    names = metric_names((10,), full=True)
    rows = []
    for params in grid(kinds or (spec.default.kind,)):
        per_query = fused_metrics(rankings, floors, params, query_set.qrels, depth)
        rows.append(TuneRow(params, {m: mean_metrics(per_query, names)[m] for m in HEADLINE}))
    parts_metrics = {}
    for part, ranking in zip(spec.parts, rankings):
        run = {qid: doc_run([] if isinstance(h, QueryError) else h) for qid, h in ranking.items()}
        means = mean_metrics(evaluate_per_query(query_set.qrels, run, (10,), True), names)
        parts_metrics[part] = {m: means[m] for m in HEADLINE}
    # Ties go to the setting nearest an even split: the least committed one.
    top = max(rows, key=lambda r: (round(r.objective, 6), -abs(r.params.weights[1] - 0.5)))
    best = FusionParams(top.params.kind, top.params.weights, top.params.norm,
                        tuned_on=f"{dataset} ({len(judged)} queries)")
    if record:
        with store.writer_lock():
            store.set_meta(FUSION_META.format(fusion), best.to_json())
    return TuneResult(fusion, spec.parts, len(judged), dataset, rows, parts_metrics, best,
                      record)


def format_tuning(result: TuneResult, top: int = 8) -> str:
    """The parts alone, the best settings, and what was recorded."""
    lines = [f"tuning {result.fusion} ({'+'.join(result.parts)}) on {result.n_queries} queries"
             f"{' of ' + result.dataset if result.dataset else ''}; objective = mean of "
             + ", ".join(HEADLINE)]
    header = f"  {'setting':<28}" + "".join(f"{m:>11}" for m in HEADLINE) + f"{'objective':>11}"
    lines.append(header)
    for part, metrics in result.parts_metrics.items():
        lines.append(f"  {part + ' alone':<28}" + "".join(f"{metrics[m]:>11.3f}" for m in HEADLINE)
                     + f"{objective(metrics):>11.3f}")
    for row in sorted(result.rows, key=lambda r: -r.objective)[:top]:
        lines.append(f"  {row.params.label():<28}"
                     + "".join(f"{row.metrics[m]:>11.3f}" for m in HEADLINE)
                     + f"{row.objective:>11.3f}")
    verb = "recorded in the store" if result.recorded else "not recorded"
    lines.append(f"best: {result.best.label()} ({verb})")
    return "\n".join(lines)
