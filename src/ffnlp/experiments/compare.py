"""Is configuration A better than B, or is it the seed?  Two exact tests, no distribution tables.

- Two trained classifiers on the same labelled data: McNemar's exact test on the examples where
  exactly one of them is right (a two-sided binomial test with p = 1/2 on the discordant pairs).
  Multi-label classifiers are right on an example when their most probable label is one of its
  labels (what precision at 1 counts).
- Two ``ffnlp repeat`` folders: a two-sided permutation test of the difference of the mean over
  seeds (exact when the number of relabellings is small, else 20,000 seeded random relabellings).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np

from ffnlp.errors import DataError, ModelFileError


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def permutation_test(a: list[float], b: list[float], rounds: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of mean(a) - mean(b) under random relabelling of the pooled values."""
    pooled = a + b
    observed = abs(sum(a) / len(a) - sum(b) / len(b))
    total = sum(pooled)

    def diff(group: tuple[int, ...]) -> float:
        sa = sum(pooled[i] for i in group)
        return abs(sa / len(a) - (total - sa) / len(b))

    n = len(pooled)
    if math.comb(n, len(a)) <= rounds:
        splits = list(itertools.combinations(range(n), len(a)))
        hits = sum(diff(g) >= observed - 1e-12 for g in splits)
        return hits / len(splits)
    rng = random.Random(seed)
    idx = list(range(n))
    hits = 0
    for _ in range(rounds):
        rng.shuffle(idx)
        hits += diff(tuple(idx[: len(a)])) >= observed - 1e-12
    return (hits + 1) / (rounds + 1)


def compare_classifiers(run_a: str | Path, run_b: str | Path, data: str | Path) -> dict[str, Any]:
    """Both classifiers on ``data``: their accuracies (multi-label: precision at 1) and
    McNemar's exact p-value."""
    from ffnlp.tasks.classify import load, read_split

    a, b = load(run_a), load(run_b)
    if a.multilabel != b.multilabel:
        raise DataError(
            f"{run_a if a.multilabel else run_b} is a multi-label classifier and the other is not; "
            "compare two of the same kind"
        )
    examples = read_split(data, a.config)
    gold = examples.label_lists()

    def right(clf: Any) -> np.ndarray:
        top = [p[0][0] for p in clf.predict(examples.texts, k=1, threshold=0.0)]
        return np.array([label in labels for label, labels in zip(top, gold, strict=True)])

    right_a, right_b = right(a), right(b)
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    metric = "precision_at_1" if a.multilabel else "accuracy"
    return {
        "test": "mcnemar_exact",
        "metric": metric,
        "data": str(data),
        "examples": len(gold),
        "a": {"run": str(run_a), metric: float(right_a.mean())},
        "b": {"run": str(run_b), metric: float(right_b.mean())},
        "only_a_right": only_a,
        "only_b_right": only_b,
        "p_value": mcnemar_exact(only_a, only_b),
    }


def compare_repeats(
    dir_a: str | Path, dir_b: str | Path, metric: str = "test.accuracy"
) -> dict[str, Any]:
    """Seed-level values of ``metric`` in two `ffnlp repeat` folders; permutation-test p-value."""
    split, name = metric.split(".", 1) if "." in metric else ("test", metric)
    values = []
    for d in (dir_a, dir_b):
        path = Path(d) / "summary.json"
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            values.append(summary["repeat"][split][name]["values"])
        except FileNotFoundError:
            raise ModelFileError(
                f"{path} is missing: {d} is not a finished `ffnlp repeat` folder"
            ) from None
        except KeyError:
            raise DataError(f"{path} has no {metric!r} among its repeated figures") from None
    a, b = values
    return {
        "test": "permutation",
        "metric": metric,
        "a": {"run": str(dir_a), "mean": sum(a) / len(a), "values": a},
        "b": {"run": str(dir_b), "mean": sum(b) / len(b), "values": b},
        "p_value": permutation_test(a, b),
    }
