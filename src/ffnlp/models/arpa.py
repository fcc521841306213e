"""ARPA back-off n-gram files: write a Kneser–Ney model as one, read one (from any tool) back.

An ARPA file lists n-grams with a log10 probability and, for those that are the context of a
longer n-gram, a log10 back-off weight. A reader computes::

    p(w | h) = P(h w)                 if "h w" is listed
             = bow(h) · p(w | h')     otherwise (h' = h without its first word; bow = 1 if h
                                      is not listed or has no weight)

Interpolated Kneser–Ney has exactly this shape (:mod:`ffnlp.models.kneser_ney`): for a seen
n-gram the listed probability is the whole interpolated ``p_n(w | h)``, and an unseen one gets
``γ(h) · p_{n-1}(w | h')``, so the back-off weight of a context is its γ. The conversion is
exact, no renormalisation is needed, and an ARPA reader computes the model's probabilities.

Sentence boundaries. ffnlp scores the stream ``</s> s1 </s> s2 </s>``, where an ``</s>`` in the
first position of a context means "start of sentence"; an ARPA reader scores ``<s> s1 </s>`` per
sentence. So a ``</s>`` that starts an n-gram is written ``<s>``; one that ends it stays ``</s>``
(no n-gram holds ``</s>`` anywhere else). The unigram ``</s>`` carries the probability of ending a
sentence; the unigram ``<s>`` carries the back-off weight of the sentence start and the
probability -99 (it is never predicted). ``<unk>`` is an ordinary word of the vocabulary: an
ARPA reader maps unknown words to it, as ffnlp does.

:class:`BackoffNgram` is that back-off form in memory, with the same scoring interface as
:class:`~ffnlp.models.kneser_ney.KneserNey` (``log_probs`` over an id stream, ``distribution``
of the next word). Its tables use KneserNey's ids: an n-gram's key is ``id(prefix) * V + word``,
the sorted keys of one order are its table.
"""

# Over 400 lines on purpose: the writer and the reader of one file format, which share its layout and boundary rules.

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import numpy as np

from ffnlp.errors import DataError, ModelFileError
from ffnlp.fileio import atomic_writer
from ffnlp.models.kneser_ney import KneserNey
from ffnlp.models.ngram_tables import (
    gram_ids,
    history_contexts,
    lookup,
    scored_stream,
    stream_matches,
)
from ffnlp.text.readers import read_lines
from ffnlp.text.vocab import UNK, Vocab

log = logging.getLogger(__name__)

BOS = "<s>"
EOS = "</s>"
NEVER = -99.0  # log10 probability written for <s> (never predicted) and for a zero weight
MISSING_UNK = -100.0  # log10 p(<unk>) when a file has no <unk> (KenLM's choice too)
LN10 = math.log(10.0)


@dataclass
class BackoffOrder:
    """The n-grams of one order n >= 2."""

    keys: np.ndarray  # (G,) int64, sorted: id(prefix (n-1)-gram) * V + last word
    logp: np.ndarray  # (G,) float64: log10 P(h w)
    bow: np.ndarray  # (G,) float64: log10 back-off weight as a context (0 where none)
    has_bow: np.ndarray  # (G,) bool: whether the file lists a weight


class BackoffNgram:
    """A back-off n-gram model over ids ``0..V-1`` (``eos_id`` = ``</s>``, also ``<s>``)."""

    def __init__(
        self,
        order: int,
        vocab_size: int,
        eos_id: int,
        unigram_logp: np.ndarray,
        unigram_bow: np.ndarray,
        unigram_has_bow: np.ndarray,
        orders: Sequence[BackoffOrder],
    ):
        self.order = order
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.unigram_logp = unigram_logp  # (V,) log10 p(w); at eos_id: p(</s>)
        self.unigram_bow = unigram_bow  # (V,) log10 weight; at eos_id: the weight of <s>
        self.unigram_has_bow = unigram_has_bow  # (V,) bool
        self.orders = list(orders)  # orders[i] holds order i + 2

    @property
    def ngram_counts(self) -> list[int]:
        """n-grams per order as an ARPA file counts them (``<s>`` is a unigram of its own)."""
        return [self.vocab_size + 1] + [len(t.keys) for t in self.orders]

    # ----------------------------------------------------------------------------------------
    # from a Kneser-Ney model

    @classmethod
    def from_kneser_ney(cls, model: KneserNey) -> BackoffNgram:
        """The back-off form of an interpolated Kneser–Ney model: the same probabilities.

        A listed n-gram gets the interpolated ``p_n(w | h) = num / den(h) + γ(h) · P_{n-1}(h' w)``,
        computed with the same floating-point operations as :meth:`KneserNey.log_probs` (its
        suffix ``h' w`` is always listed one order down); a context's back-off weight is its γ.
        """
        V = model.vocab_size
        prob = model.unigram  # (V,) P of the order below, indexed by that order's ids
        suffix_prev = np.arange(V)  # suffix id (one order down) of each n-gram of the order below
        logp = [_log10(model.unigram)]
        tables = []
        for n, tab in enumerate(model.orders, start=2):
            prefix = tab.keys // V  # (G,) id in order n-1
            word = tab.keys % V  # (G,)
            if n == 2:
                suffix = word
            else:  # the suffix of "h w" is (suffix of h) + w, one order down
                suffix = lookup(model.orders[n - 3].keys, suffix_prev[prefix] * V + word)
                if (suffix < 0).any():  # pragma: no cover - counting always keeps suffixes
                    raise ModelFileError("the Kneser-Ney tables lack a suffix n-gram; retrain")
            prob = tab.numerator / tab.denominator[prefix] + tab.gamma[prefix] * prob[suffix]
            logp.append(_log10(prob))
            tables.append((tab.keys, suffix))
            suffix_prev = suffix
        # the weight of a context is its γ at the next order; contexts never seen have none
        bows, has = [], []
        for n in range(1, model.order + 1):
            if n < model.order:
                nxt = model.orders[n - 1]
                seen = nxt.denominator > 0
                with np.errstate(divide="ignore"):
                    bow = np.where(seen, np.maximum(np.log10(nxt.gamma), NEVER), 0.0)
            else:
                size = V if n == 1 else len(model.orders[n - 2].keys)
                seen, bow = np.zeros(size, bool), np.zeros(size)
            bows.append(bow)
            has.append(seen)
        orders = [
            BackoffOrder(keys, logp[i + 1], bows[i + 1], has[i + 1])
            for i, (keys, _) in enumerate(tables)
        ]
        return cls(model.order, V, model.eos_id, logp[0], bows[0], has[0], orders)

    # ----------------------------------------------------------------------------------------
    # scoring

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of the stream after the leading ``</s>``.

        The back-off recursion, bottom up: start from the unigram; at each longer order, a listed
        n-gram replaces the estimate, otherwise the context's weight multiplies it.
        """
        ids = scored_stream(ids, self.eos_id)
        lp = self.unigram_logp[ids[1:]].copy()  # (T,) log10
        context_bow = self.unigram_bow  # the weights of the contexts, one order down
        for tab, has_context, h, found in stream_matches(
            self.orders, ids, self.eos_id, self.vocab_size
        ):
            back = _where_listed(has_context, context_bow, h, 0.0)
            lp = _where_listed(found >= 0, tab.logp, np.maximum(found, 0), back + lp)
            context_bow = tab.bow
        return lp * LN10

    def distribution(self, history: Sequence[int]) -> np.ndarray:
        """p(w | history) for every w of the vocabulary: (V,) float64 (sums to 1 for a
        normalised model such as an exported Kneser–Ney one).

        ``history`` is the stream before the predicted word; only its tail after the last
        ``</s>`` (the sentence start) and its last order-1 words matter.
        """
        V = self.vocab_size
        lp = self.unigram_logp.copy()  # (V,)
        words = np.arange(V)
        for n, tab, h in history_contexts(self.orders, V, self.eos_id, history):
            if h < 0:
                continue  # a context that is not listed has weight 1 and no n-grams
            bow = self.unigram_bow[h] if n == 2 else self.orders[n - 3].bow[h]
            found = lookup(tab.keys, h * V + words)
            lp = _where_listed(found >= 0, tab.logp, np.maximum(found, 0), bow + lp)
        return np.exp(lp * LN10)

    # ----------------------------------------------------------------------------------------
    # the n-grams as word-id rows

    def grams(self, n: int) -> np.ndarray:
        """The word ids of every n-gram of order ``n >= 2``, in table order: (G, n) int64."""
        V = self.vocab_size
        rows = np.arange(V)[:, None]  # (V, 1)
        for tab in self.orders[: n - 1]:
            rows = np.concatenate([rows[tab.keys // V], (tab.keys % V)[:, None]], axis=1)
        return rows


def _where_listed(
    listed: np.ndarray, values: np.ndarray, index: np.ndarray, otherwise: float | np.ndarray
) -> np.ndarray:
    """``values[index]`` where ``listed``, else ``otherwise``; an order whose section is empty
    (``ngram 2=0``) lists nothing, and its empty table is never indexed."""
    if len(values) == 0:
        return np.where(listed, 0.0, otherwise)  # nothing is listed: all ``otherwise``
    return np.where(listed, values[index], otherwise)


def _log10(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log10(p), NEVER)


# ---------------------------------------------------------------------------------------------
# writing


def write_arpa(model: BackoffNgram, words: Sequence[str], path: str | Path) -> list[int]:
    """Write ``model`` as an ARPA file (gzip-compressed when ``path`` ends in ``.gz``); return the
    n-gram counts per order.

    ``words[i]`` is word id i (``words[eos_id]`` is ``</s>``). Values are written with the
    shortest decimal that reads back as the same float64, so the file scores exactly like the
    model. Each section is sorted by the words' order in the unigram section, which starts with
    ``<s>``.
    """
    names = list(words)
    if len(names) != model.vocab_size:
        raise DataError(f"need one word per id: {len(names)} words for {model.vocab_size} ids")
    if names[model.eos_id] != EOS:
        raise DataError(f"word {model.eos_id} must be {EOS}; got {names[model.eos_id]!r}")
    clash = [w for w in names if w == BOS or not w or any(c.isspace() for c in w)]
    if clash:
        raise DataError(
            f"the vocabulary holds {clash[0]!r}, which an ARPA file cannot tell apart from "
            f"{BOS} or a word separator; rename that token in the corpus and retrain"
        )
    p = Path(path)
    with atomic_writer(p, "wb") as raw:
        if p.suffix == ".gz":
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
                _write(model, names, _Text(cast(IO[bytes], packed)))
        else:
            _write(model, names, _Text(raw))
    return model.ngram_counts


class _Text:
    """UTF-8 lines into a binary file, in large writes."""

    def __init__(self, fh: IO[bytes]):
        self.fh = fh

    def write_lines(self, lines: Iterable[str]) -> None:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 65536:
                self.fh.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            self.fh.write(("\n".join(chunk) + "\n").encode("utf-8"))


def _write(model: BackoffNgram, names: list[str], out: _Text) -> None:
    counts = model.ngram_counts
    out.write_lines(["\\data\\"] + [f"ngram {n}={c}" for n, c in enumerate(counts, start=1)] + [""])
    eos = model.eos_id
    # unigrams: <s> first, then the vocabulary in id order
    first = f"{NEVER!r}\t{BOS}" + (
        f"\t{float(model.unigram_bow[eos])!r}" if model.unigram_has_bow[eos] else ""
    )
    lines = _entries(
        model.unigram_logp.tolist(),
        names,
        model.unigram_bow.tolist(),
        (model.unigram_has_bow & (np.arange(model.vocab_size) != eos)).tolist(),
    )
    out.write_lines(["\\1-grams:", first])
    out.write_lines(lines)
    # rank of each word in the unigram section: <s> = 0, word i = i + 1
    starts = np.array(names, dtype=object)
    starts[eos] = BOS
    ends = np.array(names, dtype=object)
    for n, tab in enumerate(model.orders, start=2):
        rows = model.grams(n)  # (G, n)
        ranks = rows + 1
        ranks[:, 0] = np.where(rows[:, 0] == eos, 0, ranks[:, 0])
        order = np.lexsort(ranks.T[::-1])  # by the first word, then the second, ...
        rows = rows[order]
        text = starts[rows[:, 0]]
        for j in range(1, n):
            text = text + " " + ends[rows[:, j]]
        out.write_lines(["", f"\\{n}-grams:"])
        out.write_lines(
            _entries(
                tab.logp[order].tolist(),
                text.tolist(),
                tab.bow[order].tolist(),
                tab.has_bow[order].tolist(),
            )
        )
    out.write_lines(["", "\\end\\"])


def _entries(
    logp: list[float], grams: list[str], bow: list[float], has_bow: list[bool]
) -> Iterator[str]:
    for p, g, b, h in zip(logp, grams, bow, has_bow, strict=True):
        yield f"{p!r}\t{g}\t{b!r}" if h else f"{p!r}\t{g}"


# ---------------------------------------------------------------------------------------------
# reading


def read_arpa(path: str | Path, vocab: Vocab | None = None) -> tuple[BackoffNgram, Vocab]:
    """The model and vocabulary of an ARPA file (``.gz`` read transparently).

    Without ``vocab`` the vocabulary is ``</s>``, ``<unk>``, then the file's unigrams in their
    order. With one (a run's, to mix the two models), the file's words must be exactly that
    vocabulary's. A file without ``<unk>`` gets one at log10 probability -100, as KenLM does.
    Malformed files raise :class:`DataError` naming the line.
    """
    p = Path(path)
    sections = _parse(p)
    unigrams = sections[0]
    file_words = [g[0] for g, _, _ in unigrams]
    if EOS not in file_words:
        raise DataError(f"{p}: the 1-grams lack {EOS}; an ARPA file needs it to end sentences")
    if vocab is None:
        rest = [w for w in file_words if w not in (BOS, EOS, UNK)]
        vocab = Vocab([EOS, UNK, *rest], specials=(EOS, UNK))
    else:
        _check_same_words(p, vocab, {w for w in file_words if w != BOS})
    V, eos = len(vocab), vocab.stoi(EOS)
    index = {w: i for i, w in enumerate(vocab.itos)}
    unigram_logp = np.full(V, np.nan)
    unigram_bow, unigram_has_bow = np.zeros(V), np.zeros(V, bool)
    for (word,), prob, bow in unigrams:
        i = eos if word == BOS else index[word]
        if word != BOS:
            unigram_logp[i] = prob
        if bow is not None and word != EOS:  # a context "... </s>" never occurs
            unigram_bow[i], unigram_has_bow[i] = bow, True
    if UNK not in file_words:
        log.warning("%s has no %s: unknown words get log10 probability %s", p, UNK, MISSING_UNK)
        unigram_logp[vocab.stoi(UNK)] = MISSING_UNK
    orders: list[BackoffOrder] = []
    for n, entries in enumerate(sections[1:], start=2):
        orders.append(_table(p, n, entries, index, eos, V, orders))
    model = BackoffNgram(len(sections), V, eos, unigram_logp, unigram_bow, unigram_has_bow, orders)
    return model, vocab


_Entry = tuple[tuple[str, ...], float, "float | None"]


def _parse(p: Path) -> list[list[_Entry]]:
    """The n-gram entries of every order, checked against the ``\\data\\`` counts."""
    lines = read_lines(p)
    announced: dict[int, int] = {}
    for _, line in lines:
        if line.strip() == "\\data\\":
            break
    else:
        raise DataError(f"{p}: no \\data\\ line; is this an ARPA file?")
    sections: list[list[_Entry]] = []
    current: list[_Entry] | None = None
    n = 0
    for number, raw in lines:
        line = raw.strip()
        if not line:
            continue
        if current is None and line.startswith("ngram "):
            try:
                order, count = line[len("ngram ") :].split("=")
                announced[int(order)] = int(count)
            except ValueError:
                raise DataError(f"{p}:{number}: expected 'ngram N=COUNT'; got {line!r}") from None
            continue
        if line == "\\end\\":
            break
        if line.startswith("\\") and line.endswith("-grams:"):
            n = len(sections) + 1
            if line != f"\\{n}-grams:":
                raise DataError(f"{p}:{number}: expected the section \\{n}-grams:; got {line!r}")
            current = []
            sections.append(current)
            continue
        if current is None:
            raise DataError(f"{p}:{number}: unexpected {line!r} before the first n-gram section")
        fields = line.split()
        if len(fields) not in (n + 1, n + 2):
            raise DataError(
                f"{p}:{number}: a {n}-gram line is 'log10-prob  {n} word(s)  [log10-backoff]'; "
                f"got {len(fields)} fields"
            )
        try:
            prob = float(fields[0])
            bow = float(fields[n + 1]) if len(fields) == n + 2 else None
        except ValueError:
            raise DataError(f"{p}:{number}: a probability or weight is not a number") from None
        _check_entry(p, number, n, fields, prob, bow)
        current.append((tuple(fields[1 : n + 1]), prob, bow))
    else:
        raise DataError(f"{p}: no \\end\\ line; the file is cut short")
    if not sections:
        raise DataError(f"{p}: no n-gram sections")
    for k, entries in enumerate(sections, start=1):
        if announced.get(k) != len(entries):
            raise DataError(
                f"{p}: the \\data\\ header announces {announced.get(k, 0)} {k}-grams, "
                f"the \\{k}-grams: section holds {len(entries)}"
            )
    if len(announced) != len(sections):
        raise DataError(
            f"{p}: the \\data\\ header announces {len(announced)} orders, the file has "
            f"{len(sections)} sections"
        )
    return sections


def _check_entry(
    p: Path, number: int, n: int, fields: list[str], prob: float, bow: float | None
) -> None:
    """An entry's numbers: a log10 probability finite and at most 0 (a zero probability is
    written -99, as SRILM and KenLM do; only ``<s>``'s own, which is never used, may be -inf)
    and a finite back-off weight. NaN or an infinity would make every perplexity NaN, infinite
    or 0."""
    start = n == 1 and fields[1] == BOS
    if math.isnan(prob) or prob > 0 or (math.isinf(prob) and not start):
        raise DataError(
            f"{p}:{number}: the log10 probability {fields[0]!r} of {' '.join(fields[1 : n + 1])!r}"
            " must be a finite number at most 0 (write -99 for a zero probability)"
        )
    if bow is not None and not math.isfinite(bow):
        raise DataError(
            f"{p}:{number}: the log10 back-off weight {fields[n + 1]!r} of "
            f"{' '.join(fields[1 : n + 1])!r} must be a finite number"
        )


def _check_same_words(p: Path, vocab: Vocab, words: set[str]) -> None:
    ours = set(vocab.itos)
    only_file, only_vocab = sorted(words - ours), sorted(ours - words - {UNK})
    if only_file or only_vocab:
        shown = "; ".join(
            f"{len(ws)} only in {where} (e.g. {', '.join(ws[:5])})"
            for ws, where in ((only_file, p.name), (only_vocab, "the run"))
            if ws
        )
        raise DataError(
            f"{p}: its words are not the run's vocabulary ({shown}); a mixture needs the same "
            "words: build the ARPA file from the same vocabulary"
        )


def _table(
    p: Path,
    n: int,
    entries: list[_Entry],
    index: dict[str, int],
    eos: int,
    V: int,
    lower: list[BackoffOrder],
) -> BackoffOrder:
    """One order's sorted table; every n-gram's prefix must be listed one order down."""
    rows, probs, bows, has = [], [], [], []
    skipped = 0
    for gram, prob, bow in entries:
        if BOS in gram[1:] or EOS in gram[:-1]:
            skipped += 1  # <s> only starts a sentence and </s> only ends one: never used
            continue
        try:
            ids = [eos if w == BOS else index[w] for w in gram]
        except KeyError as exc:
            raise DataError(
                f"{p}: the {n}-gram {' '.join(gram)!r} holds {exc.args[0]!r}, which is not in "
                "the 1-grams"
            ) from None
        rows.append(ids)
        probs.append(prob)
        bows.append(0.0 if bow is None else bow)
        has.append(bow is not None)
    if skipped:
        log.info("%s: %d %d-grams with <s> or </s> inside skipped", p, skipped, n)
    words = np.array(rows, dtype=np.int64).reshape(len(rows), n)
    gid = gram_ids(lower, V, words[:, :-1])  # the prefix's id (-1 once a part is missing)
    missing = np.flatnonzero(gid < 0)
    if len(missing):
        shown = " ".join(_words_of(words[missing[0]], index, eos))
        raise DataError(
            f"{p}: the {n}-gram {shown!r} has no prefix in the {n - 1}-grams ({len(missing)} such); "
            "the file is incomplete"
        )
    keys = gid * V + words[:, -1]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if len(keys) > 1 and (keys[1:] == keys[:-1]).any():
        at = int(np.flatnonzero(keys[1:] == keys[:-1])[0])
        shown = " ".join(_words_of(words[order[at]], index, eos))
        raise DataError(f"{p}: the {n}-gram {shown!r} is listed twice")
    return BackoffOrder(
        keys,
        np.asarray(probs, dtype=np.float64)[order],
        np.asarray(bows, dtype=np.float64)[order],
        np.asarray(has, dtype=bool)[order],
    )


def _words_of(ids: np.ndarray, index: dict[str, int], eos: int) -> list[str]:
    """The words of one n-gram's ids, ``<s>`` for an ``</s>`` in the first place."""
    names = {i: w for w, i in index.items()}
    return [BOS if (j == 0 and i == eos) else names[int(i)] for j, i in enumerate(ids)]
