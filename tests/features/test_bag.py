"""Bag-of-n-grams features against scikit-learn's CountVectorizer / TfidfVectorizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ffnlp.errors import ConfigError, DataError, ModelFileError, NotFittedError
from ffnlp.features.bag import BagOfNgrams
from ffnlp.text.readers import read_labeled
from ffnlp.text.tokenize import Tokenizer
from tests.conftest import shared_data
from tests.extras import needs

sklearn_text = needs("sklearn.feature_extraction.text")

DOCS = [
    ["the", "cat", "sat", "on", "the", "mat", "the", "end"],
    ["the", "dog", "sat"],
    ["a", "cat", "and", "a", "dog", "and", "a", "cat"],
    [],
    ["naïve", "café", ",", "naïve", "!"],
    ["the"],
]


def _ngrams(tokens, low, high):
    """The n-grams scikit-learn sees: built here independently of BagOfNgrams."""
    return [
        " ".join(tokens[i : i + n])
        for n in range(low, high + 1)
        for i in range(len(tokens) - n + 1)
    ]


def _sklearn(vectorizer_cls, docs, ngram_range, **kwargs):
    low, high = ngram_range
    vec = vectorizer_cls(analyzer=lambda tokens: _ngrams(tokens, low, high), **kwargs)
    matrix = vec.fit_transform(docs)
    return list(vec.get_feature_names_out()), matrix.toarray()


def _dense(x: torch.Tensor) -> np.ndarray:
    assert x.layout == torch.sparse_csr and x.dtype == torch.float32
    return x.to_dense().numpy()


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 3)])
@pytest.mark.parametrize("sublinear_tf", [False, True])
def test_tfidf_equals_sklearn(ngram_range, sublinear_tf):
    bag = BagOfNgrams(ngram_range=ngram_range, weighting="tfidf", sublinear_tf=sublinear_tf)
    ours = bag.fit_transform(DOCS)
    names, theirs = _sklearn(
        sklearn_text.TfidfVectorizer, DOCS, ngram_range, sublinear_tf=sublinear_tf, smooth_idf=True
    )
    assert bag.feature_names == names
    assert bag.effective_norm == "l2"
    np.testing.assert_allclose(_dense(ours), theirs, rtol=1e-6, atol=1e-7)


def test_tfidf_without_norm_equals_sklearn():
    ours = BagOfNgrams(weighting="tfidf", norm=None).fit_transform(DOCS)
    _, theirs = _sklearn(sklearn_text.TfidfVectorizer, DOCS, (1, 2), norm=None)
    np.testing.assert_allclose(_dense(ours), theirs, rtol=1e-6)


@pytest.mark.parametrize("weighting", ["count", "binary"])
def test_counts_and_binary_equal_countvectorizer(weighting):
    bag = BagOfNgrams(weighting=weighting)
    ours = bag.fit_transform(DOCS)
    names, theirs = _sklearn(
        sklearn_text.CountVectorizer, DOCS, (1, 2), binary=weighting == "binary"
    )
    assert bag.feature_names == names and bag.effective_norm is None
    np.testing.assert_array_equal(_dense(ours), theirs)


def test_l2_norm_of_counts_and_empty_rows():
    x = _dense(BagOfNgrams(norm="l2").fit_transform(DOCS))
    norms = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 2, 4, 5]], 1.0, rtol=1e-6)
    assert norms[3] == 0.0  # the empty document is an empty row, not NaN


def test_unknown_ngrams_are_ignored():
    bag = BagOfNgrams(ngram_range=(1, 2)).fit(DOCS)
    x = bag.transform([["the", "zebra", "sat"], ["zebra"], []])
    dense = _dense(x)
    assert x.shape == (3, bag.n_features)
    names = bag.feature_names
    assert {names[j] for j in np.flatnonzero(dense[0])} == {"the", "sat"}
    assert not dense[1].any() and not dense[2].any()
    assert bag.transform([]).shape == (0, bag.n_features)


def test_min_count_and_max_features():
    bag = BagOfNgrams(ngram_range=(1, 1), min_count=2).fit(DOCS)
    assert bag.feature_names == ["a", "and", "cat", "dog", "naïve", "sat", "the"]
    bag = BagOfNgrams(ngram_range=(1, 2), max_features=3).fit(DOCS)
    # the 3 most frequent n-grams: the (5), a (3), cat (3); columns sorted by name
    assert bag.feature_names == ["a", "cat", "the"]
    with pytest.raises(DataError, match="no n-gram occurs at least min_count=99 times in 6"):
        BagOfNgrams(min_count=99).fit(DOCS)
    with pytest.raises(DataError, match="no n-grams in 2 documents"):
        BagOfNgrams().fit([[], []])


def test_to_dict_from_dict_rebuilds_the_same_features():
    bag = BagOfNgrams(ngram_range=(1, 3), weighting="tfidf", sublinear_tf=True).fit(DOCS)
    saved = json.loads(json.dumps(bag.to_dict()))
    again = BagOfNgrams.from_dict(saved)
    assert again.feature_names == bag.feature_names and again.n_documents_ == len(DOCS)
    test = [["the", "cat", "sat", "on", "a", "dog"], ["naïve", "!"]]
    np.testing.assert_array_equal(_dense(again.transform(test)), _dense(bag.transform(test)))
    broken = dict(saved, idf=None)
    with pytest.raises(ModelFileError, match="needs one idf value per feature"):
        BagOfNgrams.from_dict(broken)
    with pytest.raises(ModelFileError, match="not a saved BagOfNgrams"):
        BagOfNgrams.from_dict({"weighting": "tfidf"})


def test_not_fitted_and_bad_parameters():
    with pytest.raises(NotFittedError, match="call fit"):
        BagOfNgrams().transform(DOCS)
    with pytest.raises(ConfigError) as info:
        BagOfNgrams(ngram_range=(2, 1), weighting="tf-idf", norm="l1", min_count=0)
    message = str(info.value)
    for part in (
        "ngram_range",
        "weighting must be one of count, binary, tfidf",
        "norm",
        "min_count",
    ):
        assert part in message


def test_features_feed_a_linear_layer():
    x = BagOfNgrams().fit_transform(DOCS)
    weight = torch.randn(x.shape[1], 3)
    np.testing.assert_allclose(
        (x @ weight).numpy(), _dense(x) @ weight.numpy(), rtol=1e-5, atol=1e-5
    )


def test_sst2_tfidf_equals_sklearn():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    data = read_labeled(shared_data("sst2/stsa.binary.dev"))
    docs = Tokenizer().tokenize_all(data.texts)
    bag = BagOfNgrams(weighting="tfidf", sublinear_tf=True)
    ours = bag.fit_transform(docs)
    vec = sklearn_text.TfidfVectorizer(
        analyzer=lambda tokens: _ngrams(tokens, 1, 2), sublinear_tf=True
    )
    theirs = vec.fit_transform(docs)
    assert bag.feature_names == list(vec.get_feature_names_out())
    assert ours.shape == theirs.shape == (872, bag.n_features)
    mine = scipy_sparse.csr_matrix(
        (ours.values().numpy(), ours.col_indices().numpy(), ours.crow_indices().numpy()),
        shape=tuple(ours.shape),
    )
    assert mine.nnz == theirs.nnz
    assert abs(mine - theirs).max() < 1e-6


# -- nbsvm: log-count ratios (Wang & Manning 2012)

NB_DOCS = [["good", "film"], ["good", "fun"], ["bad", "film"], ["bad", "bad", "plot"]]


def _ratio(holds_pos: list[int], holds_neg: list[int], alpha: float) -> np.ndarray:
    """r = log((p / |p|_1) / (q / |q|_1)) from per-feature document counts, written out."""
    p = np.asarray(holds_pos, dtype=float) + alpha
    q = np.asarray(holds_neg, dtype=float) + alpha
    return np.log(p / p.sum()) - np.log(q / q.sum())


def test_nbsvm_values_are_the_log_count_ratio_of_each_feature_a_text_holds() -> None:
    bag = BagOfNgrams((1, 1), "nbsvm", norm=None, alpha=0.5)
    x = _dense(bag.fit_transform(NB_DOCS, np.array([1, 1, 0, 0])))
    names = bag.feature_names
    assert names == ["bad", "film", "fun", "good", "plot"]
    # texts of label 1 holding each feature (binarised: "bad bad" counts once), then label 0
    r = _ratio([0, 1, 1, 2, 0], [2, 1, 0, 0, 1], alpha=0.5)
    np.testing.assert_allclose(bag.ratios_, r)
    assert r[names.index("good")] > 0 > r[names.index("bad")]
    want = np.zeros((4, 5))
    for i, doc in enumerate(NB_DOCS):
        for token in set(doc):
            want[i, names.index(token)] = r[names.index(token)]
    np.testing.assert_allclose(x, want, rtol=1e-6)


def test_nbsvm_rows_are_l2_normalised_by_default() -> None:
    x = _dense(BagOfNgrams((1, 2), "nbsvm").fit_transform(NB_DOCS, np.array([1, 1, 0, 0])))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)


def test_nbsvm_with_more_classes_takes_the_largest_one_vs_rest_ratio() -> None:
    y = np.array([0, 1, 2, 2])
    bag = BagOfNgrams((1, 1), "nbsvm", norm=None).fit(NB_DOCS, y)
    holds = np.array([[0, 0, 2], [1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])  # (F, 3) per class
    rest = holds.sum(1, keepdims=True) - holds
    per_class = np.stack([_ratio(holds[:, k], rest[:, k], 1.0) for k in range(3)], 1)
    np.testing.assert_allclose(bag.ratios_, np.abs(per_class).max(1))
    # multi-label targets as (N, K) 0/1: the same one-vs-rest ratios for one-label rows
    multi = BagOfNgrams((1, 1), "nbsvm", norm=None).fit(NB_DOCS, np.eye(3, dtype=bool)[y])
    np.testing.assert_allclose(multi.ratios_, bag.ratios_)


def test_nbsvm_needs_the_labels_and_keeps_its_ratios_through_a_save() -> None:
    with pytest.raises(ConfigError, match="training labels"):
        BagOfNgrams(weighting="nbsvm").fit(NB_DOCS)
    with pytest.raises(DataError, match="3 targets for 4 documents"):
        BagOfNgrams(weighting="nbsvm").fit(NB_DOCS, np.array([0, 1, 0]))
    bag = BagOfNgrams((1, 2), "nbsvm", min_count=1).fit(NB_DOCS, np.array([1, 1, 0, 0]))
    again = BagOfNgrams.from_dict(json.loads(json.dumps(bag.to_dict())))
    assert torch.equal(again.transform(NB_DOCS).to_dense(), bag.transform(NB_DOCS).to_dense())
    state = bag.to_dict()
    state["ratios"] = None
    with pytest.raises(ModelFileError, match="one ratio per feature"):
        BagOfNgrams.from_dict(state)
    with pytest.raises(ConfigError, match="continued run cannot grow"):
        bag.grow(NB_DOCS)


# -- character n-grams ------------------------------------------------------------------------


def _char_analyzer(low: int, high: int):
    """scikit-learn's analyzer for the same character n-grams, written here on its own: the
    tokens joined by one space, a space at each end, every n-gram of orders low..high."""

    def grams(tokens: list[str]) -> list[str]:
        if not tokens:
            return []
        text = " " + " ".join(tokens) + " "
        return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]

    return grams


@pytest.mark.parametrize("weighting", ["count", "binary", "tfidf"])
def test_character_ngrams_follow_the_words_and_equal_sklearn(weighting: str) -> None:
    bag = BagOfNgrams((1, 2), weighting, sublinear_tf=False, char_range=(2, 4))
    ours = _dense(bag.fit_transform(DOCS))
    words, word_values = _sklearn(
        sklearn_text.CountVectorizer, DOCS, (1, 2), binary=weighting == "binary"
    )
    chars_vec = sklearn_text.CountVectorizer(
        analyzer=_char_analyzer(2, 4), binary=weighting == "binary"
    )
    char_values = chars_vec.fit_transform(DOCS).toarray()
    chars = list(chars_vec.get_feature_names_out())
    # the word n-grams' columns, then the character n-grams', each block sorted by name
    assert bag.feature_names == words + [f"chars:{c!r}" for c in chars]
    assert bag.to_dict()["features"] == words and bag.to_dict()["char_features"] == chars
    assert "chars:' ca'" in bag.feature_names and "chars:'t s'" in bag.feature_names
    counts = np.hstack([word_values, char_values]).astype(float)
    if weighting == "tfidf":  # the idf and the L2 norm over both kinds together
        df = (counts > 0).sum(0)
        counts = counts * (np.log((1 + len(DOCS)) / (1 + df)) + 1)
        norms = np.linalg.norm(counts, axis=1, keepdims=True)
        counts = counts / np.where(norms == 0, 1, norms)
    np.testing.assert_allclose(ours, counts, rtol=1e-6, atol=1e-7)


def test_character_ngrams_never_share_a_column_with_a_word() -> None:
    # the word bigram "a b" and the character trigram "a b" of the text " a b " are two features
    bag = BagOfNgrams((1, 2), "count", char_range=(3, 3)).fit([["a", "b"]])
    assert bag.feature_names == ["a", "a b", "b", "chars:' a '", "chars:' b '", "chars:'a b'"]
    x = _dense(bag.transform([["a", "b"]]))
    assert x.sum() == 3 + 3  # three word n-grams, three character trigrams


def test_character_ngrams_keep_through_a_save_and_refuse_to_grow() -> None:
    y = np.array([1, 1, 0, 0])
    bag = BagOfNgrams((1, 2), "nbsvm", char_range=(2, 5), alpha=0.5).fit(NB_DOCS, y)
    assert bag.n_features == len(bag.ratios_) > len(bag.to_dict()["features"])
    again = BagOfNgrams.from_dict(json.loads(json.dumps(bag.to_dict())))
    assert again.char_range == (2, 5) and again.feature_names == bag.feature_names
    assert torch.equal(again.transform(NB_DOCS).to_dense(), bag.transform(NB_DOCS).to_dense())
    # a saved state from before character n-grams (no such keys) reads as none
    words_only = BagOfNgrams((1, 2), "count").fit(NB_DOCS).to_dict()
    del words_only["char_ngram_range"]
    assert BagOfNgrams.from_dict(words_only).char_range == (0, 0)
    broken = BagOfNgrams((1, 2), "count").fit(NB_DOCS).to_dict()
    broken["char_features"] = ["ab"]
    with pytest.raises(ModelFileError, match="char_ngram_range"):
        BagOfNgrams.from_dict(broken)
    with pytest.raises(ConfigError, match="character n-grams cannot be continued"):
        BagOfNgrams((1, 1), "count", char_range=(2, 3)).fit(NB_DOCS).grow(NB_DOCS)


@pytest.mark.parametrize("char_range", [(0, 3), (3, 2), (1, 11), (-1, 2)])
def test_bad_character_ranges_are_refused(char_range: tuple[int, int]) -> None:
    with pytest.raises(ConfigError, match="char_range"):
        BagOfNgrams(char_range=char_range)
