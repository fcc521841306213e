"""The one training loop every ffnlp model shares; it knows no model.

One visible loop: epochs -> shuffled minibatches -> a step -> schedule; evaluation at the end of
an epoch (or every N steps); early stopping as a flag. The step is a strategy (training/steps.py,
autograd by default); weight averaging, the best weights, checkpoints, training diagnostics and
the TensorBoard logger are callbacks installed from the configuration. Process settings (threads,
allocator) are the caller's.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp.errors import DataError, RankLost, TrainingError
from ffnlp.fileio import append_line
from ffnlp.runtime import is_main_process, select_device
from ffnlp.training.averaging import WeightAveraging
from ffnlp.training.best_weights import BestWeights
from ffnlp.training.callbacks import Callback
from ffnlp.training.checkpoint import CheckpointWriter, resume_trainer
from ffnlp.training.config import TrainConfig
from ffnlp.training.data import Batch, BatchSource, batch_size_of, move_to
from ffnlp.training.diagnostics import TrainingDiagnostics
from ffnlp.training.distributed import (
    epoch_seed,
    is_distributed,
    rank,
    rank_batch_size,
    rank_share,
    rank_steps,
    reduce_sums,
    shard_batches,
    shared_evaluation,
    world_size,
)
from ffnlp.training.history import History
from ffnlp.training.metrics import Evaluate, mean_loss
from ffnlp.training.optim import Schedule, build_optimizer
from ffnlp.training.signals import interrupts_as_flag
from ffnlp.training.steps import AutogradStep, Step
from ffnlp.training.stopping import early_stop_decision, improved, monitored_value
from ffnlp.training.tensorboard import TensorBoardLogger


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
        self.rank_batches: list[int] | None = None
        if sharded and self.distributed:
            self.rank_batches = shard_batches(train, self.batch_size)
            empty = [r for r, n in enumerate(self.rank_batches) if n == 0]
            if empty:
                raise DataError(
                    f"the training shards of process {empty[0]} hold no example; every process "
                    "needs data: remove empty shards or run fewer processes"
                )
            self.steps_per_epoch = max(self.rank_batches)
        else:
            self.steps_per_epoch = max(1, rank_steps(train, self.batch_size))
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
        self.callbacks = [*self._configured_callbacks(), *(callbacks or [])]
        self.step_strategy: Step = step if step is not None else AutogradStep()
        self.step_strategy.bind(self)

    def _configured_callbacks(self) -> list[Callback]:
        # in this order: at the end of a fit the best weights replace the average; during an
        # evaluation the best snapshot is taken before the average makes way for the raw weights
        cfg = self.config
        averaging = [WeightAveraging(self.params, cfg.ema_decay)] if cfg.ema_decay > 0 else []
        best = [BestWeights()] if cfg.restore_best else []
        # nothing at all when off: no hooks on the model, no copies of its weights
        diagnostics = [TrainingDiagnostics()] if cfg.diagnostics else []
        # last: it logs each record as the other callbacks have completed it
        tensorboard = [TensorBoardLogger(cfg.tensorboard)] if cfg.tensorboard else []
        return [
            *averaging,
            *best,
            CheckpointWriter(every_epoch=cfg.checkpoint),
            *diagnostics,
            *tensorboard,
        ]

    # ------------------------------------------------------------------------------------- loop
    def fit(self, resume: bool = False) -> History:
        if resume:
            resume_trainer(self)
        self._emit("on_fit_start")
        started = time.perf_counter() - self.train_seconds
        with interrupts_as_flag(self):
            try:
                while self.epoch < self.config.epochs and not self.should_stop:
                    self._train_epoch(started)
            except RankLost as exc:
                # the state is that of the last step every rank completed: keep it to resume
                self.rank_lost, self.interrupted, self.should_stop = exc, True, True
        self.train_seconds = time.perf_counter() - started
        self._emit("on_fit_end")
        return self.history

    def _train_epoch(self, started: float) -> None:
        self._emit("on_epoch_start")
        set_epoch = getattr(self.train_data, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        skip = self.batch_in_epoch  # > 0 only when resuming a run stopped mid-epoch
        if self.rank_batches is not None:  # this rank's own order of its shards this epoch
            self.generator.manual_seed(epoch_seed(self.config.seed, self.epoch, rank()))
        if skip == 0:
            self.epoch_rng = self.generator.get_state()
            self.loss_sum, self.loss_count = 0.0, 0
        elif self.rank_batches is None:
            self.generator.set_state(self.epoch_rng)
        self._epoch_started, self._examples = time.perf_counter(), 0
        self.model.train()
        batches = self.train_data.batches(self.batch_size, self.generator)
        share = rank_share(batches, self.rank_batches)
        for i, batch in enumerate(share):
            if i < skip:
                continue
            if self.reduction == "mean":
                self.gradient_scale = share.scale
            else:  # a sum: every rank's whole gradient, none from a stand-in
                self.gradient_scale = 0.0 if share.phantom else 1.0
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
            self._log(
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
        self._emit("on_batch_end", loss if logging_step else None)
        if cfg.eval_every and self.step % cfg.eval_every == 0:
            self._validate(started)
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
        evaluated = not self.config.eval_every and self._evaluate_into(record)
        self._log(record)
        if evaluated:
            self._emit("on_validation_end", record["dev"])
        self.train_seconds = time.perf_counter() - started
        self._emit("on_epoch_end")

    def _examples_per_second(self) -> float:
        return self._examples / max(time.perf_counter() - self._epoch_started, 1e-9)

    def train_step(self, batch: Batch, need_norm: bool = False) -> tuple[float, float | None]:
        """One update from ``batch`` by the step strategy, at the schedule's rate for this step."""
        self.scheduler.set_step(self.step)
        if not self.distributed:
            return self.step_strategy(batch, need_norm)
        # each rank's random draws (dropout) from its own stream, seeded by (seed, step, rank):
        # independent across ranks, and the same again when a lost run resumes at any step
        torch.manual_seed(
            (self.config.seed * 1_000_003 + self.step * world_size() + rank()) % 2**63
        )
        rng = torch.get_rng_state()
        try:
            return self.step_strategy(batch, need_norm)
        except RankLost:
            torch.set_rng_state(rng)  # as before the step that did not happen (dropout draws)
            raise

    def check_loss(self, loss_value: float) -> None:
        """Stop the run (TrainingError) when a step's loss is not finite."""
        if not math.isfinite(loss_value):
            raise TrainingError(
                f"the training loss became {loss_value} at step {self.step + 1} (epoch "
                f"{self.epoch + 1}); the last good checkpoint is kept. Try a lower train.lr "
                f"(now {self.config.lr}), train.clip_norm = 1.0, or check the data for extreme "
                "values."
            )

    # ------------------------------------------------------------------------------ evaluation
    def _validate(self, started: float) -> None:
        """Evaluation every N steps (eval_every > 0)."""
        record: dict[str, Any] = {"event": "eval", "epoch": self.epoch + 1, "step": self.step}
        if self._evaluate_into(record, started):
            self._log(record)
            self._emit("on_validation_end", record["dev"])

    def _evaluate_into(self, record: dict[str, Any], started: float | None = None) -> bool:
        """Evaluate on the dev data into ``record["dev"]`` (and ``"seconds"`` when ``started`` is
        given) and judge the result; False when there is nothing to evaluate on."""
        if self.dev_data is None:
            return False
        with contextlib.ExitStack() as evaluation:  # the callbacks' contexts, e.g. averaged weights
            for cb in self.callbacks:
                evaluation.enter_context(cb.evaluation_context(self))
            self.model.eval()
            # under torchrun every rank evaluates its share of the batches (evaluators that
            # support it: distributed.shared_evaluation), the results gathered in order
            with torch.no_grad(), shared_evaluation():
                record["dev"] = self.evaluate_fn(self.model, self.dev_data)
            self.model.train()
            if started is not None:
                record["seconds"] = time.perf_counter() - started
            self._judge(record)
        return True

    def _judge(self, record: dict[str, Any]) -> None:
        """The best so far, the schedule's reaction and the early-stopping decision."""
        cfg = self.config
        value = monitored_value(record, cfg.monitor)
        if improved(value, self.history.best_value, cfg.mode, cfg.min_delta):
            self.history.best_value, self.history.best_step = value, self.step
            self.history.best_epoch = record["epoch"]
        self.monitored.append(value)
        self.scheduler.on_evaluation(value, cfg.mode, self.step)
        if cfg.early_stopping:
            stop, reason = early_stop_decision(
                self.monitored, cfg.mode, cfg.patience, cfg.min_delta, cfg.monitor
            )
            if stop:
                self.should_stop, self.stop_reason = True, reason

    # --------------------------------------------------------------------------- bookkeeping
    def _log(self, record: dict[str, Any]) -> None:
        self._emit("on_record", record)  # callbacks may add keys (e.g. "diagnostics")
        self.history.append(record)
        if self.run_dir is not None and is_main_process():
            append_line(self.run_dir / "metrics.jsonl", json.dumps(record), within=self.run_dir)

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)
