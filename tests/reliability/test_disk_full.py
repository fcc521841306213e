"""A full disk at any point of a command: one ``Error:`` line naming the file (and the bytes needed
and free), nothing half-written left behind, the run that was there unchanged and its checkpoint
loadable.

Two ways to fill a disk: a small tmpfs (needs root to mount; skipped with the reason elsewhere),
and a fault injected into the one place every file write passes (``os.fsync`` of a regular file
raising ENOSPC at the N-th write), which runs everywhere."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ffnlp.errors import OutputError
from ffnlp.fileio import append_line, atomic_writer, write_atomic, write_atomic_with
from ffnlp.training.checkpoint import load_checkpoint, save_atomic
from tests.reliability.rundir_support import (
    TASKS,
    assert_same_weights,
    checksums,
    copy_run,
    error_line,
    invoke,
    listing,
    train_args,
)

FULL = "No space left on device"


def full_message(folder: Path) -> re.Pattern[str]:
    """The one line for a full disk while writing a file under ``folder``."""
    return re.compile(
        rf"Error: no space left on the device to write {re.escape(str(folder))}/\S+ "
        r"\((\d[\d,]* bytes needed, )?\d[\d,]* bytes free\); free some space or write somewhere "
        r"else\. Nothing was left half-written"
    )


# --------------------------------------------------------------------------------- a real tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (it needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but ``leave`` bytes; return the filler file (delete it to free the space)."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))
    return filler


@pytest.mark.parametrize("leave", [0, 16_000, 48_000, 80_000])
@pytest.mark.parametrize("task", TASKS)
def test_a_new_run_on_a_full_disk(task, leave, data, straight, small_disk) -> None:
    good = copy_run(straight(task), small_disk / "good")
    filler = fill(small_disk, leave)
    before = checksums(small_disk)
    result = invoke([*train_args(task, data), "--out", small_disk / "new"])
    assert result.exit_code == 1
    assert full_message(small_disk / "new").fullmatch(error_line(result)), result.stderr
    assert checksums(small_disk) == before  # nothing left, the other run as it was
    filler.unlink()
    assert_same_weights(good, straight(task))


@pytest.mark.parametrize("task", TASKS)
def test_force_on_a_full_disk_keeps_the_old_run(task, data, straight, small_disk) -> None:
    out = copy_run(straight(task), small_disk / "run")
    fill(small_disk, 30_000)
    before = checksums(small_disk)
    result = invoke([*train_args(task, data), "--out", out, "--force"])
    assert result.exit_code == 1
    assert full_message(out).fullmatch(error_line(result)), result.stderr
    assert checksums(small_disk) == before


@pytest.mark.parametrize("leave", [8_000, 64_000])
def test_resume_on_a_full_disk_then_with_space(
    leave, data, straight, small_disk, monkeypatch
) -> None:
    from tests.reliability.rundir_support import SignalAt, with_callbacks

    out = small_disk / "run"
    with_callbacks(monkeypatch, SignalAt(30, 2))
    assert invoke([*train_args("lm", data), "--out", out]).exit_code == 130
    with_callbacks(monkeypatch)
    filler = fill(small_disk, leave)
    before = checksums(small_disk)
    result = invoke([*train_args("lm", data), "--resume", out])
    assert result.exit_code == 1
    copying = re.compile(
        rf"Error: no space left on the device to copy {re.escape(str(out))} for --resume \(about "
        r"\d[\d,]* bytes needed, \d[\d,]* bytes free\); free some space\. Nothing was changed"
    )
    line = error_line(result)
    assert (copying if leave < 10_000 else full_message(out)).fullmatch(line), line
    assert checksums(small_disk) == before
    assert load_checkpoint(out)["step"] == 30  # the previous checkpoint loads
    filler.unlink()
    assert invoke([*train_args("lm", data), "--resume", out]).exit_code == 0
    assert_same_weights(out, straight("lm"))


def test_w2v_export_on_a_full_disk(straight, small_disk) -> None:
    (small_disk / "old.vec").write_text("2 1\na 1\nb 2\n", encoding="utf-8")
    fill(small_disk, 0)
    before = checksums(small_disk)
    result = invoke(["w2v", "export", straight("w2v"), "--output", small_disk / "old.vec"])
    assert result.exit_code == 1
    assert full_message(small_disk).fullmatch(error_line(result)), result.stderr
    assert checksums(small_disk) == before  # the old file whole, no .tmp beside it


def test_report_on_a_full_disk(straight, small_disk) -> None:
    run = copy_run(straight("classify"), small_disk / "run")
    (run / "report.html").write_text("<p>the old report</p>", encoding="utf-8")
    fill(small_disk, 0)
    before = checksums(small_disk)
    result = invoke(["report", run])
    assert result.exit_code == 1
    assert full_message(run).fullmatch(error_line(result)), result.stderr
    assert checksums(small_disk) == before


# ------------------------------------------------------------------- a fault at the N-th write


def fail_nth_write(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Make the ``n``-th fsync of a regular file (one per file written) fail with ENOSPC."""
    real = os.fsync
    seen: list[int] = []

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            seen.append(fd)
            if len(seen) == n:
                raise OSError(errno.ENOSPC, FULL)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


@pytest.mark.parametrize("nth", [1, 4, 7, 10])
@pytest.mark.parametrize("task", TASKS)
def test_a_full_disk_at_the_nth_write_of_a_run(task, nth, data, straight, tmp_path, monkeypatch):
    out = copy_run(straight(task), tmp_path / "run")
    before = checksums(tmp_path)
    fail_nth_write(monkeypatch, nth)
    result = invoke([*train_args(task, data), "--out", out, "--force"])
    assert result.exit_code == 1
    assert full_message(out).fullmatch(error_line(result)), result.stderr
    assert checksums(tmp_path) == before


def test_write_atomic_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old", encoding="utf-8")
    fail_nth_write(monkeypatch, 1)
    with pytest.raises(OutputError) as info:
        write_atomic(target, "x" * 5000)
    assert re.fullmatch(
        rf"no space left on the device to write {re.escape(str(target))} \(5,000 bytes needed, "
        r"\d[\d,]* bytes free\); free some space or write somewhere else\. Nothing was left "
        r"half-written",
        str(info.value),
    )
    assert target.read_text(encoding="utf-8") == "old" and listing(tmp_path) == ["summary.json"]


def test_a_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoint" / "state.pt"
    save_atomic({"step": 1, "w": torch.ones(3)}, path)
    fail_nth_write(monkeypatch, 1)
    with pytest.raises(OutputError, match="no space left on the device to write .*state.pt"):
        save_atomic({"step": 2, "w": torch.zeros(3)}, path)
    assert load_checkpoint(path)["step"] == 1 and listing(path.parent) == ["state.pt"]


def test_a_library_writer_on_a_full_disk(tmp_path) -> None:
    def save(name: str) -> None:  # as safetensors reports it
        Path(name).write_bytes(b"half")
        raise RuntimeError(
            f"Error while serializing: IoError(Os {{ code: 28, kind: StorageFull, "
            f'message: "{FULL}" }})'
        )

    with pytest.raises(OutputError, match=r"model.safetensors \(1,234 bytes needed"):
        write_atomic_with(tmp_path / "model.safetensors", save, needed=1234)
    assert listing(tmp_path) == []


def test_a_stream_on_a_full_disk(tmp_path) -> None:
    full = pytest.raises(OutputError, match="no space left on the device to write .*vectors.vec")
    with full, atomic_writer(tmp_path / "vectors.vec") as fh:
        fh.write(b"1 2\n")
        raise OSError(errno.ENOSPC, FULL)
    assert listing(tmp_path) == []


def test_a_log_line_on_a_full_disk_is_undone(tmp_path, monkeypatch) -> None:
    log = tmp_path / "metrics.jsonl"
    append_line(log, '{"step": 1}')
    real = os.write

    def write(fd: int, data: bytes) -> int:  # half the line fits, then the disk is full
        if len(data) > 4:
            return real(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, FULL)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OutputError, match="metrics.jsonl"):
        append_line(log, '{"step": 2, "loss": 0.5}')
    monkeypatch.undo()
    assert log.read_text(encoding="utf-8") == '{"step": 1}\n'


def test_a_memory_mapped_corpus_on_a_full_disk(data, small_disk, tmp_path) -> None:
    """Big corpora are memory-mapped into the run folder: a full disk must be an error there too,
    not SIGBUS (writing through a map to a full disk kills the process)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(data["lm_train"].read_text(encoding="utf-8") * 40, encoding="utf-8")
    fill(small_disk, 24_000)
    before = checksums(small_disk)
    args = [*train_args("lm", data), "--set", "data.memory_map_tokens=100"]
    args[args.index("--train") + 1] = str(corpus)
    result = invoke([*args, "--out", small_disk / "run"])
    assert result.exit_code == 1
    assert full_message(small_disk / "run").fullmatch(error_line(result)), result.stderr
    assert checksums(small_disk) == before
