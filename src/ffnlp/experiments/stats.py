"""Summaries of repeated runs: mean, sample standard deviation, a 95% confidence interval."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

# two-sided 95% quantiles of Student's t (0.975) for 1..30 degrees of freedom
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (normal beyond 30)."""
    if df < 1:
        raise ValueError("need at least one degree of freedom")
    return _T975[df - 1] if df <= len(_T975) else 1.960


def is_figure(v: Any) -> bool:
    """A finite number that can be averaged (not a bool, not a nested per-class table)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def describe(values: Sequence[float]) -> dict[str, Any]:
    """mean, sd (n-1), a t-based 95% confidence interval of the mean, n and the values."""
    vals = [float(v) for v in values]
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return {"mean": mean, "sd": 0.0, "ci95": [mean, mean], "n": len(vals), "values": vals}
    sd = statistics.stdev(vals)
    half = t_quantile_975(len(vals) - 1) * sd / math.sqrt(len(vals))
    return {
        "mean": mean,
        "sd": sd,
        "ci95": [mean - half, mean + half],
        "n": len(vals),
        "values": vals,
    }
