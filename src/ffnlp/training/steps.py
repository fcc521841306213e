"""How one batch becomes one update of the weights: a strategy the Trainer calls and never looks into.

The default, :class:`AutogradStep`, is the textbook step: loss (+ L1/L2 penalty) -> backward ->
gradient averaging across ranks -> clipping -> decoupled weight decay -> optimiser step. A task
whose model can make the same update faster by hand hands the Trainer an :class:`UpdateStep`
instead (``Trainer(..., step=...)``); :func:`update_step_if_allowed` says when that is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from ffnlp.training.config import TrainConfig
from ffnlp.training.distributed import exchange_gradients
from ffnlp.training.optim import apply_weight_decay, clip_gradients
from ffnlp.training.regularize import penalised_weights, penalty
from ffnlp.training.trainable import as_trainable

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer

# update(batch, lr) -> the batch's loss once the update is made, or None to decline the batch
Update = Callable[[dict[str, Any], float], torch.Tensor | float | None]


class Step(Protocol):
    """One optimisation step. The Trainer binds it once, then calls it on every training batch
    after setting the schedule's learning rate for that step.

    An optional attribute ``own_threads = True`` says that the step runs its work in worker
    threads of its own, so the process should keep 1 intra-op thread (``train.threads = "auto"``
    reads it; absent means False)."""

    def bind(self, trainer: Trainer) -> None:
        """Called once by the Trainer, when its model (on its device), optimiser and schedule exist."""

    def __call__(self, batch: dict[str, Any], need_norm: bool) -> tuple[float, float | None]:
        """Update the weights from ``batch``; return its loss (passed to ``trainer.check_loss``,
        which stops a run whose loss is not finite) and the global gradient norm, or None when
        the step has none. ``need_norm``: this step's record logs the norm, so compute it."""
        ...


class AutogradStep:
    """loss (+ penalty) -> backward -> average across ranks -> clip -> weight decay -> optimiser."""

    own_threads = False  # torch's intra-op threads do the work

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.model = as_trainable(trainer.model)  # checked once, not per step
        self.penalised = penalised_weights(trainer.model)

    def __call__(self, batch: dict[str, Any], need_norm: bool) -> tuple[float, float | None]:
        trainer, cfg = self.trainer, self.trainer.config
        loss = self.model.loss(batch)
        loss_value = float(loss.detach())
        trainer.check_loss(loss_value)
        extra = penalty(self.penalised, cfg.l1, cfg.l2)
        if trainer.gradient_scale != 1.0:  # torchrun, ranks' batches of unequal sizes
            loss = loss * trainer.gradient_scale
        total = loss + extra if extra is not None else loss
        trainer.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if trainer.distributed:
            exchange_gradients(trainer.params, trainer.reduction)
        grad_norm = None
        if cfg.clip_norm > 0 or need_norm:  # the norm costs a pass over every gradient
            grad_norm = float(clip_gradients(trainer.params, cfg.clip_norm))
        apply_weight_decay(trainer.optimizer)
        trainer.optimizer.step()
        return loss_value, grad_norm


class UpdateStep:
    """A step made by ``update(batch, lr)`` at the schedule's learning rate, without autograd or
    optimiser. When ``update`` returns None for a batch, ``fallback`` (by default an
    :class:`AutogradStep`) makes that batch's step instead. No gradients, so no norm to report.
    ``own_threads``: ``update`` shares its work between worker threads of its own."""

    def __init__(self, update: Update, fallback: Step | None = None, own_threads: bool = False):
        self.update = update
        self.fallback: Step = fallback if fallback is not None else AutogradStep()
        self.own_threads = own_threads

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.fallback.bind(trainer)

    def __call__(self, batch: dict[str, Any], need_norm: bool) -> tuple[float, float | None]:
        before = self._weights() if self.trainer.distributed else None
        loss = self.update(batch, self.trainer.scheduler.lr())
        if loss is None:
            return self.fallback(batch, need_norm)
        loss_value = float(loss)
        self.trainer.check_loss(loss_value)
        if before is not None:
            self._exchange_changes(before)
        return loss_value, None

    def _weights(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.trainer.params]

    def _exchange_changes(self, before: list[torch.Tensor]) -> None:
        """Under torchrun: every rank made its own batch's update; each weight becomes the one
        before plus the ranks' changes combined as their gradients would be (summed for a loss
        whose gradient is the sum's, as word2vec's; averaged for a mean): the plain-SGD update
        of one process on the global batch. The changes travel as the rows that moved (the gradient exchange's
        sparse path) when that is smaller."""
        params = self.trainer.params
        for p, old in zip(params, before, strict=True):
            change = p.detach() - old
            if self.trainer.gradient_scale != 1.0:  # ranks' batches of unequal sizes
                change.mul_(self.trainer.gradient_scale)
            if change.dim() == 2:  # a table: only the rows this step moved
                rows = change.ne(0).any(dim=1).nonzero().squeeze(1)
                p.grad = torch.sparse_coo_tensor(
                    rows.unsqueeze(0),
                    change.index_select(0, rows),
                    change.shape,
                    check_invariants=False,
                )
            else:
                p.grad = change
        exchange_gradients(params, self.trainer.reduction)
        with torch.no_grad():
            for p, old in zip(params, before, strict=True):
                grad = p.grad
                assert grad is not None
                if grad.is_sparse:
                    grad = grad.coalesce()
                    p.copy_(old.index_add_(0, grad.indices()[0], grad.values()))
                else:
                    p.copy_(old.add_(grad))
                p.grad = None


def update_step_if_allowed(
    update: Update, model: nn.Module, config: TrainConfig, own_threads: bool = False
) -> Step | None:
    """An :class:`UpdateStep` from a hand-made plain-SGD ``update``, when it may stand in for
    autograd + optimiser: ``config.fused_sgd`` (train.fused_step on; SGD without momentum, weight
    decay, L1/L2 penalty or clipping), every parameter of ``model`` trained. Under torchrun the
    ranks' changes are summed after every step (:meth:`UpdateStep._exchange_changes`).
    Otherwise None: the Trainer's default autograd step. ``update`` must make the same update as
    ``loss.backward(); SGD(lr).step()`` (its model's tests check that); ``own_threads``: it
    shares its work between worker threads of its own (see :class:`Step`)."""
    every_param = all(p.requires_grad for p in model.parameters())
    if not (config.fused_sgd and every_param):
        return None
    return UpdateStep(update, own_threads=own_threads)
