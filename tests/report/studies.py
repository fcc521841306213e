"""Study folders as `ffnlp tune` writes them (the layout of docs/tuning.md), made directly with
Optuna: a few real tiny classifier runs as trials, plus synthetic complete, pruned and failed
trials whose run folders hold only what a reduced trial keeps."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import ffnlp
from tests.extras import needs

optuna = needs("optuna")

METRIC = "dev.accuracy"
SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    "train.batch_size": {"type": "int", "low": 8, "high": 64, "log": True},
    "train.optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
}


def _distributions() -> dict[str, Any]:
    d = optuna.distributions
    return {
        "train.lr": d.FloatDistribution(1e-3, 0.3, log=True),
        "train.batch_size": d.IntDistribution(8, 64, log=True),
        "train.optimizer": d.CategoricalDistribution(["adam", "sgd"]),
    }


def _records(values: list[float], steps_per_epoch: int = 7) -> list[dict[str, Any]]:
    """metrics.jsonl records of a run evaluated once an epoch."""
    return [
        {
            "event": "epoch",
            "epoch": i + 1,
            "step": (i + 1) * steps_per_epoch,
            "train": {"loss": 0.7 - 0.05 * i},
            "lr": 0.01,
            "examples_per_second": 1000.0,
            "seconds": 0.01,
            "dev": {"loss": 0.7 - 0.04 * i, "accuracy": v},
        }
        for i, v in enumerate(values)
    ]


def _write_run(run: Path, values: list[float], config: str) -> None:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in _records(values)), encoding="utf-8"
    )
    summary = {"task": "classify", "dev": {"accuracy": values[-1]}, "train_seconds": 0.1}
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (run / "config.toml").write_text(config, encoding="utf-8")


def make_study(
    folder: Path,
    data: dict[str, Path] | None = None,
    real: int = 2,
    complete: int = 3,
    pruned: int = 2,
    failed: int = 0,
    csv_file: bool = True,
) -> Path:
    """A study folder in ``folder``; ``real`` trials are trained on ``data`` (write_sample's files)."""
    folder.mkdir(parents=True)
    storage = f"sqlite:///{folder.resolve()}/study.db"
    info = {
        "kind": "study",
        "task": "classify",
        "metric": METRIC,
        "direction": "maximize",
        "study_name": "test-study",
        "storage": storage,
        "space": SPACE,
        "base_config": None,
        "sampler": {"type": "tpe", "seed": 0},
        "pruner": {"type": "median"},
        "command": ["ffnlp", "tune", "classify", "--space", "space.toml", "--out", str(folder)],
        "ffnlp_version": ffnlp.__version__,
    }
    (folder / "tune.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="test-study",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    config = "[train]\nepochs = 2\n"
    plan = ["real"] * real + ["complete"] * complete + ["pruned"] * pruned + ["failed"] * failed
    for i, kind in enumerate(plan):
        trial = study.ask(_distributions())
        run = folder / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", f"trials/{trial.number:04d}")
        if kind == "real":
            assert data is not None
            overrides = [f"{k}={v}" for k, v in trial.params.items()]
            result = ffnlp.train_classifier(
                data["train"],
                dev=data["dev"],
                out=run,
                overrides=[*overrides, "train.epochs=2"],
            )
            config = (run / "config.toml").read_text(encoding="utf-8")
            records = [
                json.loads(line)
                for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
            ]
            for r in records:
                if r.get("dev"):
                    trial.report(r["dev"]["accuracy"], r["step"])
            trial.set_user_attr("seconds", result.summary["train_seconds"])
            trial.set_user_attr("summary", {"dev": result.summary["dev"]})
            study.tell(trial, result.summary["dev"]["accuracy"])
        elif kind == "complete":
            values = [0.5 + 0.02 * i, 0.55 + 0.03 * i, 0.56 + 0.03 * i]
            _write_run(run, values, config)
            for step, v in enumerate(values, start=1):
                trial.report(v, step * 7)
            trial.set_user_attr("seconds", 0.5 + i)
            study.tell(trial, values[-1])
        elif kind == "pruned":
            values = [0.3 + 0.01 * i]
            _write_run(run, values, config)
            trial.report(values[0], 7)
            trial.set_user_attr("seconds", 0.2)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    if csv_file:
        write_trials_csv(folder, study)
    if study.trials and any(t.state.name == "COMPLETE" for t in study.trials):
        best = folder / study.best_trial.user_attrs["run_dir"] / "config.toml"
        shutil.copyfile(best, folder / "best.toml")
    return folder


def write_trials_csv(folder: Path, study: Any) -> None:
    names = list(SPACE)
    with (folder / "trials.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "state", "value", "seconds", *(f"params_{n}" for n in names)])
        for t in study.trials:
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    "" if t.value is None else t.value,
                    t.user_attrs.get("seconds", ""),
                    *(t.params.get(n, "") for n in names),
                ]
            )
