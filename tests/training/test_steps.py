"""The step strategy: the Trainer calls the Step it is given and looks up nothing on the model."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ffnlp import config as C
from ffnlp.errors import TrainingError
from ffnlp.training import (
    AutogradStep,
    TrainConfig,
    Trainer,
    UpdateStep,
    update_step_if_allowed,
)
from tests.training.test_optim import Linear, toy


def cfg(**settings: Any) -> TrainConfig:
    return C.build(
        TrainConfig,
        {
            "threads": 1,
            "checkpoint": False,
            "optimizer": "sgd",
            "lr": 0.1,
            "batch_size": 40,
            "epochs": 2,
            "log_every": 1,
            **settings,
        },
    )


def fit(step: Any = None, model: Linear | None = None, **settings: Any) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(model if model is not None else Linear(), cfg(**settings), toy(), step=step)
    trainer.fit()
    return trainer


def same_weights(a: Trainer, b: Trainer) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Halving:
    """A step that ignores the data: every parameter is halved; the loss reported is the step."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def __call__(self, batch: dict[str, Any], need_norm: bool) -> tuple[float, float | None]:
        self.calls.append((self.trainer.step, need_norm))
        with torch.no_grad():
            for p in self.trainer.params:
                p.mul_(0.5)
        return float(self.trainer.step), 1.5


def test_the_step_given_is_the_one_used() -> None:
    torch.manual_seed(0)
    start = Linear().lin.weight.detach().clone()
    halving = Halving()
    trainer = fit(step=halving, log_every=3)
    assert halving.calls == [(s, (s + 1) % 3 == 0) for s in range(20)]  # 10 batches x 2 epochs
    torch.testing.assert_close(trainer.model.lin.weight, start * 0.5**20, rtol=0, atol=0)
    steps = [r for r in trainer.history.records if r["event"] == "step"]
    assert [r["train"]["loss"] for r in steps] == [2.0, 5.0, 8.0, 11.0, 14.0, 17.0]
    assert {r["grad_norm"] for r in steps} == {1.5}


class WithOwnUpdate(Linear):
    """A model that offers a hand-made update; the Trainer must not go looking for it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def sgd_step(self, batch: dict[str, Any], lr: float) -> torch.Tensor:
        self.calls += 1
        raise AssertionError("the Trainer called the model's sgd_step by itself")


def test_a_model_with_an_sgd_step_but_no_step_given_trains_by_autograd() -> None:
    own = fit(model=WithOwnUpdate())
    assert own.model.calls == 0
    assert isinstance(own.step_strategy, AutogradStep)
    assert all(r["grad_norm"] is not None for r in own.history.records if r["event"] == "step")
    assert same_weights(own, fit())


def hand_sgd(trainer_of: list[Trainer], decline: set[int], lrs: list[float]):
    """update(batch, lr): plain SGD made by hand, declining the batches whose index is in ``decline``."""
    seen = [0]

    def update(batch: dict[str, Any], lr: float) -> torch.Tensor | None:
        index = seen[0]
        seen[0] += 1
        if index in decline:
            return None
        lrs.append(lr)
        model = trainer_of[0].model
        loss = model.loss(batch)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p.add_(g, alpha=-lr)
        return loss.detach()

    return update


def test_update_step_makes_the_update_and_falls_back_to_autograd_when_it_declines() -> None:
    reference = fit(schedule="linear")
    holder: list[Trainer] = []
    lrs: list[float] = []
    torch.manual_seed(0)
    model = Linear()
    declined = {0, 3, 4, 11}
    trainer = Trainer(
        model, cfg(schedule="linear"), toy(), step=UpdateStep(hand_sgd(holder, declined, lrs))
    )
    holder.append(trainer)
    trainer.fit()
    steps = [r for r in trainer.history.records if r["event"] == "step"]
    # declined batches went through autograd (a gradient norm); the others report none
    assert [i for i, r in enumerate(steps) if r["grad_norm"] is not None] == sorted(declined)
    # the update got the schedule's rate for its step: the rate each step record shows
    assert lrs == [r["lr"] for i, r in enumerate(steps) if i not in declined]
    for name, tensor in reference.model.state_dict().items():  # the same SGD, either way
        torch.testing.assert_close(trainer.model.state_dict()[name], tensor)
    ref_losses = [r["train"]["loss"] for r in reference.history.records if r["event"] == "step"]
    assert [r["train"]["loss"] for r in steps] == pytest.approx(ref_losses)


def test_an_update_step_that_always_declines_is_the_autograd_step() -> None:
    declining = fit(step=UpdateStep(lambda batch, lr: None), l2=0.01, clip_norm=0.5)
    assert same_weights(declining, fit(l2=0.01, clip_norm=0.5))


def test_a_non_finite_loss_from_an_update_stops_the_run() -> None:
    with pytest.raises(TrainingError, match=r"the training loss became nan at step 1 \(epoch 1\)"):
        fit(step=UpdateStep(lambda batch, lr: torch.tensor(float("nan"))))


@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({}, True),
        ({"fused_step": False}, False),
        ({"optimizer": "adam"}, False),
        ({"momentum": 0.9}, False),
        ({"weight_decay": 0.01}, False),
        ({"l1": 0.01}, False),
        ({"l2": 0.01}, False),
        ({"clip_norm": 1.0}, False),
    ],
)
def test_update_step_if_allowed_only_for_plain_sgd(settings: dict[str, Any], allowed: bool) -> None:
    model = Linear()
    step = update_step_if_allowed(lambda batch, lr: None, model, cfg(**settings))
    assert isinstance(step, UpdateStep) if allowed else step is None


def test_update_step_if_allowed_needs_every_parameter_trained() -> None:
    model = Linear()
    model.lin.bias.requires_grad_(False)
    assert update_step_if_allowed(lambda batch, lr: None, model, cfg()) is None
