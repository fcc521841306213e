"""``find_lr``: the learning-rate range test on the model a configuration would train.

One implementation for every task: the configuration is resolved and checked as training does,
the process prepared, and the task's hook reads the data and builds the model the recipe would
start from (same reader, featurizer or vocabulary, model builder, initialisation and seed:
``run.seeded``, as in the recipe); then the test runs the configured optimiser on it
(:func:`ffnlp.inspect.diagnostics.lr_range_test`). Nothing is written: no run directory, no
weights, no cache. Each task's ``find_lr`` (``ffnlp.tasks.classify.lr_find``,
``ffnlp.tasks.lm.lr_find``) is a :class:`RangeTest` with its hook::

    find_lr(train, config=None, overrides=(), seed=None, lr_min=1e-6, lr_max=1.0, steps=100,
            **settings) -> dict   # curve, suggested_lr, config_lr, optimizer
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ffnlp import config as cfgmod
from ffnlp.inspect.diagnostics import lr_range_test
from ffnlp.tasks.request import request
from ffnlp.tasks.run import Run, dry_run
from ffnlp.threads import set_threads_for
from ffnlp.training.data import BatchSource

Build = Callable[[Run, Any], tuple[nn.Module, BatchSource]]
"""A task's hook: (the run, the training data) -> the model training starts from, built through
``run.seeded``, and the batches of the training data."""


@dataclass(frozen=True)
class RangeTest:
    """A task's ``find_lr``: what the range test needs of the task, and the test itself
    (``find_lr = RangeTest("lm", resolve_config, build, check)`` is the task's public
    function)."""

    task: str
    resolve: Callable[..., Any]  # the task's resolve_config
    build: Build
    check: Callable[[Any], None] | None = None  # the task's check of a resolved configuration

    def __call__(
        self,
        train: Any,
        config: Any = None,
        overrides: cfgmod.Settings | Iterable[str] = (),
        seed: int | None = None,
        lr_min: float = 1e-6,
        lr_max: float = 1.0,
        steps: int = 100,
        **settings: Any,
    ) -> dict[str, Any]:
        """Sweep the learning rate from ``lr_min`` to ``lr_max`` over ``steps`` training
        batches of the model the task's recipe would start from (``config``, ``overrides``,
        ``seed`` and keyword settings as the recipe takes them). Returns the curve and the
        suggestion of :func:`~ffnlp.inspect.diagnostics.lr_range_test`, plus ``config_lr``
        (the configuration's train.lr) and ``optimizer``."""
        keywords = {**settings, "overrides": overrides, "seed": seed}
        # of the run keywords, a range test takes these ("force" changes nothing here)
        asked = request(
            self.task, config, keywords, "find_lr", accepted=("overrides", "seed", "force")
        )
        with dry_run(asked, self.resolve, self.check) as run:
            cfg = run.config
            model, source = self.build(run, train)
            # "auto": a thread count that fits the model
            set_threads_for(cfg.train.threads, model, cfg.train.batch_size)
            result = lr_range_test(model, cfg.train, source, lr_min, lr_max, steps)
        return {**result, "config_lr": cfg.train.lr, "optimizer": cfg.train.optimizer}
