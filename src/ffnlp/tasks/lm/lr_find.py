"""``find_lr`` for the feed-forward LM: the range test (:mod:`ffnlp.tasks.lr_find`) on the
network ``train_lm`` starts from (same vocabulary, id stream, windows, model and seed).

>>> find_lr("ptb.train.txt.gz", config="ptb_lm")["suggested_lr"]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.tasks.lm.config import LMConfig, resolve_config
from ffnlp.tasks.lm.result import load
from ffnlp.tasks.lm.train import batch_source, fresh_network, vocabulary
from ffnlp.tasks.lr_find import RangeTest
from ffnlp.tasks.run import Run
from ffnlp.text.corpus import encode_corpus
from ffnlp.training.data import BatchSource


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


find_lr = RangeTest("lm", resolve_config, _network, _trained)
"""``find_lr(train, config=None, overrides=(), seed=None, lr_min=1e-6, lr_max=1.0, steps=100,
**settings)`` for the feed-forward LM: see :meth:`ffnlp.tasks.lr_find.RangeTest.__call__`."""
