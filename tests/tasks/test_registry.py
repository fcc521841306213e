"""The task registry: one contract over every registered task, and a toy fourth task
(tests/tasks/toy_regression) that trains, resumes, runs under repeat and tune and is reported
through the modules that handle every task, none of which names it."""

from __future__ import annotations

import dataclasses
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, Interrupted, ModelFileError
from ffnlp.experiments.repeat import repeat
from ffnlp.tasks import registry
from ffnlp.tasks.runfolder import expect_run_of
from ffnlp.tune import tasks as tune_tasks
from tests.extras import needs
from tests.reliability.rundir_support import SignalAt, assert_same_weights
from tests.tasks import toy_regression
from tests.tasks.toy_regression.task import ToyRun, train_toy

TOY = "toy_regression"
SMALL = ["train.epochs=4", "train.threads=1"]


@pytest.fixture(autouse=True)
def toy_task() -> Iterator[None]:
    """The toy task registered for each test here, and only here."""
    registry.register_task(toy_regression.SPEC)  # the one line that makes a task known
    yield
    registry.TASKS.pop(TOY, None)


def test_the_toy_task_is_registered_by_its_one_line() -> None:
    assert registry.spec(TOY) is toy_regression.SPEC
    registry.TASKS.pop(TOY)
    assert registry.find(TOY) is None and TOY not in registry.names()
    registry.register_task(toy_regression.SPEC)
    assert registry.names()[:3] == ["classify", "lm", "w2v"]
    assert TOY in registry.names()


@pytest.mark.parametrize("name", ["classify", "lm", "w2v", TOY])
def test_every_registered_task_keeps_the_contract(name: str) -> None:
    spec = registry.spec(name)
    assert spec.name == name
    assert dataclasses.is_dataclass(spec.config)
    train = spec.config().train  # every config has a [train] section with defaults
    assert train.epochs >= 1
    assert callable(spec.train) and callable(spec.load)
    assert spec.inputs and spec.direction in ("maximize", "minimize")
    assert spec.metric.startswith("dev.")
    assert spec.command_line.startswith(f"ffnlp {name} ")
    assert spec.result_type  # serve and of_result find the task of a trained object
    # the direction it declares is the one the Trainer and tune give its default metric
    assert tune_tasks.direction_of(spec.metric) == spec.direction


def test_an_unknown_task_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'clasify'; did you mean 'classify'\?"):
        registry.spec("clasify")
    assert registry.find("nope") is None


def test_lookups_answer_what_the_branches_did() -> None:
    assert registry.spec("classify").command_line == "ffnlp classify eval/predict"
    assert registry.spec("lm").command_line == "ffnlp lm eval/generate"
    assert registry.spec("w2v").command_line == "ffnlp w2v eval/neighbors/export"
    assert [s.name for s in registry.specs() if s.scored_splits][:2] == ["classify", "lm"]
    assert registry.listed(["a"]) == "a" and registry.listed(["a", "b", "c"]) == "a, b and c"


# ------------------------------------------------------------------------------ the toy task


def _write(path: Path, rows: int, rng: random.Random) -> Path:
    lines = []
    for _ in range(rows):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        lines.append(f"{2 * a - b + 0.5 + rng.gauss(0, 0.05):.4f} {a:.4f} {b:.4f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy")
    rng = random.Random(3)
    return {
        split: _write(root / f"{split}.txt", rows, rng)
        for split, rows in (("train", 96), ("dev", 32), ("test", 32))
    }


def test_the_toy_task_trains_and_loads_through_ffnlp_load(data, tmp_path) -> None:
    run = train_toy(
        data["train"], dev=data["dev"], test=data["test"], overrides=SMALL, out=tmp_path / "r"
    )
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary["task"] == TOY and summary["epochs"] == 4
    assert summary["test"]["r2"] > 0.5  # it learned the linear relation
    loaded = ffnlp.load(tmp_path / "r")
    assert isinstance(loaded, ToyRun)
    assert loaded.predict([[0.3, -0.2]]) == run.predict([[0.3, -0.2]])
    assert loaded.evaluate(data["test"]) == pytest.approx(summary["test"])


def test_a_run_of_another_task_names_the_toy_task_commands(data, tmp_path) -> None:
    train_toy(data["train"], overrides=["train.epochs=1"], out=tmp_path / "toy")
    with pytest.raises(ModelFileError, match="is a toy_regression run, not a classify run; use"):
        expect_run_of(tmp_path / "toy", "classify")
    with pytest.raises(ModelFileError, match="ffnlp toy_regression train with it"):
        ffnlp.tasks.classify.load(tmp_path / "toy")


def test_the_shared_keywords_reach_the_toy_recipe_checked_by_its_name(data, tmp_path) -> None:
    out = tmp_path / "k"
    with pytest.raises(ConfigError, match="The 'seed' parameter of train_toy must be an int"):
        train_toy(data["train"], seed="1", out=out)
    train_toy(data["train"], overrides=["train.epochs=1"], out=out)
    # a recipe that does not continue runs refuses init_from, and writes nothing
    with pytest.raises(ConfigError, match="train_toy does not continue an earlier run"):
        train_toy(data["train"], init_from=out, out=tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_an_interrupted_toy_run_resumes_to_the_same_weights(data, tmp_path) -> None:
    settings = [*SMALL, "train.checkpoint=true"]
    straight = tmp_path / "straight"
    train_toy(data["train"], dev=data["dev"], overrides=settings, out=straight)
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train_toy(
            data["train"],
            dev=data["dev"],
            overrides=settings,
            out=cut,
            callbacks=[SignalAt(20, signal.SIGTERM)],
        )
    assert not (cut / "summary.json").exists()
    resumed = train_toy(data["train"], dev=data["dev"], overrides=settings, out=cut, resume=True)
    assert resumed.summary["epochs"] == 4
    assert_same_weights(straight, cut)


def test_the_toy_task_runs_under_repeat_and_is_reported(data, tmp_path) -> None:
    out = tmp_path / "rep"
    result = repeat(
        TOY,
        data["train"],
        dev=data["dev"],
        test=data["test"],
        overrides=SMALL,
        seeds=[1, 2],
        out=out,
    )
    assert result["task"] == f"{TOY}-repeat"
    assert result["repeat"]["test"]["r2"]["n"] == 2
    assert len(set(result["repeat"]["test"]["loss"]["values"])) == 2  # two seeds, two runs
    runner = CliRunner()
    for folder in (out, out / "seed_1"):
        report = runner.invoke(app, ["report", str(folder)])
        assert report.exit_code == 0, report.output
        page = (folder / "report.html").read_text(encoding="utf-8")
        assert TOY in page


def test_repeat_refuses_a_task_without_test_data() -> None:
    with pytest.raises(ConfigError, match="repeat supports the tasks classify, lm and "):
        repeat("w2v", "corpus.txt", seeds=[1])


def test_the_toy_task_is_tuned_and_its_study_reported(data, tmp_path) -> None:
    needs("optuna")
    from ffnlp.tune.prepare import TuneOptions
    from ffnlp.tune.study import tune

    space = tmp_path / "space.toml"
    space.write_text(
        '["train.lr"]\ntype = "float"\nlow = 0.01\nhigh = 0.2\nlog = true\n\n'
        '["model.hidden"]\ntype = "categorical"\nchoices = [0, 4]\n',
        encoding="utf-8",
    )
    inputs = tune_tasks.Inputs(train=data["train"], dev=data["dev"], test=data["test"])
    out = tmp_path / "study"
    options = TuneOptions(
        task=TOY,
        out=out,
        space=space,
        overrides=SMALL,
        inputs=inputs,
        trials=3,
        keep="all",
        pruner="none",
        trial_seeds=1,
        rescore=0,
        refit=True,
        seeds=2,
    )
    result = tune(options)
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    assert meta["task"] == TOY and meta["metric"] == "dev.loss" and meta["direction"] == "minimize"
    assert result["trials"] == 3
    assert (out / "best" / "summary.json").is_file()  # --refit trained the toy recipe
    assert (out / "seeds" / "summary.json").is_file()  # --seeds ran it under repeat
    report = CliRunner().invoke(app, ["report", str(out)])
    assert report.exit_code == 0, report.output


def test_tune_refuses_an_unknown_task_naming_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=f"ffnlp tune tunes classify, lm, w2v, .*{TOY}"):
        tune_tasks.check_task("toy")


def test_serve_and_explain_find_the_toy_task_of_a_run(data, tmp_path) -> None:
    import asyncio

    from ffnlp.serve.limits import Limits
    from ffnlp.serve.runs import ServedRun

    out = tmp_path / "s"
    run = train_toy(data["train"], overrides=["train.epochs=1"], out=out)
    assert registry.of_result(run) is toy_regression.SPEC
    with pytest.raises(ConfigError, match="not the trained object of a registered task"):
        registry.of_result(torch.zeros(1))
    served = ServedRun("s", out, Limits())
    try:
        described = served.describe()
    finally:
        asyncio.run(served.close())
    assert described["task"] == TOY and described["endpoints"] == []  # it declares none
    assert served.handlers == {} and served.batcher is None
    shapes = CliRunner().invoke(app, ["explain", "shapes", str(out)])
    assert shapes.exit_code == 1
    assert f"Error: {out} is a toy_regression run; explain shapes shows the networks of" in (
        shapes.output
    )
