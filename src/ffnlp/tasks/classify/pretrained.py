"""Pretrained word vectors ([model.pooled] pretrained) copied into a classifier's id table.

Words of the vocabulary that the file holds get their vector; the others a random vector at the
file's scale (or zeros, by model.pooled.oov_init); n-gram buckets keep their random init. The
coverage goes into summary.json under ``embeddings``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models.pooled import PooledConfig
from ffnlp.tasks.classify.config import ClassifyConfig, model_config
from ffnlp.tasks.classify.data import Featurizer, IdsFeaturizer
from ffnlp.text.vocab import Vocab


@runtime_checkable
class TakesVectors(Protocol):
    """A model whose input table can be filled with word vectors (the pooled classifier)."""

    def load_vectors(self, rows: torch.Tensor, vectors: torch.Tensor) -> None: ...

    def check_vector_dim(self, dim: int, source: str = ...) -> None: ...


def load_pretrained(
    model: nn.Module, cfg: ClassifyConfig, featurizer: Featurizer
) -> dict[str, Any] | None:
    """Fill ``model``'s rows of the vocabulary from the file of model.pooled.pretrained (for the
    model types that read [model.pooled]); return the coverage, or None without a file."""
    p = getattr(model_config(cfg.model), "pooled", None)
    if not isinstance(p, PooledConfig) or not p.pretrained:
        return None
    if not isinstance(model, TakesVectors) or not isinstance(featurizer, IdsFeaturizer):
        raise ConfigError(
            f"model.pooled.pretrained needs a model with an embedding table over word ids "
            f"(features.kind = 'ids'); model.type = {cfg.model.type!r} has none"
        )
    from ffnlp.features.embeddings import load_vectors

    words, vectors = load_vectors(p.pretrained, format=p.pretrained_format)
    model.check_vector_dim(int(vectors.shape[1]), str(p.pretrained))
    vocab = featurizer.fitted_vocab()
    index = {w: i for i, w in enumerate(words)}
    table = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))  # (W, D)
    found = fill_rows(model, vocab, index, table, p.oov_init)
    tokens_total = sum(vocab.counts) or 1
    tokens_found = sum(c for w, c in zip(vocab.itos, vocab.counts, strict=True) if w in index)
    return {
        "file": str(p.pretrained),
        "vectors": len(words),
        "dim": int(vectors.shape[1]),
        "vocab": len(vocab),
        "found": found,
        "missing": len(vocab) - found,
        "type_coverage": found / max(len(vocab), 1),
        "token_coverage": tokens_found / tokens_total,
    }


def fill_rows(
    model: TakesVectors, vocab: Vocab, index: dict[str, int], table: torch.Tensor, oov_init: str
) -> int:
    """Rows 0..len(vocab)-1 of the model's table from ``table`` (W, D) where ``index`` has the
    word; the rest by ``oov_init``. Returns how many words were found."""
    rows = [(r, index[w]) for r, w in enumerate(vocab.itos) if w in index]
    oov = torch.ones(len(vocab), dtype=torch.bool)
    if rows:
        r, i = (torch.tensor(c) for c in zip(*rows, strict=True))
        model.load_vectors(r, table[i])
        oov[r] = False
    if oov.any():
        missing = oov.nonzero().squeeze(1)  # (M,)
        if oov_init == "zeros":
            model.load_vectors(missing, torch.zeros(len(missing), table.shape[1]))
        else:  # same mean and spread as the file, so unknown words do not stand out
            mean, std = table.mean(0), table.std(0)  # (D,)
            model.load_vectors(missing, mean + std * torch.randn(len(missing), table.shape[1]))
    return len(rows)
