"""Fixtures of the reliability tests: tiny data and, once per session, a complete run of each
task to compare with (helpers in rundir_support.py)."""

from __future__ import annotations

import signal
import subprocess
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


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    """A folder, a precious file, and a link to it (``target`` must never change)."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "target").write_text("precious\n")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    return {
        "root": tmp_path,
        "folder": tmp_path / "folder",
        "file": tmp_path / "target",
        "link": tmp_path / "link",
    }


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``mount("ro")`` or ``mount("full")``: a small tmpfs, read-only or filled to the last
    byte (mounting needs root: skipped with the reason elsewhere)."""
    mounted: list[Path] = []

    def make(kind: str) -> Path:
        disk = tmp_path / f"disk-{len(mounted)}"
        disk.mkdir()
        options = "ro,size=64k" if kind == "ro" else "size=1m"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (it needs root): {done.stderr.strip()}")
        mounted.append(disk)
        if kind == "full":
            from tests.reliability.test_disk_full import fill

            fill(disk, 0)
        return disk

    yield make
    for disk in mounted:
        subprocess.run(["umount", "-l", str(disk)], check=False)
