"""A fourth task, written as a user adds one: least-squares regression of a number on a few
numbers. Its config, its model, its recipe and its trained object are in this file; the
``register_task`` line in ``__init__.py`` makes it known to ffnlp. Nothing in ffnlp names it:
``ffnlp.load``, ``repeat``, ``tune`` and ``report`` reach it through the task registry.

A data file has one example a line: the target, then the inputs, separated by spaces
(``1.5 0.2 -0.3``); every line has the same number of inputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.errors import DataError
from ffnlp.folders.folder import read_arch, read_summary, run_path
from ffnlp.models.io import load_model, save_model
from ffnlp.models.registry import register
from ffnlp.tasks.request import RunKeywords, Unpack
from ffnlp.tasks.run import (
    finish_run,
    fit,
    start_run,
    training_summary,
)
from ffnlp.tasks.runfolder import expect_task, read_config
from ffnlp.training import TrainConfig
from ffnlp.training.data import TensorBatches

TASK = "toy_regression"


@dataclass(frozen=True)
class ToyModelConfig:
    hidden: int = option(0, "tanh hidden units before the output (0: a linear model)", ge=0)


def _train_defaults() -> TrainConfig:
    return TrainConfig(epochs=5, batch_size=8, lr=0.05, monitor="dev.loss")


@dataclass(frozen=True)
class ToyConfig:
    model: ToyModelConfig = section(ToyModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)


def resolve_config(config: Any, overrides: Iterable[str] = (), **settings: Any) -> ToyConfig:
    return cfgmod.resolve(ToyConfig, config, overrides, **settings)


@register("toy_regressor")
class ToyRegressor(nn.Module):
    """Inputs (B, F) -> [tanh hidden (B, H)] -> prediction (B,); loss: mean squared error."""

    def __init__(self, num_inputs: int, hidden: int = 0) -> None:
        super().__init__()
        width = hidden or num_inputs
        self.hidden = nn.Linear(num_inputs, hidden) if hidden else None
        self.out = nn.Linear(width, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["x"]  # (B, F)
        if self.hidden is not None:
            x = torch.tanh(self.hidden(x))  # (B, H)
        return self.out(x).squeeze(-1)  # (B,)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.mse_loss(self(batch), batch["y"])


def read_examples(path: str | Path) -> dict[str, torch.Tensor]:
    """{"x": (N, F), "y": (N,)} of a data file; a DataError names the file and line."""
    rows: list[list[float]] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                values = [float(v) for v in line.split()]
            except ValueError:
                raise DataError(f"{path}, line {number}: not a list of numbers") from None
            if len(values) < 2 or (rows and len(values) != len(rows[0])):
                raise DataError(f"{path}, line {number}: a target and the same inputs expected")
            rows.append(values)
    if not rows:
        raise DataError(f"{path} is empty")
    data = torch.tensor(rows, dtype=torch.float32)  # (N, 1+F)
    return {"x": data[:, 1:], "y": data[:, 0]}


@torch.no_grad()
def figures(model: nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
    """loss (mean squared error) and r2 (the share of the target's variance explained)."""
    prediction = model(data)  # (N,)
    mse = float(nn.functional.mse_loss(prediction, data["y"]))
    variance = float(data["y"].var(unbiased=False))
    return {"loss": mse, "r2": 1.0 - mse / variance if variance > 0 else 0.0}


@dataclass
class ToyRun:
    """The trained object: the model, its configuration and the run's figures."""

    model: ToyRegressor
    config: ToyConfig
    run_dir: Path | None
    summary: dict[str, Any]

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        with torch.no_grad():
            return self.model({"x": torch.tensor(rows, dtype=torch.float32)}).tolist()

    def evaluate(self, path: str | Path) -> dict[str, float]:
        self.model.eval()
        return figures(self.model, read_examples(path))


def train_toy(
    train: str | Path,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    config: Any = None,
    **keywords: Unpack[RunKeywords],
) -> ToyRun:
    """The recipe: the shared run steps around a least-squares model."""
    files = {"--train": train, "--dev": dev, "--test": test}
    with start_run(TASK, resolve_config, config, keywords, inputs=files, continues=False) as run:
        cfg = run.config
        started = time.perf_counter()
        splits = {"dev": dev, "test": test}
        data = {name: read_examples(path) for name, path in splits.items() if path is not None}
        train_data = read_examples(train)
        args = {"num_inputs": int(train_data["x"].shape[1]), "hidden": cfg.model.hidden}
        model = run.seeded(ToyRegressor, **args)
        prep_seconds = time.perf_counter() - started
        dev_source = TensorBatches(data["dev"]) if "dev" in data else None
        trainer = fit(
            model,
            cfg.train,
            TensorBatches(train_data),
            dev_source,
            None,
            run.callbacks,
            run.dir,
            run.resume,
        )
        model.eval()
        summary = training_summary(TASK, trainer, prep_seconds)
        if "dev" in data:
            summary["dev"] = figures(model, data["dev"])
        if "test" in data:
            summary["test"] = figures(model, data["test"])
        save_model(model, run.dir, TASK, args)
        done = finish_run(run.dir, summary, trainer.history.records, metric="loss")
        return ToyRun(model, cfg, run.final_dir, dict(done))


def load(run_dir: str | Path) -> ToyRun:
    """A finished toy run, every file checked."""
    run_dir = run_path(run_dir)
    expect_task(run_dir, read_arch(run_dir), TASK)
    model, _ = load_model(run_dir, task=TASK)
    assert isinstance(model, ToyRegressor)
    model.eval()
    cfg = read_config(run_dir, resolve_config, TASK)
    return ToyRun(model, cfg, run_dir, read_summary(run_dir))
