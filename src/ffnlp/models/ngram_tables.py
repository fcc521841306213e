"""The n-gram tables shared by the Kneser–Ney model and the ARPA back-off model, and the walks
over them that both scorers take.

Layout: word ids ``0..V-1``; an n-gram of order n >= 2 gets an id by induction on its order, its
key being ``id(prefix (n-1)-gram) * V + last word``, and the sorted unique keys of one order are
that order's table (a unigram's id is its word id). ``orders[i]`` is the table of order i + 2.

Streams: a model scores the token-id stream ``</s> s1 </s> s2 </s> ...`` (see
:mod:`ffnlp.text.corpus`), where an ``</s>`` in a context's first place marks the start of a
sentence; an n-gram never holds ``</s>`` strictly inside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

import numpy as np


class KeyedTable(Protocol):
    """One order's table: its n-grams' sorted keys, ``id(prefix) * V + word``."""

    @property
    def keys(self) -> np.ndarray: ...


T = TypeVar("T", bound=KeyedTable)


def lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each query in the sorted ``keys``, or -1 when absent."""
    pos = np.searchsorted(keys, query)
    pos_c = np.minimum(pos, max(len(keys) - 1, 0))
    found = (pos < len(keys)) & (keys[pos_c] == query) if len(keys) else np.zeros(len(query), bool)
    return np.where(found, pos_c, -1)


def gram_ids(orders: Sequence[KeyedTable], vocab_size: int, grams: np.ndarray) -> np.ndarray:
    """Id of each row of ``grams`` ((G, n) word ids) in its order's table, or -1 where a table
    does not list it (or a part of it): one lookup per order, from the first word on."""
    gid = grams[:, 0]  # (G,)
    for k in range(1, grams.shape[1]):
        listed = gid >= 0
        query = np.where(listed, gid, 0) * vocab_size + grams[:, k]
        gid = np.where(listed, lookup(orders[k - 1].keys, query), -1)
    return gid


def gram_id(orders: Sequence[KeyedTable], vocab_size: int, gram: Sequence[int]) -> int:
    """Id of one n-gram in its order's table (a word id for unigrams), or -1 when not listed."""
    gid = int(gram[0])
    for k, word in enumerate(gram[1:], start=2):
        gid = int(lookup(orders[k - 2].keys, np.array([gid * vocab_size + word]))[0])
        if gid < 0:
            return -1
    return gid


def sentence_spans(ids: np.ndarray, eos_id: int) -> np.ndarray:
    """Longest n-gram ending at each position with no ``</s>`` strictly inside it.

    Position 0 must hold ``</s>`` (the start marker); it gets span 1.
    """
    n = len(ids)
    marks = np.where(ids == eos_id, np.arange(n), -1)
    last = np.maximum.accumulate(marks)  # last </s> at or before t
    prev = np.empty(n, dtype=np.int64)
    prev[0] = 0
    prev[1:] = last[:-1]  # last </s> strictly before t
    return np.arange(n) - prev + 1


def scored_stream(ids: np.ndarray, eos_id: int) -> np.ndarray:
    """``ids`` as int64, checked to start with ``</s>`` (ValueError otherwise)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0 or ids[0] != eos_id:
        raise ValueError("the id stream must start with </s> (the start-of-sentence marker)")
    return ids


def stream_matches(
    orders: Sequence[T], ids: np.ndarray, eos_id: int, vocab_size: int
) -> Iterator[tuple[T, np.ndarray, np.ndarray, np.ndarray]]:
    """For each order n = 2, 3, ... of ``orders`` over the stream ``ids`` (as
    :func:`scored_stream` returns it), the targets ``ids[1:]`` in their n-gram contexts:
    ``(table, has_context, context, found)``, each (T,): whether the target's (n-1)-gram
    context lies within its sentence and is listed one order down, that context's id (0 where
    not), and the id of the n-gram (context, target) in ``table`` (-1 where not listed)."""
    span = sentence_spans(ids, eos_id)
    targets = ids[1:]
    context = ids.copy()  # id of the listed (n-1)-gram ending at t (-1 = not listed)
    for n, tab in enumerate(orders, start=2):
        h = context[:-1]  # (T,) context of the target at t = 1..
        has_context = (span[1:] >= n) & (h >= 0)
        safe_h = np.where(has_context, h, 0)
        found = np.where(has_context, lookup(tab.keys, safe_h * vocab_size + targets), -1)
        yield tab, has_context, safe_h, found
        context = np.concatenate([[-1], found])


def history_contexts(
    orders: Sequence[T], vocab_size: int, eos_id: int, history: Sequence[int]
) -> Iterator[tuple[int, T, int]]:
    """For each order n = 2, 3, ... whose context the ``history`` fills: ``(n, table, h)``, h the
    id of the history's last n-1 words one order down (-1 when not listed).

    ``history`` is the stream before the predicted word; only its tail after the last ``</s>``
    (which marks the sentence start) and its last ``len(orders)`` words matter.
    """
    order = len(orders) + 1
    hist = [int(x) for x in history][-(order - 1) :] if order > 1 else []
    if eos_id in hist:  # nothing before the sentence start counts
        cut = len(hist) - 1 - hist[::-1].index(eos_id)
        hist = hist[cut:]
    for n, tab in enumerate(orders, start=2):
        if len(hist) < n - 1:
            return
        yield n, tab, gram_id(orders, vocab_size, hist[len(hist) - (n - 1) :])
