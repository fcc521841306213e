"""--trial-seeds: each trial trains its configuration over several seeds and scores their mean;
auto per task; pruning after a seed; the report and the refit of such a study."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from ffnlp.config import load_toml
from ffnlp.errors import ConfigError
from ffnlp.report.html import write_report
from ffnlp.report.studyfolder import read_study
from ffnlp.tune import pruning
from ffnlp.tune.prepare import AUTO_TRIAL_SEEDS, resolve_trial_seeds
from ffnlp.tune.study import tune
from ffnlp.tune.tasks import Inputs
from tests.extras import needs
from tests.tune.conftest import classify_options

optuna = needs("optuna")


def load(out: Path) -> optuna.study.Study:
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    return optuna.load_study(study_name=meta["study_name"], storage=meta["storage"])


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def seeded(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """2 trials of 2 seeds each (13 and 14), refit on train+dev and run over 2 seeds."""
    out = tmp_path_factory.mktemp("seeded") / "study"
    inputs = Inputs(train=data["train"], dev=data["dev"], test=data["test"])
    options = classify_options(
        data, out, inputs=inputs, trials=2, trial_seeds=2, keep="best", refit=True, seeds=2
    )
    started: list[dict[str, Any]] = []
    result = tune(options, on_start=started.append)
    return {"out": out, "result": result, "started": started}


def test_a_trial_trains_each_seed_and_scores_their_mean(seeded: dict[str, Any]) -> None:
    out: Path = seeded["out"]
    meta = read(out / "tune.json")
    assert meta["trial_seeds"] == 2 and meta["trial_seeds_reason"] == "--trial-seeds 2"
    assert seeded["started"] == [meta] and seeded["result"]["trial_seeds"] == 2
    trials = load(out).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for t in trials:
        run = out / t.user_attrs["run_dir"]
        assert {"seed_13", "seed_14", "config.toml", "summary.json", "metrics.jsonl"} <= {
            p.name for p in run.iterdir()
        }
        runs = [read(run / f"seed_{s}" / "summary.json") for s in (13, 14)]
        figures = [r["dev"]["accuracy"] for r in runs]
        assert t.value == pytest.approx(statistics.fmean(figures))
        summary = read(run / "summary.json")
        assert summary["task"] == "classify-seeds" and summary["seeds"] == [13, 14]
        assert summary["seeds_done"] == 2
        assert [r["seed"] for r in summary["rounds"]] == [13, 14]
        assert [r["dev"]["accuracy"] for r in summary["rounds"]] == figures
        assert summary["dev_sd"]["accuracy"] == pytest.approx(statistics.stdev(figures))
        assert summary["tune"]["state"] == "COMPLETE" and "test" not in json.dumps(summary)
        # the rounds' metrics.jsonl, as a cross-validation trial writes it
        records = read_lines(run / "metrics.jsonl")
        assert [(r["event"], r["seed"]) for r in records] == [("seed", 13), ("seed", 14)]
        assert records[-1]["mean"] == pytest.approx(t.value)
        assert records[-1]["step"] == summary["steps"] == sum(r["steps"] for r in runs)
        # the first seed reports each evaluation (as a single run), then the mean after seed 2
        first = [r for r in read_lines(run / "seed_13" / "metrics.jsonl") if "dev" in r]
        steps = sorted(t.intermediate_values)
        assert steps[: len(first)] == [r["step"] for r in first]
        assert steps[len(first) :] == [summary["steps"]]
        assert t.intermediate_values[summary["steps"]] == pytest.approx(t.value)
        # the seeds differ only by their seed; the trial's configuration is the base seed's
        for seed in (13, 14):
            config = load_toml(run / f"seed_{seed}" / "config.toml")
            assert config["train"]["seed"] == seed
        assert t.user_attrs["config"]["train"]["seed"] == 13
    assert "seed = 13" in (out / "best.toml").read_text(encoding="utf-8")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_keep_best_reduces_the_other_trials_seeds(seeded: dict[str, Any]) -> None:
    out: Path = seeded["out"]
    best = seeded["result"]["best"]["number"]
    for t in load(out).get_trials():
        for seed in (13, 14):
            model = out / t.user_attrs["run_dir"] / f"seed_{seed}" / "model.safetensors"
            assert model.is_file() == (t.number == best)


def test_the_refit_trains_the_mean_best_epochs_of_the_seeds(seeded: dict[str, Any]) -> None:
    out: Path = seeded["out"]
    result = seeded["result"]
    best = load(out).best_trial
    rounds = read(out / best.user_attrs["run_dir"] / "summary.json")["rounds"]
    assert best.user_attrs["best_epochs"] == pytest.approx(
        statistics.fmean(r["best_epoch"] for r in rounds)
    )
    assert result["refit"]["epochs"] == max(1, round(best.user_attrs["best_epochs"]))
    assert read(out / "best" / "summary.json")["train_examples"] == 260  # train + dev
    assert result["seeds"]["metric"] == "test.accuracy" and len(result["seeds"]["values"]) == 2


def test_the_report_renders_a_study_of_seeded_trials(seeded: dict[str, Any]) -> None:
    out: Path = seeded["out"]
    study = read_study(out)
    assert all(t.intermediate for t in study.trials)  # the curves, from the rounds' records
    page = write_report(out).read_text(encoding="utf-8")
    assert "best-curves" in page and "<img" in page
    best = out / seeded["result"]["best"]["run_dir"]
    trial_page = (best / "report.html").read_text(encoding="utf-8")
    assert "2 seeds" in trial_page and "seed 14" in trial_page
    assert "ffnlp repeat classify --seeds 2" in trial_page


def test_auto_is_three_seeds_for_classify_and_one_elsewhere(tmp_path: Path) -> None:
    classify = Inputs(train=Path("t"), dev=Path("d"))
    assert resolve_trial_seeds("classify", classify, "auto")[0] == AUTO_TRIAL_SEEDS == 3
    assert resolve_trial_seeds("classify", Inputs(train=Path("t"), cv=5), "auto")[0] == 1
    assert resolve_trial_seeds("lm", classify, "auto")[0] == 1
    assert resolve_trial_seeds("w2v", Inputs(corpus=Path("c")), "auto")[0] == 1
    assert resolve_trial_seeds("lm", classify, 4) == (4, "--trial-seeds 4")
    # a continued study keeps its count; one from before the option trained one seed
    (tmp_path / "tune.json").write_text('{"kind": "study"}', encoding="utf-8")
    count, why = resolve_trial_seeds("classify", classify, "auto", tmp_path)
    assert count == 1 and why.startswith("auto: 1, as in the trials of the study continued")
    for bad in (0, -1, "three", True):
        with pytest.raises(ConfigError, match="^--trial-seeds must be auto or a whole number"):
            resolve_trial_seeds("classify", classify, bad)
    with pytest.raises(ConfigError, match="^--trial-seeds 2 with --cv: each trial already"):
        resolve_trial_seeds("classify", Inputs(train=Path("t"), cv=3), 2)


def test_auto_is_stored_and_a_continued_study_keeps_it(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "auto"
    tune(classify_options(data, out, trials=0, trial_seeds="auto"))
    meta = read(out / "tune.json")
    assert meta["trial_seeds"] == 3 and meta["trial_seeds_reason"].startswith(
        "auto: 3 for classify"
    )
    with pytest.raises(ConfigError, match="trial_seeds: 3 before, 2 now"):
        tune(classify_options(data, out, trials=0, trial_seeds=2))
    again = tune(classify_options(data, out, trials=0, trial_seeds="auto"))
    assert again["trial_seeds"] == 3


class _AfterTheFirstSeed(optuna.pruners.BasePruner):
    """Prunes a trial once it has reported more values than its first seed's evaluations."""

    def __init__(self, evaluations: int) -> None:
        self.evaluations = evaluations

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return len(trial.intermediate_values) > self.evaluations


def test_a_trial_is_pruned_after_a_seed(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 epochs evaluated once each: the first seed reports 3 values and is not pruned; the mean
    after the 2nd seed is a 4th, and the trial stops there, its 3rd seed never trained."""
    monkeypatch.setattr(pruning, "make_pruner", lambda name: _AfterTheFirstSeed(3))
    out = tmp_path / "pruned"
    overrides = ['model.type="mlp"', "train.epochs=3", "train.threads=1", "train.batch_size=32"]
    overrides.append("train.early_stopping=false")
    result = tune(
        classify_options(data, out, trials=1, trial_seeds=3, overrides=overrides, pruner="median")
    )
    (t,) = load(out).get_trials()
    assert t.state.name == "PRUNED" and result["states"] == {"PRUNED": 1}
    run = out / t.user_attrs["run_dir"]
    assert (run / "seed_14").is_dir() and not (run / "seed_15").exists()
    summary = read(run / "summary.json")
    assert summary["seeds"] == [13, 14, 15] and summary["seeds_done"] == 2
    assert summary["stop_reason"].startswith(
        "Pruned after seed 2 of 3: the mean dev.accuracy of the seeds so far ("
    )
    assert summary["tune"]["state"] == "PRUNED" and len(t.intermediate_values) == 4
