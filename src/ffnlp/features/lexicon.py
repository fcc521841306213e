"""Hand-built sentiment features (Jurafsky & Martin, "Logistic Regression", fig. 5.2) and a registry.

The six features of the textbook example, each a function of a tokenised text and a lexicon:

    positive_count   count of positive-lexicon words        (x1)
    negative_count   count of negative-lexicon words        (x2)
    has_no           1 if "no" is in the text, else 0       (x3)
    pronoun_count    count of 1st- and 2nd-person pronouns  (x4)
    has_exclamation  1 if "!" is in the text, else 0        (x5)
    log_length       ln(word count)                         (x6)

Users add their own with :func:`register_feature`::

    @register_feature("has_but")
    def has_but(tokens, lexicon):
        return float("but" in tokens)

:class:`LexiconFeaturizer` turns texts into a (B, F) float tensor and standardises every column
with the mean and standard deviation of the training split only (``fit``), so that no statistic of
the dev or test data leaks into the model.  Lexicons are plain word lists read from a path (Hu & Liu
2004 format: ``;`` comment lines, one word a line; CRLF and stray Latin-1 bytes are accepted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ffnlp.config import option
from ffnlp.errors import ConfigError, DataError, NotFittedError
from ffnlp.fileio import resolved

FeatureFn = Callable[[Sequence[str], "Lexicon"], float]

FEATURES: dict[str, FeatureFn] = {}

PRONOUNS = frozenset(
    [
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "us",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)

DEFAULT_FEATURES = (
    "positive_count",
    "negative_count",
    "has_no",
    "pronoun_count",
    "has_exclamation",
    "log_length",
)


def register_feature(name: str, *, replace: bool = False) -> Callable[[FeatureFn], FeatureFn]:
    """Decorator: make ``fn(tokens, lexicon) -> float`` available as feature ``name``."""

    def decorate(fn: FeatureFn) -> FeatureFn:
        if name in FEATURES and not replace:
            raise ConfigError(
                f"a feature named {name!r} is already registered; pass replace=True to override it"
            )
        FEATURES[name] = fn
        return fn

    return decorate


@dataclass(frozen=True)
class Lexicon:
    """Positive and negative word lists (lowercased)."""

    positive: frozenset[str] = frozenset()
    negative: frozenset[str] = frozenset()

    @classmethod
    def load(
        cls, directory: str | Path = "", positive: str | Path = "", negative: str | Path = ""
    ) -> Lexicon:
        """From a directory holding ``positive-words.txt`` and ``negative-words.txt`` (Hu & Liu),
        or from the two files given explicitly (which win over the directory)."""
        d = Path(directory) if directory else None
        pos = Path(positive) if positive else (d / "positive-words.txt" if d else None)
        neg = Path(negative) if negative else (d / "negative-words.txt" if d else None)
        if pos is None or neg is None:
            raise ConfigError(
                "features.lexicon needs a lexicon: set features.lexicon.path to a directory with "
                "positive-words.txt and negative-words.txt, or set both .positive and .negative"
            )
        return cls(read_word_list(pos), read_word_list(neg))

    def save(self, directory: str | Path, within: str | Path | None = None) -> None:
        """Write ``positive-words.txt`` and ``negative-words.txt`` (UTF-8, one word a line,
        sorted) into ``directory``: what :meth:`load` reads back as the same lexicon. Each is
        written atomically, never through a symbolic link below ``within``."""
        from ffnlp.fileio import write_atomic

        for name, words in (("positive", self.positive), ("negative", self.negative)):
            text = "".join(f"{w}\n" for w in sorted(words))
            write_atomic(Path(directory) / f"{name}-words.txt", text, within=within)


def read_word_list(path: str | Path) -> frozenset[str]:
    """One word a line; ``;`` and ``#`` lines are comments; CRLF accepted; a line that is not
    UTF-8 is read as Latin-1 (the Hu & Liu negative list holds one such byte)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"lexicon file {resolved(p)} does not exist")
    words = set()
    for raw in p.read_bytes().split(b"\n"):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("latin-1")
        line = line.strip()
        if line and not line.startswith((";", "#")):
            words.add(line.lower())
    if not words:
        raise DataError(f"lexicon file {p} holds no words (only comments or blank lines)")
    return frozenset(words)


# ---------------------------------------------------------------------------------------------
# the six textbook features


@register_feature("positive_count")
def positive_count(tokens: Sequence[str], lexicon: Lexicon) -> float:
    return float(sum(t in lexicon.positive for t in tokens))


@register_feature("negative_count")
def negative_count(tokens: Sequence[str], lexicon: Lexicon) -> float:
    return float(sum(t in lexicon.negative for t in tokens))


@register_feature("has_no")
def has_no(tokens: Sequence[str], lexicon: Lexicon) -> float:
    return float("no" in tokens)


@register_feature("pronoun_count")
def pronoun_count(tokens: Sequence[str], lexicon: Lexicon) -> float:
    return float(sum(t in PRONOUNS for t in tokens))


@register_feature("has_exclamation")
def has_exclamation(tokens: Sequence[str], lexicon: Lexicon) -> float:
    return float(any("!" in t for t in tokens))


@register_feature("log_length")
def log_length(tokens: Sequence[str], lexicon: Lexicon) -> float:
    # an empty text counts as one word, so that the feature is defined (ln 1 = 0)
    return math.log(max(len(tokens), 1))


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LexiconConfig:
    """Section [features.lexicon]: which hand-built features, from which lexicon."""

    path: str = option("", "directory with positive-words.txt and negative-words.txt (Hu & Liu)")
    positive: str = option("", "positive word list (overrides the one in path)")
    negative: str = option("", "negative word list (overrides the one in path)")
    names: list[str] = option(
        list(DEFAULT_FEATURES), "features to extract, in column order (built-in or registered)"
    )
    standardize: bool = option(
        True, "scale each feature to mean 0, sd 1 with statistics of the training split"
    )


class LexiconFeaturizer:
    """Texts -> (B, F) feature matrix; ``fit`` on the training split, then ``transform`` any split."""

    def __init__(
        self, lexicon: Lexicon, names: Sequence[str] = DEFAULT_FEATURES, standardize: bool = True
    ):
        unknown = [n for n in names if n not in FEATURES]
        if unknown:
            raise ConfigError(
                f"unknown feature(s) {', '.join(map(repr, unknown))} in features.lexicon.names; "
                f"registered: {', '.join(sorted(FEATURES))} (add one with ffnlp.features.lexicon.register_feature)"
            )
        if not names:
            raise ConfigError("features.lexicon.names is empty; name at least one feature")
        self.lexicon = lexicon
        self.names = list(names)
        self.standardize = standardize
        self.mean_: torch.Tensor | None = None
        self.std_: torch.Tensor | None = None

    @classmethod
    def from_config(cls, config: LexiconConfig) -> LexiconFeaturizer:
        lexicon = Lexicon.load(config.path, config.positive, config.negative)
        return cls(lexicon, config.names, config.standardize)

    @property
    def num_features(self) -> int:
        return len(self.names)

    def raw(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """Unscaled features (B, F)."""
        fns = [FEATURES[n] for n in self.names]
        rows = [[fn(tokens, self.lexicon) for fn in fns] for tokens in token_lists]
        return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), len(fns))  # (B, F)

    def fit(self, token_lists: Sequence[Sequence[str]]) -> LexiconFeaturizer:
        x = self.raw(token_lists)  # (B, F)
        if x.shape[0] == 0:
            raise DataError("cannot fit feature standardisation on an empty training split")
        self.mean_ = x.mean(0)  # (F,)
        std = x.std(0, unbiased=False)  # (F,)
        self.std_ = torch.where(std > 0, std, torch.ones_like(std))  # a constant column stays put
        return self

    def transform(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        x = self.raw(token_lists)  # (B, F)
        if not self.standardize:
            return x
        if self.mean_ is None or self.std_ is None:
            raise NotFittedError(
                "LexiconFeaturizer.transform before fit: fit it on the training split first"
            )
        return (x - self.mean_) / self.std_  # (B, F)

    def fit_transform(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        return self.fit(token_lists).transform(token_lists)

    def state(self) -> dict[str, Any]:
        """What a run directory must keep to transform new texts the same way (JSON-able)."""
        return {
            "names": self.names,
            "standardize": self.standardize,
            "mean": None if self.mean_ is None else self.mean_.tolist(),
            "std": None if self.std_ is None else self.std_.tolist(),
        }

    def load_state(self, state: dict[str, Any]) -> LexiconFeaturizer:
        self.names = list(state["names"])
        self.standardize = bool(state["standardize"])
        self.mean_ = None if state["mean"] is None else torch.tensor(state["mean"])
        self.std_ = None if state["std"] is None else torch.tensor(state["std"])
        return self
