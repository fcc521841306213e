"""--seeds on `classify train` and `lm train`: the same command as `ffnlp repeat`; and the seed
lists `ffnlp repeat --seeds` takes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample
from tests.extras import needs_mark

runner = CliRunner()

FAST = ["--set", "train.epochs=2", "--set", "train.threads=1", "--set", "train.checkpoint=false"]
TINY_LM = [
    "--set", "model.embedding_dim=8", "--set", "model.hidden_sizes=[8]",
    "--set", "model.context_size=2", "--set", "samples=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("d"), sizes=(160, 40, 40))


def classify(data: dict[str, Path], *args: object) -> list[str]:
    split = ["--train", data["train"], "--dev", data["dev"], "--test", data["test"]]
    return [str(a) for a in ["classify", "train", *split, *FAST, *args]]


def without_times(summary: dict) -> dict:
    """A repeat summary without what differs between two identical runs (times, folder)."""
    summary = {k: v for k, v in summary.items() if k != "run_dir"}
    summary["repeat"] = {k: v for k, v in summary["repeat"].items() if k != "train"}
    summary["runs"] = [
        {k: v for k, v in r.items() if k != "train_seconds"} for r in summary["runs"]
    ]
    return summary


def test_classify_train_seeds_is_ffnlp_repeat(data, tmp_path) -> None:
    alias = runner.invoke(app, classify(data, "--seeds", "0,2", "--out", tmp_path / "a", "--json"))
    assert alias.exit_code == 0, alias.output
    split = ["--train", data["train"], "--dev", data["dev"], "--test", data["test"]]
    args = ["repeat", "classify", *split, *FAST, "--seeds", "0,2", "--out", tmp_path / "r"]
    repeated = runner.invoke(app, [*map(str, args), "--json"])
    assert repeated.exit_code == 0, repeated.output
    assert without_times(json.loads(alias.stdout)) == without_times(json.loads(repeated.stdout))
    assert json.loads(alias.stdout)["seeds"] == [0, 2]
    for root in (tmp_path / "a", tmp_path / "r"):  # the same layout
        assert sorted(p.name for p in root.iterdir()) == ["seed_0", "seed_2", "summary.json"]
        assert (root / "seed_2" / "predictions.jsonl").is_file()
        assert not (root / "seed_2" / "model.safetensors").exists()
    config = (tmp_path / "a" / "seed_2" / "config.toml").read_text(encoding="utf-8")
    assert "seed = 2" in config


def test_the_alias_prints_what_repeat_prints(data, tmp_path) -> None:
    result = runner.invoke(app, classify(data, "--seeds", "2", "--out", tmp_path / "a"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.match(r"seed 0 \(run 1/2\): \{'dev': \{'loss': ", lines[0])
    assert re.match(r"seed 1 \(run 2/2\): ", lines[1])
    assert "classify: 2 seeds" in result.stdout and "95% CI" in result.stdout
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "seed_0",
        "seed_1",
        "summary.json",
    ]


def test_lm_train_seeds(data, tmp_path) -> None:
    args = ["lm", "train", "--train", data["corpus"], *FAST, *TINY_LM]
    result = runner.invoke(
        app, [*map(str, args), "--seeds", "1,0", "--out", str(tmp_path / "lm"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["task"] == "lm-repeat" and summary["seeds"] == [1, 0]
    assert [r["seed"] for r in summary["runs"]] == [1, 0]
    assert (tmp_path / "lm" / "seed_1" / "summary.json").is_file()


def test_repeat_takes_a_count_from_first_seed_or_a_list(data, tmp_path) -> None:
    split = ["--train", data["train"], "--dev", data["dev"]]
    for seeds, first, expected in (("2", "3", [3, 4]), ("5,1", "0", [5, 1])):
        args = ["repeat", "classify", *split, *FAST, "--seeds", seeds, "--first-seed", first]
        out = tmp_path / f"r{seeds}"
        result = runner.invoke(app, [*map(str, args), "--out", str(out), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["seeds"] == expected
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [f"seed_{s}" for s in expected] + ["summary.json"]
        )


@needs_mark("tensorboard")
def test_repeat_gives_each_seed_its_tensorboard_folder(data, tmp_path) -> None:
    log_dir = tmp_path / "tb"
    args = classify(data, "--seeds", "0,1", "--tensorboard", log_dir, "--out", tmp_path / "r")
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in log_dir.iterdir()) == ["seed_0", "seed_1"]
    for seed in (0, 1):
        assert any(
            p.name.startswith("events.out.tfevents") for p in (log_dir / f"seed_{seed}").iterdir()
        )
        config = (tmp_path / "r" / f"seed_{seed}" / "config.toml").read_text(encoding="utf-8")
        assert f'tensorboard = "{log_dir / f"seed_{seed}"}"' in config


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--seeds", "x"],
            "give a number of seeds (e.g. 5) or a list of seeds (e.g. 0,1,2); got 'x'",
        ),
        (["--seeds", "0"], "at least one seed is needed; got '0'"),
        (["--seeds", "1,-2"], "got '1,-2'"),
        (["--seeds", "1,,2"], "got '1,,2'"),
        (["--seeds", "0,1", "--seed", "3"], "--seed is for a single run"),
        (["--seeds", "2", "--force"], "--force is for a single run"),
    ],
)
def test_bad_seeds_are_usage_errors(data, tmp_path, args, fragment) -> None:
    result = runner.invoke(app, classify(data, *args, "--out", tmp_path / "r"))
    assert result.exit_code == 2, result.output
    assert fragment in re.sub(r"[\s│]+", " ", result.stderr)
    assert not (tmp_path / "r").exists()


def test_a_seed_twice_is_refused(data, tmp_path) -> None:
    result = runner.invoke(app, classify(data, "--seeds", "1,2,1", "--out", tmp_path / "r"))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: seed 1 is given twice; each seed is trained once (into seed_1)"
    )
    assert not (tmp_path / "r").exists()


def test_first_seed_goes_with_a_count(data, tmp_path) -> None:
    split = ["--train", str(data["train"])]
    result = runner.invoke(
        app, ["repeat", "classify", *split, "--seeds", "0,1", "--first-seed", "2"]
    )
    assert result.exit_code == 2
    assert "--first-seed goes with a number of seeds" in re.sub(r"[\s│]+", " ", result.stderr)


@needs_mark("tensorboard")
def test_cross_validation_gives_each_fold_its_tensorboard_folder(data, tmp_path) -> None:
    log_dir = tmp_path / "tb"
    args = ["classify", "cv", "--data", str(data["train"]), "--folds", "3", "--quiet"]
    args += [
        "--set",
        "train.epochs=1",
        "--tensorboard",
        str(log_dir),
        "--out",
        str(tmp_path / "cv"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in log_dir.iterdir()) == ["fold_1", "fold_2", "fold_3"]
    for k in (1, 2, 3):
        assert any(
            p.name.startswith("events.out.tfevents") for p in (log_dir / f"fold_{k}").iterdir()
        )
        config = (tmp_path / "cv" / f"fold_{k}" / "config.toml").read_text(encoding="utf-8")
        assert f'tensorboard = "{log_dir / f"fold_{k}"}"' in config
