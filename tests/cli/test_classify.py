"""The CLI, driven in-process with Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ffnlp import __version__
from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample
from tests.conftest import ROOT

runner = CliRunner()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(400, 80, 80))


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "clf"
    result = runner.invoke(
        app,
        [
            "classify",
            "train",
            "--train",
            str(sample["train"]),
            "--dev",
            str(sample["dev"]),
            "--test",
            str(sample["test"]),
            "--out",
            str(out),
            "--set",
            "train.epochs=4",
            "--set",
            "train.lr=0.05",
            "--seed",
            "3",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"ffnlp {__version__}"


def test_every_command_has_help_with_an_example() -> None:
    for cmd in (["classify", "train"], ["classify", "eval"], ["classify", "predict"], ["demo"]):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0, cmd
        assert "Example" in result.output, cmd


def test_help_texts_show_square_brackets_as_written() -> None:
    # help is Rich markup: unescaped, "pip install 'ffnlp[tensorboard]'" showed as 'ffnlp'
    for cmd, text in ((["classify", "train"], "ffnlp[tensorboard]"), (["tune"], "ffnlp[postgres]")):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0 and text in result.output, cmd


def test_train_writes_the_run_directory(trained) -> None:
    for name in (
        "config.toml",
        "vocab.json",
        "model.safetensors",
        "model.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoint/state.pt",
        "plots/loss.png",
    ):
        assert (trained / name).is_file(), name
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["task"] == "classify"
    assert {"accuracy", "macro_f1"} <= set(summary["test"]) and {"accuracy", "macro_f1"} <= set(
        summary["dev"]
    )
    assert summary["train_seconds"] > 0 and summary["epochs"] >= 1
    assert summary["test"]["accuracy"] > 0.7
    assert "seed = 3" in (trained / "config.toml").read_text()


def test_summary_omits_splits_not_given(sample, tmp_path) -> None:
    result = runner.invoke(
        app,
        [
            "classify",
            "train",
            "--train",
            str(sample["train"]),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "train.epochs=1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "test" not in summary and "dev" not in summary


def test_eval_json(trained, sample) -> None:
    result = runner.invoke(
        app, ["classify", "eval", str(trained), "--data", str(sample["test"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    summary = json.loads((trained / "summary.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert set(metrics["per_class"]) == {"0", "1"}


def test_predict_json_one_object_per_line(trained, tmp_path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_text("the plot is truly delightful .\nwhat a tedious film .\n")
    result = runner.invoke(
        app, ["classify", "predict", str(trained), "--input", str(inp), "--json", "--k", "2"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["1", "0"]
    assert all(0.5 < r["prob"] <= 1 and len(r["top"]) == 2 for r in rows)
    stdin = runner.invoke(
        app, ["classify", "predict", str(trained), "--json"], input="a boring film .\n"
    )
    assert json.loads(stdin.stdout)["label"] == "0"


def test_library_errors_are_one_line_and_exit_1(sample, tmp_path) -> None:
    result = runner.invoke(
        app,
        [
            "classify",
            "train",
            "--train",
            str(tmp_path / "missing.txt"),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "missing.txt" in result.stderr
    bad = runner.invoke(
        app, ["classify", "train", "--train", str(sample["train"]), "--set", "train.lrr=1"]
    )
    assert bad.exit_code == 1
    assert "Error: unknown key 'train.lrr' (--set); did you mean 'train.lr'?" in bad.stderr


def test_usage_errors_exit_2() -> None:
    result = runner.invoke(app, ["classify", "train", "--no-such-flag"])
    assert result.exit_code == 2
    assert runner.invoke(app, ["classify", "eval"]).exit_code == 2


def test_eval_on_a_directory_that_is_not_a_run(tmp_path, sample) -> None:
    result = runner.invoke(app, ["classify", "eval", str(tmp_path), "--data", str(sample["test"])])
    assert result.exit_code == 1
    assert "is not an ffnlp run directory: model.json is missing" in result.stderr


def test_preset_configs_are_valid() -> None:
    from ffnlp import config as C
    from ffnlp.tasks.classify import ClassifyConfig

    cfg = C.build(ClassifyConfig, C.load_toml(ROOT / "configs/sst2_logreg.toml"))
    assert cfg.model.type == "logreg"


def test_predict_into_a_pipe_closed_early_stops_quietly(trained, tmp_path) -> None:
    """``ffnlp classify predict RUN --input big.txt | head -1``: the reader goes away, the
    command stops without a message or traceback, exit code 141 (128 + SIGPIPE)."""
    import subprocess
    import sys

    lines = tmp_path / "many.txt"
    lines.write_text("a good film with a fine cast\n" * 200_000, encoding="utf-8")
    command = [sys.executable, "-m", "ffnlp", "classify", "predict", str(trained)]
    with subprocess.Popen(
        [*command, "--input", str(lines)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # as head does after its line
        errors = process.stderr.read().decode()
        code = process.wait(timeout=300)
    assert first.count(b"\t") == 2, first  # one answer came: label, probability, text
    assert code == 141 and errors == "", (code, errors)
