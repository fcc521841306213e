"""The featurisation of an exported classifier: a JSON spec, and a reference implementation of it.

An exported network (ONNX, TorchScript) starts after the text has become numbers. What turns a
text into those numbers is written down in a JSON file beside it (``ffnlp export`` writes
``FILE.features.json``), made by :func:`feature_spec`, and :func:`featurize` is a reference
implementation that reads nothing but that spec: plain Python and NumPy, no ffnlp class, so
that another runtime can port it line by line (it is tested against ffnlp's own featurisers).

Two kinds of input exist (``spec["kind"]``):

``ids`` (the pooled classifiers, fastText's family): a text becomes the table rows of its
  words and hashed word n-grams (and, with ``maxn > 0``, each word's hashed character
  n-grams). The network's inputs are ``ids`` (B, L) int64 and ``mask`` (B, L) float32: the rows
  of each text padded to the longest with row 0 and mask 0. Rows:

  - a token found in ``words`` is row ``words.index(token)``; other tokens have no row;
  - with ``maxn > 0`` each token is followed by its character n-grams' rows (``<token>``'s runs
    of ``minn``..``maxn`` code points, the lone ``<`` and ``>`` left out), each ``V +
    fnv1a(utf8(gram)) % buckets``, V = ``len(words)``;
  - after all the tokens, the word n-grams of order 2..``word_ngrams`` (all bigrams left to
    right, then all trigrams, ...): ``h = wide(t1)``, ``h = h * 116049371 + wide(tk)`` modulo
    2**64, row ``V + h % buckets``, where ``wide`` is the token's fnv1a hash read as a signed
    32-bit number and widened to 64 bits;
  - ``fnv1a`` is fastText's 32-bit FNV-1a: ``h = 2166136261``; for each byte ``h = ((h ^ b) *
    16777619) mod 2**32``, a byte >= 0x80 XORed in sign-extended (``b | 0xFFFFFF00``);
  - a quantised run pruned of hash buckets (``bucket_rows`` is a list, not null) keeps only the
    buckets listed: bucket ``b`` is row ``V + bucket_rows.index(b)``, other buckets no row.

``ngrams`` (logistic regression, the feature MLP): a text becomes its bag of word n-grams. The
  inputs are ``ids`` (B, L) int64 (feature columns) and ``weights`` (B, L) float32 (their
  values, 0 on padding). The n-grams of orders ``ngram_range`` are the tokens joined by one
  space; one not in ``features`` is left out; a feature's value is its count (``binary``: 1;
  ``sublinear_tf``: 1 + ln(count)), times ``idf[column]`` for ``tfidf``; for ``nbsvm`` it is
  ``ratios[column]`` (the n-gram's log-count ratio), whatever its count; and with ``norm =
  "l2"`` each text's values are divided by their Euclidean norm.

Both start from the tokens: ``tokenizer.kind`` ``whitespace`` splits on the ASCII whitespace
characters (space, tab, LF, CR, FF, VT) only; ``regex`` keeps the matches of
``tokenizer.pattern`` (Python's ``re`` syntax, Unicode-aware); with ``lowercase`` the text is
lowercased (Python's ``str.lower``) first.

The outputs (``spec["output"]``): ``probabilities`` (B, K), columns in the order of
``labels``; ``softmax`` (one label a text: take the top k), ``sigmoid`` (two labels, or
``multilabel``: each label's own probability, predicted when it reaches ``thresholds[k]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT = "ffnlp-features"
VERSION = 1
_ASCII_SPACE = re.compile(r"[^ \t\n\r\f\v]+")
_MULTIPLIER = 116049371


# ------------------------------------------------------------------------- the reference


def tokenize(spec: dict[str, Any], text: str) -> list[str]:
    """``text``'s tokens as ``spec["tokenizer"]`` says."""
    tok = spec["tokenizer"]
    if tok["lowercase"]:
        text = text.lower()
    if tok["kind"] == "regex":
        return re.findall(tok["pattern"], text)
    return _ASCII_SPACE.findall(text)


def fnv1a(data: bytes) -> int:
    """fastText's 32-bit FNV-1a (bytes >= 0x80 are XORed in sign-extended)."""
    h = 2166136261
    for byte in data:
        h = ((h ^ (byte | 0xFFFFFF00 if byte >= 0x80 else byte)) * 16777619) & 0xFFFFFFFF
    return h


def char_ngrams(word: str, minn: int, maxn: int) -> list[str]:
    """The runs of ``minn``..``maxn`` code points of ``<word>``, the lone ``<`` and ``>`` left out."""
    wrapped = "<" + word + ">"
    grams = []
    for start in range(len(wrapped)):
        for n in range(max(minn, 1), maxn + 1):
            end = start + n
            if end > len(wrapped):
                break
            if n == 1 and (start == 0 or end == len(wrapped)):
                continue
            grams.append(wrapped[start:end])
    return grams


def text_rows(spec: dict[str, Any], tokens: Sequence[str]) -> list[int]:
    """``kind = "ids"``: the table rows of one tokenised text (see the module's docstring)."""
    words = spec["_index"]
    n_words, buckets = len(spec["words"]), spec["buckets"]
    kept = spec["_buckets"]  # bucket -> its position among the kept ones (None: all kept)

    def bucket_row(bucket: int) -> int | None:
        if kept is None:
            return n_words + bucket
        position = kept.get(bucket)
        return None if position is None else n_words + position

    rows: list[int | None] = []
    for token in tokens:
        rows.append(words.get(token))
        if spec["maxn"] > 0:
            for gram in char_ngrams(token, spec["minn"], spec["maxn"]):
                rows.append(bucket_row(fnv1a(gram.encode("utf-8")) % buckets))
    wide = []
    for token in tokens:
        h = fnv1a(token.encode("utf-8"))
        wide.append(h | 0xFFFFFFFF00000000 if h & 0x80000000 else h)
    for n in range(2, spec["word_ngrams"] + 1):
        for start in range(len(tokens) - n + 1):
            h = wide[start]
            for k in range(1, n):
                h = (h * _MULTIPLIER + wide[start + k]) & 0xFFFFFFFFFFFFFFFF
            rows.append(bucket_row(h % buckets))
    return [r for r in rows if r is not None]


def text_features(spec: dict[str, Any], tokens: Sequence[str]) -> tuple[list[int], list[float]]:
    """``kind = "ngrams"``: the columns of one tokenised text and their values."""
    low, high = spec["ngram_range"]
    counts: dict[int, int] = {}
    for n in range(low, high + 1):
        for start in range(len(tokens) - n + 1):
            column = spec["_index"].get(" ".join(tokens[start : start + n]))
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
    columns = sorted(counts)
    values = []
    for column in columns:
        if spec["weighting"] == "binary":
            value = 1.0
        elif spec["weighting"] == "nbsvm":
            value = spec["ratios"][column]
        else:
            value = 1.0 + math.log(counts[column]) if spec["sublinear_tf"] else counts[column]
            if spec["weighting"] == "tfidf":
                value *= spec["idf"][column]
        values.append(float(value))
    if spec["norm"] == "l2" and values:
        norm = math.sqrt(sum(v * v for v in values))
        values = [v / norm for v in values]
    return columns, values


def featurize(spec: dict[str, Any], texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The network's inputs for ``texts``: ``{"ids", "mask"}`` (kind ``ids``) or ``{"ids",
    "weights"}`` (kind ``ngrams``), each (B, L), L the longest text's count (at least 1)."""
    _prepare(spec)
    if spec["kind"] == "ids":
        rows = [text_rows(spec, tokenize(spec, t)) for t in texts]
        values = [[1.0] * len(r) for r in rows]
        second = "mask"
    else:
        pairs = [text_features(spec, tokenize(spec, t)) for t in texts]
        rows, values = [p[0] for p in pairs], [p[1] for p in pairs]
        second = "weights"
    width = max([1, *(len(r) for r in rows)])
    ids = np.zeros((len(texts), width), dtype=np.int64)
    weights = np.zeros((len(texts), width), dtype=np.float32)
    for i, (r, v) in enumerate(zip(rows, values, strict=True)):
        ids[i, : len(r)] = r
        weights[i, : len(v)] = v
    return {"ids": ids, second: weights}


def _prepare(spec: dict[str, Any]) -> None:
    """Look-up tables made from the spec once (kept in it under ``_`` keys)."""
    if "_index" in spec:
        return
    if spec["kind"] == "ids":
        skip = set(spec.get("skip", ()))
        spec["_index"] = {w: i for i, w in enumerate(spec["words"]) if w not in skip}
        kept = spec.get("bucket_rows")
        spec["_buckets"] = None if kept is None else {b: i for i, b in enumerate(kept)}
    else:
        spec["_index"] = {f: i for i, f in enumerate(spec["features"])}


# ------------------------------------------------------------------- the spec of a classifier


def feature_spec(classifier: Any) -> dict[str, Any]:
    """The featurisation of a loaded :class:`~ffnlp.tasks.classify.Classifier` as JSON-able
    values (see the module's docstring); a ConfigError for a kind of features that has no spec
    (the hand-built lexicon features)."""
    from ffnlp.errors import ConfigError
    from ffnlp.tasks.classify.data import IdsFeaturizer, NgramFeaturizer
    from ffnlp.text.tokenize import _WORDS

    tokenizer = classifier.tokenizer
    spec: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": {"kind": tokenizer.kind, "lowercase": tokenizer.lowercase},
        "labels": list(classifier.labels.labels),
        "output": {
            "name": "probabilities",
            "kind": "sigmoid"
            if classifier.multilabel or len(classifier.labels) == 2
            else "softmax",
            "multilabel": classifier.multilabel,
            "thresholds": [float(t) for t in classifier.decision_thresholds()],
        },
    }
    if tokenizer.kind == "regex":
        spec["tokenizer"]["pattern"] = _WORDS.pattern
    featurizer = classifier.featurizer
    if isinstance(featurizer, IdsFeaturizer):
        vocab = featurizer.fitted_vocab()
        spec.update(
            kind="ids",
            inputs=["ids", "mask"],
            words=list(vocab.itos),
            skip=list(vocab.specials),
            word_ngrams=featurizer.max_n,
            buckets=featurizer.buckets,
            minn=featurizer.minn,
            maxn=featurizer.maxn,
            bucket_rows=featurizer.bucket_rows,
        )
    elif isinstance(featurizer, NgramFeaturizer):
        bag = featurizer.bag
        if bag.has_chars:
            raise ConfigError(
                f"features.char_ngram_range = {list(bag.char_range)}: the exported feature spec "
                "covers word n-grams only, not character n-grams; export a run trained without "
                "them (features.char_ngram_range = [0, 0])"
            )
        if bag.contrast_words:
            raise ConfigError(
                f"features.contrast_words = {list(bag.contrast_words)}: the exported feature "
                "spec covers a text's word n-grams only, not those of the clause after a "
                "contrast word; export a run trained without them (features.contrast_words = [])"
            )
        spec.update(
            kind="ngrams",
            inputs=["ids", "weights"],
            ngram_range=list(bag.ngram_range),
            features=bag.feature_names,
            weighting=bag.weighting,
            sublinear_tf=bag.sublinear_tf,
            norm=bag.effective_norm,
            idf=None if bag.idf_ is None else [float(x) for x in bag.idf_],
            ratios=None if bag.ratios_ is None else [float(x) for x in bag.ratios_],
        )
    else:
        raise ConfigError(
            f"features.kind = {classifier.config.features.kind!r} cannot be exported: its "
            "hand-built lexicon features have no portable spec; export runs of features.kind "
            "'ids' (pooled) or 'ngrams' (logreg, mlp)"
        )
    return spec
