"""word2vec's configuration: the ``[corpus]``, ``[model]``, ``[evaluation]`` and ``[train]`` sections.

The defaults are gensim's ``Word2Vec(sg=1)``: 100 dimensions, windows up to 5, 5 noise words per
pair, min_count 5, subsampling at 1e-3, 5 epochs of plain SGD from 0.025 down to 0.0001.
``model.type = "fasttext"`` adds fastText's character n-grams (``minn``..``maxn``, hashed into
``buckets`` rows; fastText's and gensim's defaults 3, 6 and 2,000,000).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.features.subwords import check_subword_settings
from ffnlp.threads import thread_problem
from ffnlp.training import TrainConfig


@dataclass(frozen=True)
class CorpusConfig:
    encoding: str = option("utf-8", "text encoding of the corpus")
    lowercase: bool = option(False, "lowercase the corpus before counting (PTB already is)")
    chunk_tokens: int = option(
        1_000_000,
        "tokens prepared at once; bounds the memory of pair generation (~100 bytes/token)",
        ge=1000,
    )
    max_memory_tokens: int = option(
        20_000_000,
        "corpora with more tokens keep their ids in a temporary file, not in memory",
        ge=0,
    )
    prefetch: bool = option(
        True,
        "prepare the next batches in a background thread (the PyTorch step's; the compiled "
        "skip-gram step needs none)",
    )


@dataclass(frozen=True)
class Word2VecModelConfig:
    type: str = option(
        "word2vec",
        "word2vec (a vector per word) or fasttext (a word's vector is the mean of its own and its "
        "character n-grams' vectors, so unseen words get one too)",
        choices=("word2vec", "fasttext"),
    )
    architecture: str = option(
        "skipgram",
        "skipgram (a word predicts its neighbours) or cbow",
        choices=("skipgram", "cbow"),
    )
    dim: int = option(100, "vector dimension", ge=1)
    window: int = option(5, "largest window; each centre draws its own from 1..window", ge=1)
    negative: int = option(5, "noise words per positive pair", ge=1)
    min_count: int = option(5, "ignore words seen fewer times", ge=1)
    max_vocab: int = option(0, "keep only the most frequent words (0 = no limit)", ge=0)
    sample: float = option(1e-3, "subsampling threshold t of frequent words (0 = off)", ge=0)
    noise_power: float = option(0.75, "noise distribution exponent: P(w) ~ count(w) ** power")
    shared_negatives: int = option(
        0,
        "skip-gram: 0 = `negative` noise words per pair (word2vec); M > 0 = M noise words per "
        "centre word, shared by its window's pairs (fewer rows to update: faster)",
        ge=0,
    )
    workers: int = option(
        0,
        "threads that share each batch, as gensim's workers (0 = every available core; with the "
        "PyTorch step, FFNLP_JIT=0, but the one the batch-preparing thread takes when "
        "corpus.prefetch is on; at most 4 per available core)",
        ge=0,
    )
    minn: int = option(3, "fasttext: shortest character n-gram (fastText's -minn)")
    maxn: int = option(
        6,
        "fasttext: longest character n-gram (fastText's -maxn, at most 32, of words of up to "
        "4096 characters; 0 = no n-grams, words only)",
    )
    buckets: int = option(
        2_000_000,
        "fasttext: rows the n-grams are hashed into (fastText's -bucket); the input table has "
        "vocabulary + buckets rows of dim floats",
    )

    def check(self) -> list[str]:
        workers = thread_problem("model.workers", self.workers)
        problems = [workers] if workers else []
        if self.type != "fasttext":
            return problems
        return problems + check_subword_settings(self.minn, self.maxn, self.buckets, where="model")


@dataclass(frozen=True)
class EvaluationConfig:
    similarity: list[str] = option(
        [], "word-similarity files evaluated after every epoch and at the end"
    )
    analogies: str = option("", "analogy questions file evaluated at the end ('' = none)")
    restrict: int = option(30000, "analogies: search among this many most frequent words", ge=1)


@dataclass(frozen=True)
class W2VConfig:
    corpus: CorpusConfig = section(CorpusConfig)
    model: Word2VecModelConfig = section(Word2VecModelConfig)
    evaluation: EvaluationConfig = section(EvaluationConfig)
    # word2vec's own settings: plain SGD at alpha 0.025 decaying linearly to 0.0001 (ratio 0.004)
    # over all epochs; threads "auto" keeps 1 intra-op thread for the fused step, whose
    # model.workers + the prefetch thread take the cores (gensim: workers = cores)
    train: TrainConfig = section(
        TrainConfig,
        epochs=5,
        batch_size=1024,
        optimizer="sgd",
        lr=0.025,
        sparse=True,
        schedule="linear",
        min_lr_ratio=0.004,
        restore_best=False,
        log_every=200,
    )


def resolve_config(
    config: W2VConfig | str | Path | dict[str, Any] | None = None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    **settings: Any,
) -> W2VConfig:
    """Defaults -> TOML file or dict -> ``overrides`` (settings: {"train.lr": 0.1}, or the
    ``["train.lr=0.1"]`` text of --set) -> keyword settings, validated."""
    return cfgmod.resolve(W2VConfig, config, overrides, **settings)
