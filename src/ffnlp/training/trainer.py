"""The one training loop every ffnlp model shares.

The trainer knows nothing about the model beyond ``model.loss(batch) -> scalar``.  One visible
loop: epochs -> shuffled minibatches -> loss (+ penalty) -> backward -> clip -> step -> schedule,
with evaluation at the end of an epoch (or every N steps), early stopping as a flag, atomic
checkpoints, resume, and SIGINT/SIGTERM handled by saving and stopping cleanly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp.errors import TrainingError
from ffnlp.runtime import is_main_process, keep_freed_memory, select_device, set_threads
from ffnlp.training.callbacks import Callback
from ffnlp.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_atomic
from ffnlp.training.config import TrainConfig
from ffnlp.training.data import BatchSource, batch_size_of, move_to
from ffnlp.training.history import History
from ffnlp.training.optim import Schedule, apply_weight_decay, build_optimizer, clip_gradients
from ffnlp.training.regularize import penalised_weights, penalty
from ffnlp.training.stopping import early_stop_decision, improved

log = logging.getLogger(__name__)

Evaluate = Callable[[nn.Module, BatchSource], dict[str, Any]]


@torch.no_grad()
def mean_loss(model: nn.Module, source: BatchSource, batch_size: int = 1024) -> dict[str, Any]:
    """Default evaluation: the model's loss averaged over every example of ``source``."""
    total, count = 0.0, 0
    for batch in source.batches(batch_size, None):
        n = batch_size_of(batch)
        total += float(model.loss(batch)) * n  # type: ignore[operator]
        count += n
    return {"loss": total / max(count, 1)}


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        train: BatchSource,
        dev: BatchSource | None = None,
        evaluate: Evaluate | None = None,
        callbacks: list[Callback] | None = None,
        run_dir: str | Path | None = None,
    ):
        self.config = config
        self.train_data, self.dev_data = train, dev
        self.evaluate_fn = evaluate or mean_loss
        self.callbacks = list(callbacks or [])
        self.run_dir = Path(run_dir) if run_dir is not None else None
        set_threads(config.threads)
        keep_freed_memory()  # large per-step tensors reuse their memory instead of page-faulting
        self.device = select_device(config.device)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, config)
        self._distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        world = torch.distributed.get_world_size() if self._distributed else 1
        self.steps_per_epoch = max(1, train.num_batches(config.batch_size) // world)
        self.scheduler = Schedule(self.optimizer, config, self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        self.should_stop = False
        self.stop_reason = ""
        self.best_state: dict[str, torch.Tensor] | None = None
        self.interrupted = False
        self.train_seconds = 0.0
        self.cpu_seconds = 0.0  # process CPU time of fit(), set by the caller that measures it
        self._params: list[torch.Tensor] = [p for p in self.model.parameters() if p.requires_grad]
        self._sgd_step = self._fused_sgd_step()
        # the averaged weights (train.ema_decay > 0), one tensor per trained parameter
        self._ema: list[torch.Tensor] | None = (
            [p.detach().clone() for p in self._params] if config.ema_decay > 0 else None
        )
        self._penalised = penalised_weights(self.model)
        self._monitored: list[float] = []
        # position inside an epoch, for checkpoints taken mid-epoch (Ctrl-C, SIGTERM)
        self._epoch_rng: torch.Tensor = self.generator.get_state()
        self._batch_in_epoch = 0
        self._loss_sum, self._loss_count = 0.0, 0

    # ------------------------------------------------------------------------------------- loop
    def fit(self, resume: bool = False) -> History:
        if resume:
            self._restore(load_checkpoint(self._checkpoint_path()))
        self._emit("on_fit_start")
        started = time.perf_counter() - self.train_seconds
        with self._signals():
            while self.epoch < self.config.epochs and not self.should_stop:
                self._train_epoch(started)
        self.train_seconds = time.perf_counter() - started
        if self.config.restore_best and self.best_state is not None and not self.interrupted:
            self.model.load_state_dict(self.best_state)
        elif self._ema is not None and not self.interrupted:
            with torch.no_grad():
                torch._foreach_copy_(self._params, self._ema)  # the final model is the average
        self._emit("on_fit_end")
        return self.history

    def _train_epoch(self, started: float) -> None:
        cfg = self.config
        self._emit("on_epoch_start")
        set_epoch = getattr(self.train_data, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        skip = self._batch_in_epoch  # > 0 only when resuming a run stopped mid-epoch
        if skip == 0:
            self._epoch_rng = self.generator.get_state()
            self._loss_sum, self._loss_count = 0.0, 0
        else:
            self.generator.set_state(self._epoch_rng)
        epoch_start = time.perf_counter()
        examples = 0
        self.model.train()
        for i, batch in enumerate(self._shard(self.train_data.batches(cfg.batch_size, self.generator))):
            if i < skip:
                continue
            batch = move_to(batch, self.device)
            n = batch_size_of(batch)
            logging_step = (self.step + 1) % cfg.log_every == 0
            loss, grad_norm = self._train_step(batch, need_norm=logging_step)
            self._loss_sum += loss * n
            self._loss_count += n
            examples += n
            self.step += 1
            self._batch_in_epoch = i + 1
            if logging_step:
                seconds = time.perf_counter() - epoch_start
                self._log({
                    "event": "step", "epoch": self.epoch + 1, "step": self.step,
                    "train": {"loss": loss}, "lr": self.scheduler.lr(), "grad_norm": grad_norm,
                    "examples_per_second": examples / max(seconds, 1e-9),
                    "seconds": time.perf_counter() - started,
                })
            self._emit("on_batch_end", loss if logging_step else None)
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                self._validate(started)
            if cfg.max_steps and self.step >= cfg.max_steps:
                self.should_stop, self.stop_reason = True, f"Stopped at max_steps = {cfg.max_steps}."
            if self.interrupted:
                self._save_checkpoint()
                self.should_stop = True
                self.stop_reason = (
                    f"Interrupted at step {self.step} (epoch {self.epoch + 1}); checkpoint saved, "
                    "continue with --resume."
                )
                return
            if self.should_stop:
                break
        seconds = time.perf_counter() - epoch_start
        self.epoch += 1
        self._batch_in_epoch = 0
        record: dict[str, Any] = {
            "event": "epoch", "epoch": self.epoch, "step": self.step,
            "train": {"loss": self._loss_sum / max(self._loss_count, 1)},
            "lr": self.scheduler.lr(),
            "examples_per_second": examples / max(seconds, 1e-9),
            "seconds": time.perf_counter() - started,
        }
        if not cfg.eval_every:
            with self._averaged_weights():
                record["dev"] = self._evaluate()
                self._after_evaluation(record)
        self._log(record)
        if not cfg.eval_every and "dev" in record:
            self._emit("on_validation_end", record["dev"])
        self.train_seconds = time.perf_counter() - started
        if cfg.checkpoint:
            self._save_checkpoint()
        self._emit("on_epoch_end")

    def _fused_sgd_step(self) -> Callable[[dict[str, Any], float], Any] | None:
        """The model's own ``sgd_step(batch, lr)`` when it may replace autograd + optimiser.

        Only for plain SGD: no momentum, no weight decay, no L1/L2 penalty, no clipping, one
        process, every parameter trained. Such a step must make the same update as
        ``loss.backward(); SGD(lr).step()`` (tests/test_w2v_model.py checks word2vec's).
        """
        step = getattr(self.model, "sgd_step", None)
        every_param = all(p.requires_grad for p in self.model.parameters())
        if not (self.config.fused_sgd and callable(step) and every_param) or self._distributed:
            return None
        return step

    def _check_loss(self, loss_value: float) -> None:
        if not math.isfinite(loss_value):
            raise TrainingError(
                f"the training loss became {loss_value} at step {self.step + 1} (epoch "
                f"{self.epoch + 1}); the last good checkpoint is kept. Try a lower train.lr "
                f"(now {self.config.lr}), train.clip_norm = 1.0, or check the data for extreme "
                "values."
            )

    def _train_step(self, batch: dict[str, Any], need_norm: bool) -> tuple[float, float | None]:
        cfg = self.config
        self.scheduler.set_step(self.step)
        if self._sgd_step is not None:
            fused = self._sgd_step(batch, self.scheduler.lr())
            if fused is not None:  # the update is made; no gradients, so no norm to report
                loss_value = float(fused)
                self._check_loss(loss_value)
                self._update_average()
                return loss_value, None
        loss = self.model.loss(batch)  # type: ignore[operator]
        loss_value = float(loss.detach())
        self._check_loss(loss_value)
        extra = penalty(self._penalised, cfg.l1, cfg.l2)
        total = loss + extra if extra is not None else loss
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self._distributed:
            self._average_gradients()
        grad_norm = None
        if cfg.clip_norm > 0 or need_norm:  # the norm costs a pass over every gradient
            grad_norm = float(clip_gradients(self._params, cfg.clip_norm))
        apply_weight_decay(self.optimizer)
        self.optimizer.step()
        self._update_average()
        return loss_value, grad_norm

    @torch.no_grad()
    def _update_average(self) -> None:
        if self._ema is not None:
            torch._foreach_lerp_(self._ema, self._params, 1.0 - self.config.ema_decay)

    @contextlib.contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """Inside: the model holds the averaged weights (when train.ema_decay > 0)."""
        if self._ema is None:
            yield
            return
        with torch.no_grad():
            current = [p.detach().clone() for p in self._params]
            torch._foreach_copy_(self._params, self._ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._params, current)

    # ------------------------------------------------------------------------------ evaluation
    def _evaluate(self) -> dict[str, Any] | None:
        if self.dev_data is None:
            return None
        self.model.eval()
        with torch.no_grad():
            metrics = self.evaluate_fn(self.model, self.dev_data)
        self.model.train()
        return metrics

    def _validate(self, started: float) -> None:
        """Evaluation every N steps (eval_every > 0)."""
        with self._averaged_weights():
            metrics = self._evaluate()
            if metrics is None:
                return
            record = {"event": "eval", "epoch": self.epoch + 1, "step": self.step, "dev": metrics,
                      "seconds": time.perf_counter() - started}
            self._after_evaluation(record)
        self._log(record)
        self._emit("on_validation_end", metrics)

    def _after_evaluation(self, record: dict[str, Any]) -> None:
        cfg = self.config
        if record.get("dev") is None:
            record.pop("dev", None)
            return
        value = self.history.value(record, cfg.monitor)
        if value is None:
            available = ", ".join(f"dev.{k}" for k in record["dev"] if not isinstance(record["dev"][k], (dict, list)))
            raise TrainingError(
                f"train.monitor = {cfg.monitor!r} is not among the evaluation's metrics; "
                f"choose one of: {available}"
            )
        if improved(value, self.history.best_value, cfg.mode, cfg.min_delta):
            self.history.best_value, self.history.best_step = value, self.step
            self.history.best_epoch = record["epoch"]
            if cfg.restore_best:
                self._snapshot_best()
        self._monitored.append(value)
        self.scheduler.on_evaluation(value, cfg.mode, self.step)
        if cfg.early_stopping:
            stop, reason = early_stop_decision(
                self._monitored, cfg.mode, cfg.patience, cfg.min_delta, cfg.monitor
            )
            if stop:
                self.should_stop, self.stop_reason = True, reason

    @torch.no_grad()
    def _snapshot_best(self) -> None:
        """Copy the weights into the best-state buffers (allocated once: large embedding tables
        would otherwise cost a fresh allocation at every improvement)."""
        state = self.model.state_dict()
        if self.best_state is None or self.best_state.keys() != state.keys():
            self.best_state = {k: v.detach().clone() for k, v in state.items()}
            return
        for k, v in state.items():
            self.best_state[k].copy_(v)

    # --------------------------------------------------------------------------- bookkeeping
    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.run_dir is not None and is_main_process():
            with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _shard(self, batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Under torchrun each rank takes every world_size-th batch (the distributed sampler slot)."""
        if not self._distributed:
            yield from batches
            return
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        total = self.train_data.num_batches(self.config.batch_size)
        usable = total - total % world  # every rank takes the same number of steps
        for i, batch in enumerate(batches):
            if i >= usable:
                break
            if i % world == rank:
                yield batch

    def _average_gradients(self) -> None:
        world = torch.distributed.get_world_size()
        for p in self._params:
            if p.grad is not None:
                if p.grad.is_sparse:
                    p.grad = p.grad.to_dense()
                torch.distributed.all_reduce(p.grad)
                p.grad.div_(world)

    # ------------------------------------------------------------------- checkpoints and resume
    def _checkpoint_path(self) -> Path:
        if self.run_dir is None:
            raise TrainingError("checkpoints need a run directory (run_dir)")
        return self.run_dir / "checkpoint" / CHECKPOINT_FILE

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history.state_dict(),
            "epoch": self.epoch, "step": self.step,
            "batch_in_epoch": self._batch_in_epoch,
            "epoch_rng": self._epoch_rng,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "loss_sum": self._loss_sum, "loss_count": self._loss_count,
            "monitored": self._monitored,
            "best_state": self.best_state,
            "ema": self._ema,
            "train_seconds": self.train_seconds,
            "should_stop": self.should_stop and not self.interrupted,
            "stop_reason": self.stop_reason if not self.interrupted else "",
        }

    def _save_checkpoint(self) -> None:
        if self.run_dir is None or not is_main_process():
            return
        save_atomic(self.state_dict(), self._checkpoint_path())

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history.load_state_dict(state["history"])
        self.epoch, self.step = state["epoch"], state["step"]
        self._batch_in_epoch = state["batch_in_epoch"]
        self._epoch_rng = state["epoch_rng"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self._loss_sum, self._loss_count = state["loss_sum"], state["loss_count"]
        self._monitored = list(state["monitored"])
        self.best_state = state["best_state"]
        if self._ema is not None and state.get("ema") is not None:
            with torch.no_grad():
                torch._foreach_copy_(self._ema, state["ema"])
        self.train_seconds = state["train_seconds"]
        self.should_stop, self.stop_reason = state["should_stop"], state["stop_reason"]
        if self.run_dir is not None:  # drop records logged after this checkpoint was taken
            path = self.run_dir / "metrics.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in self.history.records),
                            encoding="utf-8")

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """Ctrl-C / SIGTERM set a flag; the loop saves a checkpoint after the current step."""

        def handler(signum: int, frame: Any) -> None:
            if self.interrupted:  # a second Ctrl-C aborts at once
                raise KeyboardInterrupt
            self.interrupted = True

        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
