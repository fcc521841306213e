"""Interpolated modified Kneser–Ney n-gram language model (Chen & Goodman 1998), from counts.

The model reads the same token-id stream as the neural LM: ``</s> s1 </s> s2 </s> ...`` (see
:mod:`ffnlp.text.corpus`).  An ``</s>`` in the context position means "start of sentence" (it plays
the role of ``<s>``), so n-grams never cross a sentence boundary: an n-gram is counted only when no
``</s>`` sits strictly inside it.  Every token after the leading ``</s>`` is predicted, ``</s>``
included: the same perplexity convention as the neural model.

Counting is vectorised with NumPy.  An n-gram gets an integer id by induction on its order: its key
is ``id(prefix (n-1)-gram) * V + last word``, and the sorted unique keys of one order are its table
(so ids never overflow int64, whatever the order; :mod:`ffnlp.models.ngram_tables` holds that
layout and the walks over it).  The estimate follows KenLM / SRILM:

* adjusted counts ``a``: raw counts at the highest order and for n-grams that start with ``<s>``;
  elsewhere the continuation count N1+(• g), the number of distinct words seen before ``g``;
* three discounts per order, D1, D2, D3+, from the count-of-counts of the adjusted counts;
* ``p_n(w | h) = max(a(hw) - D(a(hw)), 0) / Σ_v a(hv) + γ(h) p_{n-1}(w | h')`` with
  ``γ(h) = Σ_v D(a(hv)) / Σ_v a(hv)``; a context never seen at order n backs off entirely;
* the unigram level interpolates with the uniform distribution over the V words, so every word of
  the vocabulary (never-seen ones included) has a probability and each distribution sums to one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ffnlp.errors import DataError, ModelFileError
from ffnlp.models.ngram_tables import (
    history_contexts,
    lookup,
    scored_stream,
    sentence_spans,
    stream_matches,
)


@dataclass
class _Order:
    """The tables of one order n >= 2, indexed by n-gram id or by context ((n-1)-gram) id."""

    keys: np.ndarray  # (G,) int64, sorted: id(prefix) * V + word
    numerator: np.ndarray  # (G,) float64: max(a - D(a), 0)
    denominator: np.ndarray  # (P,) float64: Σ_v a(hv) per context id (P = size of order n-1)
    gamma: np.ndarray  # (P,) float64: back-off weight per context id (0 where unseen)


def discounts(adjusted: np.ndarray) -> tuple[float, float, float]:
    """Chen & Goodman's D1, D2, D3+ from the count-of-counts of one order's adjusted counts.

    Falls back to (0.5, 1.0, 1.5) when some count-of-count is zero (tiny corpora), and keeps every
    D_k within [0, k] so that no probability goes negative.
    """
    n1, n2, n3, n4 = (int(np.count_nonzero(adjusted == k)) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return (0.5, 1.0, 1.5)
    y = n1 / (n1 + 2 * n2)
    d1 = 1 - 2 * y * n2 / n1
    d2 = 2 - 3 * y * n3 / n2
    d3 = 3 - 4 * y * n4 / n3
    return (float(np.clip(d1, 0, 1)), float(np.clip(d2, 0, 2)), float(np.clip(d3, 0, 3)))


class KneserNey:
    """An n-gram LM over ids ``0..V-1``; build it with :meth:`fit`, score with :meth:`log_probs`."""

    def __init__(
        self,
        order: int,
        vocab_size: int,
        eos_id: int,
        unigram: np.ndarray,
        orders: Sequence[_Order],
        discount_table: Sequence[tuple[float, float, float]],
    ):
        self.order = order
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.unigram = unigram  # (V,) float64: p_1(w)
        self.orders = list(orders)  # orders[i] holds order i + 2
        self.discount_table = [tuple(d) for d in discount_table]  # one (D1, D2, D3+) per order

    # ----------------------------------------------------------------------------------------
    # estimation

    @classmethod
    def fit(cls, ids: np.ndarray, order: int, vocab_size: int, eos_id: int) -> KneserNey:
        """Count every n-gram of ``ids`` (orders 1..order) and estimate the model."""
        if order < 1:
            raise ValueError(f"order must be >= 1; got {order}")
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) < 2:
            raise DataError("the training corpus is empty: nothing to count n-grams from")
        if ids[0] != eos_id:
            raise ValueError("the id stream must start with </s> (the start-of-sentence marker)")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"ids must lie in [0, {vocab_size}); got {ids.min()}..{ids.max()}")
        V = vocab_size
        span = sentence_spans(ids, eos_id)
        n_pos = len(ids)

        # tables[n] for n >= 2: keys, raw counts, suffix id, starts-with-<s>; gram id per position
        gram_at = {1: ids.copy()}  # id of the n-gram ending at t (-1 where not valid)
        keys_of: dict[int, np.ndarray] = {}
        raw_of: dict[int, np.ndarray] = {}
        suffix_of: dict[int, np.ndarray] = {}
        starts_bos: dict[int, np.ndarray] = {}
        for n in range(2, order + 1):
            pos = np.nonzero(span[1:] >= n)[0] + 1  # positions where an n-gram ends
            key = gram_at[n - 1][pos - 1] * V + ids[pos]
            uniq, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
            at = np.full(n_pos, -1, dtype=np.int64)
            at[pos] = inv
            gram_at[n] = at
            keys_of[n] = uniq
            raw_of[n] = counts.astype(np.float64)
            suffix = np.empty(len(uniq), dtype=np.int64)
            suffix[inv] = gram_at[n - 1][pos]  # drop the first word: the (n-1)-gram ending at t
            suffix_of[n] = suffix
            first = np.empty(len(uniq), dtype=bool)
            first[inv] = ids[pos - n + 1] == eos_id
            starts_bos[n] = first

        # adjusted counts
        adjusted: dict[int, np.ndarray] = {}
        for n in range(order, 0, -1):
            if n == order:
                adjusted[n] = (
                    raw_of[n] if n > 1 else np.bincount(ids[1:], minlength=V).astype(np.float64)
                )
                continue
            size = V if n == 1 else len(keys_of[n])
            continuation = np.bincount(suffix_of[n + 1], minlength=size).astype(np.float64)
            if n == 1:
                adjusted[n] = continuation
            else:
                adjusted[n] = np.where(starts_bos[n], raw_of[n], continuation)

        discount_table = [discounts(adjusted[n]) for n in range(1, order + 1)]

        def discount_of(a: np.ndarray, d: tuple[float, float, float]) -> np.ndarray:
            return np.select([a == 0, a == 1, a == 2], [0.0, d[0], d[1]], default=d[2])

        a1 = adjusted[1]
        d1 = discount_of(a1, discount_table[0])
        total = a1.sum()
        unigram = np.maximum(a1 - d1, 0) / total + (d1.sum() / total) / V

        orders = []
        for n in range(2, order + 1):
            a = adjusted[n]
            d = discount_of(a, discount_table[n - 1])
            prefix = keys_of[n] // V
            size = V if n == 2 else len(keys_of[n - 1])
            denominator = np.bincount(prefix, weights=a, minlength=size)
            gamma_num = np.bincount(prefix, weights=d, minlength=size)
            with np.errstate(invalid="ignore", divide="ignore"):
                gamma = np.where(denominator > 0, gamma_num / denominator, 0.0)
            orders.append(_Order(keys_of[n], np.maximum(a - d, 0), denominator, gamma))
        return cls(order, V, eos_id, unigram, orders, discount_table)

    # ----------------------------------------------------------------------------------------
    # scoring

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of the stream after the leading ``</s>``."""
        ids = scored_stream(ids, self.eos_id)
        prob = self.unigram[ids[1:]]  # (T,)
        for tab, has_context, h, found in stream_matches(
            self.orders, ids, self.eos_id, self.vocab_size
        ):
            seen = has_context & (tab.denominator[h] > 0)
            num = np.where(found >= 0, tab.numerator[np.maximum(found, 0)], 0.0)
            den = np.where(seen, tab.denominator[h], 1.0)
            prob = np.where(seen, num / den + tab.gamma[h] * prob, prob)
        return np.log(prob)

    def distribution(self, history: Sequence[int]) -> np.ndarray:
        """p(w | history) for every w in the vocabulary: a (V,) float64 vector summing to 1.

        ``history`` is the stream before the predicted word; only its tail after the last
        ``</s>`` (which marks the sentence start) and the last order-1 words matter.
        """
        V = self.vocab_size
        prob = self.unigram.copy()
        words = np.arange(V)
        for _, tab, h in history_contexts(self.orders, V, self.eos_id, history):
            if h < 0 or tab.denominator[h] <= 0:
                break  # a longer context containing an unseen one is unseen too
            found = lookup(tab.keys, h * V + words)
            num = np.where(found >= 0, tab.numerator[np.maximum(found, 0)], 0.0)
            prob = num / tab.denominator[h] + tab.gamma[h] * prob
        return prob

    # ----------------------------------------------------------------------------------------
    # persistence: plain arrays (safetensors) plus a small JSON-able header

    @property
    def ngram_counts(self) -> list[int]:
        """How many n-grams each order keeps: V for unigrams, then the table sizes of 2..order."""
        return [self.vocab_size] + [len(t.keys) for t in self.orders]

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, object]]:
        arrays = {"unigram": self.unigram}
        for n, tab in enumerate(self.orders, start=2):
            arrays[f"order{n}.keys"] = tab.keys
            arrays[f"order{n}.numerator"] = tab.numerator
            arrays[f"order{n}.denominator"] = tab.denominator
            arrays[f"order{n}.gamma"] = tab.gamma
        header: dict[str, object] = {
            "order": self.order,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "discounts": [list(d) for d in self.discount_table],
            "ngrams": self.ngram_counts,
        }
        return arrays, header

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], header: object) -> KneserNey:
        """Rebuild a model from :meth:`state`'s arrays and header (the header as read from JSON:
        every value is checked, and a bad one raises :class:`ModelFileError`)."""
        order, vocab_size, eos_id, discount_table = _parse_header(header)
        try:
            orders = [
                _Order(
                    np.asarray(arrays[f"order{n}.keys"], dtype=np.int64),
                    arrays[f"order{n}.numerator"],
                    arrays[f"order{n}.denominator"],
                    arrays[f"order{n}.gamma"],
                )
                for n in range(2, order + 1)
            ]
            unigram = arrays["unigram"]
        except KeyError as exc:
            raise ModelFileError(
                f"the Kneser-Ney model file lacks {exc}; retrain the model"
            ) from None
        _check_arrays(arrays, order, vocab_size)
        _check_counts(header, [vocab_size] + [len(t.keys) for t in orders])
        return cls(order, vocab_size, eos_id, unigram, orders, discount_table)


UNIGRAM_SUM_TOLERANCE = 1e-6


def _check_arrays(arrays: Mapping[str, np.ndarray], order: int, vocab_size: int) -> None:
    """Every table as :meth:`KneserNey.state` writes it: its dtype (int64 keys, float64
    numbers), one dimension, lengths that fit the vocabulary and the order below, keys sorted and
    in range, and numbers finite and in range (probabilities in [0, 1] summing to 1, counts and
    back-off masses from 0). A NaN or a negative count would score every text silently wrong."""
    unigram = arrays["unigram"]
    _check_array("unigram", unigram, np.float64, vocab_size)
    _check_numbers("unigram", unigram, high=1.0)
    total = float(unigram.sum())
    if abs(total - 1.0) > UNIGRAM_SUM_TOLERANCE:
        raise _bad_array("unigram", f"sums to {total:.6g}, not 1 (it holds probabilities)")
    below = vocab_size  # the size of order n - 1's table: the prefixes order n's keys index
    for n in range(2, order + 1):
        keys = arrays[f"order{n}.keys"]
        _check_array(f"order{n}.keys", keys, np.int64, None)
        size = len(keys)
        if size and (int(keys[0]) < 0 or int(keys[-1]) >= below * vocab_size):
            raise _bad_array(
                f"order{n}.keys", f"holds keys outside [0, {below * vocab_size}) (prefixes x words)"
            )
        if size > 1 and not bool((keys[1:] > keys[:-1]).all()):
            at = int(np.flatnonzero(keys[1:] <= keys[:-1])[0]) + 1
            raise _bad_array(f"order{n}.keys", f"is not strictly increasing at index {at}")
        _check_array(f"order{n}.numerator", arrays[f"order{n}.numerator"], np.float64, size)
        _check_numbers(f"order{n}.numerator", arrays[f"order{n}.numerator"])
        for name in ("denominator", "gamma"):
            values = arrays[f"order{n}.{name}"]
            _check_array(f"order{n}.{name}", values, np.float64, below)
            _check_numbers(f"order{n}.{name}", values)
        below = size


def _check_array(name: str, values: np.ndarray, dtype: type, length: int | None) -> None:
    if values.dtype != dtype:
        raise _bad_array(name, f"is {values.dtype}, not {np.dtype(dtype)} as ffnlp writes it")
    if values.ndim != 1:
        raise _bad_array(name, f"has {values.ndim} dimensions, not 1")
    if length is not None and len(values) != length:
        raise _bad_array(
            name, f"holds {len(values)} values where model.json and the tables make {length}"
        )


def _check_numbers(name: str, values: np.ndarray, high: float | None = None) -> None:
    bad = ~np.isfinite(values) | (values < 0)
    if high is not None:
        bad |= values > high
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        limits = f"in [0, {high:g}]" if high is not None else "finite and at least 0"
        raise _bad_array(name, f"holds {float(values[at])!r} at index {at}; each must be {limits}")


def _check_counts(header: object, found: list[int]) -> None:
    """model.json's "ngrams" (when written) must be the sizes of the tables."""
    counts = header.get("ngrams") if isinstance(header, Mapping) else None
    if counts is not None and counts != found:
        raise _bad_header(f"'ngrams' is {counts!r} but the tables hold {found}")


def _bad_array(name: str, problem: str) -> ModelFileError:
    return ModelFileError(
        f"the Kneser-Ney table '{name}' {problem}; the model file is damaged: retrain the model"
    )


def _parse_header(header: object) -> tuple[int, int, int, list[tuple[float, float, float]]]:
    """order, vocab_size, eos_id and the discount table of a saved model's header, type-checked."""
    if not isinstance(header, Mapping):
        raise _bad_header(f"the header must be a JSON object; got {type(header).__name__}")
    order = _header_int(header, "order", minimum=1)
    vocab_size = _header_int(header, "vocab_size", minimum=1)
    eos_id = _header_int(header, "eos_id", minimum=0)
    if eos_id >= vocab_size:
        raise _bad_header(f"'eos_id' must be below 'vocab_size' ({vocab_size}); got {eos_id}")
    table = header.get("discounts")
    if not isinstance(table, list) or len(table) != order:
        raise _bad_header(
            f"'discounts' must be a list of {order} triples (one per order); got {table!r}"
        )
    discount_table = []
    for row in table:
        if not (
            isinstance(row, list)
            and len(row) == 3
            and all(isinstance(d, int | float) and not isinstance(d, bool) for d in row)
        ):
            raise _bad_header(f"each entry of 'discounts' must be three numbers; got {row!r}")
        for i, d in enumerate(row):  # discounts() clips D1, D2, D3+ to [0, 1], [0, 2], [0, 3]
            if not (isinstance(d, int) or math.isfinite(d)) or not 0 <= d <= i + 1:
                raise _bad_header(
                    f"the discount D{i + 1} of each order must lie in [0, {i + 1}]; got {d!r}"
                )
        discount_table.append((float(row[0]), float(row[1]), float(row[2])))
    return order, vocab_size, eos_id, discount_table


def _header_int(header: Mapping[object, object], key: str, minimum: int) -> int:
    if key not in header:
        raise _bad_header(f"it lacks '{key}'")
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _bad_header(f"'{key}' must be an integer; got {value!r}")
    if value < minimum:
        raise _bad_header(f"'{key}' must be at least {minimum}; got {value}")
    return int(value)


def _bad_header(problem: str) -> ModelFileError:
    return ModelFileError(f"the Kneser-Ney model header is invalid: {problem}; retrain the model")
