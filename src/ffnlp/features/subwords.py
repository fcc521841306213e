"""Character n-gram subwords, hashed into buckets the way fastText hashes them.

A word is wrapped in boundary symbols (``"where"`` becomes ``"<where>"``) and every run of
``minn``..``maxn`` characters of the wrapped word is one subword; the single characters ``<`` and
``>`` on their own are left out. Characters are Unicode code points: a run never splits the bytes
of a UTF-8 character. Each subword's UTF-8 bytes are hashed with 32-bit FNV-1a in fastText's
variant (each byte is XORed in as a *signed* char, sign-extended to 32 bits, so bytes >= 0x80 hash
differently from the textbook FNV-1a), and the hash modulo ``buckets`` picks a row. The same word
and settings therefore give the same bucket numbers as fastText and gensim's ``FastText``
(tested against both), so hashed tables can be compared or exchanged.

:class:`SubwordTable` lists, for every word of a vocabulary, the rows of its vector: the word's
own row ``i`` and ``vocab_size + bucket`` for each of its subwords. A word's vector is the mean of
those rows (an ``EmbeddingBag`` with ``mode="mean"``); a word outside the vocabulary gets the mean
of its subword rows alone, so rare, misspelled and unseen words still have a vector.
:class:`SubwordVectors` holds trained vectors of that kind for queries and evaluation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from ffnlp.errors import ConfigError, DataError, shown
from ffnlp.features.wordvec_eval import WordVectors

BOW = "<"
EOW = ">"
MAX_NGRAM_CHARS = 32
"""The longest character n-gram (``maxn``) a setting or model file may ask for. fastText's and
gensim's default is 6; n-grams of every length up to a word's own make its cost grow with the cube
of its length (``maxn = 1000000`` over a 30,000-character word: 7.5 GB)."""
MAX_SUBWORD_WORD_CHARS = 4096
"""The longest word whose character n-grams are taken (no word of a language comes near it): a
longer token (a blob of base64, a line without spaces) is a :class:`DataError` when its n-grams are
asked for, since it would cost ``maxn - minn + 1`` strings per character."""
FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
MASK32 = 0xFFFFFFFF


def fnv1a_32(data: bytes) -> int:
    """fastText's 32-bit FNV-1a: bytes are XORed in as signed chars (sign-extended)."""
    h = FNV_OFFSET
    for byte in data:
        h ^= byte | 0xFFFFFF00 if byte >= 0x80 else byte
        h = (h * FNV_PRIME) & MASK32
    return h


def char_ngrams(word: str, minn: int, maxn: int) -> list[str]:
    """The character n-grams of ``<word>`` of lengths ``minn..maxn``, in fastText's order.

    Ordered by start position, then length; the lone boundary symbols are not n-grams. An empty
    list when ``maxn < minn`` or ``maxn == 0`` (subwords switched off).
    """
    if maxn < minn or maxn <= 0:
        return []
    if maxn > MAX_NGRAM_CHARS:  # a model file's settings come here too, whatever checked them
        raise ConfigError(
            f"maxn must be at most {MAX_NGRAM_CHARS} (fastText's default is 6); got {maxn}"
        )
    if len(word) > MAX_SUBWORD_WORD_CHARS:
        raise DataError(
            f"the word {shown(word, 40)} is longer than {MAX_SUBWORD_WORD_CHARS:,} characters, "
            "the longest word whose character n-grams ffnlp takes; clean such tokens out of the "
            "text (they are not words), or switch subwords off (maxn = 0)"
        )
    wrapped = BOW + word + EOW
    last = len(wrapped)
    grams: list[str] = []
    for start in range(last):
        for n in range(max(minn, 1), maxn + 1):
            end = start + n
            if end > last:
                break
            if n == 1 and (start == 0 or end == last):
                continue
            grams.append(wrapped[start:end])
    return grams


@functools.lru_cache(maxsize=1 << 16)
def subword_buckets(word: str, minn: int, maxn: int, buckets: int) -> tuple[int, ...]:
    """Bucket numbers (0..buckets-1) of ``word``'s character n-grams, in :func:`char_ngrams` order."""
    if buckets <= 0:
        return ()
    return tuple(fnv1a_32(g.encode("utf-8")) % buckets for g in char_ngrams(word, minn, maxn))


def check_subword_settings(minn: int, maxn: int, buckets: int, where: str = "") -> list[str]:
    """Problems with a minn / maxn / buckets triple, as messages naming the options (empty: fine)."""
    at = f"{where}." if where else ""
    problems = []
    if minn < 1:
        problems.append(f"{at}minn must be at least 1, got {minn}")
    if maxn < 0:
        problems.append(f"{at}maxn must be 0 (no subwords) or at least minn, got {maxn}")
    elif 0 < maxn < minn:
        problems.append(
            f"{at}maxn ({maxn}) is smaller than {at}minn ({minn}): set maxn >= minn, "
            "or maxn = 0 for no subwords"
        )
    if minn > MAX_NGRAM_CHARS:
        problems.append(f"{at}minn must be at most {MAX_NGRAM_CHARS}, got {minn}")
    if maxn > MAX_NGRAM_CHARS:
        problems.append(
            f"{at}maxn must be at most {MAX_NGRAM_CHARS} (fastText's default is 6), got {maxn}"
        )
    if maxn > 0 and buckets < 1:
        problems.append(f"{at}buckets must be at least 1 when subwords are on, got {buckets}")
    return problems


class SubwordTable:
    """The rows that make up each vocabulary word's vector: its own row and its subword buckets.

    Rows ``0..vocab_size-1`` are the words, ``vocab_size..vocab_size+buckets-1`` the buckets
    (:attr:`num_rows` in all). ``offsets``/``rows`` are the CSR layout an ``EmbeddingBag`` takes:
    word ``i``'s rows are ``rows[offsets[i]:offsets[i + 1]]``, its own row first (a batch's bags:
    :func:`ffnlp.models.kernels.sgns_cpu.subword_bags`).
    """

    def __init__(self, words: Sequence[str], minn: int, maxn: int, buckets: int):
        problems = check_subword_settings(minn, maxn, buckets)
        if problems:
            raise ConfigError("; ".join(problems))
        self.minn, self.maxn, self.buckets = minn, maxn, buckets if maxn > 0 else 0
        self.vocab_size = len(words)
        lists = [[i, *self._bucket_rows(w)] for i, w in enumerate(words)]
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        self.offsets = torch.from_numpy(np.concatenate(([0], np.cumsum(lengths))))
        flat = [r for rows in lists for r in rows]
        self.rows = torch.tensor(flat, dtype=torch.int64)

    @property
    def num_rows(self) -> int:
        return self.vocab_size + self.buckets

    def _bucket_rows(self, word: str) -> list[int]:
        if not self.buckets:
            return []
        return [
            self.vocab_size + b for b in subword_buckets(word, self.minn, self.maxn, self.buckets)
        ]

    def word_rows(self, index: int) -> torch.Tensor:
        """Rows of vocabulary word ``index`` (its own row first)."""
        return self.rows[self.offsets[index] : self.offsets[index + 1]]

    def oov_rows(self, word: str) -> list[int]:
        """Rows of a word outside the vocabulary: its subword buckets only (may be empty)."""
        return self._bucket_rows(word)


class SubwordVectors(WordVectors):
    """Word vectors with subwords (fastText's, gensim's ``FastTextKeyedVectors``): the
    vocabulary's vectors (N, D) and the n-gram buckets' rows (buckets, D), so that a word
    outside the vocabulary gets the mean of its n-grams' rows (no vector if it has none).
    Queries, similarity and evaluation accept such words; :meth:`save` writes the vocabulary."""

    subwords = True

    def __init__(
        self,
        words: Sequence[str],
        vectors: np.ndarray,
        ngram_vectors: np.ndarray,
        minn: int,
        maxn: int,
    ):
        super().__init__(words, vectors)
        self.ngram_vectors = np.asarray(ngram_vectors, dtype=np.float32)  # (buckets, D)
        if self.ngram_vectors.ndim != 2 or self.ngram_vectors.shape[1] != self.dim:
            raise DataError(
                f"the n-gram vectors must have shape (buckets, {self.dim}); got "
                f"{self.ngram_vectors.shape}"
            )
        self.minn, self.maxn = minn, maxn

    @property
    def buckets(self) -> int:
        return int(self.ngram_vectors.shape[0])

    def oov_buckets(self, word: str) -> tuple[int, ...]:
        """The buckets of ``word``'s character n-grams."""
        return subword_buckets(word, self.minn, self.maxn, self.buckets)

    def oov_vector(self, word: str) -> np.ndarray | None:
        """The mean of ``word``'s n-gram rows (D,); None if it has no n-gram of minn..maxn
        characters. For any word, in the vocabulary or not: what an unseen word would get."""
        buckets = self.oov_buckets(word)
        if not buckets:
            return None
        return self.ngram_vectors[list(buckets)].mean(axis=0)

    def has_vector(self, word: str) -> bool:
        return word in self.index or bool(self.oov_buckets(word))

    def _unknown(self, word: str) -> str:
        return (
            f"the word {shown(word)} is not in the vocabulary ({len(self)} words) and has no "
            f"character n-gram of {self.minn} to {self.maxn} characters"
        )
