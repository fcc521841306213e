"""Pruning: the Trainer reports the dev metric to the trial; hopeless trials stop early.

:class:`TrialReporter` is a Trainer callback: at each dev evaluation it reports the tuned metric
to the Optuna trial with ``trial.report(value, trainer.step)`` (so a trial's intermediate values
are its learning curve against optimisation steps) and, when the study's pruner says so, stops
the run as early stopping does (a flag, with a reason): the run ends normally, its folder
complete, and the objective then records the trial as pruned. It also stops a run when the
study's time budget has run out (once some trial has completed), and notes where the run's best
evaluation was, for the refit.

Optuna's pruners compare trials at the same step. Trials that differ in batch size take
different numbers of steps per epoch, so their steps rarely coincide and a plain pruner would
compare almost nothing; :class:`ByEvaluation` hands the pruner a view of the study in which each
trial's intermediate values are numbered by evaluation (1st, 2nd, ...): trials are compared after
the same number of dev evaluations, that is after the same share of their training.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ffnlp.errors import ConfigError
from ffnlp.training.callbacks import Callback

if TYPE_CHECKING:
    import optuna

    from ffnlp.training.trainer import Trainer

PRUNERS = ("median", "halving", "none")
# pruning starts at the 2nd dev evaluation of a trial, once 4 trials have completed
WARMUP_EVALUATIONS = 2
STARTUP_TRIALS = 4
HALVING_MIN_EVALUATIONS = 2  # successive halving: rungs at evaluations 2, 6, 18, ...
HALVING_FACTOR = 3  # and a third of the trials go on at each rung


class TrialReporter(Callback):
    """Report ``metric`` (e.g. "accuracy", a key of the dev metrics) to ``trial`` at every
    evaluation, and stop the run when the pruner or the time budget says so.

    ``prune=False`` reports nothing and never prunes (a cross-validation trial reports once per
    fold instead, and a trial of several seeds once per seed after its first); ``deadline`` is a ``time.monotonic()`` instant after which the run stops if
    ``may_stop_for_time()`` allows it (the study has a completed trial to show for its time).
    """

    def __init__(
        self,
        trial: optuna.trial.Trial,
        metric: str,
        prune: bool = True,
        deadline: float | None = None,
        may_stop_for_time: Callable[[], bool] = lambda: True,
    ) -> None:
        self.trial = trial
        self.metric = metric
        self.prune = prune
        self.deadline = deadline
        self.may_stop_for_time = may_stop_for_time
        self.pruned = False
        self.timed_out = False
        self.reason = ""
        self.evaluations = 0
        self.last_step: int | None = None  # the step of its last report to the trial
        self.best_epochs: float | None = None  # where the best evaluation was, in epochs

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.metric)
        if not self.prune or not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self.evaluations += 1
        self.trial.report(float(value), trainer.step)
        self.last_step = trainer.step
        if self.trial.should_prune():
            self.pruned = True
            self.reason = (
                f"Pruned at dev evaluation {self.evaluations} (step {trainer.step}): dev."
                f"{self.metric} = {value:.4f} is worse than the pruner allows at this point."
            )
            trainer.should_stop, trainer.stop_reason = True, self.reason

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        if self.deadline is None or self.timed_out or time.monotonic() < self.deadline:
            return
        if not self.may_stop_for_time():
            self.deadline = None  # the study has nothing yet: this trial runs to its end
            return
        self.timed_out = True
        self.reason = (
            f"Stopped at step {trainer.step}: the study's time budget (--timeout) ran out."
        )
        trainer.should_stop, trainer.stop_reason = True, self.reason

    def on_fit_end(self, trainer: Trainer) -> None:
        best_step = trainer.history.best_step
        if best_step is not None and trainer.steps_per_epoch > 0:
            self.best_epochs = best_step / trainer.steps_per_epoch
        elif trainer.steps_per_epoch > 0:  # no dev evaluation: the run's own length
            self.best_epochs = trainer.step / trainer.steps_per_epoch


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The study's pruner: "median" (Optuna's MedianPruner), "halving" (its
    SuccessiveHalvingPruner) or "none", comparing trials evaluation by evaluation."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        inner: optuna.pruners.BasePruner = optuna.pruners.MedianPruner(
            n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_EVALUATIONS
        )
    elif name == "halving":
        inner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=HALVING_MIN_EVALUATIONS, reduction_factor=HALVING_FACTOR
        )
    else:
        raise ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}; got {name!r}")
    return _by_evaluation(inner)


def pruner_settings(name: str) -> dict[str, Any]:
    """What tune.json records of the pruner."""
    if name == "median":
        return {
            "name": "median",
            "class": "MedianPruner",
            "n_startup_trials": STARTUP_TRIALS,
            "n_warmup_steps": WARMUP_EVALUATIONS,
            "compared_at": "the same dev evaluation (1st, 2nd, ...)",
        }
    if name == "halving":
        return {
            "name": "halving",
            "class": "SuccessiveHalvingPruner",
            "min_resource": HALVING_MIN_EVALUATIONS,
            "reduction_factor": HALVING_FACTOR,
            "compared_at": "the same dev evaluation (1st, 2nd, ...)",
        }
    return {"name": "none", "class": "NopPruner"}


def _by_evaluation(inner: optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    import optuna

    class ByEvaluation(optuna.pruners.BasePruner):
        """``inner``, deciding on trials whose intermediate values are numbered by evaluation
        (1, 2, ...) instead of by step (see the module's docstring)."""

        def __init__(self) -> None:
            self.inner = inner

        def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
            view: Any = _EvaluationView(study)  # a Study as far as a pruner reads one
            return self.inner.prune(view, renumbered(trial))

    return ByEvaluation()


def renumbered(trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """A shallow copy of ``trial`` whose intermediate values are keyed 1, 2, ... in step order."""
    view = copy.copy(trial)
    ordered = sorted(trial.intermediate_values.items())
    view.intermediate_values = {i + 1: value for i, (_, value) in enumerate(ordered)}
    return view


class _EvaluationView:
    """The study as a pruner reads it, with every trial renumbered (the rest passes through:
    the successive-halving pruner keeps its rungs in the real storage)."""

    def __init__(self, study: optuna.study.Study) -> None:
        self._study = study

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return [renumbered(t) for t in self._study.get_trials(deepcopy=False, states=states)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)
