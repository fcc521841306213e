"""Fixtures of the reliability tests: tiny data and, once per session, a complete run of each
task to compare with (helpers in rundir_support.py)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.rundir_support import invoke, train_args, with_callbacks, write_data


@pytest.fixture(autouse=True)
def _sigint_raises() -> Iterator[None]:
    """A shell that starts a job in the background starts it with SIGINT ignored (and ffnlp
    rightly leaves an ignored signal alone); these tests send SIGINT on purpose."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def straight(
    data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """``straight(task)``: a complete, uninterrupted run of ``task`` (made once, then shared:
    copy it before changing it)."""
    runs: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("straight")

    def get(task: str) -> Path:
        if task not in runs:
            with pytest.MonkeyPatch.context() as mp:  # whatever callbacks the test installed
                with_callbacks(mp)
                result = invoke([*train_args(task, data), "--out", root / task])
            assert result.exit_code == 0, result.output
            runs[task] = root / task
        return runs[task]

    return get
