"""fastText's unsupervised model (Bojanowski et al. 2017): word2vec over words and their
character n-grams.

The input table has a row per vocabulary word and ``buckets`` rows more, one per hashed character
n-gram (:mod:`ffnlp.features.subwords`). A word's input vector is the mean of its own row and its
n-grams' rows; everything else is word2vec's (:class:`~ffnlp.models.skipgram.SkipGram`): the
output table has a row per word, the loss is negative sampling over a centre word and its context
and noise words, and CBOW predicts the centre word from the mean of every row of its window's
words. A word outside the vocabulary still has a vector: the mean of its n-grams' rows.

The update is fastText's (``Model::update`` for unsupervised models; gensim's ``FastText``
does the same): the gradient of a mean vector is added *in full* to each of its rows, not divided
among them as autograd would divide it. :meth:`SubwordSkipGram.centre_vectors` gets that from
autograd with one detach (the value is the mean, the gradient the sum's), so the plain PyTorch
path and the fused step (:func:`ffnlp.models.kernels.sgns_cpu.sgd_step` with ``subwords``) make
the same update, which the tests check.

Each word's rows are kept in the model as two buffers in CSR form (``subword_rows``,
``subword_offsets``: what :class:`~ffnlp.features.subwords.SubwordTable` builds), so a saved model
gives its vocabulary's vectors without hashing the vocabulary again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ModelFileError
from ffnlp.features.subwords import SubwordTable, subword_buckets
from ffnlp.models.kernels import sgns_cpu
from ffnlp.models.registry import register
from ffnlp.models.skipgram import SkipGram


@register("fasttext")
class SubwordSkipGram(SkipGram):
    """Skip-gram (or CBOW) whose input vectors are means over a word and its character n-grams.

    ``subword_entries``: the number of rows of all the words' bags together (the length of
    ``subword_rows``); :meth:`from_words` works it out. Batches are those of
    :class:`SkipGram`; ``fused=True`` runs plain SGD through the fused step, ``fused=False`` (and
    any batch the fused step declines) through autograd.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 100,
        minn: int = 3,
        maxn: int = 6,
        buckets: int = 2_000_000,
        subword_entries: int = 0,
        cbow: bool = False,
        sparse: bool = True,
        workers: int = 1,
        fused: bool = True,
    ):
        super().__init__(vocab_size, dim, cbow=cbow, sparse=sparse, workers=workers, fused=fused)
        self.minn, self.maxn = minn, maxn
        self.buckets = buckets if maxn > 0 else 0  # maxn = 0: no n-grams, a row per word only
        # rows 0..V-1 the words, V..V+buckets-1 the n-gram buckets
        self.input = nn.Embedding(vocab_size + self.buckets, dim, sparse=sparse)
        entries = subword_entries or vocab_size
        # word i's rows: subword_rows[subword_offsets[i]:subword_offsets[i + 1]], its own first;
        # filled in by set_subwords or from a model file (until then each word's own row alone,
        # which fits when subword_entries = vocab_size)
        rows = torch.arange(entries, dtype=torch.int64) % max(vocab_size, 1)
        self.register_buffer("subword_rows", rows)
        self.register_buffer("subword_offsets", torch.arange(vocab_size + 1, dtype=torch.int64))
        self.subword_rows: torch.Tensor
        self.subword_offsets: torch.Tensor
        self.reset_parameters()

    @classmethod
    def from_words(
        cls,
        words: Sequence[str],
        minn: int = 3,
        maxn: int = 6,
        buckets: int = 2_000_000,
        **kwargs: Any,
    ) -> SubwordSkipGram:
        """The model for a vocabulary (most frequent word first), its subword table filled in;
        ``kwargs``: the other constructor arguments (dim, cbow, ...)."""
        table = SubwordTable(words, minn, maxn, buckets)
        model = cls(**cls.table_arguments(table), **kwargs)
        model.set_subwords(table)
        return model

    @staticmethod
    def table_arguments(table: SubwordTable) -> dict[str, Any]:
        """The constructor arguments that size a model for ``table``."""
        return {
            "vocab_size": table.vocab_size,
            "minn": table.minn,
            "maxn": table.maxn,
            "buckets": table.buckets,
            "subword_entries": len(table.rows),
        }

    def reset_parameters(self) -> None:
        # fastText's and gensim's initialisation: input uniform in +-1/D, output zero
        with torch.no_grad():
            self.input.weight.uniform_(-1.0 / self.dim, 1.0 / self.dim)
            self.output.weight.zero_()

    def set_subwords(self, table: SubwordTable) -> None:
        """Take each word's rows from ``table`` (built for this model's vocabulary and settings)."""
        if (table.vocab_size, table.buckets, table.minn, table.maxn) != (
            self.vocab_size,
            self.buckets,
            self.minn,
            self.maxn,
        ):
            raise ValueError("the subword table was built for another vocabulary or settings")
        with torch.no_grad():
            self.subword_rows.copy_(table.rows)
            self.subword_offsets.copy_(table.offsets)

    def check_subwords(self) -> None:
        """ModelFileError if the stored bags are not a word's own row then rows of the table."""
        offsets, rows = self.subword_offsets, self.subword_rows
        lengths = offsets[1:] - offsets[:-1]
        problem = ""
        if int(offsets[0]) != 0 or int(offsets[-1]) != len(rows) or bool((lengths < 1).any()):
            problem = "subword_offsets are not the bounds of one bag of rows per word"
        elif not torch.equal(rows[offsets[:-1]], torch.arange(self.vocab_size)):
            problem = "a word's bag does not start with its own row"
        elif len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= self.input.num_embeddings):
            problem = "subword_rows points outside the input table"
        if problem:
            raise ModelFileError(f"the weights are damaged: {problem}; retrain or restore them")

    # ---------------------------------------------------------------------------- input vectors

    def bags(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, offsets)`` of the given words' bags, for an ``EmbeddingBag``: the rows of
        word ``words[b]`` are ``rows[offsets[b]:offsets[b + 1]]`` (the last to the end)."""
        rows, starts, _ = sgns_cpu.subword_bags(words, self.subword_rows, self.subword_offsets)
        return rows, starts[:-1]

    def centre_vectors(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The mean of each bag of input rows (B, D), whose gradient reaches every row in full
        (fastText's update), not divided by the bag's size."""
        w_in = self.input.weight
        mean = F.embedding_bag(rows, w_in, offsets, mode="mean")  # (B, D)
        total = F.embedding_bag(rows, w_in, offsets, mode="sum", sparse=self.sparse)  # (B, D)
        return mean.detach() + (total - total.detach())  # value: the mean; gradient: the sum's

    def forward(
        self, source: torch.Tensor, targets: torch.Tensor, offsets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores (B, T) of each example's T target words (column 0 the true one, then noise)."""
        if self.cbow:  # every row of every window word in one bag per centre
            assert offsets is not None
            rows, word_starts = self.bags(source)  # (R,), (M,): each window word's bag
            bounds = torch.cat([word_starts, word_starts.new_tensor([len(rows)])])  # (M+1,)
            hidden = self.centre_vectors(rows, bounds[offsets])  # (B, D)
            out = self.output(targets)  # (B, T, D)
            return torch.linalg.vecdot(out, hidden.unsqueeze(1))  # (B, T)
        return self._pair_scores(source, targets)

    def _pair_scores(self, source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Skip-gram scores (B, T): ``mean of source[b]'s rows . output[targets[b, t]]``."""
        hidden = self.centre_vectors(*self.bags(source))  # (B, D)
        out = F.embedding(targets, self.output.weight, sparse=self.sparse)  # (B, T, D)
        return torch.linalg.vecdot(out, hidden.unsqueeze(1))  # (B, T)

    def sgd_step(self, batch: dict[str, Any], lr: float) -> torch.Tensor | float | None:
        """One plain-SGD step without autograd (:func:`ffnlp.models.kernels.sgns_cpu.sgd_step`
        with this model's subwords, or for a batch of corpus positions the compiled Hogwild
        kernel); None where :meth:`SkipGram.sgd_step` declines."""
        if "hogwild" in batch:
            return self._hogwild(batch, lr, (self.subword_rows, self.subword_offsets))
        if not self.fused or self.cbow or "pair_center" in batch:
            return None
        return sgns_cpu.sgd_step(
            self.input.weight,
            self.output.weight,
            batch,
            lr,
            workers=self.workers,
            subwords=(self.subword_rows, self.subword_offsets),
        )

    # ---------------------------------------------------------------------------------- vectors

    @torch.no_grad()
    def word_vectors(self) -> torch.Tensor:
        """The vocabulary's vectors (V, D): the mean of each word's rows."""
        return F.embedding_bag(
            self.subword_rows, self.input.weight, self.subword_offsets[:-1], mode="mean"
        ).detach()

    @torch.no_grad()
    def ngram_vectors(self) -> torch.Tensor:
        """The n-gram buckets' rows (buckets, D), a view of the input table."""
        return self.input.weight.detach()[self.vocab_size :]

    def oov_rows(self, word: str) -> list[int]:
        """The input rows of a word outside the vocabulary: its n-grams' buckets (may be none)."""
        return [
            self.vocab_size + b for b in subword_buckets(word, self.minn, self.maxn, self.buckets)
        ]

    @torch.no_grad()
    def oov_vector(self, word: str) -> torch.Tensor | None:
        """The vector (D,) of a word outside the vocabulary, None if it has no n-gram."""
        rows = self.oov_rows(word)
        if not rows:
            return None
        return self.input.weight.detach()[rows].mean(0)
