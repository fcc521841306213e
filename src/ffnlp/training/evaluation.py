"""Evaluation on dev data during a fit, and what follows from it: the best so far (kept in the
trainer's History), the schedule's reaction and the early-stopping decision.

The trainer calls :func:`evaluate_into` at the end of an epoch and :func:`validate` every N steps
(``train.eval_every``); both run the dev data through the trainer's evaluator inside every
callback's ``evaluation_context`` (e.g. averaged weights), then :func:`judge` the result.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import torch

from ffnlp.training.distributed import shared_evaluation
from ffnlp.training.stopping import early_stop_decision, improved, monitored_value

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


def validate(trainer: Trainer, started: float) -> None:
    """Evaluation every N steps (eval_every > 0): an "eval" record, logged when there is dev data."""
    record: dict[str, Any] = {"event": "eval", "epoch": trainer.epoch + 1, "step": trainer.step}
    if evaluate_into(trainer, record, started):
        trainer.log(record)
        trainer.emit("on_validation_end", record["dev"])


def evaluate_into(trainer: Trainer, record: dict[str, Any], started: float | None = None) -> bool:
    """Evaluate on the dev data into ``record["dev"]`` (and ``"seconds"`` when ``started`` is
    given) and judge the result; False when there is nothing to evaluate on."""
    if trainer.dev_data is None:
        return False
    with contextlib.ExitStack() as evaluation:  # the callbacks' contexts, e.g. averaged weights
        for cb in trainer.callbacks:
            evaluation.enter_context(cb.evaluation_context(trainer))
        trainer.model.eval()
        # under torchrun every rank evaluates its share of the batches (evaluators that
        # support it: distributed.shared_evaluation), the results gathered in order
        with torch.no_grad(), shared_evaluation():
            record["dev"] = trainer.evaluate_fn(trainer.model, trainer.dev_data)
        trainer.model.train()
        if started is not None:
            record["seconds"] = time.perf_counter() - started
        judge(trainer, record)
    return True


def judge(trainer: Trainer, record: dict[str, Any]) -> None:
    """The best so far, the schedule's reaction and the early-stopping decision."""
    cfg, history = trainer.config, trainer.history
    value = monitored_value(record, cfg.monitor)
    if improved(value, history.best_value, cfg.mode, cfg.min_delta):
        history.best_value, history.best_step = value, trainer.step
        history.best_epoch = record["epoch"]
    trainer.monitored.append(value)
    trainer.scheduler.on_evaluation(value, cfg.mode, trainer.step)
    if cfg.early_stopping:
        stop, reason = early_stop_decision(
            trainer.monitored, cfg.mode, cfg.patience, cfg.min_delta, cfg.monitor
        )
        if stop:
            trainer.should_stop, trainer.stop_reason = True, reason
