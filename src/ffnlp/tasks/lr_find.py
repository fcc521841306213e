"""``find_lr``: the learning-rate range test on the model a configuration would train.

One implementation for every task: the configuration is resolved and checked as training does,
the process prepared, and the task's hook reads the data and builds the model the recipe would
start from (same reader, featurizer or vocabulary, model builder, initialisation and seed:
``run.seeded``, as in the recipe); then the test runs the configured optimiser on it
(:func:`ffnlp.inspect.diagnostics.lr_range_test`). Nothing is written: no run directory, no
weights, no cache. Each task's ``find_lr`` (``ffnlp.tasks.classify.lr_find``,
``ffnlp.tasks.lm.lr_find``) is this with its hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ffnlp import config as cfgmod
from ffnlp.inspect.diagnostics import lr_range_test
from ffnlp.tasks.run import Run, dry_run
from ffnlp.threads import set_threads_for
from ffnlp.training.data import BatchSource

Build = Callable[[Run, Any], tuple[nn.Module, BatchSource]]
"""A task's hook: (the run, the training data) -> the model training starts from, built through
``run.seeded``, and the batches of the training data."""


@dataclass(frozen=True)
class Hooks:
    """What the range test needs of a task."""

    task: str
    resolve: Callable[..., Any]  # the task's resolve_config
    build: Build
    check: Callable[[Any], None] | None = None  # the task's check of a resolved configuration


def find_lr(
    hooks: Hooks,
    train: Any,
    config: Any,
    overrides: cfgmod.Settings | Iterable[str],
    seed: int | None,
    sweep: tuple[float, float, int],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Sweep the learning rate over ``sweep`` = (lr_min, lr_max, steps) training batches of the
    model ``hooks.build`` makes; the curve and the suggestion of
    :func:`~ffnlp.inspect.diagnostics.lr_range_test`, plus ``config_lr`` (the configuration's
    train.lr) and ``optimizer``."""
    lr_min, lr_max, steps = sweep
    with dry_run(
        hooks.task, hooks.resolve, config, overrides, settings, seed, hooks.check, owner="find_lr"
    ) as run:
        cfg = run.config
        model, source = hooks.build(run, train)
        set_threads_for(cfg.train.threads, model, cfg.train.batch_size)  # "auto": fits the model
        result = lr_range_test(model, cfg.train, source, lr_min, lr_max, steps)
    return {**result, "config_lr": cfg.train.lr, "optimizer": cfg.train.optimizer}
