"""Fusions: one ranking from the rankings of two other methods."""

from __future__ import annotations

from retrieval.contract import Hit, Searcher, check_queries

RRF_K = 60


class RrfSearcher:
    """Reciprocal rank fusion of two searchers (Cormack et al. 2009): a chunk scores
    the sum over both rankings of 1 / (60 + rank); absent from one, it gets 0 there."""

    def __init__(self, name: str, first: Searcher, second: Searcher, depth: int = 100):
        self.parts = (first, second)
        self.method = f"{name}:{first.method}+{second.method}"
        self.behind = max(first.behind, second.behind)
        self.depth = depth

    def search(self, queries: list[str], k: int = 5) -> list[list[Hit]]:
        check_queries(queries, k)
        depth = max(self.depth, k)
        rankings = [part.search(queries, depth) for part in self.parts]
        results = []
        for per_query in zip(*rankings):
            fused: dict[int, float] = {}
            by_id: dict[int, Hit] = {}
            for hits in per_query:
                for hit in hits:
                    fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + hit.rank)
                    by_id.setdefault(hit.chunk_id, hit)
            best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
            results.append([Hit(i, fused[cid], by_id[cid].chunk) for i, cid in enumerate(best, 1)])
        return results
