"""Bag-of-n-grams features: counts, binary indicators or tf-idf, as a sparse CSR tensor.

``BagOfNgrams`` learns a vocabulary of word n-grams (orders ``ngram_range``) from token lists and
turns token lists into rows of a (N, F) float32 sparse CSR matrix; n-grams not seen in ``fit`` are
ignored. The n-gram of tokens ``a``, ``b`` is the feature named ``"a b"`` (so tokens must not hold
spaces, which no ffnlp tokenizer produces). Features are sorted by name, as scikit-learn's are;
``grow`` (continued training on new data) appends the new ones after them.

tf-idf is scikit-learn's ``TfidfVectorizer(smooth_idf=True)``: ``idf = ln((1 + n) / (1 + df)) + 1``
over the n documents seen in ``fit``; ``tf`` is the count, or ``1 + ln(count)`` with
``sublinear_tf``; then each row is divided by its L2 norm. ``nbsvm`` is NBSVM's scaling (Wang &
Manning 2012, :mod:`ffnlp.features.weighting`): each n-gram a text holds has its log-count ratio
as value, fitted with the training labels (``fit(token_lists, targets)``) and smoothed by
``alpha``. ``norm="auto"`` (the default) means ``"l2"`` for tf-idf and nbsvm and no
normalisation for counts and binary features.

``char_range`` adds character n-grams (orders ``char_range``; ``(0, 0)``: none) of each text's
tokens joined by one space, with a space at each end: ``" a fine film "`` holds ``" a"``,
``"a f"``, ``"film "``... They cross word boundaries, so they see a word's stem and endings, its
spelling variants and the words beside it at once. Their columns follow the word n-grams'
(``to_dict`` keeps their names apart, under ``"char_features"``); the values, weights and norm
are computed over both kinds together.

``contrast_words`` (e.g. ``("but",)``) adds the n-grams of a text's last clause after a contrast:
when a text holds one of these words (in any case, punctuation attached ignored), the word
n-grams of the tokens after its last occurrence, and with ``char_range`` their character n-grams,
are counted a second time as features of their own, marked apart from the same n-grams anywhere
in the text.
In "the cast is fine , but the plot is a mess" the clause after "but" usually carries the verdict
(Hu et al. 2016 write this as a rule; here the model learns how much to trust it). Their keys
start with :data:`CLAUSE_MARK` (a character's after the :data:`CHAR_MARK`), their names with
``clause:``; a text without a contrast word has none of them.
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from ffnlp.errors import ConfigError, DataError, ModelFileError, NotFittedError
from ffnlp.features.weighting import MAX_CHAR_N, log_count_ratios, not_words, weigh_counts

WEIGHTINGS = ("count", "binary", "tfidf", "nbsvm")
NORMS = ("auto", "l2", None)
# the key of a character n-gram in ``vocabulary_``: this mark, then its characters. No word
# n-gram starts with a tab (tokens hold no whitespace), so the two kinds never share a key.
CHAR_MARK = "\t"
# the key of an n-gram of the clause after a contrast word: this mark, then the n-gram (a word
# n-gram), or CHAR_MARK, this mark, then its characters (a character n-gram). Vertical tab: no
# token holds it, so no other n-gram's key starts with it or holds it after CHAR_MARK.
CLAUSE_MARK = "\v"
_PUNCTUATION = string.punctuation  # what a contrast word may have attached: "but," is "but"


def char_name(key: str) -> str:
    """How a character n-gram's key is shown among feature names: ``chars:' fil'`` (one of
    the clause after a contrast word: ``clause:chars:' fil'``)."""
    chars = key[len(CHAR_MARK) :]
    if chars.startswith(CLAUSE_MARK):
        return f"clause:chars:{chars[len(CLAUSE_MARK) :]!r}"
    return f"chars:{chars!r}"


def feature_name(key: str) -> str:
    """How a feature's key is shown: a word n-gram as itself (``good film``), one of the clause
    after a contrast word as ``clause:good film``, a character n-gram as :func:`char_name`."""
    if key.startswith(CHAR_MARK):
        return char_name(key)
    if key.startswith(CLAUSE_MARK):
        return "clause:" + key[len(CLAUSE_MARK) :]
    return key


def _words(value: Any) -> tuple[str, ...]:
    """A saved list of words (contrast_words), checked: a list of strings."""
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise TypeError(f"contrast_words must be a list of words; got {value!r}")
    return tuple(value)


def _unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of an int64 array and how often each occurs.

    np.unique does the same, but numpy 2's hash-based path is several times slower here.
    """
    keys = np.sort(keys)
    if len(keys) == 0:
        return keys, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    counts = np.diff(np.append(starts, len(keys)))
    return keys[starts], counts


def _code_points(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(C,) uint32 every character's code point of ``strings`` back to back (a lone surrogate
    too), and (S,) int64 each string's length."""
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    joined = "".join(strings).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype="<u4"), lengths


_INDEX_AFTER = 512  # texts transformed (in all) before the character n-gram index is made
_DIRECT_KEYS = 1 << 20  # an order with at most this many possible keys: a direct table


class _CharGramIndex:
    """A fitted bag's character n-grams for looking up every window of many texts at once.

    Each character some feature holds gets a number (its rank among them by code point); an
    n-gram of ``n`` such characters is the key ``sum(number_k * base ** (n - 1 - k))`` with
    ``base`` the number of characters, kept sorted with its column in one table per order and
    per kind (the text's own n-grams, or the marked ones of the clause after a contrast word).
    A window holding a character no feature holds matches nothing, as the string lookup finds
    nothing for it."""

    def __init__(
        self,
        codes: np.ndarray,
        tables: dict[tuple[bool, int], tuple[np.ndarray, np.ndarray]],
        orders: range,
    ):
        self.codes = codes  # (A,) int64 sorted code points of the characters the features hold
        # (max code point + 2,) the number of each code point's character, -1 where no feature
        # holds it (the last entry: every code point past the largest)
        self.numbers = np.full(int(codes.max()) + 2 if len(codes) else 1, -1, dtype=np.int64)
        self.numbers[codes] = np.arange(len(codes))
        self.tables = tables  # (in_clause, n) -> (sorted keys, their columns), int64 each
        self.orders = orders

    @classmethod
    def of(cls, vocabulary: dict[str, int], char_range: tuple[int, int]) -> _CharGramIndex | None:
        grams, columns, in_clause = [], [], []
        for key, column in vocabulary.items():
            if key.startswith(CHAR_MARK):
                clause = key.startswith(CLAUSE_MARK, len(CHAR_MARK))
                grams.append(key[len(CHAR_MARK) + clause :])
                columns.append(column)
                in_clause.append(clause)
        points, lengths = _code_points(grams)
        codes = np.unique(points).astype(
            np.int64
        )  # the alphabet: every character a feature holds, sorted
        base = max(len(codes), 1)
        low, high = char_range
        if base ** max(high, 1) >= 2**62:
            return None
        number = np.searchsorted(codes, points)  # each character's rank in the alphabet
        starts = np.cumsum(lengths) - lengths  # where each gram's characters begin
        column_of = np.asarray(columns, dtype=np.int64)
        clause_of = np.asarray(in_clause, dtype=bool)
        tables: dict[tuple[bool, int], tuple[np.ndarray, np.ndarray]] = {}
        for n in range(low, high + 1):  # a gram of another length matches no window
            for kind in (False, True):
                which = np.flatnonzero((lengths == n) & (clause_of == kind))
                if len(which) == 0:
                    continue
                keys = np.zeros(len(which), dtype=np.int64)
                for k in range(n):
                    keys = keys * base + number[starts[which] + k]
                if base**n <= _DIRECT_KEYS:  # every key's column in one array (-1: none)
                    direct = np.full(base**n, -1, dtype=np.int64)
                    direct[keys] = column_of[which]
                    tables[kind, n] = (np.zeros(0, dtype=np.int64), direct)
                else:  # the keys sorted, found by binary search
                    order = np.argsort(keys, kind="stable")
                    tables[kind, n] = (keys[order], column_of[which][order])
        return cls(codes, tables, range(low, high + 1))

    def cells(
        self, texts: list[str], text_rows: list[int], in_clause: list[bool]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The (row, column) of every character n-gram window of ``texts`` that is a feature
        (a window once per occurrence): ``text_rows[t]`` is the row of text ``t``,
        ``in_clause[t]`` whether it is the clause after a contrast word (its marked features)."""
        if not texts or not self.tables:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        points, lengths = _code_points(texts)
        # each character's number, -1 for one no feature holds (past the table: none does)
        number = self.numbers[np.minimum(points, len(self.numbers) - 1)]
        text_of = np.repeat(np.arange(len(texts)), lengths)  # (C,) the text of each character
        rows_of_text = np.asarray(text_rows, dtype=np.int64)
        clause_of_text = np.asarray(in_clause, dtype=bool)
        has_clauses = bool(clause_of_text.any())
        base = len(self.codes)
        rows, columns = [], []
        for n in self.orders:
            count = len(points) - n + 1
            if count <= 0:
                break
            inside = text_of[:count] == text_of[n - 1 :]  # the window within one text
            key = np.zeros(count, dtype=np.int64)
            for k in range(n):
                digit = number[k : k + count]
                inside &= digit >= 0
                key = key * base + digit
            start = np.flatnonzero(inside)
            key = key[start]
            clause = clause_of_text[text_of[start]] if has_clauses else clause_of_text[:0]
            for kind in (False, True) if has_clauses else (False,):
                table = self.tables.get((kind, n))
                if table is None:
                    continue
                keys, table_columns = table
                mine = (clause if kind else ~clause) if has_clauses else slice(None)
                wanted = key[mine]
                if len(keys) == 0:  # a direct table: the column of every key
                    found = table_columns[wanted]
                    hit = found >= 0
                    found = found[hit]
                else:
                    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
                    hit = keys[at] == wanted
                    found = table_columns[at[hit]]
                rows.append(rows_of_text[text_of[start[mine][hit]]])
                columns.append(found)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(columns)


class BagOfNgrams:
    """Word n-gram features: ``fit(token_lists)`` then ``transform(token_lists) -> (N, F) CSR``."""

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),  # unigrams + bigrams: the usual strong baseline
        weighting: str = "count",  # "count" | "binary" | "tfidf" | "nbsvm"
        sublinear_tf: bool = False,  # tf -> 1 + ln(tf): damps repeated words in long documents
        norm: str | None = "auto",  # "l2" | None | "auto" (= "l2" for tfidf, None otherwise)
        min_count: int = 1,  # drop n-grams seen fewer times than this in the training data
        max_features: int | None = None,  # keep only the most frequent n-grams (None = all)
        alpha: float = 1.0,  # nbsvm: the smoothing added to each label's count of a feature
        char_range: tuple[int, int] = (0, 0),  # character n-grams of these orders; (0, 0) none
        contrast_words: Sequence[str] = (),  # the last clause after one of these: marked again
    ):
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.weighting = weighting
        self.sublinear_tf = bool(sublinear_tf)
        self.norm = norm
        self.min_count = min_count
        self.max_features = max_features
        self.alpha = float(alpha)
        self.char_range = (int(char_range[0]), int(char_range[1]))
        self.contrast_words = tuple(contrast_words)
        self._check_params()
        self.vocabulary_: dict[str, int] | None = None  # n-gram -> column
        self.idf_: np.ndarray | None = None  # (F,) float64, tf-idf only
        self.ratios_: np.ndarray | None = None  # (F,) float64 log-count ratios, nbsvm only
        self.n_documents_: int = 0
        # transform's character n-gram index: (the vocabulary it was made of, its size, index)
        self._chars_cache: tuple[dict[str, int], int, _CharGramIndex | None] | None = None
        self._char_texts = 0  # texts transformed before the index was made

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the character n-gram index (made again on use)."""
        return {**self.__dict__, "_chars_cache": None, "_char_texts": 0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_chars_cache": None, "_char_texts": 0, **state})

    def _check_params(self) -> None:
        low, high = self.ngram_range
        problems = []
        if not 1 <= low <= high:
            problems.append(
                f"ngram_range must be (low, high) with 1 <= low <= high; got {self.ngram_range}"
            )
        if self.weighting not in WEIGHTINGS:
            problems.append(
                f"weighting must be one of {', '.join(WEIGHTINGS)}; got {self.weighting!r}"
            )
        if self.norm not in NORMS:
            problems.append(f"norm must be one of 'auto', 'l2' or None; got {self.norm!r}")
        if self.min_count < 1:
            problems.append(f"min_count must be at least 1; got {self.min_count}")
        if self.max_features is not None and self.max_features < 1:
            problems.append(f"max_features must be at least 1 or None; got {self.max_features}")
        if not self.alpha > 0:
            problems.append(f"alpha must be > 0; got {self.alpha}")
        c_low, c_high = self.char_range
        if self.char_range != (0, 0) and not 1 <= c_low <= c_high <= MAX_CHAR_N:
            problems.append(
                f"char_range must be (0, 0) (no character n-grams) or (low, high) with "
                f"1 <= low <= high <= {MAX_CHAR_N}; got {self.char_range}"
            )
        bad = not_words(self.contrast_words)
        if bad:
            problems.append(
                "contrast_words must be words (non-empty strings without spaces, as the "
                f"tokenizer gives them); got {bad[0]!r}"
            )
        if problems:
            raise ConfigError("BagOfNgrams: " + "; ".join(problems))
        self._contrast = frozenset(w.lower() for w in self.contrast_words)

    @property
    def effective_norm(self) -> str | None:
        """The normalisation actually applied (``"auto"`` resolved)."""
        if self.norm == "auto":
            return "l2" if self.weighting in ("tfidf", "nbsvm") else None
        return self.norm

    # -- fitting -------------------------------------------------------------------------------

    @property
    def has_chars(self) -> bool:
        """Whether the features include character n-grams."""
        return self.char_range != (0, 0)

    def _ngrams(self, tokens: Sequence[str]) -> list[str]:
        out = self._grams(tokens, "")
        if self._contrast:
            clause = self._clause(tokens)
            if clause:
                out += self._grams(clause, CLAUSE_MARK)
        return out

    def _clause(self, tokens: Sequence[str]) -> Sequence[str]:
        """The tokens after the last contrast word in ``tokens`` (none: no contrast word). A
        token is one in any case, and with punctuation attached ("But," of a text split at
        spaces only)."""
        contrast = self._contrast
        text = " ".join(tokens).lower()
        if not any(word in text for word in contrast):  # no token can be one
            return ()
        for i in range(len(tokens) - 1, -1, -1):
            token = tokens[i].lower()
            if token in contrast or token.strip(_PUNCTUATION) in contrast:
                return tokens[i + 1 :]
        return ()

    def _word_grams(self, tokens: Sequence[str], mark: str) -> list[str]:
        """The keys of the word n-grams of ``tokens``, each after ``mark``."""
        low, high = self.ngram_range
        out = [mark + t for t in tokens] if low == 1 else []
        for n in range(max(low, 2), high + 1):
            out.extend(mark + " ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return out

    def _grams(self, tokens: Sequence[str], mark: str) -> list[str]:
        """The keys of the word (and character) n-grams of ``tokens``, each after ``mark``."""
        out = self._word_grams(tokens, mark)
        if self.has_chars and tokens:
            # the marks, then the text padded: each key is the marks and text[i : i + n]
            marks = CHAR_MARK + mark
            text = f"{marks} {' '.join(tokens)} "
            start = len(marks)
            c_low, c_high = self.char_range
            for n in range(c_low, c_high + 1):
                out.extend(marks + text[i : i + n] for i in range(start, len(text) - n + 1))
        return out

    def _count(
        self, token_lists: Iterable[Sequence[str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
        """Every n-gram of ``token_lists`` (in first-seen order), its occurrences, the documents
        containing it, the number of documents, and each (document, n-gram) pair once, as
        ``document * len(names) + n-gram``."""
        index: dict[str, int] = {}  # every n-gram seen -> provisional id
        rows, cols = [], []
        n_docs = 0
        for row, tokens in enumerate(token_lists):
            grams = self._ngrams(tokens)
            setdefault = index.setdefault
            ids = [setdefault(g, len(index)) for g in grams]
            cols.extend(ids)
            rows.extend([row] * len(ids))
            n_docs = row + 1
        if not index:
            raise DataError(
                f"BagOfNgrams.fit: no n-grams in {n_docs} documents; are the texts empty?"
            )
        col = np.asarray(cols, dtype=np.int64)
        counts = np.bincount(col, minlength=len(index))  # (V,) total occurrences
        pairs, _ = _unique_counts(np.asarray(rows, dtype=np.int64) * len(index) + col)
        df = np.bincount(pairs % len(index), minlength=len(index))  # (V,) documents containing it
        names = np.array(list(index), dtype=object)
        return names, counts, df, n_docs, pairs

    def fit(
        self, token_lists: Iterable[Sequence[str]], targets: np.ndarray | None = None
    ) -> BagOfNgrams:
        """Learn the n-gram vocabulary (and the idf weights for tf-idf) from token lists; for
        nbsvm also the log-count ratios, from ``targets``: each text's class id (N,), or its
        label set as (N, K) 0/1 (multi-label)."""
        if self.weighting == "nbsvm" and targets is None:
            raise ConfigError(
                "BagOfNgrams: weighting = 'nbsvm' weighs each n-gram by how its training texts' "
                "labels differ: fit(token_lists, targets) needs the training labels"
            )
        names, counts, df, n_docs, pairs = self._count(token_lists)
        keep = np.flatnonzero(counts >= self.min_count)
        if self.max_features is not None and len(keep) > self.max_features:
            # most frequent first, ties by name: deterministic whatever the document order
            by_count = sorted(keep.tolist(), key=lambda i: (-counts[i], names[i]))
            keep = np.asarray(by_count[: self.max_features], dtype=np.int64)
        if len(keep) == 0:
            raise DataError(
                f"BagOfNgrams.fit: no n-gram occurs at least min_count={self.min_count} times "
                f"in {n_docs} documents; lower min_count"
            )
        # sorted by name, the word n-grams first and then the character n-grams
        kept = names[keep].astype(str)
        is_char = np.char.startswith(kept, CHAR_MARK) if self.has_chars else np.zeros(len(kept))
        keep = keep[np.lexsort((kept, is_char))]
        self.vocabulary_ = {name: c for c, name in enumerate(names[keep].tolist())}
        self.n_documents_ = n_docs
        self.idf_ = (
            np.log((1.0 + n_docs) / (1.0 + df[keep])) + 1.0 if self.weighting == "tfidf" else None
        )
        self.ratios_ = None
        if self.weighting == "nbsvm":
            assert targets is not None
            targets = np.asarray(targets)
            if len(targets) != n_docs:
                raise DataError(
                    f"BagOfNgrams.fit: {len(targets)} targets for {n_docs} documents; give one "
                    "label (or label set) per document"
                )
            column = np.full(len(names), -1, dtype=np.int64)
            column[keep] = np.arange(len(keep))
            cols = column[pairs % len(names)]
            held = cols >= 0
            self.ratios_ = log_count_ratios(
                pairs[held] // len(names), cols[held], len(keep), targets, self.alpha
            )
        return self

    def grow(self, token_lists: Iterable[Sequence[str]]) -> int:
        """Add the n-grams of new documents (seen at least ``min_count`` times in them) that
        are not features yet, after the known ones (sorted by name among themselves), while
        ``max_features`` leaves room: the known features keep their columns. tf-idf: every
        feature's idf is then counted over all the documents seen, those of ``fit`` (their
        document frequencies are read back from the idf) and these. Returns how many n-grams
        were added."""
        vocabulary = self._fitted()
        if self.has_chars:
            raise ConfigError(
                "features.char_ngram_range: a run with character n-grams cannot be continued "
                "(its columns are laid out words first, then characters): start a new run on "
                "all the data, or continue a run without character n-grams"
            )
        if self.weighting == "nbsvm":
            raise ConfigError(
                "features.weighting = 'nbsvm' fits each n-gram's log-count ratio on the first "
                "run's labelled data, which a continued run cannot grow: start a new run on all "
                "the data (or continue a run of another weighting)"
            )
        names, counts, df, n_docs, _ = self._count(token_lists)
        new = [i for i in np.flatnonzero(counts >= self.min_count) if names[i] not in vocabulary]
        room = len(new) if self.max_features is None else self.max_features - len(vocabulary)
        if len(new) > room:
            new = sorted(new, key=lambda i: (-counts[i], names[i]))[: max(room, 0)]
        new.sort(key=lambda i: str(names[i]))
        known = len(vocabulary)
        grown = dict(vocabulary)
        for i in new:
            grown[str(names[i])] = len(grown)
        if self.weighting == "tfidf":
            assert self.idf_ is not None
            seen = self.n_documents_
            all_df = np.zeros(len(grown), dtype=np.float64)
            if seen > 0:  # df = (1 + n) / exp(idf - 1) - 1, from the idf formula
                all_df[:known] = np.rint((1.0 + seen) / np.exp(self.idf_ - 1.0) - 1.0)
            for name, d in zip(names.tolist(), df.tolist(), strict=True):
                column = grown.get(name)
                if column is not None:
                    all_df[column] += d
            idf = np.log((1.0 + seen + n_docs) / (1.0 + all_df)) + 1.0
            if seen == 0:  # saved without its document count: the known idf values stay
                idf[:known] = self.idf_
            self.idf_ = idf
        self.vocabulary_ = grown
        self.n_documents_ += n_docs
        return len(new)

    # -- transforming --------------------------------------------------------------------------

    def transform(self, token_lists: Iterable[Sequence[str]]) -> torch.Tensor:
        """Features of each token list: a float32 sparse CSR tensor of shape (N, F)."""
        vocabulary = self._fitted()
        get = vocabulary.get
        rows, cols = [], []
        n_docs = 0
        if not isinstance(token_lists, Sequence):
            token_lists = list(token_lists)
        chars = self._char_index(vocabulary, len(token_lists))
        # with the index: the word n-grams here, the character n-grams of every text at once
        texts: list[str] = []  # each text's tokens padded as _grams pads them, then clauses'
        text_rows: list[int] = []
        in_clause: list[bool] = []
        for row, tokens in enumerate(token_lists):
            if chars is None:
                grams = self._ngrams(tokens)
            else:
                grams = self._word_grams(tokens, "")
                clause = self._clause(tokens) if self._contrast else ()
                if clause:
                    grams += self._word_grams(clause, CLAUSE_MARK)
                for part, marked in ((tokens, False), (clause, True)):
                    if part:
                        texts.append(f" {' '.join(part)} ")
                        text_rows.append(row)
                        in_clause.append(marked)
            ids = [i for i in map(get, grams) if i is not None]
            cols.extend(ids)
            rows.extend([row] * len(ids))
            n_docs = row + 1
        n_features = len(vocabulary)
        keys = np.asarray(rows, dtype=np.int64) * n_features + np.asarray(cols, dtype=np.int64)
        if chars is not None:
            char_rows, char_cols = chars.cells(texts, text_rows, in_clause)
            keys = np.concatenate((keys, char_rows * n_features + char_cols))
        cells, tf = _unique_counts(keys)  # sorted: row-major, columns ascending
        row_of = cells // n_features  # (nnz,)
        col_of = cells % n_features  # (nnz,)
        values = self._weigh(tf.astype(np.float64), col_of, row_of, n_docs)
        crow = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=n_docs), out=crow[1:])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                torch.from_numpy(crow),
                torch.from_numpy(col_of),
                torch.from_numpy(values.astype(np.float32)),
                size=(n_docs, n_features),
                check_invariants=False,  # built sorted and in range just above
            )

    def _char_index(self, vocabulary: dict[str, int], texts: int) -> _CharGramIndex | None:
        """The character n-grams of ``vocabulary`` as integer keys (made once per vocabulary,
        when ``_INDEX_AFTER`` texts have been transformed: a few texts are looked up sooner as
        strings than the index is made), or None: no character n-grams, too few texts yet, or
        an alphabet too large for int64 keys (then the n-grams are looked up one by one as
        strings)."""
        if not self.has_chars:
            return None
        cached = self._chars_cache
        if cached is not None and cached[0] is vocabulary and cached[1] == len(vocabulary):
            index: _CharGramIndex | None = cached[2]
            return index
        self._char_texts += texts
        if self._char_texts < _INDEX_AFTER:
            return None
        index = _CharGramIndex.of(vocabulary, self.char_range)
        self._chars_cache = (vocabulary, len(vocabulary), index)
        return index

    def _weigh(
        self, tf: np.ndarray, col_of: np.ndarray, row_of: np.ndarray, n_docs: int
    ) -> np.ndarray:
        return weigh_counts(
            tf,
            col_of,
            row_of,
            n_docs,
            weighting=self.weighting,
            sublinear_tf=self.sublinear_tf,
            idf=self.ratios_ if self.weighting == "nbsvm" else self.idf_,
            l2=self.effective_norm == "l2",
        )

    def fit_transform(
        self, token_lists: Iterable[Sequence[str]], targets: np.ndarray | None = None
    ) -> torch.Tensor:
        """``fit`` then ``transform`` on the same token lists."""
        token_lists = list(token_lists)
        return self.fit(token_lists, targets).transform(token_lists)

    # -- inspection and persistence ------------------------------------------------------------

    def _fitted(self) -> dict[str, int]:
        if self.vocabulary_ is None:
            raise NotFittedError("this BagOfNgrams is not fitted yet; call fit(token_lists) first")
        return self.vocabulary_

    @property
    def n_features(self) -> int:
        return len(self._fitted())

    @property
    def feature_names(self) -> list[str]:
        """The n-gram of each column, in column order (a character n-gram as ``chars:' fil'``)."""
        return [feature_name(name) for name in self._fitted()]

    def _names_by_kind(self) -> tuple[list[str], list[str]]:
        """The word n-grams' names and the character n-grams' characters, in column order."""
        names = list(self._fitted())
        split = (
            sum(1 for name in names if not name.startswith(CHAR_MARK))
            if self.has_chars
            else len(names)
        )
        return names[:split], [name[len(CHAR_MARK) :] for name in names[split:]]

    def params(self) -> dict[str, Any]:
        return {
            "ngram_range": list(self.ngram_range),
            "weighting": self.weighting,
            "sublinear_tf": self.sublinear_tf,
            "norm": self.norm,
            "min_count": self.min_count,
            "max_features": self.max_features,
            "alpha": self.alpha,
            "char_ngram_range": list(self.char_range),
            **({"contrast_words": list(self.contrast_words)} if self.contrast_words else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """Parameters and learned state as JSON-able values (rebuild with :meth:`from_dict`):
        ``features`` the word n-grams, then (with character n-grams) ``char_features`` the
        characters of the columns after them."""
        words, chars = self._names_by_kind()
        return {
            **self.params(),
            "features": words,
            **({"char_features": chars} if self.has_chars else {}),
            "idf": None if self.idf_ is None else self.idf_.tolist(),
            "ratios": None if self.ratios_ is None else self.ratios_.tolist(),
            "n_documents": self.n_documents_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BagOfNgrams:
        try:
            bag = cls(
                ngram_range=tuple(data["ngram_range"]),
                weighting=data["weighting"],
                sublinear_tf=data["sublinear_tf"],
                norm=data["norm"],
                min_count=data["min_count"],
                max_features=data["max_features"],
                alpha=data.get("alpha", 1.0),
                char_range=tuple(data.get("char_ngram_range", (0, 0))),
                contrast_words=_words(data.get("contrast_words", [])),
            )
            features = list(data["features"])
            chars = list(data.get("char_features", []))
            if chars and not bag.has_chars:
                raise ValueError("char_features without a char_ngram_range")
            if not all(isinstance(c, str) for c in chars):
                raise TypeError("char_features must be strings")
            features += [CHAR_MARK + c for c in chars]
            idf = data["idf"]
            ratios = data.get("ratios")
            n_documents = int(data.get("n_documents", 0))
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise ModelFileError(f"not a saved BagOfNgrams: {e}") from None
        if (idf is None) != (bag.weighting != "tfidf") or (
            idf is not None and len(idf) != len(features)
        ):
            raise ModelFileError(
                f"a saved BagOfNgrams with weighting {bag.weighting!r} needs "
                f"{'one idf value per feature' if bag.weighting == 'tfidf' else 'no idf values'}"
            )
        if (ratios is None) != (bag.weighting != "nbsvm") or (
            ratios is not None and len(ratios) != len(features)
        ):
            raise ModelFileError(
                f"a saved BagOfNgrams with weighting {bag.weighting!r} needs "
                f"{'one ratio per feature' if bag.weighting == 'nbsvm' else 'no ratios'}"
            )
        bag.vocabulary_ = {name: i for i, name in enumerate(features)}
        bag.idf_ = None if idf is None else np.asarray(idf, dtype=np.float64)
        bag.ratios_ = None if ratios is None else np.asarray(ratios, dtype=np.float64)
        bag.n_documents_ = n_documents
        return bag

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        fitted = f", n_features={len(self.vocabulary_)}" if self.vocabulary_ is not None else ""
        return f"BagOfNgrams({args}{fitted})"
