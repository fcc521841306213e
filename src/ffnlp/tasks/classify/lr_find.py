"""``find_lr`` for the classifier: the range test (:mod:`ffnlp.tasks.lr_find`) on the model
``train_classifier`` starts from (same splits reader, featurizer, model builder,
initialisation, pretrained vectors and seed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from ffnlp import config as cfgmod
from ffnlp.tasks import lr_find
from ffnlp.tasks.classify.config import ClassifyConfig, check_features, resolve_config
from ffnlp.tasks.classify.train import Split, fresh_model, prepare, read_splits
from ffnlp.tasks.run import Run
from ffnlp.training.data import BatchSource


def find_lr(
    train: Split,
    config: ClassifyConfig | str | Path | dict[str, Any] | None = None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    seed: int | None = None,
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    steps: int = 100,
    **settings: Any,
) -> dict[str, Any]:
    """Sweep the learning rate from ``lr_min`` to ``lr_max`` over ``steps`` training batches.

    Returns the curve and the suggestion of :func:`~ffnlp.inspect.diagnostics.lr_range_test`,
    plus ``config_lr`` (the configuration's train.lr) and ``optimizer``.

    >>> result = find_lr("train.txt", config="sst2_ffnn")   # doctest: +SKIP
    >>> result["suggested_lr"]                                          # doctest: +SKIP
    """
    sweep = (lr_min, lr_max, steps)
    return lr_find.find_lr(HOOKS, train, config, overrides, seed, sweep, settings)


def _model(run: Run, train: Split) -> tuple[nn.Module, BatchSource]:
    cfg = run.config
    prepared = prepare(cfg, read_splits(cfg, train, None, None))
    model, _, _ = run.seeded(fresh_model, cfg, prepared)
    return model, prepared.train


HOOKS = lr_find.Hooks("classify", resolve_config, _model, check_features)
