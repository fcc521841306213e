"""The same configuration trained with several seeds: mean, sd and 95% CI of every final figure."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.experiments.stats import describe, is_figure
from ffnlp.folders.folder import write_summary
from ffnlp.folders.groups import group_folder
from ffnlp.folders.layout import CHECKPOINT_DIR, WEIGHTS
from ffnlp.tasks import registry
from ffnlp.training.config import MAX_SEED

if TYPE_CHECKING:
    from ffnlp.training.callbacks import Callback

SPLITS = ("dev", "test")


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if is_figure(v)}


def _train_fn(task: str) -> Callable[..., Any]:
    spec = registry.find(task)
    if spec is None or not spec.scored_splits:
        known = registry.listed([t.name for t in registry.specs() if t.scored_splits])
        raise ConfigError(f"repeat supports the tasks {known}; got {task!r}")
    return spec.train


def check_seeds(seeds: Sequence[int]) -> None:
    """ConfigError unless ``seeds`` are one or more distinct seeds that torch accepts."""
    if not seeds:
        raise ConfigError("repeat needs at least one seed")
    bad = [
        s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED
    ]
    if bad:
        raise ConfigError(f"a seed is a whole number from 0 to {MAX_SEED}; got {bad[0]!r}")
    twice = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if twice:
        raise ConfigError(
            f"seed {twice[0]} is given twice; each seed is trained once (into seed_{twice[0]})"
        )


def repeat(
    task: str,
    train: str | Path,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    config: Any = None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    out: str | Path | None = None,
    keep_models: bool = False,
    on_run: Callable[[int, dict[str, Any]], None] | None = None,
    callbacks: Sequence[Callback] = (),
    tensorboard: str | Path | None = None,
) -> dict[str, Any]:
    """Train once per seed (each run in ``out/seed_N``); write and return the aggregate summary.

    ``on_run(seed, row)`` is called after each run; ``callbacks`` are handed to every run's trainer
    (e.g. a progress display); ``tensorboard``: a folder where each seed's run writes its
    TensorBoard scalars, into ``seed_N`` (TensorBoard shows them as separate runs).

    ``overrides`` are settings for every run ({"train.epochs": 5}, or the ``["train.epochs=5"]``
    text of --set); each run's ``train.seed`` is its seed.

    ``summary["repeat"]["test"]["accuracy"]`` is ``{"mean", "sd", "ci95": [lo, hi], "n", "values"}``.
    """
    check_seeds(seeds)
    sets = cfgmod.settings_of(overrides, "overrides", "repeat")
    fit = _train_fn(task)
    with group_folder(out, f"{task}-repeat") as run_dir:
        figures: dict[str, dict[str, list[float]]] = {}
        runs = []
        for seed in seeds:
            seed_dir = run_dir / f"seed_{seed}"
            result = fit(
                train,
                dev=dev,
                test=test,
                config=config,
                overrides=cfgmod.merge(
                    sets, cfgmod.tensorboard_settings(tensorboard, f"seed_{seed}")
                ),
                seed=seed,
                out=seed_dir,
                callbacks=callbacks,
            )
            summary = result.summary
            row: dict[str, Any] = {
                "seed": seed,
                "train_seconds": summary.get("train_seconds"),
                "epochs": summary.get("epochs"),
                "best_epoch": summary.get("best_epoch"),
            }
            for split in SPLITS:
                if isinstance(summary.get(split), dict):
                    numbers = _numbers(summary[split])
                    row[split] = numbers
                    for name, value in numbers.items():
                        figures.setdefault(split, {}).setdefault(name, []).append(value)
            figures.setdefault("train", {}).setdefault("seconds", []).append(
                float(summary["train_seconds"])
            )
            runs.append(row)
            if not keep_models:
                (seed_dir / WEIGHTS).unlink(missing_ok=True)
                shutil.rmtree(seed_dir / CHECKPOINT_DIR, ignore_errors=True)
            if on_run is not None:
                on_run(seed, row)
        aggregate = {
            split: {name: describe(vals) for name, vals in metrics.items()}
            for split, metrics in figures.items()
        }
        result = {"task": f"{task}-repeat", "seeds": list(seeds), "repeat": aggregate, "runs": runs}
        write_summary(run_dir, result)
    result["run_dir"] = str(run_dir)
    return result
