"""The few exceptions ffnlp raises on purpose.

Every error a user can cause derives from :class:`FfnlpError`; the CLI turns any of them into one
line ``Error: ...`` and exit code 1, in one place (``ffnlp.cli.main``).
"""

from __future__ import annotations


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
