"""Real processes on one study: two workers in parallel, and a worker killed mid-trial."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.extras import needs
from tests.tune.conftest import SMALL_CLASSIFIER

optuna = needs("optuna")
optuna_trial = needs("optuna.trial")
TrialState = optuna_trial.TrialState


def command(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    args = ["tune", "classify", "--space", str(data["space"]), "--out", str(out)]
    args += ["--train", str(data["train"]), "--dev", str(data["dev"]), "--pruner", "none"]
    args += ["--trial-seeds", "1"]  # a trial is one run folder
    for item in SMALL_CLASSIFIER:
        args += ["--set", item]
    return [sys.executable, "-m", "ffnlp", *args, *extra]


def start(argv: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # see test_interrupt
    )


def trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    if not (out / "tune.json").is_file():
        return []
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    with contextlib.suppress(KeyError):  # the study is being created
        return optuna.load_study(study_name=meta["study_name"], storage=meta["storage"]).trials
    return []


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_two_workers_on_one_study_run_every_trial_once(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "shared"
    workers = [start(command(data, out, "--trials", "3", "--keep", "all")) for _ in range(2)]
    for proc in workers:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    done = trials(out)
    assert sorted(t.number for t in done) == list(range(6))
    assert {t.state for t in done} == {TrialState.COMPLETE}
    assert len({t.params["train.lr"] for t in done}) == 6  # each worker drew its own trials
    folders = sorted(p.name for p in (out / "trials").iterdir())
    assert folders == [f"{n:04d}" for n in range(6)]
    for n in folders:
        assert (out / "trials" / n / "summary.json").is_file()
    rows = (out / "trials.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 7


def wait_for_a_running_trial(out: Path, proc: subprocess.Popen[str]) -> int:
    """Until a trial has completed and the next one is training; its number."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        with contextlib.suppress(Exception):  # the database may be busy: ask again
            known = trials(out)
            running = [t for t in known if t.state == TrialState.RUNNING]
            if running and any(t.state == TrialState.COMPLETE for t in known):
                number = running[0].number
                if list((out / "trials").glob(f".{number:04d}.tmp-*/metrics.jsonl")):
                    return number
        time.sleep(0.05)
    raise AssertionError("no trial started")


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_a_killed_worker_loses_its_trial_and_nothing_else(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    slow = ["--set", "train.epochs=40", "--set", "train.early_stopping=false"]
    argv = command(data, out, *slow, "--heartbeat", "1", "--keep", "all")
    proc = start([*argv, "--trials", "50"])
    killed = wait_for_a_running_trial(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = {t.number: t for t in trials(out) if t.state == TrialState.COMPLETE}
    assert before and trials(out)[killed].state == TrialState.RUNNING
    time.sleep(2.5)  # the dead worker's heartbeat is now older than the grace period (2 s)
    rerun = start([*argv, "--trials", "1"])
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    after = {t.number: t for t in trials(out)}
    assert after[killed].state == TrialState.FAIL
    for number, trial in before.items():  # the finished trials, their values and folders
        assert after[number].state == TrialState.COMPLETE
        assert after[number].value == trial.value
        assert (out / "trials" / f"{number:04d}" / "summary.json").is_file()
    assert after[max(after)].state == TrialState.COMPLETE and max(after) > killed
    leftovers = [p.name for p in (out / "trials").iterdir() if p.name.startswith(f".{killed:04d}")]
    assert leftovers == [] and not (out / "trials" / f"{killed:04d}").exists()
    assert f"\n{killed},FAIL," in (out / "trials.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_an_interrupted_study_says_how_to_continue(data: dict[str, Path], tmp_path: Path) -> None:
    """Ctrl-C during a trial: exit 130, the study keeps its finished trials; the same command
    continues it (the interrupted trial failed, its folder gone)."""
    out = tmp_path / "interrupted"
    slow = ["--set", "train.epochs=40", "--set", "train.early_stopping=false"]
    argv = [*command(data, out, *slow, "--keep", "all"), "--trials", "50"]
    proc = start(argv)
    stopped = wait_for_a_running_trial(out, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"Interrupted by SIGINT: the study in {out} keeps every finished trial; run the same "
        "command again to continue it."
    )
    assert trials(out)[stopped].state == TrialState.FAIL
    assert not (out / "trials" / f"{stopped:04d}").exists()
    assert not list((out / "trials").glob(f".{stopped:04d}*"))
