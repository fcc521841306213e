"""The weights of the best evaluation so far (``train.restore_best``), and the end of a fit with them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ffnlp.training.callbacks import Callback

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


class BestWeights(Callback):
    """Copies the model's state when an evaluation improves on the best so far (as judged into
    ``trainer.history``) and loads it back when an uninterrupted fit ends. The copy is taken
    inside the evaluation, so it holds the weights that were evaluated (under weight averaging,
    the average). Checkpointed as "best_state"."""

    def __init__(self) -> None:
        self.state: dict[str, torch.Tensor] | None = None
        self.synced = False  # whether the rows a step reports changed are all that differ

    @contextlib.contextmanager
    def evaluation_context(self, trainer: Trainer) -> Iterator[None]:
        best_before = trainer.history.best_step
        yield  # not resumed when the evaluation raised: nothing to copy then
        if trainer.history.best_step != best_before:
            self._copy(trainer.model, getattr(trainer.step_strategy, "rows_changed", None))

    @torch.no_grad()
    def _copy(self, model: nn.Module, rows_changed: Any = None) -> None:
        """Into buffers allocated once: large embedding tables would otherwise cost a fresh
        allocation at every improvement. A step that knows which rows of a tensor it moved
        since the last copy (``rows_changed(tensor)``, e.g. the bag classifiers' compiled step)
        gets only those rows copied: a fraction of a large table."""
        state = model.state_dict()
        fresh = self.state is None or self.state.keys() != state.keys()
        if fresh:
            self.state = {k: v.detach().clone() for k, v in state.items()}
        assert self.state is not None
        for k, v in state.items():
            rows = rows_changed(v) if callable(rows_changed) else None  # also restarts its count
            if fresh:
                continue
            if rows is None or not self.synced:
                self.state[k].copy_(v)
            elif rows.numel():
                self.state[k].index_copy_(0, rows, v.index_select(0, rows))
        self.synced = True

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.state is not None and not trainer.interrupted:
            trainer.model.load_state_dict(self.state)

    def state_dict(self) -> dict[str, Any]:
        return {"best_state": self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state.get("best_state")
        self.synced = False  # the next copy is whole: the steps' count started elsewhere
