"""The one percentile convention of every latency figure ragmini reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks
    (numpy's default, as in most benchmark tools); 0.0 for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    """{"p50", "p95"} of `values` (p50 is the median)."""
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}
