"""Ctrl-C, SIGTERM and SIGKILL at any step: the checkpoint is kept, the command exits at once
(130 / 143, one line saying how to continue, no evaluation), and ``--resume`` ends with the same
weights and log as a run that was never interrupted."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ffnlp.cli.main import resume_command
from ffnlp.errors import Interrupted
from ffnlp.folders.layout import MARKER
from ffnlp.training import read_metrics
from tests.reliability.rundir_support import (
    TASKS,
    SignalAt,
    checksums,
    copy_run,
    error_line,
    invoke,
    listing,
    train_args,
    with_callbacks,
)

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def steps_of(run: Path) -> tuple[int, int]:
    """(steps per epoch, total steps) of a complete run."""
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    return summary["steps"] // summary["epochs"], summary["steps"]


def random_step(run: Path, seed: str) -> tuple[int, int]:
    """A step to interrupt at (not the last one) and the epoch it belongs to."""
    per_epoch, total = steps_of(run)
    step = random.Random(seed).randint(1, total - 1)
    return step, (step - 1) // per_epoch + 1


def log_without_times(run: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")}
        for r in read_metrics(run / "metrics.jsonl")
    ]


def assert_same_run(a: Path, b: Path) -> None:
    """Same weights, same log (times aside), same figures, same test predictions."""
    from tests.reliability.rundir_support import assert_same_weights

    assert_same_weights(a, b)
    assert log_without_times(a) == log_without_times(b)
    sa = json.loads((a / "summary.json").read_text(encoding="utf-8"))
    sb = json.loads((b / "summary.json").read_text(encoding="utf-8"))
    for key in ("dev", "test", "epochs", "steps", "best_epoch"):
        assert sa.get(key) == sb.get(key), key
    predictions = a / "predictions.jsonl"
    assert predictions.is_file() == (sa["task"] == "classify")
    if predictions.is_file():
        assert predictions.read_bytes() == (b / "predictions.jsonl").read_bytes()


def interrupted_line(signum: int, step: int | None, epoch: int | None, run: Path, args) -> str:
    where = f" at step {step} (epoch {epoch})" if step is not None else ""
    again = shlex.join(["ffnlp", *map(str, args), "--resume", str(run)])
    return (
        f"Interrupted by {signal.Signals(signum).name}{where}; the run is saved in {run}. "
        f"Continue it with: {again}"
    )


# ------------------------------------------------------------------------ SIGINT and SIGTERM


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("task", TASKS)
def test_a_signal_at_a_random_step_then_resume_gives_the_same_run(
    task, signum, data, straight, tmp_path, monkeypatch
) -> None:
    reference = straight(task)
    step, epoch = random_step(reference, f"{task}-{signum}")
    out = tmp_path / "run"
    with_callbacks(monkeypatch, SignalAt(step, signum))
    started = time.perf_counter()
    result = invoke([*train_args(task, data), "--out", out])
    assert result.exit_code == EXIT[signum]
    assert error_line(result) == interrupted_line(signum, step, epoch, out, train_args(task, data))
    assert listing(tmp_path) == ["run"]
    assert (out / MARKER).is_file() and not (out / "summary.json").exists()
    assert json.loads((out / MARKER).read_text(encoding="utf-8"))["step"] == step
    assert not (out / "model.safetensors").exists()  # stopped before the model and evaluation
    assert time.perf_counter() - started < 60

    with_callbacks(monkeypatch)
    result = invoke([*train_args(task, data), "--resume", out])
    assert result.exit_code == 0, result.output
    assert not (out / MARKER).exists() and listing(tmp_path) == ["run"]
    assert_same_run(reference, out)


@pytest.mark.parametrize("task", TASKS)
def test_the_python_api_raises_interrupted(task, data, straight, tmp_path) -> None:
    from ffnlp import train_classifier, train_lm, train_word2vec

    step, epoch = random_step(straight(task), f"api-{task}")
    out = tmp_path / "run"
    cut = [SignalAt(step, signal.SIGTERM)]
    settings = [s for s in train_args(task, data) if "=" in s]
    with pytest.raises(Interrupted) as info:
        if task == "classify":
            train_classifier(
                data["train"], dev=data["dev"], overrides=settings, out=out, callbacks=cut
            )
        elif task == "lm":
            train_lm(
                data["lm_train"], dev=data["lm_dev"], overrides=settings, out=out, callbacks=cut
            )
        else:
            train_word2vec(data["lm_train"], overrides=settings, out=out, callbacks=cut)
    error = info.value
    assert (error.signal, error.run_dir, error.step, error.epoch) == (
        signal.SIGTERM,
        out,
        step,
        epoch,
    )
    assert str(error) == (
        f"Interrupted by SIGTERM at step {step} (epoch {epoch}); the run is saved in {out} and "
        f"continues with --resume {out}"
    )
    assert pickle.loads(pickle.dumps(error)).run_dir == out


@pytest.mark.parametrize("task", TASKS)
def test_an_interrupted_force_keeps_the_old_run_and_the_new_one(
    task, data, straight, tmp_path, monkeypatch
) -> None:
    reference = straight(task)
    out = copy_run(reference, tmp_path / "run")
    (out / "plots" / "old.png").write_bytes(b"the old run's")
    before = checksums(out)
    step, epoch = random_step(reference, f"force-{task}")
    with_callbacks(monkeypatch, SignalAt(step, signal.SIGINT))
    result = invoke([*train_args(task, data), "--out", out, "--force"])
    assert result.exit_code == 130
    kept = tmp_path / "run.interrupted"
    assert error_line(result) == interrupted_line(
        signal.SIGINT, step, epoch, kept, train_args(task, data)
    )
    assert checksums(out) == before and listing(tmp_path) == ["run", "run.interrupted"]
    with_callbacks(monkeypatch)
    result = invoke([*train_args(task, data), "--resume", kept])
    assert result.exit_code == 0, result.output
    assert_same_run(reference, kept)


def test_a_resumed_run_interrupted_again(data, straight, tmp_path, monkeypatch) -> None:
    reference = straight("lm")
    per_epoch, total = steps_of(reference)
    out = tmp_path / "run"
    args = train_args("lm", data)
    for step in (per_epoch // 2, per_epoch + 3, 2 * per_epoch):  # an epoch's end too
        with_callbacks(monkeypatch, SignalAt(step, signal.SIGTERM))
        result = invoke([*args, "--resume", out] if out.exists() else [*args, "--out", out])
        assert result.exit_code == 143
        epoch = (step - 1) // per_epoch + 1
        assert error_line(result) == interrupted_line(signal.SIGTERM, step, epoch, out, args)
        assert listing(tmp_path) == ["run"]
    with_callbacks(monkeypatch)
    assert invoke([*args, "--resume", out]).exit_code == 0
    assert_same_run(reference, out)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_reading_the_data_keeps_nothing(signum, data, tmp_path, monkeypatch) -> None:
    import ffnlp.tasks.lm.train as lm_train

    real = lm_train.build_vocab

    def build_vocab(*args, **kwargs):
        os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(lm_train, "build_vocab", build_vocab)
    result = invoke([*train_args("lm", data), "--out", tmp_path / "run"])
    assert result.exit_code == EXIT[signum]
    assert error_line(result) == (
        f"Interrupted by {signal.Signals(signum).name}; nothing resumable had been written yet, "
        "so nothing was kept."
    )
    assert listing(tmp_path) == []


def test_a_signal_during_the_final_evaluation_keeps_the_trained_run(
    data, straight, tmp_path, monkeypatch
) -> None:
    import ffnlp.tasks.run as run

    reference = straight("classify")
    real = run.finish_run

    def finish_run(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "finish_run", finish_run)
    monkeypatch.setattr("ffnlp.tasks.classify.train.finish_run", finish_run)
    out = tmp_path / "run"
    result = invoke([*train_args("classify", data), "--out", out])
    assert result.exit_code == 130
    assert error_line(result) == interrupted_line(
        signal.SIGINT, None, None, out, train_args("classify", data)
    )
    assert (out / MARKER).is_file() and not (out / "summary.json").exists()
    monkeypatch.undo()
    assert invoke([*train_args("classify", data), "--resume", out]).exit_code == 0
    assert_same_run(reference, out)


def test_the_resume_command_replaces_out_and_force() -> None:
    argv = ["classify", "train", "--train", "a b.txt", "--out", "runs/x", "--force", "-q"]
    assert resume_command(argv, "runs/x") == (
        "ffnlp classify train --train 'a b.txt' -q --resume runs/x"
    )
    assert resume_command(["lm", "train", "--out=r", "--resume", "r"], "r.interrupted") == (
        "ffnlp lm train --resume r.interrupted"
    )


def test_ctrl_c_in_another_command_is_exit_130(straight, tmp_path, monkeypatch) -> None:
    def load(run):
        raise KeyboardInterrupt

    monkeypatch.setattr("ffnlp.tasks.classify.load", load)
    result = invoke(["classify", "eval", straight("classify"), "--data", tmp_path / "x"])
    assert result.exit_code == 130
    assert error_line(result) == "Interrupted by SIGINT."


# -------------------------------------------------------------------- killed outright (SIGKILL)


def killed_child(task: str, data, out: Path, step: int) -> int:
    """Fork; the child trains into ``out`` and SIGKILLs itself after ``step``. Returns its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with pytest.MonkeyPatch.context() as mp:
                with_callbacks(mp, SignalAt(step, signal.SIGKILL))
                invoke([*train_args(task, data), "--out", out])
        finally:
            os._exit(3)  # not reached: SIGKILL first
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
            return pid
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the child did not die")


@pytest.mark.parametrize("task", TASKS)
def test_sigkill_at_a_random_step_then_resume_gives_the_same_run(
    task, data, straight, tmp_path
) -> None:
    reference = straight(task)
    per_epoch, total = steps_of(reference)
    step = random.Random(f"kill-{task}").randint(per_epoch + 1, total - 1)  # after a checkpoint
    out = tmp_path / "run"
    pid = killed_child(task, data, out, step)
    assert f".run.tmp-{pid}" in listing(tmp_path) and not out.exists()
    result = invoke([*train_args(task, data), "--resume", out])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["run"]
    assert_same_run(reference, out)


def test_sigkill_before_the_first_checkpoint_resumes_from_the_start(
    data, straight, tmp_path
) -> None:
    reference = straight("w2v")
    out = tmp_path / "run"
    killed_child("w2v", data, out, 2)
    result = invoke([*train_args("w2v", data), "--resume", out])
    assert result.exit_code == 0, result.output
    assert_same_run(reference, out)


def test_a_new_run_is_refused_where_a_killed_one_can_be_resumed(data, straight, tmp_path) -> None:
    per_epoch, _ = steps_of(straight("lm"))
    out = tmp_path / "run"
    pid = killed_child("lm", data, out, per_epoch + 2)
    before = checksums(tmp_path)
    # the dead process's lock file: the next process to hold the lock removes it
    del before[".run.lock"]
    result = invoke([*train_args("lm", data), "--out", out])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {out} holds an interrupted run (left in .run.tmp-{pid} by a process that was "
        f"killed); pass --resume {out} to continue it or --force to replace it"
    )
    assert checksums(tmp_path) == before
    result = invoke([*train_args("lm", data), "--out", out, "--force"])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["run"]


def test_what_a_killed_run_left_before_its_checkpoint_is_cleared(data, tmp_path) -> None:
    out = tmp_path / "run"
    killed_child("classify", data, out, 1)
    assert any(name.startswith(".run.tmp-") for name in listing(tmp_path))
    result = invoke([*train_args("classify", data), "--out", out])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["run"]


# --------------------------------------------------------- signals from outside (subprocesses)


def start_training(task: str, data, out: Path, epochs: int) -> subprocess.Popen[str]:
    args = [*train_args(task, data), "--set", f"train.epochs={epochs}", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "ffnlp", *args], env=env, stderr=subprocess.PIPE, text=True
    )


def wait_for_lines(folder: Path, lines: int, proc: subprocess.Popen[str]) -> None:
    """Until the run being written in ``folder`` has logged ``lines`` records."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for log in folder.glob(".run.tmp-*/metrics.jsonl"):
            with contextlib.suppress(OSError):
                if log.read_text(encoding="utf-8").count("\n") >= lines:
                    return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    raise AssertionError("training did not start")


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
@pytest.mark.parametrize("task", TASKS)
def test_a_signal_from_outside_then_resume(task, signum, data, tmp_path) -> None:
    """A real process, a real signal at a random moment of its training (while it writes its
    log and checkpoints), then --resume: the same run as one never stopped."""
    epochs = 12
    reference = tmp_path / "straight"
    result = invoke(
        [*train_args(task, data), "--set", f"train.epochs={epochs}", "--out", reference]
    )
    assert result.exit_code == 0, result.output
    lines = random.Random(f"outside-{task}-{signum}").randint(2, 12)
    out = tmp_path / "run"
    proc = start_training(task, data, out, epochs)
    wait_for_lines(tmp_path, lines, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:  # it had finished: nothing to resume
        return
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == EXIT[signum], stderr
        assert (
            stderr.strip()
            .splitlines()[-1]
            .startswith(f"Interrupted by {signal.Signals(signum).name} at step ")
        )
    result = invoke([*train_args(task, data), "--set", f"train.epochs={epochs}", "--resume", out])
    assert result.exit_code == 0, result.output
    assert_same_run(reference, out)


@pytest.mark.slow
def test_twenty_sigkills_at_random_moments_then_resume_give_the_same_run(data, tmp_path) -> None:
    """SIGKILL a real `classify train` at 20 random moments (any of them may fall while it
    writes its log, a checkpoint, the model files or the plots, or renames the run into place),
    resuming after each kill: every run that completes equals one that was never stopped."""
    args = [*train_args("classify", data), "--set", "train.epochs=30"]
    reference = tmp_path / "straight"
    assert invoke([*args, "--out", reference]).exit_code == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random("twenty-kills")
    out = tmp_path / "run"
    kills = completed = 0

    def started() -> bool:  # a run to resume: in place, or still in its hidden folder
        return out.exists() or bool(list(tmp_path.glob(".run.tmp-*")))

    while True:
        argv = [*args, "--resume" if started() else "--out", str(out)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "ffnlp", *argv], env=env, stderr=subprocess.PIPE, text=True
        )
        if kills < 20:
            try:
                proc.wait(timeout=rng.uniform(0.5, 5.0))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                kills += 1
                continue
        _, stderr = proc.communicate()
        assert proc.returncode == 0, stderr
        assert_same_run(reference, out)  # completed after however many kills
        completed += 1
        if kills == 20:
            break
        shutil.rmtree(out)
    assert completed >= 1
