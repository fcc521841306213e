"""Polyak averaging (``train.ema_decay``): an exponential moving average of the weights.

After every step ``average = decay * average + (1 - decay) * weights``. Every evaluation sees the
average (so the best-weights snapshot taken during it holds the average too), and an
uninterrupted fit ends with it; the training steps themselves go on from the raw weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from ffnlp.training.callbacks import Callback

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


class WeightAveraging(Callback):
    """The average of ``params`` (the trained parameters), kept beside them; checkpointed as "ema"."""

    def __init__(self, params: list[torch.Tensor], decay: float):
        self.params = params
        self.decay = decay
        self.average = [p.detach().clone() for p in params]  # starts at the initial weights

    @torch.no_grad()
    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        torch._foreach_lerp_(self.average, self.params, 1.0 - self.decay)

    @contextlib.contextmanager
    def evaluation_context(self, trainer: Trainer) -> Iterator[None]:
        """Inside: the model holds the average; the raw weights come back after, whatever happens."""
        with torch.no_grad():
            current = [p.detach().clone() for p in self.params]
            torch._foreach_copy_(self.params, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, current)

    @torch.no_grad()
    def on_fit_end(self, trainer: Trainer) -> None:
        if not trainer.interrupted:  # an interrupted run keeps its raw weights, to resume from
            torch._foreach_copy_(self.params, self.average)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.average}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("ema") is not None:
            torch._foreach_copy_(self.average, state["ema"])
