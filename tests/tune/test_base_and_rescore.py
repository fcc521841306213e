"""The study's first trial is the base configuration; after the search the front-runners are
re-scored with fresh seeds, and the best mean over the fresh seeds is the best
configuration."""

from __future__ import annotations

import html
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.tune import rescore as rescoremod
from ffnlp.tune import tasks
from ffnlp.tune.objective import Plan
from ffnlp.tune.space import Param, Space
from ffnlp.tune.study import tune
from ffnlp.tune.tasks import Inputs
from tests.extras import needs
from tests.tune.conftest import classify_options

optuna = needs("optuna")


def load(out: Path) -> optuna.study.Study:
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    return optuna.load_study(study_name=meta["study_name"], storage=meta["storage"])


# ------------------------------------------------------------------------------ base trial


def test_base_params_takes_the_values_the_space_can_give() -> None:
    space = Space(
        (
            Param("train.lr", "float", 1e-3, 0.1, log=True),
            Param("train.epochs", "int", 2, 10, step=2),
            Param("model.mlp.hidden", "categorical", choices=([], [64], [128, 64])),
            Param("train.batch_size", "categorical", choices=(16, 32)),
            Param("model.mlp.dropout", "float", 0.0, 0.5),
            Param("train.nowhere", "float", 0.0, 1.0),
        ),
        "space.toml",
    )
    config = {
        "train": {"lr": 0.002, "epochs": 5, "batch_size": 64},
        "model": {"mlp": {"hidden": [128, 64], "dropout": 0.7}},
    }
    params, outside = space.base_params(config)
    assert params == {"train.lr": 0.002, "model.mlp.hidden": "[128, 64]"}
    # epochs 5 is off the step, batch size 64 not a choice, dropout 0.7 above the range, and
    # the configuration has no train.nowhere
    assert outside == ["train.epochs", "train.batch_size", "model.mlp.dropout", "train.nowhere"]
    on_step, _ = space.base_params({"train": {"epochs": 6, "batch_size": 32}})
    assert on_step == {"train.epochs": 6, "train.batch_size": 32}


def base_file(folder: Path, text: str) -> Path:
    path = folder / "base.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_first_trial_is_the_base_configuration(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "study"
    base = base_file(
        tmp_path, '[train]\nlr = 0.05\n[model.mlp]\nhidden = [8]\nactivation = "tanh"\n'
    )
    tune(classify_options(data, out, config=base, trials=2))
    trials = load(out).get_trials()
    first = trials[0]
    assert first.params == {
        "train.lr": 0.05,
        "model.mlp.hidden": "[8]",
        "model.mlp.activation": "tanh",
    }
    assert first.user_attrs["base"] is True
    assert first.user_attrs["config"]["train"]["lr"] == 0.05
    assert not trials[1].user_attrs.get("base")
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    assert meta["base_trial"]["drawn"] == []
    # a continued study does not start from the base again
    tune(classify_options(data, out, config=base, trials=1))
    assert [bool(t.user_attrs.get("base")) for t in load(out).get_trials()] == [True, False, False]


def test_base_values_outside_the_space_are_drawn(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "study"
    base = base_file(tmp_path, "[train]\nlr = 0.9\n")  # above the space's 0.3
    tune(classify_options(data, out, config=base, trials=1))
    meta = json.loads((out / "tune.json").read_text(encoding="utf-8"))
    assert meta["base_trial"]["drawn"] == ["train.lr"]
    first = load(out).get_trials()[0]
    assert 1e-3 <= first.params["train.lr"] <= 0.3
    assert set(first.params) == {"train.lr", "model.mlp.hidden", "model.mlp.activation"}


def test_no_base_trial(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "study"
    tune(classify_options(data, out, trials=1, base_trial=False))
    assert not load(out).get_trials()[0].user_attrs.get("base")
    assert "base_trial" not in json.loads((out / "tune.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------- rescoring


@pytest.fixture(scope="module")
def rescored(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """5 trials of one seed, the 2 best and the base re-scored with 3 fresh seeds."""
    folder = tmp_path_factory.mktemp("rescore")
    out = folder / "study"
    options = classify_options(
        data,
        out,
        config=base_file(folder, "[train]\nlr = 0.001\n"),  # a weak base: not among the best
        trials=5,
        rescore=2,
        rescore_seeds=3,
        keep="best",
        inputs=Inputs(train=data["train"], dev=data["dev"], test=data["test"]),
    )
    result = tune(options)
    return {"out": out, "result": result, "options": options}


def test_the_front_runners_and_the_base_get_fresh_seeds(rescored: dict[str, Any]) -> None:
    out: Path = rescored["out"]
    table = json.loads((out / "rescore.json").read_text(encoding="utf-8"))
    done = [t for t in load(out).get_trials() if t.state.name == "COMPLETE"]
    top2 = sorted(done, key=lambda t: -float(t.value))[:2]
    numbers = [r["number"] for r in table["candidates"]]
    assert numbers[:2] == [t.number for t in top2]
    assert numbers[2:] == [0] and table["candidates"][2]["base"] is True  # the base, always
    for row, trial in zip(table["candidates"], [*top2, done[0]], strict=True):
        base_seed = trial.user_attrs["config"]["train"]["seed"]
        assert row["seeds"] == [base_seed + 1, base_seed + 2, base_seed + 3]  # not the trial's
        for seed, value in zip(row["seeds"], row["values"], strict=True):
            summary = json.loads(
                (
                    out / "rescore" / f"{row['number']:04d}" / f"seed_{seed}" / "summary.json"
                ).read_text(encoding="utf-8")
            )
            assert summary["dev"]["accuracy"] == value
            assert "test" not in summary  # re-scoring is on dev, as the search
        assert row["search_value"] == trial.value
        assert row["value"] == pytest.approx(statistics.fmean(row["values"]))
        assert row["all_seeds"] == pytest.approx(statistics.fmean([trial.value, *row["values"]]))
    # the base is the incumbent: the chosen trial is the best mean among the candidates that
    # beat it on the same fresh seeds (one-sided paired t-test), else the base
    base = table["candidates"][2]
    beat = [
        r
        for r in table["candidates"][:2]
        if stats.ttest_rel(r["values"], base["values"], alternative="greater").pvalue < 0.05
    ]
    expected = max(beat, key=lambda r: r["value"]) if beat else base
    assert table["best"] == expected["number"]


def test_the_chosen_trial_is_the_best_configuration(rescored: dict[str, Any]) -> None:
    out: Path = rescored["out"]
    table = json.loads((out / "rescore.json").read_text(encoding="utf-8"))
    best = rescored["result"]["best"]
    assert best["number"] == table["best"]
    row = next(r for r in table["candidates"] if r["number"] == table["best"])
    assert best["value"] == row["value"] and best["seeds"] == 3
    assert rescored["result"]["rescore"]["best"] == table["best"]
    header = (out / "best.toml").read_text(encoding="utf-8").splitlines()[0]
    assert f"trial {table['best']} " in header
    # --keep best: the chosen trial keeps its model, the re-scoring runs only their summaries
    assert (out / "trials" / f"{table['best']:04d}" / "model.safetensors").is_file()
    for run in (out / "rescore").glob("*/seed_*"):
        assert (run / "summary.json").is_file() and not (run / "model.safetensors").exists()


def test_a_continued_study_reads_the_runs_it_has(rescored: dict[str, Any]) -> None:
    out: Path = rescored["out"]
    stamps = {p: p.stat().st_mtime_ns for p in (out / "rescore").glob("*/seed_*/summary.json")}
    again = tune(rescored["options"].__class__(**{**rescored["options"].__dict__, "trials": 0}))
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing retrained
    assert again["best"]["number"] == rescored["result"]["best"]["number"]


def test_rescoring_is_refused_with_cv(data: dict[str, Path], tmp_path: Path) -> None:
    inputs = Inputs(train=data["train"], cv=3)
    with pytest.raises(ConfigError, match="--rescore trains the front-runners"):
        tune(classify_options(data, tmp_path / "s", inputs=inputs, rescore=2))


def test_the_search_leaves_the_time_the_rescoring_needs(tmp_path: Path) -> None:
    """seconds_needed: each candidate's seconds per seed times the seeds it still lacks."""
    space = Space((Param("train.lr", "float", 1e-3, 0.3, log=True),), "space.toml")
    study = optuna.create_study(direction="maximize")
    cfg = cfgmod.to_dict(tasks.resolve("classify", None, []))
    dist = {"train.lr": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True)}
    for value, seconds in ((0.7, 30.0), (0.8, 60.0), (0.6, 90.0)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"train.lr": 0.01},
                distributions=dist,
                value=value,
                user_attrs={"config": cfg, "seconds": seconds},
            )
        )
    plan = Plan("classify", space, None, {}, Inputs(), "dev.accuracy", "maximize", tmp_path)
    plan.trial_seeds, plan.rescore, plan.rescore_seeds = 3, 2, 4
    # the 2 best: 60 s and 30 s for 3 seeds, so 20 and 10 s a seed, 4 fresh seeds each
    assert rescoremod.seconds_needed(study, plan) == pytest.approx(4 * 20 + 4 * 10)
    seed = cfg["train"]["seed"] + 3
    done = rescoremod.run_dir(tmp_path, 1, seed)
    done.mkdir(parents=True)
    (done / "summary.json").write_text(json.dumps({"dev": {"accuracy": 0.8}}), encoding="utf-8")
    assert rescoremod.seconds_needed(study, plan) == pytest.approx(3 * 20 + 4 * 10)


def test_the_report_shows_the_rescoring(rescored: dict[str, Any]) -> None:
    from ffnlp.report.study import study_page
    from ffnlp.report.studyfolder import read_study

    out: Path = rescored["out"]
    study = read_study(out)
    table = json.loads((out / "rescore.json").read_text(encoding="utf-8"))
    assert study.best is not None and study.best.number == table["best"]
    page = study_page(study, out / "report.html")
    section = page[page.index("id='rescore'") :]
    for row in table["candidates"]:
        assert f"<td>{row['number']}</td><td>{row['search_value']:.4f} (1)</td>" in section
    assert section.count("<td>chosen") == 1 and "base</td>" in section
    assert f"Chosen: trial {table['best']}, {html.escape(table['why'])}" in section


def row(number: int, values: list[float], base: bool = False) -> dict[str, Any]:
    return {"number": number, "base": base, "values": values, "value": statistics.fmean(values)}


def test_a_candidate_replaces_the_base_only_when_it_beats_it_on_the_same_seeds() -> None:
    base = row(0, [0.80, 0.81, 0.79, 0.80, 0.82], base=True)
    tied = row(7, [0.81, 0.80, 0.80, 0.79, 0.83])  # a better mean (+0.002), by noise
    best, why = rescoremod.choose([tied, base], "maximize")
    assert best == 0 and "the base is kept" in why
    assert 0.05 < tied["p_vs_base"] < 1 and base["p_vs_base"] is None
    clear = row(9, [0.82, 0.83, 0.81, 0.81, 0.84])  # better on every seed, by 0.01 to 0.02
    best, why = rescoremod.choose([tied, clear, base], "maximize")
    assert best == 9 and clear["p_vs_base"] < 0.05 and "beat the base" in why
    # perplexity: lower is better
    low = row(3, [140.0, 141.0, 139.5, 140.2, 140.9])
    lm_base = row(0, [142.0, 142.5, 141.0, 142.2, 143.0], base=True)
    assert rescoremod.choose([lm_base, low], "minimize")[0] == 3
    assert rescoremod.choose([low, lm_base], "maximize")[0] == 0


def test_without_a_base_or_a_second_seed_the_best_mean_is_chosen() -> None:
    a, b = row(1, [0.80, 0.81]), row(2, [0.81, 0.81])
    assert rescoremod.choose([a, b], "maximize") == (2, "the best mean over the fresh seeds")
    one = [row(0, [0.80], base=True), row(5, [0.805])]
    assert rescoremod.choose(one, "maximize")[0] == 5
    # the same gain on every seed has no spread: a certain improvement, not an undefined test
    steady = [row(0, [0.80, 0.81], base=True), row(4, [0.81, 0.82])]
    assert rescoremod.choose(steady, "maximize")[0] == 4 and steady[1]["p_vs_base"] == 0.0
