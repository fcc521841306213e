"""One trial: draw a configuration from the space, train it into ``DIR/trials/NNNN``, score it.

A trial is a normal run folder (or, with ``--cv K``, a folder of K fold runs and their mean),
trained on the training data and scored on the dev data only: the test data is never given to a
trial. Its value is the tuned metric of its summary.json (the final weights: the best evaluation's
when the configuration restores them). Optuna keeps, beside the parameters, the trial's resolved
configuration (``config``: best.toml is written from it), its folder (``run_dir``), its seconds
and its summary's figures (``summary``, no test figures ever).

How a trial ends:

- complete: its value is the metric;
- pruned: the pruner stopped it (or the time budget ran out); the run is complete and says so
  in its summary.json (``"tune": {"state": "PRUNED", ...}``);
- failed: a combination the configuration refuses, or a run whose loss diverged; the study goes
  on (:class:`TrialFailed`). Any other error (unreadable data, a full disk) stops the study.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, TrainingError
from ffnlp.fileio import append_line, write_atomic
from ffnlp.tune import tasks
from ffnlp.tune.pruning import TrialReporter
from ffnlp.tune.space import Space, overrides

if TYPE_CHECKING:
    import optuna

    from ffnlp.text.readers import LabeledData
    from ffnlp.training.callbacks import Callback

TRIALS = "trials"


class TrialFailed(Exception):
    """A trial that gives no value but leaves the study sound: recorded as failed, and the
    study goes on."""


@dataclass
class Plan:
    """Everything a trial needs, settled before the first one."""

    task: str
    space: Space
    base_config: Any  # the --config file (or None): each trial resolves from it
    overrides: list[str]  # [fixed] of the space, the data options, --set, the monitored metric
    inputs: tasks.Inputs
    metric: str  # e.g. "dev.accuracy"
    direction: str  # maximize | minimize
    out: Path
    deadline: float | None = None  # time.monotonic() when the time budget runs out
    folds: list[tuple[LabeledData, LabeledData]] | None = None  # --cv: (train, dev) per fold
    callbacks: Sequence[Callback] = ()  # handed to every run's trainer (a display)

    @property
    def metric_name(self) -> str:
        return self.metric.split(".", 1)[1]


def run_dir_of(number: int) -> str:
    """A trial's folder, relative to the study folder."""
    return f"{TRIALS}/{number:04d}"


def objective(plan: Plan) -> Callable[[optuna.trial.Trial], float]:
    """The function Optuna calls for each trial."""

    def run(trial: optuna.trial.Trial) -> float:
        return run_trial(plan, trial)

    return run


def run_trial(plan: Plan, trial: optuna.trial.Trial) -> float:
    import optuna

    started = time.perf_counter()
    values = plan.space.suggest(trial)
    relative = run_dir_of(trial.number)
    run_dir = plan.out / relative
    try:
        cfg = tasks.resolve(plan.task, plan.base_config, [*plan.overrides, *overrides(values)])
    except ConfigError as exc:
        _fail(trial, started, f"the configuration refuses this combination: {exc}")
    trial.set_user_attr("config", cfgmod.to_dict(cfg))
    trial.set_user_attr("run_dir", relative)
    reporter: TrialReporter | _FoldsReporter
    try:
        if plan.folds is not None:
            summary, reporter = _cross_validate(plan, trial, cfg, run_dir)
        else:
            summary, reporter = _train_once(plan, trial, cfg, run_dir)
    except (ConfigError, TrainingError) as exc:
        if plan.folds is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
        _fail(trial, started, str(exc))
    value = _value(summary, plan.metric)
    seconds = time.perf_counter() - started
    stopped = reporter.pruned or reporter.timed_out
    state = "PRUNED" if stopped else "COMPLETE"
    _mark(run_dir, trial, state, reporter.reason)
    trial.set_user_attr("seconds", seconds)
    trial.set_user_attr("summary", figures(summary))
    if reporter.best_epochs is not None:
        trial.set_user_attr("best_epochs", reporter.best_epochs)
    if reporter.timed_out:
        trial.set_user_attr("stopped", "timeout")
    if stopped:
        raise optuna.TrialPruned(reporter.reason)
    if not math.isfinite(value):
        _fail(trial, started, f"{plan.metric} is {value}")
    return value


def _fail(trial: optuna.trial.Trial, started: float, message: str) -> NoReturn:
    trial.set_user_attr("seconds", time.perf_counter() - started)
    trial.set_user_attr("error", message)
    raise TrialFailed(message)


def _train_once(
    plan: Plan, trial: optuna.trial.Trial, cfg: Any, run_dir: Path
) -> tuple[dict[str, Any], TrialReporter]:
    reporter = TrialReporter(
        trial, plan.metric_name, deadline=plan.deadline, may_stop_for_time=_has_completed(trial)
    )
    inputs = plan.inputs
    summary = tasks.train(
        plan.task,
        cfg,
        run_dir,
        [reporter, *plan.callbacks],
        train=inputs.train,
        dev=inputs.dev,
        corpus=inputs.corpus,
    )
    return summary, reporter


class _FoldsReporter:
    """What a cross-validation trial tells its caller: the same fields as a TrialReporter."""

    def __init__(self) -> None:
        self.pruned = False
        self.timed_out = False
        self.reason = ""
        self.best_epochs: float | None = None


def _cross_validate(
    plan: Plan, trial: optuna.trial.Trial, cfg: Any, run_dir: Path
) -> tuple[dict[str, Any], _FoldsReporter]:
    """Train on each fold's training part, score on its held-out part; report the running
    mean to the pruner after each fold (at the optimisation steps of the folds so far)."""
    assert plan.folds is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.toml", cfgmod.dump_toml(cfg), within=run_dir)
    write_atomic(run_dir / "metrics.jsonl", "", within=run_dir)
    outcome = _FoldsReporter()
    rounds: list[dict[str, Any]] = []
    best_epochs: list[float] = []
    steps = 0
    for k, (train_part, dev_part) in enumerate(plan.folds, 1):
        reporter = TrialReporter(
            trial,
            plan.metric_name,
            prune=False,
            deadline=plan.deadline,
            may_stop_for_time=_has_completed(trial),
        )
        summary = tasks.train(
            plan.task,
            cfg,
            run_dir / f"fold_{k}",
            [reporter, *plan.callbacks],
            train=train_part,
            dev=dev_part,
        )
        steps += int(summary.get("steps", 0))
        if reporter.best_epochs is not None:
            best_epochs.append(reporter.best_epochs)
        dev = _numbers(summary.get("dev", {}))
        rounds.append(
            {
                "fold": k,
                "train": len(train_part),
                "dev_examples": len(dev_part),
                "steps": summary.get("steps"),
                "epochs": summary.get("epochs"),
                "best_epoch": summary.get("best_epoch"),
                "train_seconds": summary.get("train_seconds"),
                "dev": dev,
            }
        )
        mean = statistics.fmean(_value({"dev": r["dev"]}, plan.metric) for r in rounds)
        record = {"event": "fold", "fold": k, "step": steps, "dev": dev, "mean": mean}
        append_line(run_dir / "metrics.jsonl", json.dumps(record), within=run_dir)
        if math.isfinite(mean):
            trial.report(mean, steps)
        if reporter.timed_out:
            outcome.timed_out, outcome.reason = True, reporter.reason
            break
        if k < len(plan.folds) and trial.should_prune():
            outcome.pruned = True
            outcome.reason = (
                f"Pruned after fold {k} of {len(plan.folds)}: the mean {plan.metric} of the folds "
                f"so far ({mean:.4f}) is worse than the pruner allows at this point."
            )
            break
    if best_epochs:
        outcome.best_epochs = statistics.fmean(best_epochs)
    names = sorted(set.intersection(*(set(r["dev"]) for r in rounds)))
    summary = {
        "task": "classify-cv",
        "folds": len(plan.folds),
        "folds_done": len(rounds),
        "dev": {n: statistics.fmean(r["dev"][n] for r in rounds) for n in names},
        "dev_sd": {
            n: statistics.stdev(r["dev"][n] for r in rounds) if len(rounds) > 1 else 0.0
            for n in names
        },
        "rounds": rounds,
        "steps": steps,
        "train_seconds": sum(float(r["train_seconds"] or 0.0) for r in rounds),
        "stop_reason": outcome.reason,
    }
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2), within=run_dir)
    return summary, outcome


def _has_completed(trial: optuna.trial.Trial) -> Callable[[], bool]:
    """Whether the study has a completed trial (asked once the time budget has run out)."""

    def ask() -> bool:
        from optuna.trial import TrialState

        return bool(trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    return ask


def _value(summary: dict[str, Any], metric: str) -> float:
    """The metric ("dev.accuracy") of a summary; a ConfigError (which stops the study: every
    trial would lack it) naming the metrics there are."""
    split, name = metric.split(".", 1)
    figures_ = summary.get(split) if isinstance(summary.get(split), dict) else {}
    value = figures_.get(name) if figures_ else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    there = ", ".join(f"{split}.{k}" for k in _numbers(figures_ or {})) or "none"
    raise ConfigError(f"the trial's summary.json has no {metric}; its metrics: {there} (--metric)")


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of a summary that a study keeps with each trial: its top-level numbers and
    words, and the dev metrics (never test figures)."""
    out: dict[str, Any] = {
        k: v
        for k, v in summary.items()
        if k not in ("test", "dev", "task") and (v is None or isinstance(v, (int, float, str)))
    }
    out["dev"] = _numbers(summary.get("dev", {}))
    return out


def _mark(run_dir: Path, trial: optuna.trial.Trial, state: str, reason: str) -> None:
    """Say in the run's summary.json that it is a trial, and how it ended."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["tune"] = {"trial": trial.number, "state": state, "study": trial.study.study_name}
    if reason:
        summary["tune"]["reason"] = reason
    write_atomic(path, json.dumps(summary, indent=2), within=run_dir)
