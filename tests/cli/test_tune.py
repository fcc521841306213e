"""`ffnlp tune` on the command line: its errors, its output (lines, table, --json, --quiet)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from tests.extras import needs
from tests.tune.conftest import SMALL_CLASSIFIER, write_data

needs("optuna")  # every command here reaches the search (it refuses to start without Optuna)

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_data(tmp_path_factory.mktemp("tune_cli"))


def classify_args(data: dict[str, Path], out: Path) -> list[str]:
    args = ["tune", "classify", "--space", str(data["space"]), "--out", str(out)]
    args += ["--train", str(data["train"]), "--dev", str(data["dev"])]
    for item in SMALL_CLASSIFIER:
        args += ["--set", item]
    return args


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_a_study_prints_a_line_per_trial_then_the_top_trials(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "study"
    result = runner.invoke(app, [*classify_args(data, out), "--trials", "2"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("trial")]
    assert [line.split()[:2] for line in lines] == [["trial", "0"], ["trial", "1"]]
    assert result.stderr.startswith("each trial trains 3 seeds (auto: 3 for classify without --cv")
    assert "best " in lines[0] and "lr=" in lines[0] and "hidden=" in lines[0]
    assert result.stdout.startswith(f"2 trials in {out.resolve()} (2 complete)")
    assert "top trials by dev.accuracy (maximize)" in result.stdout
    assert "best: trial " in result.stdout
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    assert meta["command"][:3] == ["ffnlp", "tune", "classify"]
    # --json: one object; --quiet: nothing
    again = runner.invoke(app, [*classify_args(data, out), "--trials", "1", "--json"])
    assert again.exit_code == 0, again.output
    outcome = json.loads(again.stdout)
    assert outcome["trials"] == 3 and outcome["best"]["run_dir"].startswith("trials/")
    assert again.stderr == ""
    quiet = runner.invoke(app, [*classify_args(data, out), "--trials", "0", "--quiet"])
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--cv", "3"],
            "--cv K scores each trial on K folds of --train (each fold is the dev data once); "
            "leave out --dev, or leave out --cv to score on --dev",
        ),
        (
            ["--metric", "test.accuracy"],
            "--metric must be a dev metric of summary.json, like dev.accuracy or dev.macro_f1 (the "
            "search never looks at the test data); got 'test.accuracy'",
        ),
        (["--keep", "some"], "--keep must be one of all, best, summaries; got 'some'"),
        (["--trial-seeds", "0"], "--trial-seeds must be auto or a whole number of at least 1"),
        (["--set", "train.lr=0.1"], "--set train.lr fixes a parameter that the space "),
        (["--corpus", "x.txt"], "--corpus is not an option of ffnlp tune classify"),
    ],
)
def test_option_errors_are_one_line(
    data: dict[str, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    result = runner.invoke(app, [*classify_args(data, tmp_path / "s"), *extra])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {message}")
    assert not (tmp_path / "s").exists()  # nothing written


def test_trial_seeds_is_auto_or_a_number(data: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, [*classify_args(data, tmp_path / "s"), "--trial-seeds", "many"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # the error's box, unwrapped
    assert "--trial-seeds" in text and "auto or a whole number of at least 1; got 'many'" in text
    result = runner.invoke(app, [*classify_args(data, tmp_path / "r"), "--rescore", "few"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert "--rescore" in text and "auto or a whole number of at least 0; got 'few'" in text


def test_missing_data_options(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", "classify", "--out", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 2 problems in the options of ffnlp tune:\n"
        "  - ffnlp tune classify needs --train\n"
        "  - ffnlp tune classify scores each trial on dev data: pass --dev (or --cv K: "
        "cross-validation of --train); the test data (--test) is never used to choose\n"
    )
    w2v = runner.invoke(app, ["tune", "w2v", "--corpus", "c.txt", "--out", str(tmp_path / "w")])
    assert w2v.exit_code == 1
    assert "ffnlp tune w2v scores each trial by the Spearman correlation" in w2v.stderr
    assert "pass --similarity FILE" in w2v.stderr


def test_an_unknown_task_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", "clasify", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "choose one of classify, lm, w2v; got 'clasify'" in result.output


def test_a_bad_space_is_reported_before_any_trial(data: dict[str, Path], tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text('["train.lrr"]\ntype = "float"\nlow = 1e-4\nhigh = 0.1\n', encoding="utf-8")
    args = classify_args(data, tmp_path / "s")
    args[args.index("--space") + 1] = str(space)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {space} ['train.lrr']: unknown key 'train.lrr'; did you mean 'train.lr'?"
    )
    assert not (tmp_path / "s").exists()


def test_without_optuna_the_error_names_the_extra(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    result = runner.invoke(app, [*classify_args(data, tmp_path / "s"), "--trials", "1"])
    assert result.exit_code == 1
    assert result.stderr == "Error: ffnlp tune needs Optuna: pip install 'ffnlp[tune]'\n"


def test_the_help_says_the_default_budget() -> None:
    result = runner.invoke(app, ["tune", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())  # the help's box, unwrapped
    assert "Without --trials and --timeout: 300 s." in text
