"""A run folder is a transaction: it appears complete or not at all, an existing run is never
changed by a command that did not mean to, one process writes a run at a time, and no write
follows a symbolic link. Every case checks the exit code, the one line the user reads and the
checksums of what was on disk before."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ffnlp.errors import ModelFileError, OutputError
from ffnlp.fileio import append_line, write_atomic
from ffnlp.folders.layout import MARKER
from ffnlp.folders.transaction import RunLock, RunTransaction
from tests.reliability.rundir_support import (
    TASKS,
    checksums,
    copy_run,
    error_line,
    invoke,
    listing,
    train_args,
)

EMPTY_MESSAGES = {
    "classify": "no examples found; is this the right file and --format (label-text)?",
    "lm": "no words found; a corpus has one sentence a line",
    "w2v": "the corpus holds no tokens",
}


def refused(out: Path) -> str:
    return (
        f"Error: {out} already holds a run; pass --resume {out} to continue it or --force to "
        "replace it"
    )


# ------------------------------------------------------------------------------ existing runs


@pytest.mark.parametrize("task", TASKS)
def test_an_existing_run_is_refused_and_left_unchanged(task, data, straight, tmp_path) -> None:
    out = copy_run(straight(task), tmp_path / "run")
    before = checksums(tmp_path)
    result = invoke([*train_args(task, data), "--out", out])
    assert result.exit_code == 1
    assert error_line(result) == refused(out)
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("task", TASKS)
def test_force_replaces_the_run_as_a_whole(task, data, straight, tmp_path) -> None:
    out = copy_run(straight(task), tmp_path / "run")
    (out / "plots" / "stale.png").write_bytes(b"an old plot")
    (out / "report.html").write_text("an old report", encoding="utf-8")
    result = invoke([*train_args(task, data), "--out", out, "--force"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert not (out / "plots" / "stale.png").exists() and not (out / "report.html").exists()
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["task"] == task
    assert listing(tmp_path) == ["run"]  # no hidden sibling, no lock file, no old copy


@pytest.mark.parametrize("task", TASKS)
def test_a_failed_training_leaves_an_existing_run_unchanged(task, data, straight, tmp_path) -> None:
    out = copy_run(straight(task), tmp_path / "run")
    before = checksums(tmp_path)
    result = invoke([*train_args(task, data, empty=True), "--out", out, "--force"])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {data['empty']}: {EMPTY_MESSAGES[task]}"
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("task", TASKS)
def test_a_failed_resume_leaves_the_run_unchanged(task, data, straight, tmp_path) -> None:
    out = copy_run(straight(task), tmp_path / "run")
    before = checksums(tmp_path)
    result = invoke([*train_args(task, data, empty=True), "--resume", out])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {data['empty']}: {EMPTY_MESSAGES[task]}"
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("task", TASKS)
def test_a_failed_training_into_a_new_path_leaves_nothing(task, data, tmp_path) -> None:
    (tmp_path / "keep.txt").write_text("untouched", encoding="utf-8")
    before = checksums(tmp_path)
    result = invoke([*train_args(task, data, empty=True), "--out", tmp_path / "new" / "deeper"])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {data['empty']}: {EMPTY_MESSAGES[task]}"
    assert checksums(tmp_path) == before  # not even the parent folders it made


@pytest.mark.parametrize("task", TASKS)
def test_a_new_run_appears_complete_under_its_name(task, data, tmp_path) -> None:
    result = invoke([*train_args(task, data), "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["run"]
    run = tmp_path / "run"
    assert {"config.toml", "model.json", "model.safetensors", "summary.json"} <= set(listing(run))
    assert not (run / MARKER).exists()


def test_an_empty_folder_is_not_a_run(data, tmp_path) -> None:
    (tmp_path / "run").mkdir()
    result = invoke([*train_args("classify", data), "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "summary.json").is_file() and listing(tmp_path) == ["run"]


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_of_other_files_is_never_replaced(force, data, tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work", encoding="utf-8")
    before = checksums(tmp_path)
    result = invoke(
        [*train_args("classify", data), "--out", tmp_path / "mine"] + (["--force"] if force else [])
    )
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {tmp_path / 'mine'} is a folder that holds other files, not an ffnlp run; "
        "choose a new or empty --out (--force replaces runs only)"
    )
    assert checksums(tmp_path) == before


def test_out_is_a_file(data, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("keep", encoding="utf-8")
    before = checksums(tmp_path)
    result = invoke([*train_args("lm", data), "--out", tmp_path / "notes.txt"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {tmp_path / 'notes.txt'} is a file, not a folder; choose another --out"
    )
    assert checksums(tmp_path) == before


def test_out_below_a_file(data, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("keep", encoding="utf-8")
    before = checksums(tmp_path)
    result = invoke([*train_args("w2v", data), "--out", tmp_path / "notes.txt" / "run"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: cannot make the run folder {tmp_path / 'notes.txt' / 'run'}: "
        f"{tmp_path / 'notes.txt'} is a file"
    )
    assert checksums(tmp_path) == before


def test_resume_and_force_together(data, straight, tmp_path) -> None:
    out = copy_run(straight("classify"), tmp_path / "run")
    before = checksums(tmp_path)
    result = invoke([*train_args("classify", data), "--resume", out, "--force"])
    assert result.exit_code == 1
    assert error_line(result) == (
        "Error: --resume and --force cannot be used together: --resume continues the run in the "
        "folder, --force replaces it with a new one"
    )
    assert checksums(tmp_path) == before


def test_resume_of_nothing(data, tmp_path) -> None:
    result = invoke([*train_args("lm", data), "--resume", tmp_path / "absent"])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot resume: {tmp_path / 'absent'} does not exist"
    assert listing(tmp_path) == []


def test_resume_of_a_folder_that_is_not_a_run(data, tmp_path) -> None:
    (tmp_path / "other").mkdir()
    result = invoke([*train_args("w2v", data), "--resume", tmp_path / "other"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: cannot resume: {tmp_path / 'other' / 'config.toml'} is missing (is "
        f"{tmp_path / 'other'} an ffnlp run folder?)"
    )
    assert listing(tmp_path) == ["other"]


def test_resume_of_a_complete_run_without_checkpoint(data, tmp_path) -> None:
    out = tmp_path / "run"
    args = [*train_args("classify", data), "--set", "train.checkpoint=false"]
    assert invoke([*args, "--out", out]).exit_code == 0
    before = checksums(tmp_path)
    result = invoke([*args, "--resume", out])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: no checkpoint at {out / 'checkpoint' / 'state.pt'}; --resume needs a run "
        "directory that was trained with train.checkpoint = true"
    )
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("task", TASKS)
def test_resuming_a_complete_run_changes_nothing_but_what_it_rewrites(
    task, data, straight, tmp_path
) -> None:
    out = copy_run(straight(task), tmp_path / "run")
    result = invoke([*train_args(task, data), "--resume", out])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["run"]
    assert (out / "config.toml").read_bytes() == (straight(task) / "config.toml").read_bytes()
    assert (out / "model.safetensors").read_bytes() == (
        straight(task) / "model.safetensors"
    ).read_bytes()


# ---------------------------------------------------------------------------- two processes


def lock_holder(out: Path) -> subprocess.Popen[str]:
    """Another process that holds ``out``'s lock until its stdin closes."""
    code = (
        "import sys; from pathlib import Path; from ffnlp.folders.transaction import RunLock\n"
        f"lock = RunLock(Path({str(out)!r})); lock.acquire()\n"
        "print('locked', flush=True); sys.stdin.read(); lock.release()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def busy(out: Path, pid: int) -> str:
    return (
        f"Error: {out} is being written by process {pid}; wait until it has finished (or stop it),"
        " or choose another --out"
    )


@pytest.mark.parametrize("task", TASKS)
def test_a_second_process_on_the_same_new_run_fails_at_once(task, data, tmp_path) -> None:
    out = tmp_path / "run"
    holder = lock_holder(out)
    try:
        before = checksums(tmp_path)
        result = invoke([*train_args(task, data), "--out", out])
        assert result.exit_code == 1
        assert error_line(result) == busy(out, holder.pid)
        assert checksums(tmp_path) == before
    finally:
        holder.communicate("")
    assert listing(tmp_path) == []  # the holder removed its lock file


@pytest.mark.parametrize("mode", ["--force", "--resume"])
def test_a_second_process_on_an_existing_run_fails_at_once(mode, data, straight, tmp_path) -> None:
    out = copy_run(straight("lm"), tmp_path / "run")
    holder = lock_holder(out)
    try:
        before = checksums(tmp_path)
        args = (
            [*train_args("lm", data), "--out", out, "--force"]
            if mode == "--force"
            else [*train_args("lm", data), "--resume", out]
        )
        result = invoke(args)
        assert result.exit_code == 1
        assert error_line(result) == busy(out, holder.pid)
        assert checksums(tmp_path) == before
    finally:
        holder.communicate("")


def test_the_lock_of_a_dead_process_does_not_block(data, tmp_path) -> None:
    out = tmp_path / "run"
    holder = lock_holder(out)
    holder.kill()  # dies holding the lock: the kernel releases it, its file stays
    holder.communicate()
    assert (tmp_path / ".run.lock").is_file()
    result = invoke([*train_args("classify", data), "--out", out])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["run"]


def test_the_lock_in_one_process(tmp_path) -> None:
    first = RunLock(tmp_path / "run")
    first.acquire()
    with pytest.raises(OutputError, match=f"is being written by process {os.getpid()}"):
        RunLock(tmp_path / "run").acquire()
    first.release()
    again = RunLock(tmp_path / "run")
    again.acquire()
    again.release()
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_two_trainings_at_once_on_one_out(data, tmp_path) -> None:
    """A real slow first run (a subprocess) and a second command on the same --out."""
    out = tmp_path / "run"
    args = [*train_args("lm", data), "--set", "train.epochs=400", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(
        [sys.executable, "-m", "ffnlp", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        lock = tmp_path / ".run.lock"
        for _ in range(600):
            if lock.is_file() and lock.read_text().strip():
                break
            first.poll()
            assert first.returncode is None
            import time

            time.sleep(0.1)
        result = invoke([*train_args("lm", data), "--out", out])
        assert result.exit_code == 1
        assert error_line(result) == busy(out, first.pid)
    finally:
        first.terminate()
        first.communicate()


# ---------------------------------------------------------------------------- symbolic links


@pytest.mark.parametrize("task", TASKS)
def test_a_symlinked_metrics_file_is_not_written_through(task, data, straight, tmp_path) -> None:
    out = copy_run(straight(task), tmp_path / "run")
    outside = tmp_path / "precious.txt"
    outside.write_text("not a log", encoding="utf-8")
    (out / "metrics.jsonl").unlink()
    (out / "metrics.jsonl").symlink_to(outside)
    before = checksums(tmp_path)
    result = invoke([*train_args(task, data), "--resume", out, "--set", "train.epochs=4"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {out / 'metrics.jsonl'} is a symbolic link; ffnlp does not write through links "
        "(it could overwrite a file elsewhere). Remove the link and try again"
    )
    assert checksums(tmp_path) == before


def test_a_symlinked_plots_folder_is_not_written_through(data, straight, tmp_path) -> None:
    out = copy_run(straight("classify"), tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "loss.png").write_bytes(b"someone else's picture")
    for p in (out / "plots").iterdir():
        p.unlink()
    (out / "plots").rmdir()
    (out / "plots").symlink_to(elsewhere)
    before = checksums(tmp_path)
    result = invoke([*train_args("classify", data), "--resume", out])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {out / 'plots'} is a symbolic link; ffnlp does not write through links inside a "
        "run folder (it could overwrite files elsewhere). Remove the link and try again"
    )
    assert checksums(tmp_path) == before


def test_a_symlinked_report_is_not_written_through(straight, tmp_path) -> None:
    out = copy_run(straight("classify"), tmp_path / "run")
    outside = tmp_path / "precious.html"
    outside.write_text("mine", encoding="utf-8")
    (out / "report.html").symlink_to(outside)
    before = checksums(tmp_path)
    result = invoke(["report", out])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {out / 'report.html'} is a symbolic link; ffnlp does not write through links "
        "(it could overwrite a file elsewhere). Remove the link and try again"
    )
    assert checksums(tmp_path) == before


def test_a_symlinked_out_is_refused(data, straight, tmp_path) -> None:
    real = copy_run(straight("w2v"), tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    before = checksums(tmp_path)
    result = invoke([*train_args("w2v", data), "--out", tmp_path / "link", "--force"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {tmp_path / 'link'} is a symbolic link; give the run folder's real path as --out"
    )
    assert checksums(tmp_path) == before


def test_append_line_refuses_a_link(tmp_path) -> None:
    (tmp_path / "target").write_text("x", encoding="utf-8")
    (tmp_path / "log").symlink_to(tmp_path / "target")
    with pytest.raises(OutputError, match="is a symbolic link"):
        append_line(tmp_path / "log", "{}")
    assert (tmp_path / "target").read_text(encoding="utf-8") == "x"


# --------------------------------------------------------------------------------- the files


@pytest.mark.parametrize("task", TASKS)
def test_every_file_of_a_run_has_the_umask_permissions(task, data, tmp_path) -> None:
    old = os.umask(0o027)
    try:
        result = invoke([*train_args(task, data), "--out", tmp_path / "run"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    modes = {
        str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
        for p in (tmp_path / "run").rglob("*")
        if p.is_file()
    }
    assert "run/model.safetensors" in modes and "run/checkpoint/state.pt" in modes
    assert set(modes.values()) == {0o640}, modes


def test_model_safetensors_is_0644_under_the_usual_umask(data, tmp_path) -> None:
    old = os.umask(0o022)
    try:
        assert invoke([*train_args("classify", data), "--out", tmp_path / "run"]).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run" / "model.safetensors").stat().st_mode) == 0o644


def test_write_atomic_replaces_whole_files_only(tmp_path) -> None:
    target = tmp_path / "f.json"
    write_atomic(target, "old")
    with pytest.raises(RuntimeError), pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(RuntimeError("power cut")))
        write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "old" and listing(tmp_path) == ["f.json"]
    with pytest.raises(OutputError, match=f"{tmp_path} is a folder; give the path of a file"):
        write_atomic(tmp_path, "x")


def test_loading_an_interrupted_run_says_how_to_continue(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / MARKER).write_text("{}", encoding="utf-8")
    result = invoke(["classify", "eval", tmp_path / "run", "--data", tmp_path / "x"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {tmp_path / 'run'} is an interrupted run that has no model yet; continue its "
        f"training with --resume {tmp_path / 'run'}"
    )


def test_a_transaction_outside_the_cli(tmp_path) -> None:
    """The Python side: open, abort (nothing left), open again, commit (in place)."""
    t = RunTransaction.open(tmp_path / "run", "lm", resume=False, force=False)
    assert t.work.name == f".run.tmp-{os.getpid()}" and t.work.is_dir()
    (t.work / "config.toml").write_text("", encoding="utf-8")
    t.abort()
    assert listing(tmp_path) == []
    t = RunTransaction.open(tmp_path / "run", "lm", resume=False, force=False)
    (t.work / "config.toml").write_text("", encoding="utf-8")
    assert t.commit() == tmp_path / "run" and listing(tmp_path) == ["run"]
    with pytest.raises(ModelFileError, match="cannot resume"):
        RunTransaction.open(tmp_path / "other", "lm", resume=True, force=False)


def test_under_torchrun_only_rank_0_writes_the_run(data, straight, tmp_path, monkeypatch) -> None:
    """The other ranks run the same recipe into a private copy, removed at the end, and take no
    lock (rank 0 holds it)."""
    import contextlib
    import tempfile

    from ffnlp import train_lm

    out = copy_run(straight("lm"), tmp_path / "run")
    monkeypatch.setenv("RANK", "1")
    # rank 1's run-folder part alone: no process group to start (a lone RANK is otherwise
    # refused as half a torchrun environment; tests/cli/test_torchrun.py runs real ranks)
    monkeypatch.setattr("ffnlp.training.distributed.session", contextlib.nullcontext)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    rank0 = RunLock(out)
    rank0.acquire()
    before = checksums(out)
    settings = [s for s in train_args("lm", data) if "=" in s]
    lm = train_lm(data["lm_train"], dev=data["lm_dev"], overrides=settings, out=out, resume=True)
    rank0.release()
    assert lm.run_dir == out and checksums(out) == before
    assert listing(tmp_path / "scratch") == []


def test_the_recipe_in_its_module_refuses_the_same(data, straight, tmp_path) -> None:
    """tasks.classify.train_classifier called from its module (not through the lazy public
    API): the same run, the same refusal of an existing run, and --force replacing it."""
    from ffnlp.tasks.classify import train_classifier

    out = copy_run(straight("classify"), tmp_path / "run")
    (out / "plots" / "stale.png").write_bytes(b"old")
    before = checksums(tmp_path)
    settings = [s for s in train_args("classify", data) if "=" in s]
    with pytest.raises(OutputError) as info:
        train_classifier(data["train"], dev=data["dev"], overrides=settings, out=out)
    assert str(info.value) == refused(out).removeprefix("Error: ")
    assert checksums(tmp_path) == before
    clf = train_classifier(data["train"], dev=data["dev"], overrides=settings, out=out, force=True)
    assert clf.run_dir == out and not (out / "plots" / "stale.png").exists()
