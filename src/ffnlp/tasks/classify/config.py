"""The classify task's configuration: [task], [data], [features], [model], [loss], [train].

``[model]`` is the one place a classifier's options are written: ``type`` names a registered
classifier (:mod:`ffnlp.models.registry`) and the ``[model.X]`` sections hold what the
registered classifiers read. Each model type takes only its own sections, as its config class
(:func:`model_config`); ``[model.init]`` applies to every type.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.errors import ConfigError
from ffnlp.features.lexicon import LexiconConfig
from ffnlp.features.subwords import check_subword_settings
from ffnlp.features.weighting import MAX_CHAR_N, not_words
from ffnlp.models import registry
from ffnlp.models.init import InitConfig
from ffnlp.models.mlp import MLPConfig
from ffnlp.models.pooled import PooledConfig
from ffnlp.training import TrainConfig

MAX_BUCKETS = 100_000_000  # 50x fastText's default; 40 GB of 100-dim rows already
MULTILABEL_CHOICES = (True, False, "auto")


@dataclass(frozen=True)
class TaskConfig:
    """Section [task]: one label per example (softmax) or several (one sigmoid per label)."""

    multilabel: bool | str = option(
        "auto",
        "true: each example has a set of labels, one sigmoid per label with binary cross-entropy "
        "(fastText's -loss ova); false: exactly one label (softmax); auto: multi-label when a "
        "line of the data has two or more labels or its labels as a list",
        choices=MULTILABEL_CHOICES,
    )
    threshold: float = option(
        0.5,
        "multi-label: a label is predicted when its probability is at least this (micro/macro "
        "F1, and predict without --threshold)",
        ge=0.0,
        le=1.0,
    )
    tune_thresholds: bool = option(
        False,
        "multi-label: per label with 10 or more dev examples, the threshold that maximises its "
        "F1 on the dev data (the others keep threshold), stored in the run and used by predict",
    )


@dataclass(frozen=True)
class DataConfig:
    format: str = option(
        "auto",
        "input format; parquet and arrow need pyarrow (pip install 'ffnlp[parquet]')",
        choices=("auto", "label-text", "fasttext", "csv", "tsv", "jsonl", "parquet", "arrow"),
    )
    encoding: str = option("utf-8", "text encoding of the data files (e.g. latin-1 for MR)")
    text_column: str = option(
        "text", "CSV/TSV/JSONL/Parquet/Arrow: the column or key holding the text"
    )
    label_column: str = option(
        "label",
        "CSV/TSV/JSONL/Parquet/Arrow: the column or key holding the label (JSONL: or labels)",
    )
    label_separator: str = option(
        "", "CSV/TSV: split the label field on this into several labels, e.g. ',' ('' = one)"
    )
    skip_invalid: bool = option(
        False, "skip malformed lines (and report how many) instead of failing"
    )
    tokenizer: str = option(
        "whitespace",
        "whitespace (pre-tokenised data) or regex (words and punctuation)",
        choices=("whitespace", "regex"),
    )
    lowercase: bool = option(False, "lowercase before tokenising")


@dataclass(frozen=True)
class FeaturesConfig:
    kind: str = option(
        "ngrams",
        "what the model sees: ngrams (bag of word n-grams; logreg, mlp), ids (word ids + hashed "
        "word n-grams, and character n-grams with maxn > 0; pooled), lexicon (hand-built "
        "features of [features.lexicon]; mlp), "
        "ngrams+lexicon (both, side by side; logreg, mlp)",
        choices=("ngrams", "ids", "lexicon", "ngrams+lexicon"),
    )
    ngram_range: list[int] = option([1, 2], "smallest and largest n of the word n-grams")
    char_ngram_range: list[int] = option(
        [0, 0],
        "kind = ngrams: smallest and largest n of character n-grams added to the word n-grams, "
        "taken over each text's tokens joined by spaces (so they cross word boundaries), valued "
        "and normalised with them; [0, 0] = none. [2, 5] reads stems, endings and misspellings; "
        "predict then takes the reference featuriser (slower than the word-only fast path)",
    )
    contrast_words: list[str] = option(
        [],
        'kind = ngrams: words that turn a sentence (e.g. ["but"]): in a text that holds one '
        "(in any case, punctuation attached ignored: 'But,' is 'but'), the word n-grams of the "
        "clause after the last one, and their character n-grams with char_ngram_range, count "
        "again as features of their own, "
        "so the model can weigh what follows the contrast apart from the rest (in 'the cast is "
        "fine, but the plot is a mess' it carries the verdict); [] = none. Predict then takes "
        "the reference featuriser",
    )
    weighting: str = option(
        "tfidf",
        "feature values: count, binary, tfidf, or nbsvm (each n-gram a text holds valued by its "
        "log-count ratio between the labels, fitted on the training split: Wang & Manning's "
        "NBSVM scaling)",
        choices=("count", "binary", "tfidf", "nbsvm"),
    )
    sublinear_tf: bool = option(True, "tf-idf: use 1 + log(tf) instead of raw counts")
    norm: str = option(
        "auto",
        "ngrams: divide each text's values by their L2 norm (l2), or not (none); auto: l2 for "
        "tfidf and nbsvm, none for count and binary",
        choices=("auto", "l2", "none"),
    )
    nb_alpha: float = option(
        1.0, "weighting = nbsvm: the smoothing added to each label's count of an n-gram", gt=0
    )
    min_count: int = option(1, "drop n-grams seen fewer times than this in training", ge=1)
    max_features: int = option(0, "keep only the most frequent n-grams (0 = all)", ge=0)
    buckets: int = option(
        200_000,
        "kind = ids: hash buckets for word n-grams of order 2..ngram_range[1] and for the "
        "character n-grams of minn..maxn, one table for both (fastText: 2M)",
        ge=1,
        le=MAX_BUCKETS,
    )
    minn: int = option(
        3,
        "kind = ids: shortest character n-gram of a word, boundary symbols < > counted "
        "(fastText's -minn); read only when maxn > 0",
    )
    maxn: int = option(
        0,
        "kind = ids: longest character n-gram of a word (fastText's -maxn; at most 32, of "
        "words of up to 4096 characters); 0 = no subwords, as fastText's supervised default. With maxn > 0 every word adds its hashed character "
        "n-grams to the text's bag, and words outside the vocabulary are read from theirs",
    )
    lexicon: LexiconConfig = section(LexiconConfig)

    def check(self) -> list[str]:
        lo, hi = (self.ngram_range + [0, 0])[:2]
        problems = []
        if len(self.ngram_range) != 2 or not 1 <= lo <= hi:
            problems.append(
                f"features.ngram_range must be [min_n, max_n] with 1 <= min_n <= max_n; got {self.ngram_range}"
            )
        c_lo, c_hi = (self.char_ngram_range + [0, 0])[:2]
        if self.char_ngram_range != [0, 0] and (
            len(self.char_ngram_range) != 2 or not 1 <= c_lo <= c_hi <= MAX_CHAR_N
        ):
            problems.append(
                "features.char_ngram_range must be [0, 0] (no character n-grams) or [min_n, "
                f"max_n] with 1 <= min_n <= max_n <= {MAX_CHAR_N}; got {self.char_ngram_range}"
            )
        elif self.char_ngram_range != [0, 0] and self.kind not in ("ngrams", "ngrams+lexicon"):
            problems.append(
                f"features.char_ngram_range = {self.char_ngram_range} adds character n-grams to "
                f"the bag of word n-grams, which features.kind = {self.kind!r} has none of: use "
                'features.kind = "ngrams" (or "ngrams+lexicon"), or for the pooled classifier '
                "features.minn / features.maxn"
            )
        bad = not_words(self.contrast_words)
        if bad:
            problems.append(
                f"features.contrast_words must be words (no spaces, not empty); got {bad[0]!r} "
                f"in {self.contrast_words}"
            )
        elif self.contrast_words and self.kind not in ("ngrams", "ngrams+lexicon"):
            problems.append(
                f"features.contrast_words = {self.contrast_words} marks n-grams of the bag of "
                f"word n-grams, which features.kind = {self.kind!r} has none of: use "
                'features.kind = "ngrams" (or "ngrams+lexicon"), or features.contrast_words = []'
            )
        problems += check_subword_settings(self.minn, self.maxn, self.buckets, where="features")
        if self.maxn > 0 and self.kind != "ids":
            problems.append(
                f"features.maxn = {self.maxn} turns on character n-grams, which only "
                f'features.kind = "ids" (the pooled classifier) reads; got features.kind = '
                f'{self.kind!r}: set features.kind = "ids" and model.type = "pooled", or '
                "features.maxn = 0"
            )
        return problems


@dataclass(frozen=True)
class LossConfig:
    label_smoothing: float = option(
        0.0, "move this much target mass to the other classes", ge=0, lt=1
    )
    class_weight: str = option(
        "none",
        "weigh each class's examples: none, balanced (n / (K * n_k)) or a list like '1.0,3.0'",
    )


@dataclass(frozen=True)
class ModelConfig:
    """Section [model]: the type, [model.init], and the sections the registered classifiers read
    (a type reads only its own: see its config class, e.g. ``PooledModelConfig``)."""

    type: str = option(
        "logreg",
        "model family: logreg (logistic regression), mlp (feed-forward network over features), "
        "pooled (pooled word/n-gram embeddings -> MLP: DAN / fastText)",
    )
    ensemble: int = option(
        1,
        "train this many models of the type, each from its own seed (the first: train.seed), "
        "and predict the mean of their probabilities: one run, one model (a seed ensemble; "
        "training takes as many times as long)",
        ge=1,
        le=100,
    )
    init: InitConfig = section(InitConfig)
    mlp: MLPConfig = section(MLPConfig)  # read by mlp and pooled
    pooled: PooledConfig = section(PooledConfig)  # read by pooled

    def check(self) -> list[str]:
        try:
            own = model_config(self)
        except ConfigError as exc:
            return [str(exc)]
        check = getattr(own, "check", None)
        return list(check()) if callable(check) else []


@dataclass(frozen=True)
class ClassifyConfig:
    task: TaskConfig = section(TaskConfig)
    data: DataConfig = section(DataConfig)
    features: FeaturesConfig = section(FeaturesConfig)
    model: ModelConfig = section(ModelConfig)
    loss: LossConfig = section(LossConfig)
    train: TrainConfig = section(
        TrainConfig, monitor="dev.accuracy", epochs=10, batch_size=32, lr=0.01, early_stopping=True
    )


def resolve_config(
    config: ClassifyConfig | str | Path | dict[str, Any] | None = None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    **settings: Any,
) -> ClassifyConfig:
    """Defaults -> TOML file or dict -> ``overrides`` (settings: {"train.lr": 0.1}, or the
    ``["train.lr=0.1"]`` text of --set) -> keyword settings, validated."""
    return cfgmod.resolve(ClassifyConfig, config, overrides, **settings)


def classifier_spec(model_type: str) -> registry.ModelSpec:
    """The registered text classifier ``model_type``; ConfigError naming the ones there are."""
    classifiers = [s.name for s in registry.specs() if s.is_classifier]
    if model_type in classifiers:
        return registry.spec(model_type)
    close = difflib.get_close_matches(model_type, classifiers, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"model.type must be a text classifier: {', '.join(classifiers)}; got {model_type!r}{hint}"
    )


def model_config(model: ModelConfig) -> Any:
    """The configured model type's own config: its sections of [model], and nothing else."""
    return classifier_spec(model.type).select_config(model)


def check_features(cfg: ClassifyConfig) -> None:
    """The model type must read the configured feature kind (checked before a run starts)."""
    allowed = classifier_spec(cfg.model.type).features
    if cfg.features.kind not in allowed:
        raise ConfigError(
            f"model.type = {cfg.model.type!r} reads features.kind {' or '.join(map(repr, allowed))}; "
            f"got features.kind = {cfg.features.kind!r} (set features.kind = {allowed[0]!r})"
        )
