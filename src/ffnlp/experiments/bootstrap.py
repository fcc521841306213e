"""Paired bootstrap of the difference between two classifiers tested on the same examples.

Resample the test examples with replacement (the same resample for both classifiers: that is
what makes it paired), compute each figure for B and for A on the resample, keep B − A. The 2.5
and 97.5 percentiles of the resampled differences are the 95% confidence interval (the
percentile interval), and the two-sided p-value is

    p = min(1, 2 · min(#{Δ* ≤ 0} + 1, #{Δ* ≥ 0} + 1) / (R + 1))

for R resampled differences Δ*: twice the share of resampled differences that reach 0 or fall on
the other side of it from the bulk, the +1 counting the observed data as one resample (so p is
never 0). It is the smallest level at which the percentile interval would leave 0 out, so the
interval and p agree: 0 outside the 95% interval goes with p < 0.05. Identical predictions give
every Δ* = 0, the interval [0, 0] and p = 1.

Every figure here is a function of sums over examples (hits; per-class or pooled true positives,
false positives, false negatives), so a resample is a vector of counts — how many times each
example was drawn — and the figures of all resamples are one matrix product: (R, N) counts @
(N, C) per-example columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ffnlp.errors import DataError
from ffnlp.params import check_int

CELLS_PER_CHUNK = 4_000_000  # resample counts held at once (32 MB of float64)
MAX_RESAMPLES = 1_000_000
"""The most resamples a bootstrap draws: p-values to 1e-6, far past what any comparison needs
(the default 10,000 gives them to about 0.005); a billion would run for days."""


@dataclass(frozen=True)
class Figure:
    """A figure of a classifier on a set of examples, as a function of column sums.

    ``columns`` (N, C): what each example adds; ``value`` maps (R, C) sums over R (re)samples
    to the (R,) figures.
    """

    columns: np.ndarray
    value: Callable[[np.ndarray], np.ndarray]

    def of_all(self) -> float:
        """The figure on the examples themselves."""
        return float(self.value(self.columns.sum(axis=0, keepdims=True))[0])


def share_right(right: np.ndarray) -> Figure:
    """Accuracy (or precision at 1): the share of examples where ``right`` (N,) is true."""

    def value(sums: np.ndarray) -> np.ndarray:
        n = len(right)
        return sums[:, 0] / n if n else np.zeros(len(sums))

    return Figure(np.asarray(right, dtype=np.float64)[:, None], value)


def macro_f1(gold: np.ndarray, predicted: np.ndarray, num_classes: int) -> Figure:
    """The mean over ``num_classes`` classes of each class's F1, from (N,) class ids; a class
    with neither gold examples nor predictions has F1 0 (as the run's summary counts it)."""
    eye = np.eye(num_classes)
    gold_hot, pred_hot = eye[gold], eye[predicted]  # (N, K) each
    tp = gold_hot * pred_hot
    columns = np.concatenate([tp, pred_hot, gold_hot], axis=1)  # (N, 3K)

    def value(sums: np.ndarray) -> np.ndarray:
        tp_, predicted_, actual = np.split(sums, 3, axis=1)  # (R, K) each
        both = predicted_ + actual
        f1 = np.divide(2 * tp_, both, out=np.zeros_like(tp_), where=both > 0)
        return f1.mean(axis=1)

    return Figure(columns, value)


def micro_f1(hits: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> Figure:
    """Micro-F1 of a multi-label classifier: 2·TP / (predicted + gold), pooled over labels, from
    each example's (N,) true positives, labels predicted and gold labels."""
    columns = np.stack([hits, predicted, gold], axis=1).astype(np.float64)  # (N, 3)

    def value(sums: np.ndarray) -> np.ndarray:
        both = sums[:, 1] + sums[:, 2]
        return np.divide(2 * sums[:, 0], both, out=np.zeros(len(sums)), where=both > 0)

    return Figure(columns, value)


def paired_bootstrap(
    a: Figure, b: Figure, resamples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """The figures of A and B, their difference B − A, its 95% percentile interval and
    the two-sided p-value of "no difference" (see the module's docstring), from ``resamples``
    resamples of the examples drawn with ``seed``."""
    n = len(a.columns)
    if len(b.columns) != n:
        raise DataError(f"A has {n} examples and B {len(b.columns)}: they cannot be paired")
    resamples = check_int(resamples, "resamples", "paired_bootstrap", ge=1, le=MAX_RESAMPLES)
    seed = check_int(seed, "seed", "paired_bootstrap", ge=0)
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    rows = max(1, CELLS_PER_CHUNK // max(n, 1))
    done = 0
    while done < resamples:
        r = min(rows, resamples - done)
        drawn = rng.integers(0, n, size=(r, n))  # (R, N) example indices
        flat = (drawn + n * np.arange(r)[:, None]).ravel()
        counts = np.bincount(flat, minlength=r * n).reshape(r, n).astype(np.float64)  # (R, N)
        differences[done : done + r] = b.value(counts @ b.columns) - a.value(counts @ a.columns)
        done += r
    low, high = np.percentile(differences, [2.5, 97.5])
    at_or_below = int((differences <= 0).sum()) + 1
    at_or_above = int((differences >= 0).sum()) + 1
    p = min(1.0, 2 * min(at_or_below, at_or_above) / (resamples + 1))
    value_a, value_b = a.of_all(), b.of_all()
    return {
        "a": value_a,
        "b": value_b,
        "difference": value_b - value_a,
        "ci95": [float(low), float(high)],
        "p_value": p,
    }
