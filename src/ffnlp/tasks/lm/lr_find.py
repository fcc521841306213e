"""``find_lr``: the learning-rate range test on the language model a configuration would train.

The network is the one ``train_lm`` starts from (same vocabulary, id stream, windows, model and
seed: the recipe's own steps), and the test runs the configured optimiser on it
(:func:`ffnlp.inspect.diagnostics.lr_range_test`). Nothing is written: no run directory, no
weights, no corpus cache.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.inspect.diagnostics import lr_range_test
from ffnlp.runtime import prepare_process
from ffnlp.tasks.lm.config import LMConfig, resolve_config
from ffnlp.tasks.lm.result import load
from ffnlp.tasks.lm.train import batch_source, fresh_network, vocabulary
from ffnlp.text.corpus import encode_corpus
from ffnlp.threads import set_threads_for


def find_lr(
    train: str | Path,
    config: LMConfig | str | Path | dict[str, Any] | None = None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    seed: int | None = None,
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    steps: int = 100,
    **settings: Any,
) -> dict[str, Any]:
    """Sweep the learning rate from ``lr_min`` to ``lr_max`` over ``steps`` training batches of
    the feed-forward LM; the curve, the suggestion, ``config_lr`` and ``optimizer``.

    >>> find_lr("ptb.train.txt.gz", config="ptb_lm")["suggested_lr"]  # doctest: +SKIP
    """
    if seed is not None:
        settings["train.seed"] = seed
    cfg = resolve_config(config, cfgmod.settings_of(overrides, "overrides", "find_lr"), **settings)
    if cfg.kind != "ffnn":
        raise ConfigError(
            f'kind = "{cfg.kind}" is fitted by counting, with no learning rate to find; '
            'lr-find is for kind = "ffnn"'
        )
    prepare_process(cfg.train.threads)
    partner = load(cfg.interpolate_with, standalone=True) if cfg.interpolate_with else None
    vocab = vocabulary(cfg, train, partner)
    source = batch_source(cfg, vocab, encode_corpus(train, vocab, cfg.data))
    model = fresh_network(cfg, vocab)
    set_threads_for(cfg.train.threads, model, cfg.train.batch_size)  # "auto": fits the model
    result = lr_range_test(model, cfg.train, source, lr_min, lr_max, steps)
    return {**result, "config_lr": cfg.train.lr, "optimizer": cfg.train.optimizer}
