"""Plain-text progress: one line every few seconds, for output that is not a terminal.

A Rich progress bar redraws one line in place, which only works on a terminal; piped into a file
(nohup, CI, a notebook cell) it is either silent or a mess. :class:`ProgressLines` writes plain,
complete lines instead::

    epoch 2/10  step 320/1700  loss 0.4123  dev accuracy 0.8012  elapsed 0:20  eta 1:26
    epoch 2/10  step 340/1700  validation: dev accuracy 0.8104 (best 0.8104, epoch 2)  elapsed 0:22  eta 1:25

one every ``every_seconds`` (from the last line written) and one after each validation. It reads
only the hooks' arguments and the trainer's public state (``step``, ``epoch``,
``steps_per_epoch``, ``config``, ``history``), so it works with any model the trainer runs.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ffnlp.errors import ConfigError
from ffnlp.training.callbacks import Callback, ProgressBar

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer

DEFAULT_SECONDS = 10.0  # often enough to see a run move, rare enough to keep a log readable
PROGRESS_SECONDS_VARIABLE = "FFNLP_PROGRESS_SECONDS"


def progress_seconds() -> float:
    """Seconds between plain progress lines: $FFNLP_PROGRESS_SECONDS, else 10."""
    raw = os.environ.get(PROGRESS_SECONDS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(
            f"{PROGRESS_SECONDS_VARIABLE} must be a positive number of seconds between progress "
            f"lines; got {raw!r}. Set it to e.g. 30, or unset it for the default "
            f"({DEFAULT_SECONDS:g})."
        )
    return seconds


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:05``, ``1:02:03``: minutes and seconds, hours when there are any."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLines(Callback):
    """Write a progress line every ``every_seconds`` and after every validation.

    ``stream``: where to write (default: ``sys.stderr`` at the time of writing); every line is
    flushed. ``clock``: seconds as a float (``time.monotonic``; tests pass a fake one).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        every_seconds: float = DEFAULT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not every_seconds > 0:
            raise ConfigError(
                f"The 'every_seconds' parameter of ProgressLines must be positive; got "
                f"{every_seconds!r} instead."
            )
        self.stream = stream
        self.every_seconds = every_seconds
        self.clock = clock
        self.loss: float | None = None
        self.dev = ""  # "dev accuracy 0.8012" after the first validation
        self._started = 0.0
        self._last_line = 0.0
        self._first_step = 0

    # ------------------------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        self._started = self._last_line = self.clock()
        self._first_step = trainer.step  # > 0 when resuming: the ETA counts this run's speed
        self.loss = None
        self.dev = ""
        for record in reversed(trainer.history.records):  # a resumed run shows its last figure
            if "dev" in record:
                self.dev = self._monitored(trainer, record["dev"])
                break

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        if loss is not None:
            self.loss = loss
        now = self.clock()
        if now - self._last_line < self.every_seconds:
            return
        fields = [f"loss {self.loss:.4f}"] if self.loss is not None else []  # until a logged step
        if self.dev:
            fields.append(self.dev)
        self._write(trainer, trainer.epoch + 1, fields, now)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.dev = self._monitored(trainer, metrics)
        last = trainer.history.last
        # an end-of-epoch validation comes after the epoch is counted; one every N steps, before
        epoch = int(last["epoch"]) if last and "epoch" in last else trainer.epoch + 1
        text = "validation: " + (self.dev or "done")
        history = trainer.history
        if history.best_value is not None and history.best_epoch is not None:
            text += f" (best {history.best_value:.4f}, epoch {history.best_epoch})"
        self._write(trainer, epoch, [text], self.clock())

    def on_fit_end(self, trainer: Trainer) -> None:
        self._write(trainer, trainer.epoch, ["finished"], self.clock(), eta=False)

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _monitored(trainer: Trainer, metrics: dict[str, Any]) -> str:
        """``dev accuracy 0.8012`` for train.monitor = "dev.accuracy" (else the dev loss)."""
        name = trainer.config.monitor.split(".", 1)[-1]
        for key in (name, "loss"):
            value = metrics.get(key)
            if isinstance(value, (int, float)):
                return f"dev {key} {value:.4f}"
        return ""

    def _total_steps(self, trainer: Trainer) -> int:
        total = trainer.steps_per_epoch * trainer.config.epochs
        max_steps = trainer.config.max_steps
        return min(total, max_steps) if max_steps else total

    def _write(
        self, trainer: Trainer, epoch: int, fields: list[str], now: float, eta: bool = True
    ) -> None:
        self._last_line = now
        total = self._total_steps(trainer)
        epochs = trainer.config.epochs
        elapsed = now - self._started
        parts = [
            f"epoch {min(max(epoch, 1), epochs)}/{epochs}",
            f"step {trainer.step}/{total}",
            *fields,
            f"elapsed {format_duration(elapsed)}",
        ]
        done = trainer.step - self._first_step
        if eta and done > 0 and elapsed > 0:
            remaining = max(total - trainer.step, 0) * elapsed / done
            parts.append(f"eta {format_duration(remaining)}")
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write("  ".join(parts) + "\n")
        stream.flush()


def progress_callbacks(quiet: bool, console: Any = None) -> list[Callback]:
    """How training shows progress on stderr, unless ``quiet``: a Rich progress bar (on
    ``console``) on a terminal; otherwise (a pipe, a file, CI, a notebook) a plain line every
    $FFNLP_PROGRESS_SECONDS seconds (default 10) and after every validation. Under torchrun the
    first rank alone shows it."""
    from ffnlp.runtime import is_main_process  # imports torch

    if quiet or not is_main_process():
        return []
    if sys.stderr.isatty():
        return [ProgressBar(console=console)]
    return [ProgressLines(every_seconds=progress_seconds())]
