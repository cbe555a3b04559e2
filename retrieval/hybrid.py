"""Fusions: one ranking from the rankings of two other methods.

Two families, both over the top `depth` chunks of each part:

- convex combination of normalised scores (Bruch, Gai and Ingber, "An Analysis
  of Fusion Functions for Hybrid Retrieval", TOIS 2023): each part's scores are
  normalised per query, then summed with weights that add to 1. A chunk one part
  did not return gets that part's lowest normalised score (it ranked below all
  of them). Normalisations: ``minmax`` (observed min and max), ``tmm``
  (theoretical minimum: -1 for a cosine, 0 for BM25 and TF-IDF; observed max),
  ``zscore``.
- reciprocal rank fusion (Cormack et al. 2009): sum over parts of
  w / (60 + rank); plain RRF is equal weights.

The weights are what `eval --tune` fits on a dev split; `FusionParams` is what
it records in the store, and what a fusion searcher is opened with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core.errors import QueryError, RagminiError
from retrieval.contract import Hit, Searcher, check_queries

RRF_K = 60
NORMS = ("minmax", "tmm", "zscore")
KINDS = ("convex", "rrf")
DEPTH = 100  # chunks fetched from each part


@dataclass(frozen=True)
class FusionParams:
    kind: str  # convex | rrf
    weights: tuple[float, float]  # per part, in the order the parts are named
    norm: str = "minmax"  # convex only
    tuned_on: str = ""  # dataset/split the weights were fitted on, "" for a default

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RagminiError(f"unknown fusion kind '{self.kind}'; choose from {', '.join(KINDS)}")
        if self.kind == "convex" and self.norm not in NORMS:
            raise RagminiError(f"unknown normalisation '{self.norm}'; choose from "
                               f"{', '.join(NORMS)}")
        if len(self.weights) != 2 or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise RagminiError(f"fusion weights must be two non-negative numbers, "
                               f"not {self.weights}")

    def label(self) -> str:
        w = "/".join(f"{x:.2f}" for x in self.weights)
        return f"{self.kind} {self.norm} {w}" if self.kind == "convex" else f"rrf {w}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> FusionParams:
        data = json.loads(raw)
        return cls(data["kind"], tuple(data["weights"]), data.get("norm", "minmax"),
                   data.get("tuned_on", ""))


def _normalise(scores: np.ndarray, norm: str, floor: float | None) -> np.ndarray:
    if len(scores) == 0:
        return scores
    if norm == "zscore":
        sd = scores.std()
        return (scores - scores.mean()) / sd if sd > 0 else np.zeros_like(scores)
    low = scores.min() if norm == "minmax" or floor is None else min(floor, scores.min())
    span = scores.max() - low
    return (scores - low) / span if span > 0 else np.ones_like(scores)


def fuse(per_part: Sequence[list[Hit]], params: FusionParams, k: int,
         floors: Sequence[float | None] = (None, None)) -> list[Hit]:
    """The fused top `k` of one query, from each part's ranked hits."""
    fused: dict[int, float] = {}
    by_id: dict[int, Hit] = {}
    for hits, weight, floor in zip(per_part, params.weights, floors):
        if params.kind == "rrf":
            values = [1.0 / (RRF_K + h.rank) for h in hits]
            missing = 0.0
        else:
            normed = _normalise(np.array([h.score for h in hits], dtype=np.float64),
                                params.norm, floor)
            values = normed.tolist()
            missing = float(normed.min()) if len(normed) else 0.0
        seen = set()
        for hit, value in zip(hits, values):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight * value
            by_id.setdefault(hit.chunk_id, hit)
            seen.add(hit.chunk_id)
        if missing:  # chunks this part did not return rank below all it did
            for cid in fused.keys() - seen:
                fused[cid] += weight * missing
    best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
    return [Hit(i, fused[cid], by_id[cid].chunk) for i, cid in enumerate(best, 1)]


class FusionSearcher:
    """Two searchers fused by `params`; the Searcher contract."""

    def __init__(self, name: str, first: Searcher, second: Searcher, params: FusionParams,
                 depth: int = DEPTH):
        self.parts = (first, second)
        self.method = f"{name}:{first.method}+{second.method}"
        self.behind = max(first.behind, second.behind)
        self.params = params
        self.depth = depth
        self.floors = tuple(getattr(p, "score_floor", None) for p in self.parts)
        # While an ingest commits one index before the other, the parts answer for two
        # generations; the newer one is held to the chunks live at the older, so the
        # fusion answers for exactly that state (and says it is behind).
        self.hold: tuple[np.ndarray | None, ...] = (None, None)
        gens = [_generation(p) for p in self.parts]
        if None not in gens and gens[0] != gens[1]:
            older = min(gens)
            live = self.parts[0].store.chunk_ids(older)
            self.hold = tuple(None if g == older else live for g in gens)

    def search(self, queries: list[str], k: int = 5, allowed: np.ndarray | None = None
               ) -> list[list[Hit]]:
        check_queries(queries, k)
        depth = max(self.depth, k)
        rankings = [part_hits(part, queries, depth, _both(allowed, hold))
                    for part, hold in zip(self.parts, self.hold)]
        out = []
        for per_query in zip(*rankings):
            errors = [r for r in per_query if isinstance(r, QueryError)]
            if len(errors) == len(per_query):  # no part can handle the query
                raise errors[0]
            lists = [[] if isinstance(r, QueryError) else r for r in per_query]
            out.append(self._fuse(lists, k))
        return out

    def _fuse(self, lists: list[list[Hit]], k: int) -> list[Hit]:
        """The fusion of each part's top `depth`, whatever k is: the normalisation
        (and so the ranking) must not change with how deep a caller asks. Past
        that, a longer request (an eval's recall@100) continues with the fusion of
        the deeper lists, after every chunk of the head."""
        head = fuse([h[: self.depth] for h in lists], self.params, k, self.floors)
        if k <= len(head) or all(len(h) <= self.depth for h in lists):
            return head
        seen = {h.chunk_id for h in head}
        tail = [h for h in fuse(lists, self.params, k, self.floors) if h.chunk_id not in seen]
        out, last = list(head), head[-1].score if head else float("inf")
        for hit in tail[: k - len(head)]:
            last = min(last, hit.score)
            out.append(Hit(len(out) + 1, last, hit.chunk))
        return out


def _generation(part) -> int | None:
    params = getattr(part, "params", None)
    return getattr(params, "store_generation", None)


def _both(allowed: np.ndarray | None, hold: np.ndarray | None) -> np.ndarray | None:
    if hold is None:
        return allowed
    return hold if allowed is None else np.intersect1d(allowed, hold)


def part_hits(part: Searcher, queries: list[str], depth: int, allowed: np.ndarray | None
              ) -> list[list[Hit] | QueryError]:
    """A part's rankings, with the error in place of a query the part cannot handle
    (GloVe: no known word; bm25: no word in the corpus): the other part still
    answers it."""
    try:
        return part.search(queries, depth, allowed)
    except QueryError as exc:
        if len(queries) == 1:
            return [exc]
    out: list[list[Hit] | QueryError] = []
    for q in queries:
        try:
            out.append(part.search([q], depth, allowed)[0])
        except QueryError as exc:
            out.append(exc)
    return out


def RrfSearcher(name: str, first: Searcher, second: Searcher, depth: int = DEPTH
                ) -> FusionSearcher:
    """Plain reciprocal rank fusion with equal weights."""
    return FusionSearcher(name, first, second, FusionParams("rrf", (1.0, 1.0)), depth)
