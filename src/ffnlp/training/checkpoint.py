"""Checkpoints: the trainer's resumable state, written atomically by a callback.

Atomic: written to a temporary file in the same folder, fsynced, then renamed; a process killed
at any moment leaves either the previous checkpoint or the new one, never a torn file
(``os.replace`` is atomic on POSIX and Windows). The state (:func:`trainer_state`): the model,
optimiser, schedule, history, random-number generators and position in the epoch, with the
callbacks' states beside them under their own keys ("ema", "best_state"); :func:`rewind_epoch`
puts the shuffling back where an epoch stopped.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ffnlp.errors import ModelFileError, TrainingError
from ffnlp.fileio import as_named, write_atomic
from ffnlp.folders.layout import CHECKPOINT, METRICS
from ffnlp.runtime import is_main_process
from ffnlp.training.callbacks import Callback
from ffnlp.training.distributed import epoch_seed, rank

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


def save_atomic(state: dict[str, Any], path: str | Path, within: str | Path | None = None) -> None:
    """Write ``state`` to ``path`` atomically (see :mod:`ffnlp.fileio`). It is serialised in
    memory first, so that a full disk is one clear error (with the bytes needed) and never a
    torn file or torch's own "unexpected pos" error."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getbuffer(), within=within)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise ModelFileError(
            f"no checkpoint at {as_named(path)}; --resume needs a run directory that was trained with "
            "train.checkpoint = true"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file
        if isinstance(exc, OSError) and exc.strerror:  # its text names the file: said once
            reason = f"[Errno {exc.errno}] {exc.strerror}"
        else:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"checkpoint {as_named(path)} cannot be read ({reason}); it may be corrupted"
        ) from None


def checkpoint_path(run_dir: Path | None) -> Path:
    if run_dir is None:
        raise TrainingError("checkpoints need a run directory (run_dir)")
    return run_dir / CHECKPOINT


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """Everything needed to continue ``trainer``'s fit exactly where it is."""
    state: dict[str, Any] = {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "history": trainer.history.state_dict(),
        "epoch": trainer.epoch,
        "step": trainer.step,
        "batch_in_epoch": trainer.batch_in_epoch,
        "epoch_rng": trainer.epoch_rng,
        "generator": trainer.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "loss_sum": trainer.loss_sum,
        "loss_count": trainer.loss_count,
        "monitored": trainer.monitored,
        "train_seconds": trainer.train_seconds,
        # an interrupted run stops only to be resumed
        "should_stop": trainer.should_stop and not trainer.interrupted,
        "stop_reason": trainer.stop_reason if not trainer.interrupted else "",
        # the keys of the configured callbacks' states, None when they are not installed (the
        # layout checkpoints have always had)
        "best_state": None,
        "ema": None,
    }
    for cb in trainer.callbacks:
        state.update(cb.state_dict())
    return state


def resume_trainer(trainer: Trainer) -> None:
    """Put ``trainer`` back where the checkpoint in its run directory left it; a checkpoint
    that lacks a part, or holds another model's tensors, is a ModelFileError naming it."""
    path = checkpoint_path(trainer.run_dir)
    state = load_checkpoint(path)
    try:
        restore_trainer(trainer, state)
    except KeyError as exc:
        raise ModelFileError(
            f"checkpoint {as_named(path)} is incomplete (no {exc}); it is damaged: start the run again "
            "without --resume"
        ) from None
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"checkpoint {as_named(path)} does not fit this run ({first}); it comes from another run or "
            "configuration: start the run again without --resume"
        ) from None


def restore_trainer(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put ``trainer`` back where :func:`trainer_state` found it; its run directory's
    metrics.jsonl loses the records logged after that point."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.history.load_state_dict(state["history"])
    trainer.epoch, trainer.step = state["epoch"], state["step"]
    trainer.batch_in_epoch = state["batch_in_epoch"]
    trainer.epoch_rng = state["epoch_rng"]
    trainer.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    trainer.loss_sum, trainer.loss_count = state["loss_sum"], state["loss_count"]
    trainer.monitored = list(state["monitored"])
    for cb in trainer.callbacks:
        cb.load_state_dict(state)
    trainer.train_seconds = state["train_seconds"]
    trainer.should_stop, trainer.stop_reason = state["should_stop"], state["stop_reason"]
    if trainer.run_dir is not None and is_main_process():
        write_atomic(
            trainer.run_dir / METRICS,
            "".join(json.dumps(r) + "\n" for r in trainer.history.records),
            within=trainer.run_dir,
        )


def rewind_epoch(trainer: Trainer) -> int:
    """Set the trainer's shuffling generator for the epoch it starts (or resumes) and return how
    many of the epoch's batches were already taken: 0 for a fresh epoch, whose generator state
    and loss sums are noted (a checkpoint taken mid-epoch holds them); more when resuming one, whose
    generator goes back to the epoch's start to draw the same order again. Sharded input: each
    rank's order of its own shards comes from (seed, epoch, rank), nothing to rewind."""
    if trainer.rank_batches is not None:
        trainer.generator.manual_seed(epoch_seed(trainer.config.seed, trainer.epoch, rank()))
    if trainer.batch_in_epoch == 0:
        trainer.epoch_rng = trainer.generator.get_state()
        trainer.loss_sum, trainer.loss_count = 0.0, 0
    elif trainer.rank_batches is None:
        trainer.generator.set_state(trainer.epoch_rng)
    return trainer.batch_in_epoch


class CheckpointWriter(Callback):
    """Writes the trainer's state to ``run_dir/checkpoint/state.pt`` at the end of every epoch
    (when ``every_epoch``: train.checkpoint) and at the end of an interrupted fit (Ctrl-C, SIGTERM:
    always), so that --resume continues from the step it stopped at. Only the main process
    writes, and only when the trainer has a run directory."""

    def __init__(self, every_epoch: bool):
        self.every_epoch = every_epoch

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.every_epoch:
            self.save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.interrupted:
            self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        if trainer.run_dir is not None and is_main_process():
            save_atomic(
                trainer_state(trainer), checkpoint_path(trainer.run_dir), within=trainer.run_dir
            )
