"""Studies end to end on tiny synthetic data: the folder, resuming, pruning, refit and seeds,
cross-validation, the three tasks, and the test data kept out of the search."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.tune.prepare import TuneOptions
from ffnlp.tune.study import tune
from ffnlp.tune.tasks import Inputs
from tests.extras import needs
from tests.tune.conftest import SMALL_LM, SMALL_W2V, classify_options

optuna = needs("optuna")

CONTRACT_KEYS = {
    "kind",
    "task",
    "metric",
    "direction",
    "study_name",
    "storage",
    "space",
    "base_config",
    "sampler",
    "pruner",
    "command",
    "ffnlp_version",
}


def load(out: Path) -> optuna.study.Study:
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    return optuna.load_study(study_name=meta["study_name"], storage=meta["storage"])


def csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def study(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 3-trial classify study given --test (which it must not read), then continued."""
    out = tmp_path_factory.mktemp("study") / "sst"
    inputs = Inputs(train=data["train"], dev=data["dev"], test=data["test"])
    first = tune(classify_options(data, out, inputs=inputs))
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    second = tune(classify_options(data, out, inputs=inputs, trials=2))
    return {"out": out, "first": first, "second": second, "meta": meta}


def test_the_study_folder_follows_the_contract(study: dict[str, Any]) -> None:
    out: Path = study["out"]
    meta = study["meta"]
    assert set(meta) >= CONTRACT_KEYS
    assert meta["kind"] == "study" and meta["task"] == "classify"
    assert (meta["metric"], meta["direction"]) == ("dev.accuracy", "maximize")
    assert meta["storage"] == f"sqlite:///{out.resolve() / 'study.db'}"
    assert meta["space"]["model.mlp.hidden"] == {
        "type": "categorical",
        "choices": [[], [8], [16, 8]],
    }
    assert (out / "study.db").is_file()
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"{n:04d}" for n in range(5)]
    for n in range(5):
        run = out / "trials" / f"{n:04d}"
        assert {"config.toml", "summary.json", "metrics.jsonl", "model.safetensors"} <= {
            p.name for p in run.iterdir()
        }  # --keep all
    rows = csv_rows(out)
    assert list(rows[0])[:4] == ["number", "state", "value", "seconds"]
    assert [k for k in rows[0] if k.startswith("params_")] == [
        "params_train.lr",
        "params_model.mlp.hidden",
        "params_model.mlp.activation",
    ]
    assert [r["number"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert {r["state"] for r in rows} == {"COMPLETE"}
    trials = load(out).get_trials()
    for t, row in zip(trials, rows, strict=True):
        assert float(row["value"]) == t.value
        assert t.user_attrs["run_dir"] == f"trials/{t.number:04d}"
        assert t.user_attrs["seconds"] > 0
        summary = json.loads((out / t.user_attrs["run_dir"] / "summary.json").read_text())
        assert t.value == summary["dev"]["accuracy"] == t.user_attrs["summary"]["dev"]["accuracy"]
        assert summary["tune"] == {"trial": t.number, "state": "COMPLETE", "study": "sst"}


def test_the_test_data_is_never_seen_by_a_trial(study: dict[str, Any]) -> None:
    out: Path = study["out"]
    for t in load(out).get_trials():
        summary = json.loads((out / t.user_attrs["run_dir"] / "summary.json").read_text())
        assert "test" not in summary
        assert not any(k.startswith("test") for k in t.user_attrs["summary"])
        assert "test" not in json.dumps(t.user_attrs["summary"])


def test_a_continued_study_keeps_numbering_and_its_settings(
    study: dict[str, Any], data: dict[str, Path]
) -> None:
    assert study["first"]["trials"] == 3 and study["second"]["trials"] == 5
    assert [t.number for t in load(study["out"]).get_trials()] == [0, 1, 2, 3, 4]
    # another space is another study: refused, nothing run
    other = data["space"].parent / "other.toml"
    other.write_text('["train.lr"]\ntype = "float"\nlow = 0.01\nhigh = 0.1\n', encoding="utf-8")
    with pytest.raises(
        ConfigError, match="holds a study with other settings \\(space.model.mlp.activation: "
    ):
        tune(classify_options(data, study["out"], space=other))
    assert len(load(study["out"]).get_trials()) == 5


def test_best_toml_reruns_to_the_same_dev_score(
    study: dict[str, Any], data: dict[str, Path], tmp_path: Path
) -> None:
    out: Path = study["out"]
    best = load(out).best_trial
    assert study["second"]["best"]["number"] == best.number
    text = (out / "best.toml").read_text(encoding="utf-8")
    assert text.startswith(f"# The best configuration of the study 'sst': trial {best.number}")
    args = ["classify", "train", "--config", str(out / "best.toml")]
    args += ["--train", str(data["train"]), "--dev", str(data["dev"]), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, [*args, "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dev"]["accuracy"] == best.value  # same seed, same weights


def test_a_finished_study_gives_its_results_without_new_trials(
    study: dict[str, Any], data: dict[str, Path]
) -> None:
    result = tune(classify_options(data, study["out"], trials=0))
    assert (
        result["trials"] == 5 and result["best"]["number"] == load(study["out"]).best_trial.number
    )


def test_pruning_stops_hopeless_trials(data: dict[str, Path], tmp_path: Path) -> None:
    """Half the learning rates cannot learn anything in a few epochs: once four trials have
    completed, such a trial is stopped at its 2nd evaluation, its run complete and marked."""
    space = tmp_path / "space.toml"
    space.write_text(
        '["train.lr"]\ntype = "categorical"\nchoices = [0.3, 1e-7]\n'
        '["model.mlp.activation"]\ntype = "categorical"\nchoices = ["relu", "tanh", "gelu"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "pruned"
    options = classify_options(
        data,
        out,
        space=space,
        trials=8,
        keep="best",
        pruner="median",
        overrides=['model.type="mlp"', "train.epochs=6", "train.threads=1", "train.batch_size=64"],
    )
    result = tune(options)
    trials = load(out).get_trials()
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and result["states"]["PRUNED"] == len(pruned)
    for t in pruned:
        assert t.params["train.lr"] == 1e-7
        run = out / t.user_attrs["run_dir"]
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        assert summary["tune"]["state"] == "PRUNED"
        assert summary["stop_reason"].startswith("Pruned at dev evaluation ")
        assert summary["epochs"] < 6
        assert sorted(p.name for p in run.iterdir()) == sorted(
            ["config.toml", "metrics.jsonl", "plots", "summary.json"]
        )  # --keep best: only the best trial keeps its model
    best = out / f"trials/{result['best']['number']:04d}"
    assert (best / "model.safetensors").is_file()
    assert {r["state"] for r in csv_rows(out)} == {"COMPLETE", "PRUNED"}


def test_refit_and_seeds(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "refit"
    inputs = Inputs(train=data["train"], dev=data["dev"], test=data["test"])
    result = tune(
        classify_options(data, out, inputs=inputs, trials=2, keep="summaries", refit=True, seeds=2)
    )
    best = load(out).best_trial
    refit = result["refit"]
    assert refit["on"] == "train+dev" and refit["trial"] == best.number
    assert refit["epochs"] == max(1, round(best.user_attrs["best_epochs"]))
    summary = json.loads((out / "best" / "summary.json").read_text(encoding="utf-8"))
    assert summary["train_examples"] == 260  # train + dev
    assert "dev" not in summary and summary["test"]["accuracy"] == refit["test"]["accuracy"]
    assert summary["best_epoch"] is None and summary["epochs"] == refit["epochs"]
    seeds = json.loads((out / "seeds" / "summary.json").read_text(encoding="utf-8"))
    assert seeds["seeds"] == [0, 1] and sorted(p.name for p in (out / "seeds").iterdir()) == [
        "seed_0",
        "seed_1",
        "summary.json",
    ]
    values = seeds["repeat"]["test"]["accuracy"]["values"]
    assert result["seeds"]["metric"] == "test.accuracy"
    assert result["seeds"]["mean"] == pytest.approx(statistics.fmean(values))
    lo, hi = result["seeds"]["ci95"]
    assert lo <= result["seeds"]["mean"] <= hi
    # --keep summaries: no trial keeps its model
    assert not list((out / "trials").glob("*/model.safetensors"))
    # refit on train only: the best trial's run again, scored on test as well
    again = tune(classify_options(data, out, inputs=inputs, trials=0, refit=True, refit_on="train"))
    summary = json.loads((out / "best" / "summary.json").read_text(encoding="utf-8"))
    assert again["refit"]["on"] == "train" and summary["train_examples"] == 200
    assert summary["dev"]["accuracy"] == best.value


def test_cross_validation_trials(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cv"
    inputs = Inputs(train=data["train"], test=data["test"], cv=3)
    result = tune(classify_options(data, out, inputs=inputs, trials=2, refit=True))
    for t in load(out).get_trials():
        run = out / t.user_attrs["run_dir"]
        assert sorted(p.name for p in run.iterdir()) == [
            "config.toml",
            "fold_1",
            "fold_2",
            "fold_3",
            "metrics.jsonl",
            "summary.json",
        ]
        folds = [
            json.loads((run / f"fold_{k}" / "summary.json").read_text(encoding="utf-8"))
            for k in (1, 2, 3)
        ]
        # 200 in 3 stratified folds; a tenth of each round's training part stops it early,
        # and the held-out fold, which did not, scores it
        assert [f["held_out"]["examples"] for f in folds] == [67, 67, 66]
        assert [f["train_examples"] for f in folds] == [119, 119, 120]
        assert [f["dev"]["examples"] for f in folds] == [14, 14, 14]
        assert t.value == pytest.approx(statistics.fmean(f["held_out"]["accuracy"] for f in folds))
        assert t.value != pytest.approx(statistics.fmean(f["dev"]["accuracy"] for f in folds))
        assert sorted(t.intermediate_values.values())[-1] >= t.value - 1e-12
        assert all("test" not in f for f in folds)
    assert result["refit"]["on"] == "train"
    summary = json.loads((out / "best" / "summary.json").read_text(encoding="utf-8"))
    assert summary["train_examples"] == 200 and "test" in summary


def test_a_language_model_study(data: dict[str, Path], tmp_path: Path) -> None:
    space = tmp_path / "lm.toml"
    space.write_text(
        '["train.lr"]\ntype = "float"\nlow = 1e-3\nhigh = 3e-2\nlog = true\n'
        '["model.context_size"]\ntype = "int"\nlow = 2\nhigh = 4\n',
        encoding="utf-8",
    )
    out = tmp_path / "lm"
    inputs = Inputs(train=data["lm_train"], dev=data["lm_dev"], test=data["lm_test"])
    options = TuneOptions(
        task="lm", out=out, space=space, overrides=SMALL_LM, inputs=inputs, trials=3, refit=True
    )
    result = tune(options)
    assert (result["metric"], result["direction"]) == ("dev.perplexity", "minimize")
    values = [t.value for t in load(out).get_trials()]
    assert result["best"]["value"] == min(values)
    assert math.isfinite(result["refit"]["test"]["perplexity"])
    assert not (out / ".refit-train+dev.txt").exists()  # the joined corpus is removed


def test_a_word2vec_study(data: dict[str, Path], tmp_path: Path) -> None:
    space = tmp_path / "w2v.toml"
    space.write_text(
        '["model.window"]\ntype = "int"\nlow = 2\nhigh = 5\n'
        '["model.dim"]\ntype = "categorical"\nchoices = [8, 16]\n',
        encoding="utf-8",
    )
    out = tmp_path / "w2v"
    inputs = Inputs(corpus=data["corpus"], similarity=data["similarity"])
    options = TuneOptions(
        task="w2v", out=out, space=space, overrides=SMALL_W2V, inputs=inputs, trials=3
    )
    result = tune(options)
    assert (result["metric"], result["direction"]) == ("dev.spearman_sim", "maximize")
    for t in load(out).get_trials():
        summary = json.loads((out / t.user_attrs["run_dir"] / "summary.json").read_text())
        assert t.value == summary["evaluation"]["similarity"]["sim.txt"]["spearman"]
    with pytest.raises(ConfigError, match="--refit and --seeds retrain the best configuration"):
        tune(TuneOptions(task="w2v", out=out, space=space, inputs=inputs, refit=True))


def test_the_time_budget_stops_the_running_trial(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the budget runs out during a trial (here: the clock the reporter reads jumps an
    hour ahead during the 2nd trial), that trial stops, recorded as pruned by the budget."""
    import time as real_time

    from ffnlp.training.callbacks import Callback
    from ffnlp.tune import pruning

    late = {"by": 0.0}
    monkeypatch.setattr(
        pruning, "time", SimpleNamespace(monotonic=lambda: real_time.monotonic() + late["by"])
    )

    class LateInSecondRun(Callback):
        fits = 0

        def on_fit_start(self, trainer: Any) -> None:
            LateInSecondRun.fits += 1

        def on_batch_end(self, trainer: Any, loss: float | None) -> None:
            if LateInSecondRun.fits == 2 and trainer.step == 3:
                late["by"] = 3600.0

    out = tmp_path / "budget"
    options = classify_options(data, out, trials=2, timeout=600.0)
    result = tune(options, callbacks=[LateInSecondRun()])
    first, second = load(out).get_trials()
    assert first.state.name == "COMPLETE" and second.state.name == "PRUNED"
    assert second.user_attrs["stopped"] == "timeout"
    summary = json.loads((out / "trials" / "0001" / "summary.json").read_text(encoding="utf-8"))
    # the clock jumped after the reporter's look at step 3: it stops the run at the next step
    assert summary["steps"] == 4 and "time budget (--timeout) ran out" in summary["stop_reason"]
    assert result["states"] == {"COMPLETE": 1, "PRUNED": 1}


def test_a_study_in_another_storage(data: dict[str, Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    out = tmp_path / "remote"
    tune(classify_options(data, out, trials=1, storage=url, study_name="shared"))
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    assert (meta["storage"], meta["study_name"]) == (url, "shared")
    assert not (out / "study.db").exists()
    assert len(optuna.load_study(study_name="shared", storage=url).trials) == 1
    with pytest.raises(ConfigError, match="continue it with the same --storage and --study-name"):
        tune(classify_options(data, out, trials=1))
    with pytest.raises(ConfigError, match="^--storage nowhere://x: SQLAlchemy has no installed"):
        tune(classify_options(data, tmp_path / "bad", trials=1, storage="nowhere://x"))
