"""The pruning callback and the pruners that compare trials evaluation by evaluation."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from ffnlp.errors import ConfigError
from ffnlp.tune.pruning import TrialReporter, make_pruner, renumbered
from tests.extras import needs

optuna = needs("optuna")
optuna_trial = needs("optuna.trial")
TrialState, create_trial = optuna_trial.TrialState, optuna_trial.create_trial


class FakeTrial:
    def __init__(self, prune: bool) -> None:
        self.reports: list[tuple[float, int]] = []
        self.prune = prune

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.prune


def trainer(step: int = 10) -> Any:
    return SimpleNamespace(
        step=step,
        should_stop=False,
        stop_reason="",
        history=SimpleNamespace(best_step=6),
        steps_per_epoch=4,
    )


def test_the_reporter_reports_each_evaluation_and_stops_a_pruned_run() -> None:
    keep, prune = FakeTrial(prune=False), FakeTrial(prune=True)
    t = trainer()
    TrialReporter(keep, "accuracy").on_validation_end(t, {"accuracy": 0.7, "loss": 0.5})
    assert keep.reports == [(0.7, 10)] and not t.should_stop
    reporter = TrialReporter(prune, "accuracy")
    reporter.on_validation_end(t, {"accuracy": 0.6})
    assert t.should_stop and reporter.pruned
    assert t.stop_reason == (
        "Pruned at dev evaluation 1 (step 10): dev.accuracy = 0.6000 is worse than the pruner "
        "allows at this point."
    )
    reporter.on_fit_end(t)
    assert reporter.best_epochs == 1.5  # the best evaluation at step 6, 4 steps an epoch
    silent = FakeTrial(prune=True)
    TrialReporter(silent, "accuracy", prune=False).on_validation_end(trainer(), {"accuracy": 0.1})
    assert silent.reports == []  # cross-validation trials report per fold instead


def test_the_time_budget_stops_a_run_only_once_the_study_has_a_result() -> None:
    past = time.monotonic() - 1
    t = trainer()
    waiting = TrialReporter(
        FakeTrial(False), "accuracy", deadline=past, may_stop_for_time=lambda: False
    )
    waiting.on_batch_end(t, None)
    assert not t.should_stop and waiting.deadline is None  # the first trial runs to its end
    stopping = TrialReporter(FakeTrial(False), "accuracy", deadline=past)
    stopping.on_batch_end(t, None)
    assert t.should_stop and stopping.timed_out
    assert "time budget (--timeout) ran out" in t.stop_reason


def study_with_curves(pruner: optuna.pruners.BasePruner) -> optuna.study.Study:
    """Four completed trials that evaluated at steps 10, 20, 30 (batch size 32, say)."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for final in (0.80, 0.82, 0.84, 0.86):
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=final,
                params={},
                distributions={},
                intermediate_values={10: final - 0.1, 20: final - 0.05, 30: final},
            )
        )
    return study


def test_trials_are_compared_at_the_same_evaluation_not_the_same_step() -> None:
    """A trial with a larger batch evaluates at steps 7, 14, ...: no completed trial has those
    steps, so Optuna's MedianPruner alone never prunes it; by evaluation number it does."""
    plain = study_with_curves(optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2))
    ours = study_with_curves(make_pruner("median"))
    verdicts = []
    for study in (plain, ours):
        trial = study.ask()
        trial.report(0.50, 7)
        trial.report(0.52, 14)
        verdicts.append(trial.should_prune())
    assert verdicts == [False, True]
    # a trial as good as the others goes on, and none is pruned at its 1st evaluation
    good = ours.ask()
    good.report(0.90, 7)
    assert not good.should_prune()
    good.report(0.95, 14)
    assert not good.should_prune()


def test_successive_halving_keeps_the_best_third_at_each_rung() -> None:
    study = optuna.create_study(direction="minimize", pruner=make_pruner("halving"))
    verdicts = []
    for value in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):  # each worse than the one before
        trial = study.ask()
        step = 0
        for _ in range(2):  # two evaluations: the first rung
            step += 13
            trial.report(value, step)
        verdicts.append(trial.should_prune())
        study.tell(trial, value)
    assert verdicts[0] is False and verdicts[-1] is True


def test_renumbered_keeps_the_order_of_the_steps() -> None:
    trial = create_trial(
        state=TrialState.COMPLETE,
        value=1.0,
        params={},
        distributions={},
        intermediate_values={30: 0.3, 10: 0.1, 20: 0.2},
    )
    assert renumbered(trial).intermediate_values == {1: 0.1, 2: 0.2, 3: 0.3}
    assert trial.intermediate_values == {30: 0.3, 10: 0.1, 20: 0.2}  # the trial is untouched


def test_an_unknown_pruner_is_refused() -> None:
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    with pytest.raises(ConfigError, match="--pruner must be one of median, halving, none"):
        make_pruner("hyperband")
