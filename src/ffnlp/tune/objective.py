"""One trial: draw a configuration from the space, train it into ``DIR/trials/NNNN``, score it.

A trial is a normal run folder (or, with ``--cv K``, a folder of K fold runs and their mean; with
``--trial-seeds S``, a folder of S runs with seeds train.seed, +1, ... and their mean), trained on
the training data and scored on the dev data only: the test data is never given to a trial. Its
value is the tuned metric of its summary.json (the final weights: the best evaluation's
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, TrainingError
from ffnlp.fileio import append_line, write_atomic
from ffnlp.folders.folder import write_config, write_summary
from ffnlp.folders.layout import METRICS, TRIALS_DIR
from ffnlp.tune import tasks
from ffnlp.tune.pruning import TrialReporter
from ffnlp.tune.space import Space

if TYPE_CHECKING:
    import optuna

    from ffnlp.text.readers import LabeledData
    from ffnlp.training.callbacks import Callback


class TrialFailed(Exception):
    """A trial that gives no value but leaves the study sound: recorded as failed, and the
    study goes on."""


@dataclass(frozen=True)
class Fold:
    """One round of ``--cv``: the run trains on ``train``, stops early and is pruned on ``dev``
    (a stratified tenth of the other folds), and the trial is scored on ``held_out`` (the
    fold), which played no part in training it: an unbiased estimate."""

    train: LabeledData
    dev: LabeledData
    held_out: LabeledData


@dataclass
class Plan:
    """Everything a trial needs, settled before the first one."""

    task: str
    space: Space
    base_config: Any  # the --config file (or None): each trial resolves from it
    settings: dict[str, Any]  # [fixed] of the space, the data options, --set, the monitored metric
    inputs: tasks.Inputs
    metric: str  # e.g. "dev.accuracy"
    direction: str  # maximize | minimize
    out: Path
    deadline: float | None = None  # time.monotonic() when the search must stop (the budget's
    # end less what the re-scoring needs)
    folds: list[Fold] | None = None  # --cv
    trial_seeds: int = 1  # --trial-seeds: runs per trial (seeds train.seed, +1, ...), mean scored
    rescore: int = 0  # --rescore: front-runners trained again with fresh seeds after the search
    rescore_seeds: int = 5
    end: float | None = None  # time.monotonic() when the whole time budget runs out
    callbacks: Sequence[Callback] = ()  # handed to every run's trainer (a display)
    total_trials: int | None = None  # --total-trials: the study's trials, all workers together
    current: int | None = None  # the number of the trial this process runs (or ran last)
    raised: bool = False  # whether that trial raised an error that stops the study

    @property
    def metric_name(self) -> str:
        return self.metric.split(".", 1)[1]


def run_dir_of(number: int) -> str:
    """A trial's folder, relative to the study folder."""
    return f"{TRIALS_DIR}/{number:04d}"


def objective(plan: Plan) -> Callable[[optuna.trial.Trial], float]:
    """The function Optuna calls for each trial."""

    import optuna

    def run(trial: optuna.trial.Trial) -> float:
        plan.current, plan.raised = trial.number, False
        try:
            return run_trial(plan, trial)
        except (TrialFailed, optuna.TrialPruned, optuna.exceptions.UpdateFinishedTrialError):
            raise  # the study goes on (the last: another worker took the trial for dead)
        except BaseException:
            plan.raised = True
            raise

    return run


def run_trial(plan: Plan, trial: optuna.trial.Trial) -> float:
    import optuna

    started = time.perf_counter()
    if plan.total_trials is not None:
        ahead = sum(
            t.number < trial.number and t.state.name != "FAIL"
            for t in trial.study.get_trials(deepcopy=False)
        )
        if ahead >= plan.total_trials:  # another worker started one at the same moment
            _fail(
                trial,
                started,
                f"not run: the study already holds its --total-trials {plan.total_trials}",
            )
    values = plan.space.suggest(trial)
    relative = run_dir_of(trial.number)
    run_dir = plan.out / relative
    try:
        cfg = tasks.resolve(plan.task, plan.base_config, cfgmod.merge(plan.settings, values))
    except ConfigError as exc:
        _fail(trial, started, f"the configuration refuses this combination: {exc}")
    trial.set_user_attr("config", cfgmod.to_dict(cfg))
    trial.set_user_attr("run_dir", relative)
    reporter: TrialReporter | _RoundsOutcome
    rounds: list[_Round] | None = None
    try:
        rounds = _rounds_of(plan, cfg)
        if rounds is not None:
            summary, reporter = _train_rounds(plan, trial, run_dir, rounds)
        else:
            summary, reporter = _train_once(plan, trial, cfg, run_dir)
    except (ConfigError, TrainingError) as exc:
        if rounds is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
        _fail(trial, started, str(exc))
    value = metric_value(summary, plan.metric)
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


class _RoundsOutcome:
    """What a trial of several rounds tells its caller: the same fields as a TrialReporter."""

    def __init__(self) -> None:
        self.pruned = False
        self.timed_out = False
        self.reason = ""
        self.best_epochs: float | None = None


@dataclass(frozen=True)
class _Round:
    """One run of a trial of several: a cross-validation fold, or one of its seeds."""

    unit: str  # "fold" | "seed"
    number: int  # the fold (1, 2, ...) or the seed
    cfg: Any
    train: Any = None
    dev: Any = None
    corpus: Path | None = None
    held_out: Any = None  # a fold's held-out part: it scores the round
    facts: dict[str, Any] = field(default_factory=dict)  # a fold's sizes
    evaluations: bool = False  # report each dev evaluation to the pruner (the first seed)


def _rounds_of(plan: Plan, cfg: Any) -> list[_Round] | None:
    """The runs a trial trains: the --cv folds, the --trial-seeds seeds (train.seed, +1, ...),
    or None for a single run."""
    if plan.folds is not None:
        return [
            _Round(
                "fold",
                k,
                cfg,
                train=fold.train,
                dev=fold.dev,
                held_out=fold.held_out,
                facts={
                    "train": len(fold.train),
                    "dev_examples": len(fold.dev),
                    "held_out": len(fold.held_out),
                },
            )
            for k, fold in enumerate(plan.folds, 1)
        ]
    if plan.trial_seeds <= 1:
        return None
    base = int(cfg.train.seed)
    inputs = plan.inputs
    return [
        _Round(
            "seed",
            seed,
            tasks.resolve(plan.task, cfg, {"train.seed": seed}),
            train=inputs.train,
            dev=inputs.dev,
            corpus=inputs.corpus,
            evaluations=seed == base,
        )
        for seed in range(base, base + plan.trial_seeds)
    ]


def _train_rounds(
    plan: Plan, trial: optuna.trial.Trial, run_dir: Path, rounds: list[_Round]
) -> tuple[dict[str, Any], _RoundsOutcome]:
    """Train each round into ``run_dir/<unit>_<number>`` and score it on its dev data; report
    the running mean to the pruner after each round (at the optimisation steps of the rounds so
    far). The first seed also reports each of its dev evaluations, as a single run does, so a
    hopeless trial is still stopped early. The trial's summary.json: the mean and sd over the
    rounds done, and each round's figures."""
    unit = rounds[0].unit
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, rounds[0].cfg)
    write_atomic(run_dir / METRICS, "", within=run_dir)
    outcome = _RoundsOutcome()
    rows: list[dict[str, Any]] = []
    best_epochs: list[float] = []
    steps = 0
    for i, r in enumerate(rounds, 1):
        reporter = TrialReporter(
            trial,
            plan.metric_name,
            prune=r.evaluations,
            deadline=plan.deadline,
            may_stop_for_time=_has_completed(trial),
        )
        summary = tasks.train(
            plan.task,
            r.cfg,
            run_dir / f"{unit}_{r.number}",
            [reporter, *plan.callbacks],
            train=r.train,
            dev=r.dev,
            corpus=r.corpus,
            held_out=r.held_out,
        )
        steps += int(summary.get("steps", 0))
        if reporter.best_epochs is not None:
            best_epochs.append(reporter.best_epochs)
        dev = tasks.numbers(summary.get("dev" if r.held_out is None else "held_out", {}))
        rows.append(
            {
                unit: r.number,
                **r.facts,
                **{k: summary.get(k) for k in ("steps", "epochs", "best_epoch", "train_seconds")},
                "dev": dev,
            }
        )
        mean = statistics.fmean(metric_value({"dev": row["dev"]}, plan.metric) for row in rows)
        record = {"event": unit, unit: r.number, "step": steps, "dev": dev, "mean": mean}
        append_line(run_dir / METRICS, json.dumps(record), within=run_dir)
        if math.isfinite(mean) and reporter.last_step != steps:
            trial.report(mean, steps)
        if reporter.pruned or reporter.timed_out:
            outcome.pruned, outcome.timed_out = reporter.pruned, reporter.timed_out
            outcome.reason = reporter.reason
            break
        if i < len(rounds) and trial.should_prune():
            outcome.pruned = True
            outcome.reason = (
                f"Pruned after {unit} {i} of {len(rounds)}: the mean {plan.metric} of the "
                f"{unit}s so far ({mean:.4f}) is worse than the pruner allows at this point."
            )
            break
    if best_epochs:
        outcome.best_epochs = statistics.fmean(best_epochs)
    names = sorted(set.intersection(*(set(row["dev"]) for row in rows)))
    if unit == "fold":
        head: dict[str, Any] = {"task": f"{plan.task}-cv", "folds": len(rounds)}
    else:
        head = {"task": f"{plan.task}-seeds", "seeds": [r.number for r in rounds]}
    summary = {
        **head,
        f"{unit}s_done": len(rows),
        "dev": {n: statistics.fmean(row["dev"][n] for row in rows) for n in names},
        "dev_sd": {
            n: statistics.stdev(row["dev"][n] for row in rows) if len(rows) > 1 else 0.0
            for n in names
        },
        "rounds": rows,
        "steps": steps,
        "train_seconds": sum(float(row["train_seconds"] or 0.0) for row in rows),
        "stop_reason": outcome.reason,
    }
    write_summary(run_dir, summary)
    return summary, outcome


def completed_any(study: optuna.study.Study) -> bool:
    """Whether the study has a completed trial."""
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def search_value(trial: optuna.trial.FrozenTrial) -> float:
    """The value a complete trial scored in the search (what the sampler optimised)."""
    if trial.value is None:
        raise ValueError(f"trial {trial.number} has no value: it did not complete")
    return float(trial.value)


def _has_completed(trial: optuna.trial.Trial) -> Callable[[], bool]:
    """Whether the study has a completed trial, asked when the time budget has run out."""
    return lambda: completed_any(trial.study)


def metric_value(summary: dict[str, Any], metric: str) -> float:
    """The metric ("dev.accuracy") of a summary; a ConfigError (which stops the study: every
    trial would lack it) naming the metrics there are."""
    split, name = metric.split(".", 1)
    figures_ = summary.get(split) if isinstance(summary.get(split), dict) else {}
    value = figures_.get(name) if figures_ else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    there = ", ".join(f"{split}.{k}" for k in tasks.numbers(figures_ or {})) or "none"
    raise ConfigError(f"the trial's summary.json has no {metric}; its metrics: {there} (--metric)")


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of a summary that a study keeps with each trial: its top-level numbers and
    words, and the dev metrics (never test figures)."""
    out: dict[str, Any] = {
        k: v
        for k, v in summary.items()
        if k not in ("test", "dev", "task") and (v is None or isinstance(v, (int, float, str)))
    }
    out["dev"] = tasks.numbers(summary.get("dev", {}))
    return out


def _mark(run_dir: Path, trial: optuna.trial.Trial, state: str, reason: str) -> None:
    """Say in the run's summary.json that it is a trial, and how it ended."""
    mark: dict[str, Any] = {"trial": trial.number, "state": state, "study": trial.study.study_name}
    if reason:
        mark["reason"] = reason
    tasks.add_to_summary(run_dir, "tune", mark)
