"""The callbacks the Trainer installs from its configuration: weight averaging, best weights,
checkpoints; and the hooks they use (evaluation_context, state in checkpoints)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ffnlp import config as C
from ffnlp.training import Callback, TrainConfig, Trainer
from ffnlp.training.averaging import WeightAveraging
from ffnlp.training.best_weights import BestWeights
from ffnlp.training.checkpoint import CheckpointWriter, load_checkpoint
from tests.training.test_optim import Linear, toy

SCORES = [0.2, 0.9, 0.4, 0.95, 0.1, 0.3, 0.5, 0.2, 0.1, 0.0, 0.3, 0.2, 0.1]  # best: evaluation 4


def cfg(**settings: Any) -> TrainConfig:
    return C.build(
        TrainConfig,
        {
            "threads": 1,
            "checkpoint": False,
            "optimizer": "sgd",
            "lr": 0.1,
            "batch_size": 40,
            "epochs": 4,
            "eval_every": 3,
            "monitor": "dev.accuracy",
            **settings,
        },
    )


class Weights(Callback):
    """The raw weights after every step, and what the user callbacks see at the other hooks."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []
        self.at_validation_end: list[torch.Tensor] = []
        self.at_fit_end: torch.Tensor | None = None

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        self.steps.append(trainer.model.lin.weight.detach().clone())

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.at_validation_end.append(trainer.model.lin.weight.detach().clone())

    def on_fit_end(self, trainer: Trainer) -> None:
        self.at_fit_end = trainer.model.lin.weight.detach().clone()


def scripted_evaluation(seen: list[torch.Tensor]):
    scores = iter(SCORES)

    def evaluate(model: Any, source: Any) -> dict[str, float]:
        seen.append(model.lin.weight.detach().clone())
        return {"accuracy": next(scores)}

    return evaluate


def run(**settings: Any) -> tuple[Trainer, Weights, list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    model = Linear()
    start = model.lin.weight.detach().clone()
    seen: list[torch.Tensor] = []
    weights = Weights()
    trainer = Trainer(
        model,
        cfg(**settings),
        toy(),
        dev=toy(50, seed=1),
        evaluate=scripted_evaluation(seen),
        callbacks=[weights],
    )
    trainer.fit()
    return trainer, weights, seen, start


def test_installed_from_the_configuration_before_the_callers_own() -> None:
    user = Weights()
    trainer = Trainer(Linear(), cfg(ema_decay=0.9, checkpoint=True), toy(), callbacks=[user])
    kinds = [type(cb) for cb in trainer.callbacks]
    assert kinds == [WeightAveraging, BestWeights, CheckpointWriter, Weights]
    bare = Trainer(Linear(), cfg(restore_best=False), toy())
    assert [type(cb) for cb in bare.callbacks] == [CheckpointWriter]


def warmed_decay(decay: float, t: int) -> float:
    """The decay of update t (0, 1, ...): TensorFlow's num_updates warm-up, written out."""
    return min(decay, (1 + t) / (4 + t))


def test_averaging_and_best_weights_match_a_hand_computation() -> None:
    decay = 0.8
    trainer, weights, seen, start = run(ema_decay=decay)
    plain, plain_weights, _, _ = run(restore_best=False)
    # averaging never touches the weights the steps train: the same raw path as without it
    assert all(torch.equal(a, b) for a, b in zip(weights.steps, plain_weights.steps, strict=True))
    average, expected = start, []
    for step, w in enumerate(weights.steps, 1):
        d = warmed_decay(decay, step - 1)
        average = d * average + (1 - d) * w
        if step % 3 == 0:
            expected.append(average)
    assert len(seen) == len(expected) == 13  # 40 steps, an evaluation every 3
    for got, want in zip(seen, expected, strict=True):  # every evaluation saw the average
        torch.testing.assert_close(got, want)
    # the callers' on_validation_end sees the raw weights again; their on_fit_end the final ones
    assert all(
        torch.equal(w, weights.steps[3 * i + 2]) for i, w in enumerate(weights.at_validation_end)
    )
    assert trainer.history.best_step == 12  # evaluation 4 scored best
    assert torch.equal(trainer.model.lin.weight, seen[3])  # the average that was evaluated then
    assert weights.at_fit_end is not None and torch.equal(weights.at_fit_end, seen[3])


def test_without_restore_best_the_fit_ends_with_the_average() -> None:
    decay = 0.5
    trainer, weights, _, start = run(ema_decay=decay, restore_best=False)
    average = start
    for t, w in enumerate(weights.steps):
        d = warmed_decay(decay, t)
        average = d * average + (1 - d) * w
    torch.testing.assert_close(trainer.model.lin.weight, average)


def test_a_ten_step_run_averages_its_own_steps_not_the_initial_weights() -> None:
    # decay 0.999 without a warm-up would leave 99 % of the initial weights in the average
    trainer, weights, _, start = run(ema_decay=0.999, restore_best=False, epochs=1)
    assert len(weights.steps) == 10
    decays = [min(0.999, (1 + t) / (4 + t)) for t in range(10)]
    assert decays[:3] == [0.25, 2 / 5, 3 / 6] and decays[-1] == 10 / 13
    average = start
    for d, w in zip(decays, weights.steps, strict=True):
        average = d * average + (1 - d) * w
    torch.testing.assert_close(trainer.model.lin.weight, average)
    # the initial weights' share: the product of the decays, 10! 3! / 13! = 3! / (11 * 12 * 13)
    share = torch.tensor(decays, dtype=torch.float64).prod().item()
    assert share == pytest.approx(math.factorial(10) * math.factorial(3) / math.factorial(13))
    averaging = trainer.callbacks[0]
    assert isinstance(averaging, WeightAveraging) and averaging.updates == 10
    assert averaging.current_decay() == 11 / 14


def test_a_checkpoint_without_the_update_count_counts_one_update_a_step() -> None:
    averaging = WeightAveraging([torch.zeros(2)], decay=0.9)
    averaging.load_state_dict({"ema": [torch.ones(2)], "step": 7})  # written before the count
    assert averaging.updates == 7 and torch.equal(averaging.average[0], torch.ones(2))
    averaging.load_state_dict({"ema": [torch.ones(2)], "ema_updates": 5, "step": 7})
    assert averaging.updates == 5


def test_the_decay_reaches_the_configured_one_after_its_warm_up() -> None:
    averaging = WeightAveraging([torch.zeros(2)], decay=0.99)
    averaging.updates = 294
    assert averaging.current_decay() == 295 / 298 < 0.99
    averaging.updates = 297
    assert averaging.current_decay() == 0.99


def test_best_weights_without_averaging_are_the_raw_weights_of_the_best_evaluation() -> None:
    trainer, weights, seen, _ = run()
    assert torch.equal(seen[3], weights.steps[11])
    assert torch.equal(trainer.model.lin.weight, weights.steps[11])


class InterruptAt(Callback):
    """Raises the trainer's interrupt flag at a step, as Ctrl-C does (without sending a signal)."""

    def __init__(self, step: int) -> None:
        self.at = step

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        if trainer.step == self.at:
            trainer.interrupted = True


class Counter(Callback):
    """A caller's callback with state of its own, which checkpoints must carry."""

    def __init__(self) -> None:
        self.batches = 0

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        self.batches += 1

    def state_dict(self) -> dict[str, Any]:
        return {"counter_batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches = state["counter_batches"]


def resumable(run_dir: Any, callbacks: list[Callback]) -> Trainer:
    torch.manual_seed(0)
    settings = {"ema_decay": 0.9, "early_stopping": True, "patience": 3, "monitor": "dev.loss"}
    return Trainer(
        Linear(), cfg(**settings), toy(), dev=toy(50, seed=1), callbacks=callbacks, run_dir=run_dir
    )


def test_an_interrupted_fit_writes_a_checkpoint_and_resumes_to_the_same_weights(tmp_path) -> None:
    (tmp_path / "straight").mkdir()
    (tmp_path / "cut").mkdir()
    straight_counter = Counter()
    straight = resumable(tmp_path / "straight", [straight_counter])
    straight.fit()
    raw = Weights()
    cut = resumable(tmp_path / "cut", [InterruptAt(13), raw, Counter()])
    cut.fit()
    # train.checkpoint = false, yet the interruption wrote one; no average, no best: raw weights
    state = load_checkpoint(tmp_path / "cut")
    assert state["step"] == 13 and state["batch_in_epoch"] == 3 and state["counter_batches"] == 13
    assert state["ema"] is not None and state["best_state"] is not None
    assert state["ema_updates"] == 13  # the average's warm-up goes on where it stopped
    assert torch.equal(cut.model.lin.weight, raw.steps[-1])
    resumed_counter = Counter()
    resumed = resumable(tmp_path / "cut", [resumed_counter])
    resumed.fit(resume=True)
    assert resumed_counter.batches == straight_counter.batches == 40
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    averages = [t.callbacks[0] for t in (straight, resumed)]
    assert all(isinstance(a, WeightAveraging) and a.updates == 40 for a in averages)
    assert all(
        torch.equal(a, b) for a, b in zip(averages[0].average, averages[1].average, strict=True)
    )
    assert straight.history.records[-1]["step"] == resumed.history.records[-1]["step"]


def test_checkpoints_keep_their_layout_when_averaging_and_best_weights_are_off(tmp_path) -> None:
    torch.manual_seed(0)
    trainer = Trainer(
        Linear(), cfg(checkpoint=True, restore_best=False, epochs=1), toy(), run_dir=tmp_path
    )
    trainer.fit()
    state = load_checkpoint(tmp_path)
    assert state["ema"] is None and state["best_state"] is None
    assert {"model", "optimizer", "scheduler", "history", "epoch", "step"} <= set(state)
