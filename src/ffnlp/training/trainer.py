"""The one training loop every ffnlp model shares; it knows no model.

One visible loop: epochs -> shuffled minibatches -> a step -> schedule; evaluation at the end of
an epoch (or every N steps); early stopping as a flag. The step is a strategy (training/steps.py,
autograd by default); weight averaging, the best weights, checkpoints, training diagnostics and
the TensorBoard logger are callbacks installed from the configuration (training/configured.py).
Evaluation and its judgement (best so far, early stopping) are in training/evaluation.py; the
position in an epoch, saved and resumed, in training/checkpoint.py; each rank's share under
torchrun in training/distributed.py. Process settings (threads, allocator) are the caller's.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp.errors import RankLost, TrainingError
from ffnlp.fileio import append_line
from ffnlp.folders.layout import METRICS
from ffnlp.runtime import is_main_process, select_device
from ffnlp.training.callbacks import Callback
from ffnlp.training.checkpoint import resume_trainer, rewind_epoch
from ffnlp.training.config import TrainConfig
from ffnlp.training.configured import configured_callbacks
from ffnlp.training.data import Batch, BatchSource, batch_size_of, move_to
from ffnlp.training.distributed import (
    is_distributed,
    plan_steps,
    rank_batch_size,
    rank_share,
    reduce_sums,
    step_random_stream,
)
from ffnlp.training.evaluation import evaluate_into, validate
from ffnlp.training.history import History
from ffnlp.training.metrics import Evaluate, mean_loss
from ffnlp.training.optim import Schedule, build_optimizer
from ffnlp.training.signals import interrupts_as_flag
from ffnlp.training.steps import AutogradStep, Step


class Trainer:
    """``step``: how a batch becomes an update (default :class:`~ffnlp.training.steps.AutogradStep`).
    ``callbacks`` run after the ones the configuration installs (weight averaging, best weights,
    checkpoints), so they see the final weights when the fit ends. ``sharded``: under torchrun,
    ``train`` is this rank's own shards of the input (:mod:`ffnlp.text.shards`), which it
    shuffles by (seed, epoch, rank) and takes whole, rather than every rank's copy of the whole
    data, shared by batches."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        train: BatchSource,
        dev: BatchSource | None = None,
        evaluate: Evaluate | None = None,
        callbacks: list[Callback] | None = None,
        run_dir: str | Path | None = None,
        step: Step | None = None,
        sharded: bool = False,
    ):
        self.config = config
        self.train_data, self.dev_data = train, dev
        self.evaluate_fn = evaluate or mean_loss
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = select_device(config.device)
        self.model = model.to(self.device)
        self.params: list[torch.Tensor] = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.model, config)
        self.distributed = is_distributed()
        # train.batch_size is the global batch; each of N ranks takes 1/N of it (distributed.py)
        self.batch_size = rank_batch_size(config.batch_size)
        # how the ranks' gradients combine: as the loss combines examples (mean, or word2vec's sum)
        self.reduction: str = getattr(model, "distributed_reduction", "mean")
        # this rank's factor on its batch's gradient (distributed.RankShare.scale), 1 alone
        self.gradient_scale = 1.0
        # sharded input (ffnlp.text.shards): each rank's ``train`` is its own shards, shuffled
        # by a seed of (seed, epoch, rank) and taken whole; every rank's number of batches
        self.rank_batches, self.steps_per_epoch = plan_steps(train, self.batch_size, sharded)
        self.scheduler = Schedule(self.optimizer, config, self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        self.should_stop, self.stop_reason = False, ""
        self.interrupted = False
        self.interrupt_signal: int | None = None  # SIGINT or SIGTERM, when interrupted
        self.rank_lost: RankLost | None = None  # torchrun: another rank stopped (interrupted too)
        self.train_seconds = 0.0
        self.cpu_seconds = 0.0  # process CPU time of fit(), set by the caller that measures it
        self.monitored: list[float] = []
        # position inside an epoch, for checkpoints taken mid-epoch (Ctrl-C, SIGTERM)
        self.epoch_rng: torch.Tensor = self.generator.get_state()
        self.batch_in_epoch = 0
        self.loss_sum, self.loss_count = 0.0, 0
        self._epoch_started, self._examples = 0.0, 0
        self.callbacks = [*configured_callbacks(config, self.params), *(callbacks or [])]
        self.step_strategy: Step = step if step is not None else AutogradStep()
        self.step_strategy.bind(self)

    # ------------------------------------------------------------------------------------- loop
    def fit(self, resume: bool = False) -> History:
        if resume:
            resume_trainer(self)
        self.emit("on_fit_start")
        started = time.perf_counter() - self.train_seconds
        with interrupts_as_flag(self):
            try:
                while self.epoch < self.config.epochs and not self.should_stop:
                    self._train_epoch(started)
            except RankLost as exc:
                # the state is that of the last step every rank completed: keep it to resume
                self.rank_lost, self.interrupted, self.should_stop = exc, True, True
        self.train_seconds = time.perf_counter() - started
        self.emit("on_fit_end")
        return self.history

    def _train_epoch(self, started: float) -> None:
        self.emit("on_epoch_start")
        set_epoch = getattr(self.train_data, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        skip = rewind_epoch(self)  # > 0 only when resuming a run stopped mid-epoch
        self._epoch_started, self._examples = time.perf_counter(), 0
        self.model.train()
        batches = self.train_data.batches(self.batch_size, self.generator)
        share = rank_share(batches, self.rank_batches)
        for i, batch in enumerate(share):
            if i < skip:
                continue
            self.gradient_scale = share.gradient_scale(self.reduction)
            self._train_batch(move_to(batch, self.device), i, started, not share.phantom)
            if self.interrupted:
                self.should_stop = True
                self.stop_reason = (
                    f"Interrupted at step {self.step} (epoch {self.epoch + 1}); checkpoint saved, "
                    "continue with --resume."
                )
                return
            if self.should_stop:
                break
        self._end_epoch(started)

    def _train_batch(self, batch: Batch, index: int, started: float, counted: bool = True) -> None:
        """One step on ``batch``; ``counted`` False: a rank's stand-in at the end of an epoch
        under torchrun (its examples are not this rank's, its gradient counts zero)."""
        cfg = self.config
        n = batch_size_of(batch) if counted else 0
        logging_step = (self.step + 1) % cfg.log_every == 0
        loss, grad_norm = self.train_step(batch, need_norm=logging_step)
        self.loss_sum += loss * n
        self.loss_count += n
        self._examples += n
        self.step += 1
        self.batch_in_epoch = index + 1
        if logging_step:
            if self.distributed:  # the global batch's loss, as one process logs it
                total, count = reduce_sums([loss * n, n], "the step's loss")
                loss = total / max(count, 1)
            self.log(
                {
                    "event": "step",
                    "epoch": self.epoch + 1,
                    "step": self.step,
                    "train": {"loss": loss},
                    "lr": self.scheduler.lr(),
                    "grad_norm": grad_norm,
                    "examples_per_second": self._examples_per_second(),
                    "seconds": time.perf_counter() - started,
                }
            )
        self.emit("on_batch_end", loss if logging_step else None)
        if cfg.eval_every and self.step % cfg.eval_every == 0:
            validate(self, started)
        if cfg.max_steps and self.step >= cfg.max_steps:
            self.should_stop, self.stop_reason = True, f"Stopped at max_steps = {cfg.max_steps}."

    def _end_epoch(self, started: float) -> None:
        examples_per_second = self._examples_per_second()
        # the epoch's loss over every rank's examples (before anything changes: a rank lost
        # here leaves the epoch to finish on --resume)
        loss_sum, loss_count = reduce_sums([self.loss_sum, self.loss_count], "the epoch's loss")
        self.epoch += 1
        self.batch_in_epoch = 0
        record: dict[str, Any] = {
            "event": "epoch",
            "epoch": self.epoch,
            "step": self.step,
            "train": {"loss": loss_sum / max(loss_count, 1)},
            "lr": self.scheduler.lr(),
            "examples_per_second": examples_per_second,
            "seconds": time.perf_counter() - started,
        }
        evaluated = not self.config.eval_every and evaluate_into(self, record)
        self.log(record)
        if evaluated:
            self.emit("on_validation_end", record["dev"])
        self.train_seconds = time.perf_counter() - started
        self.emit("on_epoch_end")

    def _examples_per_second(self) -> float:
        return self._examples / max(time.perf_counter() - self._epoch_started, 1e-9)

    def train_step(self, batch: Batch, need_norm: bool = False) -> tuple[float, float | None]:
        """One update from ``batch`` by the step strategy, at the schedule's rate for this step."""
        self.scheduler.set_step(self.step)
        if not self.distributed:
            return self.step_strategy(batch, need_norm)
        with step_random_stream(self.config.seed, self.step):  # each rank's own dropout draws
            return self.step_strategy(batch, need_norm)

    def check_loss(self, loss_value: float) -> None:
        """Stop the run (TrainingError) when a step's loss is not finite."""
        if not math.isfinite(loss_value):
            raise TrainingError(
                f"the training loss became {loss_value} at step {self.step + 1} (epoch "
                f"{self.epoch + 1}); the last good checkpoint is kept. Try a lower train.lr "
                f"(now {self.config.lr}), train.clip_norm = 1.0, or check the data for extreme "
                "values."
            )

    # --------------------------------------------------------------------------- bookkeeping
    def log(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the history (and the run's metrics.jsonl, main process only)."""
        self.emit("on_record", record)  # callbacks may add keys (e.g. "diagnostics")
        self.history.append(record)
        if self.run_dir is not None and is_main_process():
            append_line(self.run_dir / METRICS, json.dumps(record), within=self.run_dir)

    def emit(self, hook: str, *args: Any) -> None:
        """Call every callback's ``hook`` with the trainer and ``args``."""
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)
