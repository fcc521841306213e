"""Plain progress lines (ProgressLines) and how the CLI chooses them when stderr is not a terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.tasks.sample import write_sample
from ffnlp.training.callbacks import ProgressBar, StatusLine
from ffnlp.training.history import History
from ffnlp.training.progress import ProgressLines, format_duration, progress_callbacks
from tests.conftest import ROOT

runner = CliRunner()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_trainer(**config) -> SimpleNamespace:
    settings = {"epochs": 2, "monitor": "dev.accuracy", "max_steps": 0, **config}
    return SimpleNamespace(
        step=0, epoch=0, steps_per_epoch=50, config=SimpleNamespace(**settings), history=History()
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(200, 40, 40))


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 7.4, 65, 3723, -1)] == [
        "0:00",
        "0:07",
        "1:05",
        "1:02:03",
        "0:00",
    ]


def test_a_line_every_n_seconds_and_one_per_validation() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = ProgressLines(stream=stream, every_seconds=10, clock=clock)
    trainer = fake_trainer()
    progress.on_fit_start(trainer)
    for _ in range(50):  # epoch 1: 50 steps of 0.5 s; the loss is reported every 10th step
        trainer.step += 1
        clock.now += 0.5
        progress.on_batch_end(
            trainer, 0.7 - trainer.step / 1000 if trainer.step % 10 == 0 else None
        )
    trainer.epoch = 1
    trainer.history.append({"event": "epoch", "epoch": 1, "step": 50, "dev": {"accuracy": 0.8125}})
    trainer.history.best_value, trainer.history.best_epoch = 0.8125, 1
    clock.now += 2  # the evaluation
    progress.on_validation_end(trainer, {"accuracy": 0.8125, "loss": 0.5})
    for _ in range(25):
        trainer.step += 1
        clock.now += 0.5
        progress.on_batch_end(trainer, None)
    clock.now += 1
    progress.on_fit_end(trainer)
    assert stream.getvalue().splitlines() == [
        "epoch 1/2  step 20/100  loss 0.6800  elapsed 0:10  eta 0:40",
        "epoch 1/2  step 40/100  loss 0.6600  elapsed 0:20  eta 0:30",
        "epoch 1/2  step 50/100  validation: dev accuracy 0.8125 (best 0.8125, epoch 1)  "
        "elapsed 0:27  eta 0:27",
        "epoch 2/2  step 70/100  loss 0.6500  dev accuracy 0.8125  elapsed 0:37  eta 0:16",
        "epoch 1/2  step 75/100  finished  elapsed 0:40",
    ]


def test_eta_counts_only_this_runs_steps_and_respects_max_steps() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = ProgressLines(stream=stream, every_seconds=5, clock=clock)
    trainer = fake_trainer(epochs=10, max_steps=200)
    trainer.step, trainer.epoch = 100, 2  # resumed: 100 steps were taken by an earlier process
    trainer.history.append({"event": "epoch", "epoch": 2, "step": 100, "dev": {"accuracy": 0.5}})
    progress.on_fit_start(trainer)
    trainer.step += 10
    clock.now += 5
    progress.on_batch_end(trainer, 0.25)
    assert stream.getvalue() == (
        "epoch 3/10  step 110/200  loss 0.2500  dev accuracy 0.5000  elapsed 0:05  eta 0:45\n"
    )


def test_a_validation_every_n_steps_is_shown_in_the_running_epoch() -> None:
    stream = io.StringIO()
    progress = ProgressLines(stream=stream, clock=FakeClock())
    trainer = fake_trainer(monitor="dev.perplexity")
    progress.on_fit_start(trainer)
    trainer.step = 30
    trainer.history.append({"event": "eval", "epoch": 1, "step": 30, "dev": {"perplexity": 250.0}})
    progress.on_validation_end(trainer, {"perplexity": 250.0})
    assert stream.getvalue().startswith(
        "epoch 1/2  step 30/100  validation: dev perplexity 250.0000"
    )


def test_progress_is_a_bar_on_a_terminal_lines_elsewhere_none_when_quiet(monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert [type(c) for c in progress_callbacks(False)] == [ProgressBar]
    assert progress_callbacks(True) == []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert [type(c) for c in progress_callbacks(False)] == [ProgressLines]


def test_a_status_line_follows_the_epochs_and_the_dev_metric() -> None:
    shown: list[str] = []
    status = StatusLine(shown.append)
    trainer = fake_trainer(epochs=3)
    status.on_fit_start(trainer)
    trainer.epoch, trainer.step = 1, 120
    status.on_validation_end(trainer, {"accuracy": 0.81234, "loss": 0.4})
    status.on_validation_end(trainer, {"loss": 0.4})  # no monitored figure: no dev part
    assert shown == [
        "training: epoch 1/3",
        "training: epoch 2/3, step 120, dev accuracy 0.8123",
        "training: epoch 2/3, step 120",
    ]


def test_every_seconds_must_be_positive() -> None:
    with pytest.raises(
        ConfigError, match="'every_seconds' parameter of ProgressLines must be positive"
    ):
        ProgressLines(every_seconds=0)


def test_piped_classify_train_prints_progress_lines(sample, tmp_path) -> None:
    # CliRunner's stderr is not a terminal, as with nohup, CI or a notebook
    data = ["--train", str(sample["train"]), "--dev", str(sample["dev"])]
    settings = ["--set", "train.epochs=2", "--set", "train.log_every=1"]
    args = ["classify", "train", *data, *settings, "--out"]
    result = runner.invoke(
        app, [*args, str(tmp_path / "a")], env={"FFNLP_PROGRESS_SECONDS": "0.001"}
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("epoch 2/2  step ") and "finished" in lines[-1]
    validations = [line for line in lines if "validation: dev accuracy 0." in line]
    assert [line[:9] for line in validations] == ["epoch 1/2", "epoch 2/2"]
    assert any(" loss 0." in line and " eta " in line for line in lines)  # the periodic lines
    quiet = runner.invoke(app, [*args, str(tmp_path / "b"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_a_bad_progress_interval_is_reported(sample, tmp_path) -> None:
    result = runner.invoke(
        app,
        ["classify", "train", "--train", str(sample["train"]), "--out", str(tmp_path)],
        env={"FFNLP_PROGRESS_SECONDS": "soon"},
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: FFNLP_PROGRESS_SECONDS must be a positive number of seconds between progress "
        "lines; got 'soon'. Set it to e.g. 30, or unset it for the default (10).\n"
    )


def test_piped_repeat_and_cv_print_a_line_per_run_and_progress(sample, tmp_path) -> None:
    data = ["--train", str(sample["train"]), "--dev", str(sample["dev"])]
    epoch = ["--set", "train.epochs=1"]
    result = runner.invoke(
        app, ["repeat", "classify", "--seeds", "2", *data, *epoch, "--out", str(tmp_path / "rep")]
    )
    assert result.exit_code == 0, result.output
    assert [line[:16] for line in result.stdout.splitlines() if line.startswith("seed")] == [
        "seed 0 (run 1/2)",
        "seed 1 (run 2/2)",
    ]
    assert result.stderr.count("finished") == 2
    cv = ["classify", "cv", "--data", str(sample["train"]), "--folds", "2", *epoch, "--out"]
    result = runner.invoke(app, [*cv, str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    assert [line[:9] for line in result.stdout.splitlines() if line.startswith("fold")] == [
        "fold 1/2:",
        "fold 2/2:",
    ]
    assert result.stderr.count("validation: dev accuracy") == 2
    quiet = runner.invoke(app, [*cv, str(tmp_path / "cv2"), "--json"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["folds"] == 2


def test_the_cli_and_every_help_page_import_no_torch() -> None:
    """`ffnlp --help` must stay fast: torch, numpy and matplotlib load only when a command runs."""
    script = (
        "import sys\n"
        "import typer\n"
        "from ffnlp.cli.main import app\n"
        "heavy = lambda: sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules)\n"
        "print('imported', heavy(), file=sys.stderr)\n"
        "group = typer.main.get_command(app)\n"
        "paths = [[]] + [[name] for name in group.commands]\n"
        "paths += [[name, sub] for name, cmd in group.commands.items()\n"
        "          for sub in getattr(cmd, 'commands', {})]\n"
        "for path in paths:\n"
        "    try:\n"
        "        group.main([*path, '--help'], prog_name='ffnlp', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('help', len(paths), heavy(), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, last = result.stderr.strip().splitlines()[-2:]
    assert first == "imported []", "importing ffnlp.cli.main " + first
    _, count, after_help = last.split(" ", 2)
    assert int(count) > 20 and after_help == "[]", "printing help imported " + after_help
    assert "Usage: ffnlp classify train" in result.stdout
