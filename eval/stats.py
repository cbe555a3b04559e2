"""Is a difference between two methods real? Paired tests over queries.

Both tests pair the methods' scores query by query and use a fixed seed, so a
report is reproducible to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 10_000


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    metric: str
    delta: float  # mean(b) - mean(a)
    ci95: tuple[float, float]  # paired bootstrap, percentile interval
    p_value: float  # paired randomization test, two-sided
    p_holm: float  # Holm-adjusted over the comparisons of the same metric

    @property
    def significant(self) -> bool:
        return self.p_holm < 0.05 and not (self.ci95[0] <= 0.0 <= self.ci95[1])

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "delta": self.delta,
                "ci95": list(self.ci95), "p_value": self.p_value, "p_holm": self.p_holm,
                "significant": self.significant}

    def line(self) -> str:
        """The comparison as every eval table prints it (two-space indent)."""
        mark = "significant" if self.significant else "not significant"
        return (f"  {self.b} - {self.a} on {self.metric}: {self.delta:+.3f} "
                f"[{self.ci95[0]:+.3f}, {self.ci95[1]:+.3f}] p={self.p_value:.4f} "
                f"(Holm {self.p_holm:.4f}) {mark}")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean difference b - a, 2.5th and 97.5th percentiles over query resamples)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def randomization_test(a: np.ndarray, b: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0) -> float:
    """Two-sided p-value of the paired randomization (sign-flip) test.

    Under the null the methods are exchangeable per query, so each difference's
    sign is a coin flip. p = (1 + #{|flipped mean| >= |observed|}) / (1 + resamples).
    """
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, len(d)))
    flipped = np.abs((signs * d).mean(axis=1))
    # A tolerance so that ties (e.g. identical runs: all zeros) count as "as extreme".
    extreme = int((flipped >= observed - 1e-12).sum())
    return (1 + extreme) / (1 + resamples)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def compare(per_query: dict[str, dict[str, dict[str, float]]], metrics: tuple[str, ...],
            resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[Comparison]:
    """Every pair of methods on each metric. per_query is {method: {qid: {metric: v}}}."""
    methods = list(per_query)
    out: list[Comparison] = []
    for metric in metrics:
        rows = []
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                # Pair only the queries both have a value for (an answer metric is
                # undefined where a system abstained, say).
                qids = sorted(q for q, v in per_query[a].items()
                              if metric in v and metric in per_query[b].get(q, {}))
                if not qids:
                    continue
                va = np.array([per_query[a][q][metric] for q in qids])
                vb = np.array([per_query[b][q][metric] for q in qids])
                delta, lo, hi = paired_bootstrap(va, vb, resamples, seed)
                rows.append((a, b, delta, (lo, hi), randomization_test(va, vb, resamples, seed)))
        adjusted = holm([r[4] for r in rows])
        out.extend(Comparison(a, b, metric, d, ci, p, ph)
                   for (a, b, d, ci, p), ph in zip(rows, adjusted))
    return out
