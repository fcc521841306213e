"""Is configuration A better than B, or is it the seed?  Exact and resampling tests, no tables.

- Two trained classifiers on the same labelled examples (``--data``, or the predictions.jsonl
  each run wrote for its test data): McNemar's exact test on the examples where exactly one of
  them is right (a two-sided binomial test with p = 1/2 on the discordant pairs), and a paired
  bootstrap of the differences of accuracy and macro-F1, with 95% intervals and p-values
  (:mod:`ffnlp.experiments.bootstrap`). Multi-label classifiers are right on an example when
  their most probable label is one of its labels (what precision at 1 counts); their bootstrap
  is of precision at 1 and micro-F1.
- Two ``ffnlp repeat`` folders: a two-sided permutation test of the difference of the mean over
  seeds (exact when the number of relabellings is small, else 20,000 seeded random relabellings).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.experiments import bootstrap as bs
from ffnlp.folders.layout import ARCH, SUMMARY
from ffnlp.params import check_int

if TYPE_CHECKING:
    from ffnlp.tasks.classify.predictions import Predictions

BOOTSTRAP_RESAMPLES = 10_000  # resamples of the paired bootstrap: its p and interval to about 0.005


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


def check_resamples(resamples: object, seed: object, owner: str) -> None:
    """``resamples`` 0 (no bootstrap) to :data:`~ffnlp.experiments.bootstrap.MAX_RESAMPLES`,
    ``seed`` an integer >= 0: a ConfigError naming the parameter otherwise."""
    check_int(resamples, "resamples", owner, ge=0, le=bs.MAX_RESAMPLES)
    check_int(seed, "seed", owner, ge=0)


def compare_classifiers(
    run_a: str | Path,
    run_b: str | Path,
    data: str | Path | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Two classifiers on the same labelled examples: ``data`` (both predict it) or, without it,
    the test predictions each run wrote (predictions.jsonl). Their accuracies (multi-label:
    precision at 1), McNemar's exact p-value and, unless ``resamples`` is 0, a paired bootstrap
    of the differences (:func:`compare_predictions`)."""
    from ffnlp.tasks.classify.predictions import PREDICTIONS, Predictions, read_predictions

    check_resamples(resamples, seed, "compare_classifiers")
    if data is None:
        missing = [str(r) for r in (run_a, run_b) if not (Path(r) / PREDICTIONS).is_file()]
        if missing:
            raise ConfigError(
                "comparing two classifier runs needs --data FILE (labelled examples to test both "
                f"on), or a {PREDICTIONS} in each (written by a run trained with --test); "
                f"{' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} none"
            )
        pa, pb = read_predictions(run_a), read_predictions(run_b)
        source = PREDICTIONS
    else:
        from ffnlp.tasks.classify import load, read_split
        from ffnlp.tasks.classify.predictions import prediction_records

        a, b = load(run_a), load(run_b)
        if a.multilabel != b.multilabel:
            raise DataError(
                f"{run_a if a.multilabel else run_b} is a multi-label classifier and the other "
                "is not; compare two of the same kind"
            )
        examples = read_split(data, a.config)
        pa = Predictions.from_records(prediction_records(a, examples), run_a)
        pb = Predictions.from_records(prediction_records(b, examples), run_b)
        source = str(data)
    result = compare_predictions(pa, pb, resamples, seed)
    result["data"] = source
    result["a"]["run"], result["b"]["run"] = str(run_a), str(run_b)
    return result


def compare_predictions(
    a: Predictions, b: Predictions, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """McNemar's exact test of the accuracies (multi-label: precision at 1) and, unless
    ``resamples`` is 0, a paired bootstrap (:mod:`ffnlp.experiments.bootstrap`) of the
    differences B − A of accuracy and macro-F1 (multi-label: precision at 1 and micro-F1).

    Figures here count every gold label of the data; a multi-label run's summary leaves out the
    labels its training data lacked (as fastText does), so its figures may differ a little."""
    check_resamples(resamples, seed, "compare_predictions")
    check_paired(a, b)
    metric = "precision_at_1" if a.multilabel else "accuracy"
    right_a, right_b = _right(a), _right(b)
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    result: dict[str, Any] = {
        "test": "mcnemar_exact",
        "metric": metric,
        "examples": len(a),
        "a": {"run": str(a.path), metric: float(right_a.mean())},
        "b": {"run": str(b.path), metric: float(right_b.mean())},
        "only_a_right": only_a,
        "only_b_right": only_b,
        "p_value": mcnemar_exact(only_a, only_b),
    }
    if resamples > 0:
        second = "micro_f1" if a.multilabel else "macro_f1"
        figures = {
            metric: (bs.share_right(right_a), bs.share_right(right_b)),
            second: (_second_figure(a), _second_figure(b)),
        }
        result["bootstrap"] = {
            "resamples": resamples,
            "seed": seed,
            **{
                name: bs.paired_bootstrap(fa, fb, resamples, seed)
                for name, (fa, fb) in figures.items()
            },
        }
    return result


def check_paired(a: Predictions, b: Predictions) -> None:
    """DataError unless ``a`` and ``b`` answer the same examples: same kind, same number, the
    same gold labels in the same order."""
    fix = "compare them on one labelled file with --data FILE"
    if a.multilabel != b.multilabel:
        which = a.path if a.multilabel else b.path
        raise DataError(
            f"{which} holds the predictions of a multi-label classifier and the other does not; "
            "compare two of the same kind"
        )
    if len(a) != len(b):
        raise DataError(
            f"{a.path} holds {len(a)} examples and {b.path} {len(b)}: the runs were tested on "
            f"different data, so their predictions cannot be paired; {fix}"
        )
    for i, (gold_a, gold_b) in enumerate(zip(a.gold, b.gold, strict=True)):
        if gold_a != gold_b:
            raise DataError(
                f"{a.path} and {b.path} differ at example {i} (gold label {gold_a!r} against "
                f"{gold_b!r}): the runs were tested on different data (or in another order), so "
                f"their predictions cannot be paired; {fix}"
            )


def _right(p: Predictions) -> np.ndarray:
    """(N,) whether each prediction is right: the predicted label is the gold one; multi-label,
    the most probable label is one of the gold labels (what precision at 1 counts)."""
    if p.multilabel:
        return np.array([top in gold for top, gold in zip(p.top(), p.gold, strict=True)], bool)
    return np.array([q == g for q, g in zip(p.predicted, p.gold, strict=True)], dtype=bool)


def _second_figure(p: Predictions) -> bs.Figure:
    """Macro-F1 over the classifier's classes; multi-label: micro-F1 at its thresholds."""
    if p.multilabel:
        hits = [len(set(g) & set(q)) for g, q in zip(p.gold, p.predicted, strict=True)]
        return bs.micro_f1(
            np.array(hits),
            np.array([len(set(q)) for q in p.predicted]),
            np.array([len(set(g)) for g in p.gold]),
        )
    classes = list(p.labels) + sorted(set(p.gold) - set(p.labels))  # unknown gold: F1 0
    index = {label: i for i, label in enumerate(classes)}
    gold = np.array([index[g] for g in p.gold])
    predicted = np.array([index[q] for q in p.predicted])
    return bs.macro_f1(gold, predicted, len(classes))


def compare_repeats(
    dir_a: str | Path, dir_b: str | Path, metric: str = "test.accuracy"
) -> dict[str, Any]:
    """Seed-level values of ``metric`` in two `ffnlp repeat` folders; permutation-test p-value."""
    split, name = metric.split(".", 1) if "." in metric else ("test", metric)
    values = []
    for d in (dir_a, dir_b):
        path = Path(d) / SUMMARY
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


def compare_runs(
    run_a: Path,
    run_b: Path,
    data: Path | None = None,
    metric: str = "test.accuracy",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """`ffnlp compare`: two `ffnlp repeat` folders (a folder with a summary and no model) by
    :func:`compare_repeats` on ``metric``, else two classifier runs by
    :func:`compare_classifiers`."""
    is_repeat = (run_a / SUMMARY).is_file() and not (run_a / ARCH).is_file()
    if is_repeat:
        return compare_repeats(run_a, run_b, metric)
    return compare_classifiers(run_a, run_b, data, resamples=resamples, seed=seed)
