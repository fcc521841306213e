"""Featurising a whole chunk of texts at once, with NumPy and without PyTorch (predict's path).

The reference featurisers (:class:`~ffnlp.features.bag.BagOfNgrams`, the ids featurizer's
:func:`~ffnlp.models.pooled.encode_bags`) work text by text in Python and hand PyTorch tensors to
the model. Predicting a large file spends most of its time there, so this module does the same
work over a chunk of texts with array operations:

- :func:`tokenize_chunk`: every text of the chunk tokenised by one call of ``str.split`` (or the
  tokenizer's regular expression) over the texts joined by a separator token, then cut back into
  texts where the separators are; the tokens are exactly those of
  :class:`~ffnlp.text.tokenize.Tokenizer` (the separator is a character no token can hold
  together with a space on each side; a chunk whose texts hold that character is tokenised text
  by text instead);
- :class:`NgramRows`: the rows of a fitted bag of n-grams (state as ``BagOfNgrams.to_dict``):
  each token becomes the number of its type, an n-gram a key computed from its tokens' types,
  looked up in the sorted keys of the features; then counts, tf-idf and the L2 norm as the
  reference computes them. Returns CSR arrays ``(ids, offsets, weights)``;
- :class:`IdRows`: the bags of the ids featurizer (word rows, then fastText-hashed word n-gram
  rows; state as ``IdsFeaturizer.to_dict``), in the reference's order. Character n-grams
  (``maxn > 0``) are not covered: :meth:`IdRows.supported` says so and the caller takes the
  reference path.

Both give the same ids and (to float rounding) the same weights as the reference, which the
tests check on the benchmark data. The arrays are built for a chunk at a time: the memory used is
that of one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np

from ffnlp.features.weighting import WEIGHTED, weigh_counts
from ffnlp.text.tokenize import Tokenizer

SEPARATOR = "\x00"  # the token put between two texts; a text holding it is tokenised on its own
_JOIN = f" {SEPARATOR} "
_ASCII_WHITESPACE = re.compile(r"[^ \t\n\r\f\v]+")
_FILE_SEPARATOR_CHARS = "\x1c\x1d\x1e\x1f"
# what str.split() splits on beyond ASCII whitespace and \x1c-\x1f (Py_UNICODE_ISSPACE)
_UNICODE_SPACE_CHARS = (
    "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _holds_any(text: str, chars: str) -> bool:
    """Whether ``text`` holds one of ``chars`` (one fast substring search each: quicker than a
    regular expression's character class over a long text)."""
    return any(c in text for c in chars)


_NO_LENGTHS = np.zeros(0, dtype=np.int64)  # the compiled kernels' "no lengths: split at separators"
_NO_IDF = np.zeros(0, dtype=np.float64)  # weigh_cells' "no idf"
_WEIGHTING = {"count": 0, "binary": 1, "tfidf": 2, "nbsvm": 3}  # weigh_cells' numbers
_MAX_KEY_BITS = 62  # n-gram keys are int64: types ** n must stay below 2 ** 62


def split_chunk(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[str], np.ndarray | None]:
    """The tokens of a chunk of texts as the featurisers here read them: ``(stream, None)``,
    every text's tokens with one :data:`SEPARATOR` token between two texts; or, for a chunk one
    call cannot split as the tokenizer would (a text holding the separator, a non-ASCII text
    holding ``\\x1c``-``\\x1f``), ``(tokens, lengths)``: the tokens back to back (no separator)
    and how many each text has."""
    if not texts:
        return [], np.zeros(0, dtype=np.int64)
    if tokenizer.lowercase:
        texts = [t.lower() for t in texts]
    joined = _JOIN.join(texts)
    ascii_ = joined.isascii()
    if joined.count(SEPARATOR) != len(texts) - 1 or (
        # str.split() also splits ASCII texts on \x1c-\x1f, as the reference does text by text;
        # the expression that stands for it on other texts does not: each text on its own then
        tokenizer.kind == "whitespace" and not ascii_ and _holds_any(joined, _FILE_SEPARATOR_CHARS)
    ):
        lists = [tokenizer(t) for t in texts]
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        return [t for tokens in lists for t in tokens], lengths
    if tokenizer.kind == "regex":
        from ffnlp.text.tokenize import _WORDS

        return _WORDS.findall(joined), None
    if ascii_ or not _holds_any(joined, _UNICODE_SPACE_CHARS):
        # without Unicode spaces (nor \x1c-\x1f, checked above) str.split() splits exactly
        # where the ASCII-whitespace expression does, and faster
        return joined.split(), None
    return _ASCII_WHITESPACE.findall(joined), None


def tokenize_chunk(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """``(tokens, lengths)``: the tokens of every text back to back, and how many each text has
    (int64, one per text); the same tokens as ``tokenizer.tokenize_all(texts)``."""
    stream, lengths = split_chunk(tokenizer, texts)
    if lengths is not None:
        return stream, lengths
    marks = np.flatnonzero(
        np.fromiter(map(SEPARATOR.__eq__, stream), dtype=bool, count=len(stream))
    )
    bounds = np.concatenate(([-1], marks, [len(stream)]))  # (S+1,)
    lengths = (np.diff(bounds) - 1).astype(np.int64)  # (S,) tokens between two separators
    return [t for t in stream if t != SEPARATOR], lengths


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """0..len-1 for each segment, concatenated: [2, 3] -> [0, 1, 0, 1, 2]."""
    total = int(lengths.sum())
    seg_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - seg_start


def _windows_inside(text_of: np.ndarray, n: int) -> np.ndarray:
    """(T-n+1,) bool: the n tokens starting at each position belong to one text."""
    return text_of[: len(text_of) - n + 1] == text_of[n - 1 :]


class KeyIndex:
    """A hash table from int64 keys to int64 values, looked up for a whole array at once
    (open addressing, linear probing; at most half full)."""

    _EMPTY = -1

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        size = 1 << max(int(2 * len(keys)).bit_length(), 4)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # for _search
        self.mask = np.int64(size - 1)
        self.keys = np.full(size, self._EMPTY, dtype=np.int64)
        self.values = np.zeros(size, dtype=np.int64)
        slot = self._slot(keys)
        # the keys in order of their slots, each at the first slot from its own on that is not
        # taken by the keys before it: position i = max(slot_i, position_(i-1) + 1). From its
        # slot to its position every slot is taken, so that probing finds it. One sort, no loop:
        # what a run read from its folder builds at start-up
        narrow = slot.astype(np.int32) if size <= 2**31 else slot  # a narrower sort is faster
        by_slot = np.argsort(narrow)
        step = np.arange(len(keys), dtype=np.int64)
        position = np.maximum.accumulate(slot[by_slot] - step) + step if len(keys) else step
        if not len(keys) or position[-1] < size:
            self.keys[position] = keys[by_slot]
            self.values[position] = values[by_slot]
            return
        self._insert(keys, values, slot)  # the last positions would run past the end: wrap

    def _insert(self, keys: np.ndarray, values: np.ndarray, slot: np.ndarray) -> None:
        """Insert ``keys`` into the empty table by rounds, probing on (and wrapping round)."""
        todo = np.arange(len(keys))
        while len(todo):  # place what lands on a free slot (one key per slot), move the rest on
            free = np.flatnonzero(self.keys[slot[todo]] == self._EMPTY)
            # of the keys landing on one free slot, the first takes it
            wanted = slot[todo][free]
            by_slot = np.argsort(wanted, kind="stable")
            ordered = wanted[by_slot]
            leads = np.ones(len(ordered), dtype=bool)
            leads[1:] = ordered[1:] != ordered[:-1]
            first = np.zeros(len(todo), dtype=bool)
            first[free[by_slot[leads]]] = True
            placed = todo[first]
            self.keys[slot[placed]] = keys[placed]
            self.values[slot[placed]] = values[placed]
            todo = todo[~first]
            slot[todo] = (slot[todo] + 1) & self.mask

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
        return (mixed >> np.uint64(32)).astype(np.int64) & self.mask

    def get(self, keys: np.ndarray) -> np.ndarray:
        """The value of every key (int64 >= 0), -1 for a key the table does not hold."""
        if len(keys) < self.SEARCH_BELOW:
            return self._search(keys)
        out = np.full(len(keys), -1, dtype=np.int64)
        slot = self._slot(keys)
        todo = np.arange(len(keys))
        while len(todo):
            held = self.keys[slot[todo]]
            hit = held == keys[todo]
            out[todo[hit]] = self.values[slot[todo[hit]]]
            todo = todo[~hit & (held != self._EMPTY)]
            slot[todo] = (slot[todo] + 1) & self.mask
        return out

    # Below this many keys a binary search in the sorted keys answers in a few array calls; the
    # probing above takes a round of calls for each step of the longest probe sequence (a key
    # the table does not hold probes to the next empty slot), more than the search costs.
    SEARCH_BELOW = 2048

    def _search(self, keys: np.ndarray) -> np.ndarray:
        """:meth:`get` by binary search (the same values); the sorted keys made on first use."""
        if self._sorted is None:
            held = np.flatnonzero(self.keys != self._EMPTY)
            order = np.argsort(self.keys[held], kind="stable")
            self._sorted = (self.keys[held][order], self.values[held][order])
        sorted_keys, sorted_values = self._sorted
        if not len(sorted_keys):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.searchsorted(sorted_keys, keys)
        at[at == len(sorted_keys)] = 0  # past the largest key: not held (checked below)
        return np.where(sorted_keys[at] == keys, sorted_values[at], -1)


def _text_of(kind: np.ndarray, separator: int, lengths: np.ndarray | None) -> np.ndarray:
    """(T,) the text of each position of the stream (a separator counts with the next text)."""
    if lengths is None:
        return np.cumsum(kind == separator)
    return np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)


class TokenTable:
    """Known tokens (a mapping from token to value) as the arrays of
    :func:`~ffnlp.features.fast_compiled.split_texts`: their UTF-8 bytes back to back and an
    open-addressing table of their hashes. :meth:`split` splits and looks up a chunk of texts
    in one compiled call."""

    def __init__(self, values_of: dict[str, int]):
        from ffnlp.features import fast_compiled

        tokens = list(values_of)
        # surrogatepass: a token no UTF-8 text can hold still gets bytes (never matched)
        encoded = [t.encode("utf-8", "surrogatepass") for t in tokens]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        self.starts = np.zeros(len(tokens) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.starts[1:])
        self.pool = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
        self.values = np.fromiter(values_of.values(), dtype=np.int64, count=len(tokens))
        size = 1 << max(int(2 * len(tokens)).bit_length(), 4)
        hashes, slots = fast_compiled.hash_tokens.compiled(), fast_compiled.token_slots.compiled()
        self.slots: np.ndarray | None = None
        if hashes is not None and slots is not None:
            self.slots = slots(hashes(self.pool, self.starts), size)

    def records(self, extra: np.ndarray | None = None) -> np.ndarray:
        """(S, 4) int64, one row per slot of the table, for the fused kernels: ``[start,
        length, value, extra]`` of the token the slot holds (its bytes in :attr:`pool`, its
        value, ``extra[value]``: 0 without ``extra``), ``start`` -1 for an empty slot. One
        look-up then reads one cache line of the table where the slots, starts and values
        arrays cost three (made once per ``extra`` by the caller, which keeps it)."""
        assert self.slots is not None
        held = self.slots >= 0
        index = self.slots[held]
        out = np.zeros((len(self.slots), 4), dtype=np.int64)
        out[:, 0] = -1
        out[held, 0] = self.starts[index]
        out[held, 1] = self.starts[index + 1] - self.starts[index]
        out[held, 2] = self.values[index]
        if extra is not None:
            out[held, 3] = extra[self.values[index]]
        return out

    def split(
        self, tokenizer: Tokenizer, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """``(begin, end, found, wide)`` of :func:`~ffnlp.features.fast_compiled.split_texts`
        for ``texts`` as ``tokenizer`` reads them; ``None`` where it cannot say (compiled
        kernels off, the regular-expression tokenizer, a text that is not valid Unicode)."""
        from ffnlp.features import fast_compiled

        split = fast_compiled.split_texts.compiled()
        if split is None:
            return None
        encoded = self.encode(tokenizer, texts)
        if encoded is None:
            return None
        found: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] = split(
            *encoded, self.slots, self.pool, self.starts, self.values
        )
        return found

    def encode(
        self, tokenizer: Tokenizer, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(data, sizes)``, the compiled splitters' input: the texts as ``tokenizer`` reads
        them (lowercased where it lowercases), UTF-8, one ``\\n`` between two (uint8), and each
        one's length in bytes (int64); ``None`` where the kernels cannot split them (no table,
        the regular-expression tokenizer, a text that is not valid Unicode)."""
        if self.slots is None or tokenizer.kind != "whitespace":
            return None
        if tokenizer.lowercase:
            texts = [t.lower() for t in texts]
        joined = "\n".join(texts)
        if joined.isascii():
            data = joined.encode("ascii")
            sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        else:
            try:
                encoded = [t.encode("utf-8") for t in texts]
            except UnicodeEncodeError:  # a lone surrogate: the reference path decides
                return None
            data = b"\n".join(encoded)
            sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        return np.frombuffer(data or b"\n", dtype=np.uint8), sizes


class NgramLayout(NamedTuple):
    """A bag of n-grams' features as arrays: ``tokens``, every distinct token of the features
    (numbered in order of first appearance), ``kinds`` (int64), the numbers of every feature's
    tokens back to back, features in column order, and ``lengths`` (int64, one per feature),
    how many tokens each has; ``idf`` (float64, one per feature) when read with them."""

    tokens: list[str]
    kinds: np.ndarray
    lengths: np.ndarray
    idf: np.ndarray | None = None


def ngram_layout(features: Sequence[str]) -> NgramLayout | None:
    """The layout of feature names (an n-gram's name is its tokens joined by one space), or
    ``None`` for names that are not those of distinct n-grams (an empty token, a repeated
    name): :class:`NgramRows` does not cover those."""
    features = list(features)
    flat = " ".join(features).split(" ") if features else []
    order = np.fromiter(map(str.count, features, repeat(" ")), np.int64, len(features)) + 1
    if len(set(features)) != len(features) or "" in flat:
        return None
    types = dict(zip(dict.fromkeys(flat), range(len(flat)), strict=False))
    kinds = np.fromiter(map(types.__getitem__, flat), np.int64, len(flat))  # (sum order,)
    return NgramLayout(list(types), kinds, order)


class NgramRows:
    """The rows of a fitted bag of word n-grams (``BagOfNgrams.to_dict()``'s state) for chunks
    of texts split by :func:`split_chunk`: ``rows(stream, lengths) -> (ids, offsets, weights)``."""

    _SEPARATOR_KIND = -2  # the type of a separator token; -1: a token no feature holds

    def __init__(self, state: dict[str, Any], layout: NgramLayout | None = None):
        """From a ``BagOfNgrams.to_dict()`` state; ``layout``: its features as
        :func:`ngram_layout` lays them out (read from a run's ``vocab.safetensors``), in place of
        the state's ``features`` names, which are then not read."""
        low, high = (int(x) for x in state["ngram_range"])
        self.low, self.high = low, high
        self.weighting: str = state["weighting"]
        self.sublinear_tf = bool(state["sublinear_tf"])
        norm = state["norm"]
        self.l2 = norm == "l2" or (norm == "auto" and self.weighting in WEIGHTED)
        if layout is None:
            layout = ngram_layout(state["features"])
        idf = state.get("idf") if layout is None or layout.idf is None else layout.idf
        if self.weighting == "nbsvm":  # the log-count ratios, in vocab.json (also beside arrays)
            idf = state.get("ratios")
        # (F,) each feature's weight: its idf (tfidf) or its log-count ratio (nbsvm)
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        tokens = [] if layout is None else layout.tokens
        types = dict(zip(tokens, range(len(tokens)), strict=True))
        self.types = types  # every token some feature holds -> its number
        # the same with the separator token, for streams of several texts (split_chunk)
        self.types_in_stream = {**types, SEPARATOR: self._SEPARATOR_KIND}
        n_types = max(len(types), 1)
        self.n_types = n_types
        self.n_features = 0 if layout is None else len(layout.lengths)
        self.supported = (
            layout is not None
            and not state.get("char_features")  # character n-grams: the reference path
            and list(state.get("char_ngram_range", [0, 0])) == [0, 0]
            and not state.get("contrast_words")  # the clause after a contrast: the reference path
            and n_types ** max(high, 1) < 2**_MAX_KEY_BITS
            and 1 <= low <= high
            and self.weighting in ("count", "binary", *WEIGHTED)
            and norm in ("auto", "l2", None)
            and (self.idf is None) == (self.weighting not in WEIGHTED)
            and (self.idf is None or len(self.idf) == self.n_features)
            and (self.n_features == 0 or low <= int(layout.lengths.min()))
            and (self.n_features == 0 or int(layout.lengths.max()) <= high)
        )
        # unigrams: a column per type (-1 none); longer n-grams: their keys in a hash table
        self.unigram = np.full(n_types, -1, dtype=np.int64)
        self.tables: dict[int, KeyIndex] = {}
        # rows() through the compiled loops of fast_compiled where ffnlp.jit allows: for a
        # caller that keeps this object for many calls (Numba's import, a third of a second,
        # is paid on the first); the hash tables back to back for them, made on first use
        self.compiled = False
        self._flat_tables: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._packed_tables: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._table: TokenTable | None = None  # the types for rows_of_texts, made on first use
        self._logs = np.zeros(0, dtype=np.float64)  # NumPy's logs of counts, for the kernel
        if not self.supported:
            return
        assert layout is not None
        kinds, order = layout.kinds, layout.lengths
        starts = np.cumsum(order) - order  # (F,) each feature's first token in kinds
        for n in np.unique(order).tolist():
            columns = np.flatnonzero(order == n)
            keys = np.zeros(len(columns), dtype=np.int64)
            for k in range(n):
                keys = keys * n_types + kinds[starts[columns] + k]
            if n == 1:
                self.unigram[keys] = columns
            else:
                self.tables[n] = KeyIndex(keys, columns.astype(np.int64))

    def rows(
        self, stream: list[str], lengths: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays of a chunk (``split_chunk``'s ``stream, lengths``): column ids (int64,
        ascending within a text), the (B+1,) start of each text's, and the values (float32),
        as ``BagOfNgrams.transform`` computes them."""
        if lengths is None:
            kind = np.fromiter(
                map(self.types_in_stream.get, stream, repeat(-1)), dtype=np.int64, count=len(stream)
            )  # (T,) type of each token, -1 for a token no feature holds, -2 a separator
            n_texts = int((kind == self._SEPARATOR_KIND).sum()) + 1
        else:
            kind = np.fromiter(
                map(self.types.get, stream, repeat(-1)), dtype=np.int64, count=len(stream)
            )
            n_texts = len(lengths)
        if self.compiled:
            done = self._compiled_rows(kind, lengths)
            if done is not None:
                return done
        return self._rows_of_kinds(kind, lengths, n_texts)

    def rows_of_texts(
        self, tokenizer: Tokenizer, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`rows` of ``texts`` tokenised by ``tokenizer``, split and looked up by the
        compiled :func:`~ffnlp.features.fast_compiled.split_texts` (no Python per token), or
        ``None`` where that path does not apply (:meth:`TokenTable.split`)."""
        if not self.compiled or not self.supported:
            return None
        if self._table is None:
            self._table = TokenTable(self.types)
        split = self._table.split(tokenizer, texts)
        if split is None:
            return None
        begin, end, kind, _ = split
        return self._cells(kind, begin, end)

    def bag_sums_of_texts(
        self, tokenizer: Tokenizer, texts: Sequence[str], table: np.ndarray
    ) -> np.ndarray | None:
        """(B, D): each text's rows of ``table`` (F, D) times their values added up, as
        ``bag_sum(table, *rows_of_texts(tokenizer, texts))`` computes them, bit for bit, in
        one compiled call (:func:`~ffnlp.features.fast_compiled.ngram_bag_sums`); ``None``
        where :meth:`rows_of_texts` would be."""
        if not self.compiled or not self.supported:
            return None
        from ffnlp.features import fast_compiled

        fused = fast_compiled.ngram_bag_sums.compiled()
        if fused is None:
            return None
        if self._table is None:
            self._table = TokenTable(self.types)
        encoded = self._table.encode(tokenizer, texts)
        if encoded is None:
            return None
        data, sizes = encoded
        records, pairs, start, mask = self._packed()
        style = _WEIGHTING[self.weighting]
        idf = _NO_IDF if self.idf is None else self.idf
        longest = int(sizes.max()) if len(sizes) else 0
        logs = self._logs_up_to(longest // 2 + 1)  # a text's tokens at most
        sums: np.ndarray = fused(
            data, sizes, records, self._table.pool, self.low, self.high, self.n_types, pairs,
            start, mask, style, self.sublinear_tf, idf, self.l2, logs, table,
        )  # fmt: skip
        return sums

    def _packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The fused kernel's tables, made once: the known tokens' records (each with its
        type and its unigram's column, :meth:`TokenTable.records`), and the n-gram tables of
        :meth:`_tables_back_to_back` with each slot's key and column side by side (S, 2)."""
        if self._packed_tables is None:
            assert self._table is not None
            keys, values, start, mask = self._tables_back_to_back()
            self._packed_tables = (
                self._table.records(self.unigram),
                np.ascontiguousarray(np.stack([keys, values], axis=1)),
                start,
                mask,
            )
        return self._packed_tables

    def _rows_of_kinds(
        self, kind: np.ndarray, lengths: np.ndarray | None, n_texts: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        text_of = _text_of(kind, self._SEPARATOR_KIND, lengths)  # (T,)
        found_cols, found_rows = [], []
        for n in range(self.low, self.high + 1):
            if len(kind) < n or (n > 1 and n not in self.tables):
                continue
            count = len(kind) - n + 1
            key = kind[:count]  # (a view: the loop below makes new arrays, never writes it)
            valid = key >= 0
            for k in range(1, n):
                nxt = kind[k : k + count]
                valid &= nxt >= 0
                key = key * self.n_types + nxt
            if lengths is not None and n > 1:
                valid &= _windows_inside(text_of, n)
            at = np.flatnonzero(valid)
            columns = self.unigram[key[at]] if n == 1 else self.tables[n].get(key[at])
            hit = columns >= 0
            found_cols.append(columns[hit])
            found_rows.append(text_of[at[hit]])
        if found_cols:
            cols = np.concatenate(found_cols)
            rows = np.concatenate(found_rows)
        else:
            cols = rows = np.zeros(0, dtype=np.int64)
        f = max(self.n_features, 1)
        cells = rows * f + cols
        if n_texts * f < 2**31:  # a narrower sort is a faster one
            cells = cells.astype(np.int32)
        cells = np.sort(cells).astype(np.int64)  # row-major, columns ascending, duplicates adjacent
        if len(cells):
            starts = np.flatnonzero(np.concatenate(([True], cells[1:] != cells[:-1])))
            tf = np.diff(np.append(starts, len(cells))).astype(np.float64)
            cells = cells[starts]
        else:
            tf = np.zeros(0, dtype=np.float64)
        row_of, col_of = cells // f, cells % f
        values = self._weigh(tf, col_of, row_of, n_texts)
        offsets = np.zeros(n_texts + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=n_texts), out=offsets[1:])
        return col_of, offsets, values.astype(np.float32)

    def _compiled_rows(
        self, kind: np.ndarray, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`rows` by :func:`~ffnlp.features.fast_compiled.ngram_cells` (the same cells,
        weighed by the same function), or ``None`` where compiled kernels are off."""
        from ffnlp.features import fast_compiled

        bounds = fast_compiled.text_bounds.compiled()
        cells = fast_compiled.ngram_cells.compiled()
        if bounds is None or cells is None:
            return None
        by_separator = lengths is None
        begin, end = bounds(kind, _NO_LENGTHS if lengths is None else lengths, by_separator, -2)
        return self._cells(kind, begin, end)

    def _cells(
        self, kind: np.ndarray, begin: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        from ffnlp.features import fast_compiled

        cells = fast_compiled.ngram_cells.compiled()
        if cells is None:
            return None
        keys, values, start, mask = self._tables_back_to_back()
        col_of, counts, offsets = cells(
            kind, begin, end, self.low, self.high, self.n_types, self.unigram, keys, values,
            start, mask,
        )  # fmt: skip
        weigh = fast_compiled.weigh_cells.compiled()
        if weigh is None:
            n_texts = len(begin)
            row_of = np.repeat(np.arange(n_texts, dtype=np.int64), np.diff(offsets))
            weights = self._weigh(counts.astype(np.float64), col_of, row_of, n_texts)
            return col_of, offsets, weights.astype(np.float32)
        style = _WEIGHTING[self.weighting]
        idf = _NO_IDF if self.idf is None else self.idf
        logs = self._logs_up_to(len(kind))  # a count is at most the tokens of the chunk
        weights = weigh(col_of, counts, offsets, style, self.sublinear_tf, idf, self.l2, logs)
        return col_of, offsets, weights

    def _logs_up_to(self, count: int) -> np.ndarray:
        """(L,) float64, L > ``count``: NumPy's natural log of 0..L-1 (0 for 0), grown by
        doubling as chunks with more tokens come; for :func:`weigh_cells`."""
        if len(self._logs) <= count:
            size = 1 << max(count.bit_length(), 6)
            self._logs = np.zeros(size, dtype=np.float64)
            self._logs[1:] = np.log(np.arange(1, size, dtype=np.float64))
        return self._logs

    def _tables_back_to_back(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The slots of every order's :class:`KeyIndex` in one array of keys and one of values,
        with each order's start and mask (-1: no table of that order), for the kernel."""
        if self._flat_tables is None:
            start = np.zeros(self.high + 1, dtype=np.int64)
            mask = np.full(self.high + 1, -1, dtype=np.int64)
            keys, values, at = [], [], 0
            for n, table in sorted(self.tables.items()):
                start[n], mask[n] = at, int(table.mask)
                keys.append(table.keys)
                values.append(table.values)
                at += len(table.keys)
            self._flat_tables = (
                np.concatenate(keys) if keys else np.full(1, -1, dtype=np.int64),
                np.concatenate(values) if values else np.zeros(1, dtype=np.int64),
                start,
                mask,
            )
        return self._flat_tables

    def _weigh(
        self, tf: np.ndarray, col_of: np.ndarray, row_of: np.ndarray, n_texts: int
    ) -> np.ndarray:
        """The reference's values (:func:`~ffnlp.features.weighting.weigh_counts`, float64)."""
        return weigh_counts(
            tf,
            col_of,
            row_of,
            n_texts,
            weighting=self.weighting,
            sublinear_tf=self.sublinear_tf,
            idf=self.idf,
            l2=self.l2,
        )


class IdRows:
    """The bags of the ids featurizer (``IdsFeaturizer.to_dict()``'s state) for chunks of
    tokenised texts: each text's word rows (known words, in order), then its word n-grams'
    rows ``len(vocab) + bucket`` (bigrams left to right, then trigrams...), as
    :func:`~ffnlp.models.pooled.encode_bags` lays them out; a pruned run's bucket rows moved as
    :meth:`IdsFeaturizer.pruned` moves them."""

    def __init__(self, state: dict[str, Any], max_n: int | None = None):
        vocab = state["vocab"]
        itos: list[str] = vocab["itos"]
        specials = set(vocab.get("specials", ()))
        self.lookup = {w: i for i, w in enumerate(itos) if w not in specials}
        self.n_words = len(itos)
        max_n = self.max_n = int(state.get("max_n", 1)) if max_n is None else max_n
        self.buckets = int(state.get("buckets", 0))
        self.maxn = int(state.get("maxn", 0))
        self.supported = (
            self.maxn == 0
            and (max_n < 2 or self.buckets > 0)
            and len(self.lookup) + len(specials) == len(itos)  # distinct words
            and specials <= set(itos)
        )
        kept = state.get("bucket_rows")
        self.row_map: np.ndarray | None = None
        if kept is not None:
            kept_arr = np.asarray(kept, dtype=np.int64)
            if len(kept_arr) and (
                kept_arr[0] < 0 or kept_arr[-1] >= self.buckets or (np.diff(kept_arr) <= 0).any()
            ):
                self.supported = False
                kept_arr = kept_arr[:0]
            row_map = np.full(self.n_words + self.buckets, -1, dtype=np.int64)
            row_map[: self.n_words] = np.arange(self.n_words)
            row_map[self.n_words + kept_arr] = self.n_words + np.arange(len(kept_arr))
            self.row_map = row_map
        # each token seen so far -> its number; its row (or -1) and its fastText hash; bounded
        self._seen: dict[str, int] = {}
        self._row: list[int] = []
        self._wide: list[int] = []
        self._row_arr: np.ndarray = np.zeros(0, dtype=np.int64)  # _row as an array
        self._wide_arr: np.ndarray = np.zeros(0, dtype=np.uint64)  # _wide as an array
        # rows() through fast_compiled's loop where ffnlp.jit allows (see NgramRows.compiled)
        self.compiled = False
        self._table: TokenTable | None = None  # the words for rows_of_texts, made on first use
        self._records: np.ndarray | None = None  # its records for id_bag_sums, made on first use
        self._forget()

    _MAX_SEEN = 200_000  # tokens remembered across chunks (about 20 MB); then forgotten

    def _kinds(self, stream: list[str], fresh: bool) -> np.ndarray:
        """(T,) the number of each token in the remembered table (:attr:`_seen`); ``fresh``:
        a separator token is a token of a text (kind 1), not a separator (kind 0)."""
        if len(self._seen) > self._MAX_SEEN:
            self._forget()
        seen = self._seen
        kind = np.fromiter(map(seen.get, stream, repeat(-1)), dtype=np.int64, count=len(stream))
        missing = np.flatnonzero(kind < 0)
        if len(missing):
            from ffnlp.text.ngrams import _wide

            get = self.lookup.get
            for i in missing.tolist():
                token = stream[i]
                k = seen.get(token)
                if k is None:
                    k = seen[token] = len(self._row)
                    self._row.append(get(token, -1))
                    self._wide.append(_wide(token) if self.max_n > 1 else 0)
                kind[i] = k
        if fresh:
            kind[kind == 0] = 1
        return kind

    def _sync(self) -> None:
        """The arrays of the remembered rows and hashes, grown by the tokens added since."""
        have = len(self._row_arr)
        if have < len(self._row):
            self._row_arr = np.concatenate(
                [self._row_arr, np.asarray(self._row[have:], dtype=np.int64)]
            )
            self._wide_arr = np.concatenate(
                [self._wide_arr, np.asarray(self._wide[have:], dtype=np.uint64)]
            )

    def _forget(self) -> None:
        """Start the remembered tokens again: kind 0 the separator, kind 1 a text's own token
        equal to it (see :func:`split_chunk`)."""
        from ffnlp.text.ngrams import _wide

        self._row_arr = np.zeros(0, dtype=np.int64)
        self._wide_arr = np.zeros(0, dtype=np.uint64)
        self._seen = {SEPARATOR: 0}
        self._row = [-1, self.lookup.get(SEPARATOR, -1)]
        self._wide = [0, _wide(SEPARATOR)]

    def rows(
        self, stream: list[str], lengths: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, offsets)`` of a chunk (``split_chunk``'s ``stream, lengths``): the bags back to
        back (int64) and the (B+1,) start of each."""
        kind = self._kinds(stream, fresh=lengths is not None)
        if self.compiled:
            done = self._compiled_rows(kind, lengths)
            if done is not None:
                return done
        if lengths is None:
            separator = kind == 0
            n_texts = int(separator.sum()) + 1
            text_of = np.cumsum(separator)
        else:
            separator = np.zeros(len(kind), dtype=bool)
            n_texts = len(lengths)
            text_of = _text_of(kind, 0, lengths)
        self._sync()
        word_row = self._row_arr[kind]  # (T,)
        known = word_row >= 0
        parts_ids = [word_row[known]]
        parts_owner = [text_of[known]]
        if self.max_n > 1 and len(kind) > 1:
            wide = self._wide_arr[kind]  # (T,)
            multiplier = np.uint64(116049371)  # fastText's, as ffnlp.text.ngrams
            for n in range(2, self.max_n + 1):
                if len(wide) < n:
                    break
                count = len(wide) - n + 1
                h = wide[:count].copy()
                inside = ~separator[:count]
                for k in range(1, n):
                    h *= multiplier
                    h += wide[k : k + count]
                    inside &= ~separator[k : k + count]
                if lengths is not None:
                    inside &= _windows_inside(text_of, n)
                parts_ids.append(
                    (h[inside] % np.uint64(self.buckets)).astype(np.int64) + self.n_words
                )
                parts_owner.append(text_of[:count][inside])
        # each text's groups one after the other: words, bigrams, trigrams...
        per_group = [np.bincount(o, minlength=n_texts) for o in parts_owner]  # G x (B,)
        offsets = np.zeros(n_texts + 1, dtype=np.int64)
        np.cumsum(np.sum(per_group, axis=0), out=offsets[1:])
        flat = np.empty(int(offsets[-1]), dtype=np.int64)
        start = offsets[:-1].copy()
        for ids, counts in zip(parts_ids, per_group, strict=True):
            flat[np.repeat(start, counts) + _ranks(counts)] = ids
            start += counts
        if self.row_map is not None:
            flat, offsets = self._pruned(flat, offsets)
        return flat, offsets

    def _compiled_rows(
        self, kind: np.ndarray, lengths: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`rows` by :func:`~ffnlp.features.fast_compiled.id_bags` (the same bags), or
        ``None`` where compiled kernels are off."""
        from ffnlp.features import fast_compiled

        bounds = fast_compiled.text_bounds.compiled()
        bags = fast_compiled.id_bags.compiled()
        if bounds is None or bags is None:
            return None
        self._sync()
        begin, end = bounds(kind, _NO_LENGTHS if lengths is None else lengths, lengths is None, 0)
        return self._bags(bags, self._row_arr[kind], self._wide_arr[kind], begin, end)

    def _bags(
        self, bags: Any, word_row: np.ndarray, wide: np.ndarray, begin: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        row_map = _NO_LENGTHS if self.row_map is None else self.row_map
        ids, offsets = bags(
            word_row, wide, begin, end, self.max_n, self.buckets, self.n_words, row_map
        )
        return ids, offsets

    def rows_of_texts(
        self, tokenizer: Tokenizer, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`rows` of ``texts`` tokenised by ``tokenizer``, split and looked up by the
        compiled :func:`~ffnlp.features.fast_compiled.split_texts` (no Python per token), or
        ``None`` where that path does not apply (:meth:`TokenTable.split`)."""
        if not self.compiled:
            return None
        from ffnlp.features import fast_compiled

        bags = fast_compiled.id_bags.compiled()
        if self._table is None:
            self._table = TokenTable(self.lookup)
        split = self._table.split(tokenizer, texts) if bags is not None else None
        if split is None:
            return None
        begin, end, found, wide = split
        return self._bags(bags, found, wide, begin, end)

    def bag_sums_of_texts(
        self, tokenizer: Tokenizer, texts: Sequence[str], table: np.ndarray, mean: bool = False
    ) -> np.ndarray | None:
        """(B, D): each text's rows of ``table`` added up (averaged where ``mean``), as
        ``bag_sum(table, *rows_of_texts(tokenizer, texts))`` computes them, bit for bit, in
        one compiled call (:func:`~ffnlp.features.fast_compiled.id_bag_sums`); ``None`` where
        :meth:`rows_of_texts` would be."""
        if not self.compiled:
            return None
        from ffnlp.features import fast_compiled

        fused = fast_compiled.id_bag_sums.compiled()
        if fused is None:
            return None
        if self._table is None:
            self._table = TokenTable(self.lookup)
        encoded = self._table.encode(tokenizer, texts)
        if encoded is None:
            return None
        row_map = _NO_LENGTHS if self.row_map is None else self.row_map
        if self._records is None:
            self._records = self._table.records()
        sums: np.ndarray = fused(
            *encoded, self._records, self._table.pool, self.max_n, self.buckets, self.n_words,
            row_map, table, mean,
        )  # fmt: skip
        return sums

    def _pruned(self, flat: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.row_map is not None
        rows = self.row_map[flat]
        keep = rows >= 0
        owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        lengths = np.bincount(owner[keep], minlength=len(offsets) - 1)
        new_offsets = np.zeros(len(offsets), dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        return rows[keep], new_offsets
