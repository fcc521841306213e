"""The trained vectors: :class:`Word2VecRun`, its run directory, and the loaders.

Run directory: config.toml, vocab.json (words and counts), model.safetensors + model.json,
vectors.bin (word2vec binary: what ``ffnlp w2v export`` converts and the classifiers load),
metrics.jsonl, summary.json, plots/.

A fastText model (``model.type = "fasttext"``, model.json type ``fasttext``) keeps its n-gram
rows in model.safetensors, so its :class:`~ffnlp.features.subwords.SubwordVectors` give words
outside the vocabulary a vector; vectors.bin holds the vocabulary's vectors, as for word2vec.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffnlp.errors import ModelFileError
from ffnlp.features.embeddings import save_vectors
from ffnlp.features.wordvec_eval import WordVectors
from ffnlp.folders.folder import read_arch, read_summary, run_path, write_config
from ffnlp.folders.layout import ARCH, VECTORS, VOCAB
from ffnlp.models.io import load_model, save_model
from ffnlp.models.skipgram import SkipGram
from ffnlp.models.subword_skipgram import SubwordSkipGram
from ffnlp.params import check_int, check_path, check_str
from ffnlp.tasks.runfolder import expect_task, read_config
from ffnlp.tasks.w2v.config import W2VConfig, resolve_config
from ffnlp.tasks.w2v.evaluate import evaluate_vectors, model_vectors
from ffnlp.text.vocab import Vocab


class Word2VecRun:
    """A trained word2vec model: its vectors (:class:`WordVectors`, or for a fastText model
    :class:`SubwordVectors`, which give unseen words a vector), vocabulary, run directory."""

    def __init__(
        self,
        config: W2VConfig,
        vocab: Vocab,
        model: SkipGram,
        run_dir: Path | None = None,
        summary: dict[str, Any] | None = None,
    ):
        self.config = config
        self.vocab = vocab
        self.model = model.eval()
        self.run_dir = run_dir
        self.summary = summary or {}
        self.wv = model_vectors(vocab.itos, model)

    def vector(self, word: str) -> np.ndarray:
        """The vector (D,) of ``word``; a fastText model builds one for a word outside the
        vocabulary from its character n-grams (a DataError if it has none, or for word2vec)."""
        return self.wv.vector(check_str(word, "word", "Word2VecRun.vector"))

    def most_similar(
        self,
        positive: str | Sequence[str],
        k: int = 10,
        *,
        negative: str | Sequence[str] = (),
        method: str = "3cosadd",
        restrict: int = 0,
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest words to ``positive`` minus ``negative``, with their scores (see
        :meth:`WordVectors.most_similar`): ``run.most_similar("stock")``, or the analogy
        ``run.most_similar(["king", "woman"], negative=["man"], method="3cosmul")``."""
        owner = "Word2VecRun.most_similar"
        k = check_int(k, "k", owner, ge=1)
        restrict = check_int(restrict, "restrict", owner, ge=0)
        return self.wv.most_similar(positive, k, restrict, negative=negative, method=method)

    def most_similar_many(
        self, queries: Sequence[tuple[Sequence[str], Sequence[str]]], k: int = 10
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest words of each ``(positive, negative)`` query, as
        :meth:`most_similar` gives them (``3cosadd``), in one matrix product for all the
        queries (what ``ffnlp serve`` calls for concurrent ``/neighbors`` requests): the same
        words, the scores to float rounding."""
        k = check_int(k, "k", "Word2VecRun.most_similar_many", ge=1)
        return self.wv.most_similar_many(queries, k)

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word of ``words`` that goes least with the others (gensim's ``doesnt_match``)."""
        return self.wv.doesnt_match(words)

    def evaluate(
        self,
        similarity: Sequence[str | Path] = (),
        analogies: str | Path | None = None,
        restrict: int = 30000,
    ) -> dict[str, Any]:
        restrict = check_int(restrict, "restrict", "Word2VecRun.evaluate", ge=1)
        return evaluate_vectors(self.wv, similarity, analogies, restrict)

    def export(self, path: str | Path, format: str = "word2vec-text") -> None:
        check_path(path, "path", "Word2VecRun.export")
        self.wv.save(path, format=format)

    def save(self, run_dir: str | Path) -> Path:
        """Write the run's files into ``run_dir``, which it then belongs to (``run_dir``)."""
        run_dir = Path(run_dir)
        self.write(run_dir)
        self.run_dir = run_dir
        return run_dir

    def write(self, run_dir: Path) -> None:
        """Write the run's files into ``run_dir`` (a training run writes them into its hidden
        folder; the result belongs to the folder the run becomes)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, self.config)
        self.vocab.save(run_dir / VOCAB)
        save_model(self.model, run_dir, "w2v", _model_args(self.model))
        save_vectors(run_dir / VECTORS, self.wv.words, self.wv.vectors, format="word2vec-binary")

    @classmethod
    def load(cls, run_dir: str | Path) -> Word2VecRun:
        run_dir = run_path(run_dir)
        expect_task(run_dir, read_arch(run_dir), "w2v")
        config = read_config(run_dir, resolve_config, "w2v")
        vocab = Vocab.load(run_dir / VOCAB)
        model, _ = load_model(run_dir, task="w2v")
        if not isinstance(model, SkipGram):
            raise ModelFileError(f"{run_dir} holds a {type(model).__name__}, not word2vec")
        if len(vocab) != model.vocab_size:
            raise ModelFileError(
                f"{run_dir}: vocab.json has {len(vocab)} words but the model {model.vocab_size}; "
                "the files come from different runs"
            )
        if isinstance(model, SubwordSkipGram):
            try:
                model.check_subwords()
            except ModelFileError as exc:
                raise ModelFileError(f"{run_dir}: {exc}") from None
        return cls(config, vocab, model, run_dir, read_summary(run_dir))


def load(run_dir: str | Path) -> Word2VecRun:
    """The word2vec run saved in ``run_dir`` (what ``ffnlp.load`` returns for a w2v run)."""
    return Word2VecRun.load(run_dir)


def load_word_vectors(
    path: str | Path, format: str = "auto", encoding: str = "utf-8"
) -> WordVectors:
    """Vectors from an ffnlp w2v run directory or any vectors file (word2vec, GloVe, .vec).

    The run directory of a fastText model gives :class:`SubwordVectors` (unseen words get a
    vector from their n-grams); any other gives the vocabulary's vectors from vectors.bin."""
    p = Path(path)
    if format == "auto" and p.is_dir() and (p / ARCH).is_file():
        arch = read_arch(p)
        if arch["type"] == "fasttext" and arch["task"] == "w2v":
            return Word2VecRun.load(p).wv
    return WordVectors.load(path, format=format, encoding=encoding)


def _model_args(model: SkipGram) -> dict[str, Any]:
    args: dict[str, Any] = {
        "vocab_size": model.vocab_size,
        "dim": model.dim,
        "cbow": model.cbow,
        "sparse": model.sparse,
        "workers": model.workers,
    }
    if isinstance(model, SubwordSkipGram):
        args.update(
            minn=model.minn,
            maxn=model.maxn,
            buckets=model.buckets,
            subword_entries=len(model.subword_rows),
        )
    return args
