"""``find_lr``: the learning-rate range test on the classifier a configuration would train.

The model is the one ``train_classifier`` starts from (same splits reader, featurizer, model
builder, initialisation, pretrained vectors and seed: the recipe's own steps), and the test runs
the configured optimiser on it (:func:`ffnlp.inspect.diagnostics.lr_range_test`). Nothing is
written: no run directory, no weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.inspect.diagnostics import lr_range_test
from ffnlp.runtime import prepare_process
from ffnlp.tasks.classify.config import ClassifyConfig, check_features, resolve_config
from ffnlp.tasks.classify.train import Split, fresh_model, prepare, read_splits
from ffnlp.threads import set_threads_for


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
    if seed is not None:
        settings["train.seed"] = seed
    cfg = resolve_config(config, cfgmod.settings_of(overrides, "overrides", "find_lr"), **settings)
    check_features(cfg)
    prepare_process(cfg.train.threads)
    prepared = prepare(cfg, read_splits(cfg, train, None, None))
    model, _, _ = fresh_model(cfg, prepared)
    set_threads_for(cfg.train.threads, model, cfg.train.batch_size)  # "auto": fits the model
    result = lr_range_test(model, cfg.train, prepared.train, lr_min, lr_max, steps)
    return {**result, "config_lr": cfg.train.lr, "optimizer": cfg.train.optimizer}
