"""Re-scoring the front-runners: once the search ends, the best few trials (and the base
configuration's trial) are trained again with fresh seeds; the best configuration is the one
with the best mean over those fresh seeds among the candidates that beat the base configuration
on them (a paired t-test), else the base itself.

Why: a study's best trial is the maximum of many noisy dev scores, so it is the configuration
that was luckiest as much as the best one, and its value overstates what it does on new seeds
(the winner's curse). Measured on SST-2 (872 dev sentences): the best of 798 trials scored
0.807 over its 3 seeds, and 0.798 over 7 fresh ones, below the base configuration's 0.801.
Fresh seeds are unbiased: they played no part in the choice. Every candidate gets the same
seeds (train.seed + trial seeds, +1, ...), so the comparison is paired. In a 1200 s SST-2 study
the five front-runners' 0.810 over their search seeds became 0.801 to 0.803 over fresh ones,
against the base's 0.801 (no difference significant); the one with the best mean scored 0.817
on test over 5 seeds, the base 0.830: among ties, the best mean is chosen by noise.

The runs go to ``DIR/rescore/NNNN/seed_K/`` and the table to ``DIR/rescore.json``; a run found
complete there is read, not retrained (a continued study re-scores only what is new). The
time budget covers the re-scoring: the search stops early enough to leave it the time it needs
(estimated from the candidates' own seconds per seed).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp.errors import ConfigError
from ffnlp.fileio import write_atomic
from ffnlp.folders.layout import RESCORE_DIR, RESCORE_JSON, SUMMARY
from ffnlp.tune import tasks
from ffnlp.tune.objective import search_value

if TYPE_CHECKING:
    import optuna

    from ffnlp.training.callbacks import Callback
    from ffnlp.tune.objective import Plan

ALPHA = 0.05  # a candidate replaces the base configuration when p < ALPHA


def candidates(study: optuna.study.Study, plan: Plan) -> list[optuna.trial.FrozenTrial]:
    """The ``plan.rescore`` best complete trials by their search value, and the base
    configuration's trial when it completed and is not among them."""
    k = plan.rescore
    done = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE" and t.value is not None and "config" in t.user_attrs
    ]
    done.sort(key=search_value, reverse=plan.direction == "maximize")
    chosen = done[:k]
    base = [t for t in done[k:] if t.user_attrs.get("base")]
    return chosen + base[:1]


def seeds_of(trial: optuna.trial.FrozenTrial, plan: Plan) -> list[int]:
    """The ``plan.rescore_seeds`` fresh seeds: after the trial's own (train.seed, +1, ... for
    its --trial-seeds)."""
    first = int(trial.user_attrs["config"]["train"]["seed"]) + plan.trial_seeds
    return list(range(first, first + plan.rescore_seeds))


def run_dir(out: Path, number: int, seed: int) -> Path:
    return out / RESCORE_DIR / f"{number:04d}" / f"seed_{seed}"


def seconds_needed(study: optuna.study.Study, plan: Plan) -> float:
    """What re-scoring the present candidates would take: each one's seconds per seed (its
    trial's seconds over its seeds) times the seeds not yet trained."""
    total = 0.0
    for t in candidates(study, plan):
        per_seed = float(t.user_attrs.get("seconds") or 0.0) / max(1, plan.trial_seeds)
        missing = [s for s in seeds_of(t, plan) if _read(plan, t.number, s) is None]
        total += per_seed * len(missing)
    return total


def _read(plan: Plan, number: int, seed: int) -> float | None:
    """A finished re-scoring run's metric (None when there is none)."""
    from ffnlp.tune.objective import metric_value

    path = run_dir(plan.out, number, seed) / SUMMARY
    if not path.is_file():
        return None
    try:
        return metric_value(json.loads(path.read_text(encoding="utf-8")), plan.metric)
    except (OSError, ValueError, ConfigError):
        return None


def rescore(
    study: optuna.study.Study, plan: Plan, callbacks: Sequence[Callback] = ()
) -> dict[str, Any] | None:
    """Train each candidate with ``plan.rescore_seeds`` fresh seeds; write and return the table (None when
    no trial completed). A candidate's ``value`` is its mean over the fresh seeds alone: a
    search value is biased upwards by the choice of the front-runners, and mixing it in would
    bring back some of the luck the re-scoring is there to remove (``all_seeds``, the mean over
    the trial's seeds and the fresh ones, is kept to read). The choice: :func:`choose`."""
    from ffnlp.tune.objective import metric_value

    found = candidates(study, plan)
    if not found:
        return None
    inputs = plan.inputs
    rows: list[dict[str, Any]] = []
    for t in found:
        values: list[float] = []
        seeds = seeds_of(t, plan)
        for seed in seeds:
            value = _read(plan, t.number, seed)
            if value is None:
                cfg = tasks.resolve(plan.task, t.user_attrs["config"], {"train.seed": seed})
                summary = tasks.train(
                    plan.task,
                    cfg,
                    run_dir(plan.out, t.number, seed),
                    callbacks,
                    train=inputs.train,
                    dev=inputs.dev,
                    corpus=inputs.corpus,
                    force=True,
                )
                value = metric_value(summary, plan.metric)
            values.append(value)
        search = search_value(t)
        weight = plan.trial_seeds
        rows.append(
            {
                "number": t.number,
                "base": bool(t.user_attrs.get("base")),
                "search_value": search,
                "search_seeds": weight,
                "seeds": seeds,
                "values": values,
                "value": statistics.fmean(values),
                "all_seeds": (search * weight + sum(values)) / (weight + len(values)),
            }
        )
    best, why = choose(rows, plan.direction)
    table = {
        "metric": plan.metric,
        "direction": plan.direction,
        "candidates": rows,
        "best": best,
        "why": why,
        "alpha": ALPHA,
        "seeds_per_candidate": plan.rescore_seeds,
    }
    write_atomic(plan.out / RESCORE_JSON, json.dumps(table, indent=2))
    return table


def choose(rows: list[dict[str, Any]], direction: str) -> tuple[int, str]:
    """The chosen trial's number, and why. Without the base configuration among the rows, the
    best mean over the fresh seeds. With it, the base is the incumbent: a candidate replaces it
    only when it is better on the same fresh seeds by a one-sided paired t-test at ``ALPHA``
    (``p_vs_base`` in each row), and then the best such candidate is chosen. A small dev set
    cannot tell apart configurations a few tenths of a point apart, and the one with the best
    mean among several tied ones is chosen by noise; keeping what the user had is the answer
    the measurement supports. One fresh seed gives no test: the best mean is chosen."""
    sign = 1.0 if direction == "maximize" else -1.0
    ranked = sorted(rows, key=lambda r: -sign * float(r["value"]))
    base = next((r for r in rows if r["base"]), None)
    if base is None or len(base["values"]) < 2:
        return int(ranked[0]["number"]), "the best mean over the fresh seeds"
    for r in rows:
        r["p_vs_base"] = None if r is base else _p_better(r["values"], base["values"], sign)
    winners = [r for r in ranked if r is not base and r["p_vs_base"] < ALPHA]
    if not winners:
        return int(base["number"]), (
            f"no candidate beat the base configuration on the fresh seeds (paired t-test, "
            f"one-sided p < {ALPHA}): the base is kept"
        )
    return int(winners[0]["number"]), (
        f"the best mean over the fresh seeds among the candidates that beat the base "
        f"configuration (paired t-test, one-sided p < {ALPHA})"
    )


def _p_better(values: Sequence[float], base: Sequence[float], sign: float) -> float:
    """One-sided p-value of "better than the base" from the paired differences (``sign``: +1
    when higher is better)."""
    from scipy import stats

    diffs = [sign * (a - b) for a, b in zip(values, base, strict=True)]
    if max(diffs) - min(diffs) <= 1e-12:  # no spread: the t statistic is not defined
        return 0.0 if diffs[0] > 0 else 1.0
    result = stats.ttest_1samp(diffs, 0.0, alternative="greater")
    return float(result.pvalue)


def read_table(out: Path) -> dict[str, Any] | None:
    """The last re-scoring's table (DIR/rescore.json), None without a readable one."""
    path = out / RESCORE_JSON
    if not path.is_file():
        return None
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return table if isinstance(table, dict) else None


def chosen_number(out: Path) -> int | None:
    """The trial the last re-scoring chose (None without one)."""
    try:
        return int((read_table(out) or {})["best"])
    except (KeyError, TypeError, ValueError):
        return None
