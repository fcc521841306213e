"""TensorBoard scalars, live, from the records the Trainer writes to metrics.jsonl.

``[train] tensorboard = "DIR"`` (or ``--tensorboard DIR`` on a train command) installs
:class:`TensorBoardLogger`, which writes each record as it is logged, at its optimiser step:

- a step record (every ``train.log_every`` steps): ``train/loss`` (that step's), ``train/lr``,
  ``train/grad_norm``;
- an epoch record: ``epoch/train_loss`` (the epoch's mean) and ``epoch/lr``;
- an evaluation (end of epoch, or every ``train.eval_every`` steps): ``dev/<metric>`` for every
  number the task's evaluation gives (``dev/loss``, ``dev/accuracy``, ``dev/perplexity``, ...).

``tensorboard --logdir DIR`` shows them while the run trains. A resumed run continues the same
curves: what an interrupted session logged after its last checkpoint is dropped (TensorBoard's
``purge_step``), as the resumed session trains those steps again. It needs the ``tensorboard``
package (``pip install 'ffnlp[tensorboard]'``); PyTorch's ``SummaryWriter`` writes the files.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp.errors import ConfigError
from ffnlp.outputs import check_output_dir
from ffnlp.runtime import is_main_process
from ffnlp.training.callbacks import Callback

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer

FLUSH_SECONDS = 10  # how stale the curves in a running TensorBoard may be


def check_tensorboard(log_dir: str | Path) -> None:
    """ConfigError naming the extra when the tensorboard package is not installed, or naming
    the option when ``log_dir`` cannot be a folder to write."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "train.tensorboard (--tensorboard) needs the tensorboard package: pip install "
            "'ffnlp[tensorboard]' (or pip install tensorboard), or leave train.tensorboard = ''"
        )
    check_output_dir(log_dir, "train.tensorboard (--tensorboard)")


def scalars(record: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """(tag, value) of every number of a metrics.jsonl record that TensorBoard shows."""
    event = record.get("event")
    if event in ("step", "epoch"):
        prefix, loss = ("train/", "loss") if event == "step" else ("epoch/", "train_loss")
        train = record.get("train") or {}
        figures: dict[str, Any] = {loss: train.get("loss"), "lr": record.get("lr")}
        if event == "step":
            figures["grad_norm"] = record.get("grad_norm")
        for name, value in figures.items():
            if _is_number(value):
                yield prefix + name, float(value)
    for name, value in (record.get("dev") or {}).items():
        if _is_number(value):
            yield f"dev/{name}", float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TensorBoardLogger(Callback):
    """Writes every record of the run's log as TensorBoard scalars into ``log_dir`` (the main
    process only, under torchrun)."""

    def __init__(self, log_dir: str | Path):
        check_tensorboard(log_dir)
        self.log_dir = Path(log_dir)
        self.writer: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if not is_main_process():
            return
        from torch.utils.tensorboard import SummaryWriter

        # resumed: the steps after the checkpoint are trained (and logged) again
        purge_step = trainer.step + 1 if trainer.step > 0 else None
        self.writer = SummaryWriter(
            log_dir=str(self.log_dir), purge_step=purge_step, flush_secs=FLUSH_SECONDS
        )

    def on_record(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for tag, value in scalars(record):
            self.writer.add_scalar(tag, value, global_step=record["step"])

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
