"""The lm task's configuration: which kind of model, its sections, and how to resolve them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.models.lm import FFLMConfig
from ffnlp.text.corpus import CorpusConfig
from ffnlp.training import TrainConfig

KINDS = ("ffnn", "kneser_ney")


@dataclass(frozen=True)
class KNConfig:
    order: int = option(
        5, "n-gram order (2-5 are usual; 5 is the classic PTB baseline)", ge=1, le=9
    )


MAX_CACHE_ORDER = 5


@dataclass(frozen=True)
class CacheConfig:
    size: int = option(
        0,
        "a cache (Kuhn & De Mori 1990): each word's probability is mixed with its share of the "
        "last `size` words of the text being scored, p = (1 - w) p_model + w count(word) / size "
        "(and with n-gram caches of that window: see order); 0 = none. Words of a text recur "
        "(names, topics): on PTB a cache of 200 lowers the perplexity of the feed-forward LMs "
        "by about a tenth",
        ge=0,
        le=100_000,
    )
    weight: float = option(
        0.1,
        "w, the cache's share (split evenly over its orders): fitted on --dev at the end of "
        "training (and by `lm eval --dev`) when there is one, each order's share apart; this "
        "value otherwise",
        ge=0,
        lt=1,
    )
    decay: float = option(
        1.0,
        "weigh the word k back by decay^(k-1) in the cache's counts (1: every word of the last "
        "`size` alike); recent words then count more",
        gt=0,
        le=1,
    )
    skip: int = option(
        0,
        "leave </s> and the `skip` most frequent words of the training vocabulary out of the "
        "unigram cache (neither counted nor predicted by it: the model predicts them well "
        "already; the n-gram caches of order 2 and up keep them); 0: none left out",
        ge=0,
    )
    order: int = option(
        1,
        "the cache's n-gram order: 1, the unigram cache alone; 2 adds a bigram cache (of the "
        "positions in the window that follow the word just read, the share holding the word), "
        "3 a trigram cache (those that follow the last two words), and so on; each order its own "
        "share, fitted together, a cache with nothing to say giving its share back to the others",
        ge=1,
        le=MAX_CACHE_ORDER,
    )


def _lm_train_defaults() -> TrainConfig:
    return TrainConfig(batch_size=512, monitor="dev.perplexity", log_every=200)


@dataclass(frozen=True)
class LMConfig:
    kind: str = option(
        "ffnn", "ffnn (the neural model) or kneser_ney (the n-gram baseline)", choices=KINDS
    )
    interpolate_with: str = option(
        "", "run directory of another LM (same vocabulary) to mix with, weight fitted on dev"
    )
    eval_batch_size: int = option(4096, "windows per batch when computing perplexity", ge=1)
    samples: int = option(3, "sentences sampled into summary.json after training", ge=0)
    data: CorpusConfig = section(CorpusConfig)
    model: FFLMConfig = section(FFLMConfig)
    kneser_ney: KNConfig = section(KNConfig)
    cache: CacheConfig = section(CacheConfig)
    train: TrainConfig = field(default_factory=_lm_train_defaults)


def resolve_config(
    config: LMConfig | str | Path | dict[str, Any] | None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    **settings: Any,
) -> LMConfig:
    """Defaults -> TOML file or dict -> ``overrides`` (settings: {"train.lr": 0.1}, or the
    ``["train.lr=0.1"]`` text of --set) -> keyword settings, validated."""
    return cfgmod.resolve(LMConfig, config, overrides, **settings)
