"""``find_lr`` for the feed-forward LM: the range test (:mod:`ffnlp.tasks.lr_find`) on the
network ``train_lm`` starts from (same vocabulary, id stream, windows, model and seed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.tasks import lr_find
from ffnlp.tasks.lm.config import LMConfig, resolve_config
from ffnlp.tasks.lm.result import load
from ffnlp.tasks.lm.train import batch_source, fresh_network, vocabulary
from ffnlp.tasks.run import Run
from ffnlp.text.corpus import encode_corpus
from ffnlp.training.data import BatchSource


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
    sweep = (lr_min, lr_max, steps)
    return lr_find.find_lr(HOOKS, train, config, overrides, seed, sweep, settings)


def _trained(cfg: LMConfig) -> None:
    if cfg.kind != "ffnn":
        raise ConfigError(
            f'kind = "{cfg.kind}" is fitted by counting, with no learning rate to find; '
            'lr-find is for kind = "ffnn"'
        )


def _network(run: Run, train: str | Path) -> tuple[nn.Module, BatchSource]:
    cfg = run.config
    partner = load(cfg.interpolate_with, standalone=True) if cfg.interpolate_with else None
    vocab = vocabulary(cfg, train, partner)
    source = batch_source(cfg, vocab, encode_corpus(train, vocab, cfg.data))
    return run.seeded(fresh_network, cfg, vocab), source


HOOKS = lr_find.Hooks("lm", resolve_config, _network, _trained)
