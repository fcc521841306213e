"""Reading a labelled split, and the featurizers that turn its texts into batches.

A featurizer is fitted on the training split's tokens only; ``source(tokens, texts, y)`` then
turns any split into a :class:`~ffnlp.training.data.BatchSource` in the layout its models read,
and ``input_size`` is the width of the model's input (feature columns, or id-table rows).
Its state travels in the run's ``vocab.json`` (``to_dict``; rebuilt by :func:`make_featurizer`);
what it needs besides (the lexicon's word lists) is copied into the run folder
(``save_files``) and read from there, so a run never reads a file outside its folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ffnlp.errors import DataError, ModelFileError, shown
from ffnlp.folders.layout import LEXICON_DIR
from ffnlp.tasks.classify.config import ClassifyConfig, FeaturesConfig
from ffnlp.tasks.continued import RowMap
from ffnlp.text.readers import LabeledData, read_labeled
from ffnlp.text.vocab import LabelVocab, Vocab
from ffnlp.training.data import BatchSource, SparseRowBatches, TensorBatches

if TYPE_CHECKING:
    from ffnlp.models.pooled import Bags

log = logging.getLogger(__name__)

LEXICON_FILES = ("positive-words.txt", "negative-words.txt")


def read_split(path: str | Path | LabeledData, cfg: ClassifyConfig, **options: Any) -> LabeledData:
    """A labelled file read with the options of [data] (``options`` replace some of them);
    data already in memory (cross-validation folds, scikit-learn) is returned as it is."""
    if isinstance(path, LabeledData):
        return path
    d = cfg.data
    opts: dict[str, Any] = dict(
        format=d.format,
        encoding=d.encoding,
        text_column=d.text_column,
        label_column=d.label_column,
        skip_invalid=d.skip_invalid,
        label_separator=d.label_separator,
    )
    opts.update(options)
    data = read_labeled(path, **opts)
    if data.skipped:
        log.warning("%s: skipped %d invalid line(s) (data.skip_invalid = true)", path, data.skipped)
    return data


def multi_hot(label_sets: Sequence[Sequence[str]], labels: LabelVocab) -> tuple[torch.Tensor, int]:
    """Multi-label targets: (N, K) bool, True where example i has label k; and how many labels
    were left out because the label set does not have them (fastText leaves such gold labels
    out of its test figures too). One byte per cell: N x K bytes for a split."""
    y = torch.zeros(len(label_sets), len(labels), dtype=torch.bool)  # (N, K)
    index = {name: k for k, name in enumerate(labels.labels)}
    rows: list[int] = []
    cols: list[int] = []
    unseen = 0
    for i, names in enumerate(label_sets):
        for name in names:
            k = index.get(name)
            if k is None:
                unseen += 1
            else:
                rows.append(i)
                cols.append(k)
    y[torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)] = True
    return y, unseen


def check_known_labels(split: LabeledData, labels: LabelVocab, known_from: str) -> None:
    """Every label of ``split`` is one of ``labels`` (those of ``known_from``, e.g. "the
    training data FILE"); otherwise a DataError naming the first line with another."""
    for i, label in enumerate(split.labels):
        if label not in labels:
            unknown = sorted(set(split.labels) - set(labels.labels))
            others = f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
            listed = ", ".join(shown(x, 40) for x in labels.labels[:10]) + (
                " ..." if len(labels) > 10 else ""
            )
            raise DataError(
                f"{split.where(i)}: the label {shown(label)}{others} is not in {known_from}, whose "
                f"labels are {listed}; the model could never predict it: fix the label, or "
                "train on data that has it"
            )


class Featurizer(Protocol):
    """Turns token lists into a BatchSource; fitted on the training split only."""

    kind: str

    def fit(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor | None = None) -> None:
        """Learn from the training split: its tokens, texts and labels ``y`` (class ids (N,), or
        (N, K) 0/1 label sets), which only a featurizer that weighs features by the labels
        (features.weighting = "nbsvm") reads."""
        ...

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource: ...

    def grow(self, tokens: list[list[str]], texts: list[str]) -> RowMap:
        """Continued training: learn what the new data adds (new words, n-grams), keeping what
        the featurizer knew; where each old input row (column) went."""
        ...

    @property
    def input_size(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...

    def save_files(self, run_dir: Path) -> None: ...


class NgramFeaturizer:
    """Bag of word n-grams (counts, binary, tf-idf or NBSVM's log-count ratios) as sparse rows."""

    kind = "ngrams"

    def __init__(
        self, cfg: FeaturesConfig, state: dict[str, Any] | None = None, run_dir: Path | None = None
    ):
        from ffnlp.features.bag import BagOfNgrams

        if state is not None:
            self.bag = BagOfNgrams.from_dict(state)
            # what fit and grow read: a continued run's own settings (the layout stays the run's)
            self.bag.min_count, self.bag.max_features = cfg.min_count, cfg.max_features or None
        else:
            self.bag = BagOfNgrams(
                ngram_range=(cfg.ngram_range[0], cfg.ngram_range[1]),
                weighting=cfg.weighting,
                sublinear_tf=cfg.sublinear_tf,
                min_count=cfg.min_count,
                max_features=cfg.max_features or None,
                alpha=cfg.nb_alpha,
                norm=None if cfg.norm == "none" else cfg.norm,
                char_range=(cfg.char_ngram_range[0], cfg.char_ngram_range[1]),
                contrast_words=tuple(cfg.contrast_words),
            )

    def fit(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor | None = None) -> None:
        self.bag.fit(tokens, None if y is None else y.numpy())
        if self.bag.n_features == 0:
            raise DataError(
                "the training data has no n-gram that passes features.min_count; lower it"
            )

    def source(
        self, tokens: list[list[str]], texts: list[str], y: torch.Tensor
    ) -> SparseRowBatches:
        return SparseRowBatches(self.bag.transform(tokens), y=y)

    def grow(self, tokens: list[list[str]], texts: list[str]) -> RowMap:
        """New n-grams become columns after the known ones (see BagOfNgrams.grow)."""
        known = self.input_size
        self.bag.grow(tokens)
        return RowMap.appended(known, self.input_size)

    @property
    def input_size(self) -> int:
        return int(self.bag.n_features)

    def to_dict(self) -> dict[str, Any]:
        return self.bag.to_dict()

    def save_files(self, run_dir: Path) -> None:
        """Nothing beyond vocab.json."""


class IdsFeaturizer:
    """Word ids plus hashed word n-gram ids, as bags with offsets (the pooled model's input);
    with ``features.maxn > 0`` also each word's hashed character n-grams (in the same buckets).

    The subword settings are saved in the state (vocab.json) and read back from it, so a loaded
    run encodes text as it was trained; a state without them (runs of earlier versions) had no
    subwords."""

    kind = "ids"

    def __init__(
        self, cfg: FeaturesConfig, state: dict[str, Any] | None = None, run_dir: Path | None = None
    ):
        self.max_n = cfg.ngram_range[1] if len(cfg.ngram_range) == 2 else 1
        if state is None:
            self.minn, self.maxn = cfg.minn, cfg.maxn
        else:
            self.minn, self.maxn = int(state.get("minn", cfg.minn)), int(state.get("maxn", 0))
        self.buckets = cfg.buckets if self.max_n > 1 or self.maxn > 0 else 0
        self.min_count = cfg.min_count
        self.max_features = cfg.max_features
        self.vocab: Vocab | None = Vocab.from_dict(state["vocab"]) if state is not None else None
        # a quantised run pruned of hash buckets (ffnlp quantize --cutoff): the buckets kept,
        # ascending; bucket b is then row len(vocab) + its position here, other buckets no row
        kept = state.get("bucket_rows") if state is not None else None
        self.bucket_rows: list[int] | None = None if kept is None else [int(b) for b in kept]
        self._row_map: torch.Tensor | None = None
        if self.bucket_rows is not None and (
            any(not 0 <= b < self.buckets for b in self.bucket_rows)
            or any(a >= b for a, b in zip(self.bucket_rows, self.bucket_rows[1:], strict=False))
        ):
            raise ModelFileError(
                f"bucket_rows must be distinct buckets 0..{self.buckets - 1} in ascending order"
            )

    def fitted_vocab(self) -> Vocab:
        if self.vocab is None:
            raise DataError("the ids featurizer is not fitted: fit it on the training split first")
        return self.vocab

    def fit(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor | None = None) -> None:
        self.vocab = Vocab.build(
            tokens, min_count=self.min_count, max_size=self.max_features or None, specials=()
        )
        if len(self.vocab) == 0 and self.max_n < 2 and self.maxn == 0:
            raise DataError(
                "the training data has no word that passes features.min_count; lower it"
            )

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        from ffnlp.models.pooled import BagBatches

        return BagBatches(self.bags(tokens, y))

    def grow(self, tokens: list[list[str]], texts: list[str]) -> RowMap:
        """New words get rows after the known words (Vocab.extended); the hash buckets, which
        come after the words, move down by as many rows and keep their values."""
        vocab = self.fitted_vocab()
        more = Vocab.build(tokens, min_count=1, specials=())
        self.vocab = vocab.extended(more, self.min_count, self.max_features or None)
        known, grown = len(vocab), len(self.vocab)
        index = torch.cat([torch.arange(known), grown + torch.arange(self.buckets)])
        return RowMap(known + self.buckets, grown + self.buckets, index)

    def bags(self, tokens: Sequence[Sequence[str]], y: torch.Tensor | None = None) -> Bags:
        """The bags of ids of ``tokens`` (one list a text), with labels ``y`` when given."""
        from ffnlp.models.pooled import encode_bags

        bags = encode_bags(
            tokens,
            self.fitted_vocab(),
            ngrams=self.max_n,
            buckets=self.buckets,
            labels=y,
            minn=self.minn,
            maxn=self.maxn,
        )
        return self.pruned(bags)

    def pruned(self, bags: Bags) -> Bags:
        """``bags`` with the rows of a pruned run (:attr:`bucket_rows`): kept buckets moved to
        their new rows, the others left out of their bags; unchanged for a run not pruned."""
        from ffnlp.models.pooled import Bags

        if self.bucket_rows is None:
            return bags
        if self._row_map is None:
            n_words = len(self.fitted_vocab())
            row_map = torch.full((n_words + self.buckets,), -1, dtype=torch.long)  # old -> new
            row_map[:n_words] = torch.arange(n_words)
            kept = torch.tensor(self.bucket_rows, dtype=torch.long)
            row_map[n_words + kept] = n_words + torch.arange(len(kept))
            self._row_map = row_map
        rows = self._row_map[bags.ids]  # (N,)
        keep = rows >= 0
        bag_of = torch.repeat_interleave(torch.arange(len(bags)), bags.lengths)  # (N,)
        lengths = torch.zeros(len(bags), dtype=torch.long).index_add_(0, bag_of, keep.long())
        offsets = torch.cumsum(lengths, 0) - lengths
        return Bags(rows[keep], offsets, bags.labels)

    def word_bags(self, words: Sequence[str]) -> Bags:
        """One bag per word: the rows that make up its vector (its own row when the vocabulary
        has it, then its subword buckets); no word n-grams. A word with no rows (outside the
        vocabulary, without subwords) gets an empty bag."""
        from ffnlp.models.pooled import encode_bags

        bags = encode_bags(
            [[w] for w in words],
            self.fitted_vocab(),
            buckets=self.buckets,
            minn=self.minn,
            maxn=self.maxn,
        )
        return self.pruned(bags)

    @property
    def input_size(self) -> int:
        kept = self.buckets if self.bucket_rows is None else len(self.bucket_rows)
        return len(self.fitted_vocab()) + kept

    def to_dict(self) -> dict[str, Any]:
        state = {
            "vocab": self.fitted_vocab().to_dict(),
            "max_n": self.max_n,
            "buckets": self.buckets,
            "minn": self.minn,
            "maxn": self.maxn,
        }
        if self.bucket_rows is not None:
            state["bucket_rows"] = list(self.bucket_rows)
        return state

    def save_files(self, run_dir: Path) -> None:
        """Nothing beyond vocab.json."""


class LexiconFeatures:
    """Hand-built features ([features.lexicon]) standardised on the training split."""

    kind = "lexicon"

    def __init__(
        self, cfg: FeaturesConfig, state: dict[str, Any] | None = None, run_dir: Path | None = None
    ):
        from ffnlp.features.lexicon import Lexicon, LexiconFeaturizer

        if run_dir is None:  # training: the lexicon files the config names
            self.featurizer = LexiconFeaturizer.from_config(cfg.lexicon)
        else:  # a saved run: its own copy, never a path of its config.toml
            folder = run_dir / LEXICON_DIR
            for name in LEXICON_FILES:
                if not (folder / name).is_file():
                    raise ModelFileError(
                        f"{folder / name} is missing: a lexicon run keeps its word lists in "
                        f"{folder} (runs of older ffnlp versions did not); retrain the run"
                    )
            lexicon = Lexicon.load(folder)
            self.featurizer = LexiconFeaturizer(lexicon, cfg.lexicon.names, cfg.lexicon.standardize)
        if state is not None:
            self.featurizer.load_state(state)

    def fit(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor | None = None) -> None:
        self.featurizer.fit(tokens)

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        return TensorBatches({"x": self.featurizer.transform(tokens), "y": y})

    def grow(self, tokens: list[list[str]], texts: list[str]) -> RowMap:
        """The same features, standardised as before (the weights learned them so)."""
        return RowMap.appended(self.input_size, self.input_size)

    @property
    def input_size(self) -> int:
        return int(self.featurizer.num_features)

    def to_dict(self) -> dict[str, Any]:
        return self.featurizer.state()

    def save_files(self, run_dir: Path) -> None:
        """The lexicon's word lists, into ``run_dir/lexicon/`` (read back at load time)."""
        self.featurizer.lexicon.save(run_dir / LEXICON_DIR, within=run_dir)


class NgramLexiconFeatures:
    """Bag of n-grams with the hand-built lexicon features appended as F more columns."""

    kind = "ngrams+lexicon"

    def __init__(
        self, cfg: FeaturesConfig, state: dict[str, Any] | None = None, run_dir: Path | None = None
    ):
        self.ngrams = NgramFeaturizer(cfg, state["ngrams"] if state is not None else None)
        self.lexicon = LexiconFeatures(
            cfg, state["lexicon"] if state is not None else None, run_dir
        )

    def fit(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor | None = None) -> None:
        self.ngrams.fit(tokens, texts, y)
        self.lexicon.fit(tokens, texts)

    def grow(self, tokens: list[list[str]], texts: list[str]) -> RowMap:
        """New n-gram columns after the known n-grams; the lexicon columns, which come after
        them, move right by as many."""
        known = self.ngrams.input_size
        self.ngrams.grow(tokens, texts)
        grown, width = self.ngrams.input_size, self.lexicon.input_size
        index = torch.cat([torch.arange(known), grown + torch.arange(width)])
        return RowMap(known + width, grown + width, index)

    def source(self, tokens: list[list[str]], texts: list[str], y: torch.Tensor) -> BatchSource:
        src = self.ngrams.source(tokens, texts, y)
        extra = self.lexicon.featurizer.transform(tokens)  # (B, L)
        n, width = extra.shape
        # every row gets its L lexicon values after its n-grams, as columns F .. F+L-1
        rows = torch.arange(n)
        old_pos = torch.arange(src.col.numel()) + width * torch.repeat_interleave(rows, src.row_nnz)
        new_pos = (src.crow[1:] + width * rows).unsqueeze(1) + torch.arange(width)  # (B, L)
        col = torch.empty(src.col.numel() + n * width, dtype=torch.long)
        val = torch.empty(col.numel(), dtype=torch.float32)
        col[old_pos], val[old_pos] = src.col, src.val
        col[new_pos.flatten()] = (src.n_cols + torch.arange(width)).repeat(n)
        val[new_pos.flatten()] = extra.flatten()
        src.col, src.val = col, val
        src.row_nnz = src.row_nnz + width
        src.crow = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(src.row_nnz, 0)])
        src.n_cols += width
        return src

    @property
    def input_size(self) -> int:
        return self.ngrams.input_size + self.lexicon.input_size

    def to_dict(self) -> dict[str, Any]:
        return {"ngrams": self.ngrams.to_dict(), "lexicon": self.lexicon.to_dict()}

    def save_files(self, run_dir: Path) -> None:
        self.lexicon.save_files(run_dir)


FEATURIZERS: dict[
    str, type[NgramFeaturizer | IdsFeaturizer | LexiconFeatures | NgramLexiconFeatures]
] = {
    "ngrams": NgramFeaturizer,
    "ids": IdsFeaturizer,
    "lexicon": LexiconFeatures,
    "ngrams+lexicon": NgramLexiconFeatures,
}


def make_featurizer(
    cfg: ClassifyConfig, state: dict[str, Any] | None = None, run_dir: Path | None = None
) -> Featurizer:
    """The featurizer of ``features.kind``: new (to fit), or restored from its saved ``state``
    and the files it saved into ``run_dir``."""
    return FEATURIZERS[cfg.features.kind](cfg.features, state, run_dir)
