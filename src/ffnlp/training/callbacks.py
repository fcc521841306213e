"""Callback hooks: a few named no-ops that receive the trainer, plus a ready progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


class Callback:
    """Override any of these; each receives the trainer (and reads ``trainer.history``).

    ``on_record`` receives every record (step, epoch or evaluation) just before it is appended
    to the history and written to metrics.jsonl; a callback may add keys of its own to it.

    Besides the ``on_*`` events: ``evaluation_context`` wraps every evaluation on dev data, from
    before the model is evaluated to after the result is judged (best so far, schedule, early
    stopping), so that a callback can have other weights (a moving average) evaluated and judged; and
    ``state_dict`` / ``load_state_dict`` carry a callback's state through checkpoints (its keys
    sit beside the trainer's own, so they must not clash with them).
    """

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer) -> None: ...

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None: ...

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...

    def on_epoch_end(self, trainer: Trainer) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...

    def on_record(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def evaluation_context(self, trainer: Trainer) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ProgressBar(Callback):
    """A Rich progress bar: epoch, step, loss, monitored dev metric, ETA.

    The CLI adds it when stderr is a terminal and --quiet is not given; library code never draws.
    """

    def __init__(self, console: Any = None):
        self.console = console
        self.progress: Any = None
        self.task: Any = None
        self.loss: float | None = None
        self.dev: str = ""

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.loss, self.dev = None, ""  # the same bar may follow several runs (repeat, cv)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[dev]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        total = trainer.steps_per_epoch * trainer.config.epochs
        self.task = self.progress.add_task(
            "train",
            total=total,
            completed=trainer.step,
            epoch=trainer.epoch + 1,
            epochs=trainer.config.epochs,
            loss="-",
            dev="",
        )

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        if loss is not None:
            self.loss = loss
        self.progress.update(
            self.task,
            completed=trainer.step,
            epoch=min(trainer.epoch + 1, trainer.config.epochs),
            loss=f"{self.loss:.4f}" if self.loss is not None else "-",
            dev=self.dev,
        )

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        name = trainer.config.monitor.split(".", 1)[1]
        if name in metrics:
            self.dev = f"dev {name} {metrics[name]:.4f}"

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.progress is not None:
            self.progress.stop()


class StatusLine(Callback):
    """The training of one run as a single status line (``update``: e.g. a Rich status's), for
    a caller that runs many (a study's trials): the epoch, the step and the monitored dev metric.
    """

    def __init__(self, update: Callable[[str], Any]) -> None:
        self.update = update

    def on_fit_start(self, trainer: Trainer) -> None:
        self.update(f"training: epoch 1/{trainer.config.epochs}")

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        name = trainer.config.monitor.split(".", 1)[1]
        value = metrics.get(name)
        shown = f", dev {name} {value:.4f}" if isinstance(value, float) else ""
        self.update(
            f"training: epoch {min(trainer.epoch + 1, trainer.config.epochs)}/"
            f"{trainer.config.epochs}, step {trainer.step}{shown}"
        )
