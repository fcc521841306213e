"""Hashed word n-grams, as fastText computes them (the "hashing trick" of ``-wordNgrams``).

A token's hash is fastText's variant of 32-bit FNV-1a over its UTF-8 bytes (each byte is
sign-extended first, as fastText's ``int8_t`` cast does, so non-ASCII tokens hash as in fastText).
An n-gram's hash combines its tokens' hashes left to right, modulo 2**64::

    h = hash(t1)                      # as a signed 32-bit value widened to 64 bits
    h = h * 116049371 + hash(t_k)     # for k = 2..n
    bucket = h % buckets

so the buckets are exactly those fastText uses for word n-grams (before it offsets them by the
number of words). Python's ``hash()`` is never used: it is randomised per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from ffnlp.errors import ConfigError

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_NGRAM_MULTIPLIER = np.uint64(116049371)  # fastText's constant in Dictionary::addWordNgrams
_MASK32 = 0xFFFFFFFF
_SIGN_EXTEND_64 = 0xFFFFFFFF00000000


@lru_cache(maxsize=1 << 20)
def token_hash(token: str) -> int:
    """fastText's 32-bit hash of ``token`` (an int in [0, 2**32))."""
    h = _FNV_OFFSET
    for byte in token.encode("utf-8"):
        if byte >= 0x80:  # fastText XORs uint32_t(int8_t(byte)): the byte, sign-extended
            byte |= 0xFFFFFF00
        h = ((h ^ byte) * _FNV_PRIME) & _MASK32
    return h


@lru_cache(maxsize=1 << 20)
def _wide(token: str) -> int:
    """The token hash as fastText feeds it to the n-gram combination: int32 widened to uint64."""
    h = token_hash(token)
    return h | _SIGN_EXTEND_64 if h & 0x80000000 else h


def _check(max_n: int, buckets: int) -> None:
    problems = []
    if max_n < 1:
        problems.append(f"max_n must be at least 1 (1 = no word n-grams); got {max_n}")
    if buckets < 1:
        problems.append(f"buckets must be at least 1; got {buckets}")
    if problems:
        raise ConfigError("; ".join(problems))


def _combine(wide: np.ndarray, n: int) -> np.ndarray:
    """Hashes of the n-grams starting at positions 0..len-n of ``wide`` (uint64, wraps mod 2**64)."""
    count = len(wide) - n + 1
    h = wide[:count].copy()  # (count,)
    for k in range(1, n):
        h *= _NGRAM_MULTIPLIER
        h += wide[k : k + count]
    return h


def ngram_hashes(tokens: Sequence[str], max_n: int, buckets: int) -> list[int]:
    """Bucket ids in ``[0, buckets)`` of every word n-gram of order 2..max_n of ``tokens``.

    Order: all bigrams left to right, then all trigrams, and so on. Sentences shorter than n have
    no n-grams of order n.
    """
    _check(max_n, buckets)
    if max_n < 2 or len(tokens) < 2:
        return []
    wide = np.fromiter((_wide(t) for t in tokens), dtype=np.uint64, count=len(tokens))
    parts = [_combine(wide, n) for n in range(2, min(max_n, len(tokens)) + 1)]
    return (np.concatenate(parts) % np.uint64(buckets)).astype(np.int64).tolist()


def ngram_hashes_flat(
    token_lists: Iterable[Sequence[str]], max_n: int, buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ngram_hashes` of many sentences at once, vectorised over the whole dataset.

    Returns ``(ids, offsets)``: ``ids[offsets[i]:offsets[i + 1]]`` are sentence i's bucket ids
    (int64, same order as :func:`ngram_hashes`); ``offsets`` has one entry more than sentences.
    """
    _check(max_n, buckets)
    wide_list: list[int] = []
    lengths: list[int] = []
    for tokens in token_lists:
        wide_list.extend(map(_wide, tokens))
        lengths.append(len(tokens))
    n_sentences = len(lengths)
    length = np.asarray(lengths, dtype=np.int64)  # (S,)
    if max_n < 2 or not wide_list:
        return np.zeros(0, dtype=np.int64), np.zeros(n_sentences + 1, dtype=np.int64)
    wide = np.asarray(wide_list, dtype=np.uint64)  # (T,)
    sentence = np.repeat(np.arange(n_sentences), length)  # (T,) sentence of each token
    ids, owners = [], []
    for n in range(2, max_n + 1):
        if len(wide) < n:
            break
        h = _combine(wide, n)  # (T-n+1,) n-grams at every position, some crossing sentences
        inside = sentence[: len(h)] == sentence[n - 1 :]  # first and last token in one sentence
        ids.append(h[inside] % np.uint64(buckets))
        owners.append(sentence[: len(h)][inside])
    if not owners:  # no sentence reaches order 2
        return np.zeros(0, dtype=np.int64), np.zeros(n_sentences + 1, dtype=np.int64)
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")  # group by sentence, keeping order n, then position
    flat = np.concatenate(ids)[order].astype(np.int64)
    offsets = np.zeros(n_sentences + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_sentences), out=offsets[1:])
    return flat, offsets
