"""Summaries of repeated runs: mean, sample standard deviation, a 95% confidence interval."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (scipy's, exact for any
    ``df``: a table that falls back on the normal's 1.960 beyond 30 makes intervals too narrow)."""
    if df < 1:
        raise ValueError("need at least one degree of freedom")
    from scipy.stats import t  # imported here: a second or so that only summaries need

    return float(t.ppf(q, df))


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom: the factor of a
    two-sided 95% confidence interval of a mean of ``df + 1`` values."""
    return t_quantile(0.975, df)


def is_figure(v: Any) -> bool:
    """A finite number that can be averaged (not a bool, not a nested per-class table)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scaled(statistic: Any, vals: list[float]) -> float:
    """``statistic(vals)``; values near the float limit (a run file may hold 1e308) overflow
    in the sum, so then the statistic of the values divided by the largest, scaled back (inf
    when the result itself is beyond the limit)."""
    try:
        return float(statistic(vals))
    except OverflowError:
        scale = max(abs(v) for v in vals)
        return float(statistic([v / scale for v in vals])) * scale  # a float product: inf


def describe(values: Sequence[float]) -> dict[str, Any]:
    """mean, sd (n-1), a t-based 95% confidence interval of the mean, n and the values."""
    vals = [float(v) for v in values]
    mean = _scaled(statistics.fmean, vals)
    if len(vals) < 2:
        return {"mean": mean, "sd": 0.0, "ci95": [mean, mean], "n": len(vals), "values": vals}
    sd = _scaled(statistics.stdev, vals)
    half = t_quantile_975(len(vals) - 1) * sd / math.sqrt(len(vals))
    return {
        "mean": mean,
        "sd": sd,
        "ci95": [mean - half, mean + half],
        "n": len(vals),
        "values": vals,
    }
