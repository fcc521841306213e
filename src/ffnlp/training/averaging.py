"""Polyak averaging (``train.ema_decay``): an exponential moving average of the weights.

After every step ``average = d * average + (1 - d) * weights``. Every evaluation sees the
average (so the best-weights snapshot taken during it holds the average too), and an
uninterrupted fit ends with it; the training steps themselves go on from the raw weights.

The average starts at the initial weights. With ``d = decay`` throughout, it would stay mostly
those random weights for the first ~1 / (1 - decay) steps: a run of 137 steps at decay 0.999
ended with an average still 87 % initial weights (test perplexity 5,893 where the raw weights had
443). So the decay warms up, in the manner of TensorFlow's
``ExponentialMovingAverage(num_updates=...)``: update t (t = 0, 1, 2, ...) uses
``d = min(decay, (1 + t) / (4 + t))``: 0.25, 0.4, 0.5 at t = 2, 0.9 at t = 26, 0.99 at t = 296,
0.999 from t = 2,996. The initial weights keep a share of about 3! / t^3 of the average (nil
after a few dozen steps), and until it reaches the configured window the average covers roughly
the last third of the run. (TensorFlow's (1 + t) / (10 + t) covers a tenth and reaches 0.999 only
at t = 8,990: on the PTB preset that left the best epoch's average at about 800 steps instead of
1,000 and cost 1.2 dev perplexity, 143.6 against 142.4.)
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
        self.updates = 0  # updates of the average so far (checkpointed as "ema_updates")

    def current_decay(self) -> float:
        """The decay the next update uses: ``min(decay, (1 + t) / (4 + t))`` at update t."""
        return min(self.decay, (1 + self.updates) / (4 + self.updates))

    @torch.no_grad()
    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        torch._foreach_lerp_(self.average, self.params, 1.0 - self.current_decay())
        self.updates += 1

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
        return {"ema": self.average, "ema_updates": self.updates}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("ema") is not None:
            torch._foreach_copy_(self.average, state["ema"])
            # checkpoints written before the count was kept: one update a step
            self.updates = int(state.get("ema_updates", state.get("step", 0)))
