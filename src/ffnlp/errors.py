"""The few exceptions ffnlp raises on purpose.

Every error a user can cause derives from :class:`FfnlpError`; the CLI turns any of them into one
line ``Error: ...`` and exit code 1, in one place (``ffnlp.cli.main``).
"""

from __future__ import annotations

import signal as _signal
from pathlib import Path

MAX_QUOTED = 80
"""Characters of a value (a line of a file, an argument) an error message quotes at most: a
longer one is cut, with its length said, so that an error about a 300 MB line is one line."""


def shown(value: object, limit: int = MAX_QUOTED) -> str:
    """``repr(value)``, cut to about ``limit`` characters with the full length said: what every
    error message that quotes a user's value or a file's text uses. Only the start of a long
    string or list is rendered (a 300 MB line costs nothing more to quote)."""
    if isinstance(value, (str, bytes, bytearray)) and len(value) > limit:
        head = repr(value[:limit])
        return f"{head[: limit + 2]}... ({len(value):,} {_unit(value)} in all)"
    if isinstance(value, (list, tuple)) and len(value) > limit // 4:
        head = repr(type(value)(value[: limit // 4]))
        return f"{head[:limit]}... ({len(value):,} items in all)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def cut(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` as it is (no quotes) when short; else its first ``limit`` characters and its
    length: for a name or key a message shows bare."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters in all)"


MAX_MESSAGE_LINE = 2000  # characters of one line of an error message as the CLI prints it
MAX_MESSAGE_LINES = 60  # lines of an error message as the CLI prints it


def bounded_message(message: str) -> str:
    """``message`` as the CLI prints it: each line cut to :data:`MAX_MESSAGE_LINE` characters,
    at most :data:`MAX_MESSAGE_LINES` lines (the cut said). A backstop for text that reached a
    message without :func:`shown` (a message from a library that quotes its input)."""
    lines = message[: MAX_MESSAGE_LINE * (MAX_MESSAGE_LINES + 1)].split("\n")
    total = message.count("\n") + 1
    out = [
        line if len(line) <= MAX_MESSAGE_LINE else line[:MAX_MESSAGE_LINE] + "... (cut)"
        for line in lines[:MAX_MESSAGE_LINES]
    ]
    if total > MAX_MESSAGE_LINES:
        out.append(f"... ({total - MAX_MESSAGE_LINES:,} more lines)")
    elif len(message) > MAX_MESSAGE_LINE * (MAX_MESSAGE_LINES + 1) and not out[-1].endswith(")"):
        out[-1] += "... (cut)"
    return "\n".join(out)


def _unit(value: object) -> str:
    return "characters" if isinstance(value, str) else "bytes"


class FfnlpError(Exception):
    """Base class: a problem the user can fix (bad input, bad option, missing file)."""


class ConfigError(FfnlpError):
    """An unknown key, a value of the wrong type or outside its range, in a config or --set.

    ``problems`` lists each problem on its own (one entry when there was only one), so that a
    caller can report them together with problems found elsewhere (e.g. a missing data file).
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems is not None else [message]


class DataError(FfnlpError):
    """A data file that cannot be read as asked: encoding, format, malformed line, empty."""


class NotFittedError(FfnlpError):
    """A model used before it was trained or loaded."""


class ModelFileError(FfnlpError):
    """A run directory or model file that is missing, incomplete or corrupted."""


class TrainingError(FfnlpError):
    """Training cannot go on: a non-finite loss, an interrupted run that cannot resume."""


class ExpressionError(FfnlpError):
    """An expression (``ffnlp explain graph``) that cannot be read or evaluated, or a missing or
    malformed ``name=value``; ``column`` (1-based) says where in the expression, when known."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message)
        self.column = column


class OutputError(FfnlpError):
    """Output that cannot be written as asked: an existing run in the way, another process writing
    the same run, a symbolic link where a file of the run should be, a full disk."""


class Interrupted(FfnlpError):
    """A training run stopped by Ctrl-C (SIGINT) or SIGTERM.

    ``run_dir`` is where the partial run now is (its checkpoint continues with ``--resume
    run_dir``), None when nothing resumable had been written yet; ``signal`` the signal's number
    (the CLI exits with 128 + signal: 130 for SIGINT, 143 for SIGTERM); ``step`` and ``epoch``
    where training stopped, when it had started.
    """

    def __init__(
        self,
        signal: int,
        run_dir: str | Path | None = None,
        step: int | None = None,
        epoch: int | None = None,
    ):
        self.signal = signal
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.step = step
        self.epoch = epoch
        super().__init__(self.headline + "; " + self.outcome)

    def __reduce__(self) -> tuple[type[Interrupted], tuple[object, ...]]:
        """Pickled (e.g. across processes) as its constructor's arguments."""
        return type(self), (self.signal, self.run_dir, self.step, self.epoch)

    @property
    def headline(self) -> str:
        """What happened, e.g. "Interrupted by SIGINT at step 37 (epoch 2)"."""
        try:
            name = _signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        where = f" at step {self.step} (epoch {self.epoch})" if self.step is not None else ""
        return f"Interrupted by {name}{where}"

    @property
    def outcome(self) -> str:
        """What was kept, and how to continue."""
        if self.run_dir is None:
            return "nothing resumable had been written yet, so nothing was kept"
        return f"the run is saved in {self.run_dir} and continues with --resume {self.run_dir}"

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 128 + the signal's number, as shells report a process a signal
        ended."""
        return 128 + self.signal


class RankLost(Interrupted):
    """A run of several processes (torchrun) stopped because another of its processes stopped
    (killed, its machine lost) or did not answer within the collectives' timeout.

    As after Ctrl-C, the main process (rank 0) keeps the run resumable at the last step every
    rank completed: ``run_dir`` is where, None when nothing resumable had been written (this
    process is not rank 0, or no checkpoint yet). The CLI exits with 1.
    """

    def __init__(
        self,
        reason: str,
        run_dir: str | Path | None = None,
        step: int | None = None,
        epoch: int | None = None,
    ):
        self.reason = reason
        super().__init__(int(_signal.SIGTERM), run_dir, step, epoch)

    def __reduce__(self) -> tuple[type[Interrupted], tuple[object, ...]]:
        return type(self), (self.reason, self.run_dir, self.step, self.epoch)

    @property
    def headline(self) -> str:
        where = f" at step {self.step} (epoch {self.epoch})" if self.step is not None else ""
        return f"Training stopped{where}: {self.reason}"

    @property
    def outcome(self) -> str:
        if self.run_dir is None:
            return (
                "this process keeps nothing (rank 0 keeps the run's checkpoint); start every "
                "process again with --resume RUN_DIR"
            )
        return super().outcome

    @property
    def exit_code(self) -> int:
        return 1
