"""SubwordVectors: vectors for words outside the vocabulary from their character n-grams (the same
as gensim's FastText gives), in queries and in the similarity evaluation's two modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffnlp.errors import DataError
from ffnlp.features.subwords import SubwordVectors, subword_buckets
from ffnlp.features.wordvec_eval import WordVectors, evaluate_similarity, spearman
from tests.extras import needs

WORDS = ["market", "stock", "price", "dog", "cat"]


def vectors(buckets: int = 50, minn: int = 3, maxn: int = 4) -> SubwordVectors:
    rng = np.random.default_rng(0)
    return SubwordVectors(
        WORDS,
        rng.normal(size=(len(WORDS), 8)).astype(np.float32),
        rng.normal(size=(buckets, 8)).astype(np.float32),
        minn,
        maxn,
    )


def test_an_unseen_word_gets_the_mean_of_its_ngram_rows() -> None:
    wv = vectors()
    expected = wv.ngram_vectors[list(subword_buckets("markets", 3, 4, 50))].mean(axis=0)
    np.testing.assert_allclose(wv.vector("markets"), expected)
    np.testing.assert_array_equal(wv["markets"], wv.vector("markets"))
    np.testing.assert_array_equal(wv.vector("stock"), wv.vectors[1])  # a known word: its row
    assert "markets" not in wv and wv.has_vector("markets")
    assert not wv.has_vector("")  # "<>" has no 3- or 4-gram
    with pytest.raises(DataError, match="no character n-gram of 3 to 4 characters"):
        wv.vector("")


def test_queries_accept_unseen_words() -> None:
    wv = vectors()
    unit = wv.vector("stocks") / np.linalg.norm(wv.vector("stocks"))
    expected = int(np.argmax(wv.unit @ unit))
    assert wv.most_similar("stocks", 1)[0][0] == WORDS[expected]
    assert wv.similarity("stocks", "stock") == pytest.approx(float(wv.unit[1] @ unit), rel=1e-6)
    ranked = wv.rank_by_centrality(["stocks", "market", "cat"])
    assert sorted(w for w, _ in ranked) == ["cat", "market", "stocks"]
    # a query word in the vocabulary is never an answer; an unseen one has no row to leave out
    answers = [w for w, _ in wv.most_similar(["stocks", "price"], 5)]
    assert "price" not in answers and len(answers) == 4


def test_plain_vectors_still_refuse_unknown_words() -> None:
    wv = WordVectors(WORDS, np.eye(5, dtype=np.float32))
    assert not wv.has_vector("stocks") and wv.oov_vector("stocks") is None
    with pytest.raises(DataError, match=r"the word 'stocks' is not in the vocabulary \(5 words\)$"):
        wv.most_similar("stocks")


def test_similarity_reports_both_modes_with_their_coverage(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        "market\tstock\t8\nstock\tprice\t6\ndog\tcat\t7\nmarkets\tstocks\t9\nMarket\tdogs\t1\n"
        "cat\t\u00e9\t2\n",
        encoding="utf-8",
    )
    wv = vectors(minn=2, maxn=3)
    result = evaluate_similarity(wv, pairs)
    assert (result["pairs"], result["oov_pairs"]) == (6, 3)
    assert result["coverage"] == pytest.approx(0.5) and result["oov_rate"] == pytest.approx(0.5)
    plain = evaluate_similarity(WordVectors(wv.words, wv.vectors), pairs)
    assert "oov_from_subwords" not in plain
    assert {k: plain[k] for k in plain} == {k: result[k] for k in plain}  # the same figures
    sub = result["oov_from_subwords"]
    assert (sub["scored_pairs"], sub["coverage"]) == (6, 1.0)  # "<é>" has the 2-grams "<é", "é>"

    # Spearman over every pair, unseen words (lowercased, as in the vocabulary look-up) from n-grams
    def cos(a: str, b: str) -> float:
        x, y = wv.vector(a), wv.vector(b)
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    sims = [cos("market", "stock"), cos("stock", "price"), cos("dog", "cat")]
    sims += [cos("markets", "stocks"), cos("market", "dogs"), cos("cat", "\u00e9")]
    assert sub["spearman"] == pytest.approx(spearman(np.array(sims), np.array([8, 6, 7, 9, 1, 2])))


def test_unseen_words_get_what_gensims_fasttext_gives() -> None:
    """The same n-gram rows in gensim's FastText and in SubwordVectors give the same vector to a
    word outside the vocabulary (what bench/w2v.py relies on to score gensim's vectors)."""
    gensim_models = needs("gensim.models")
    sentences = [["the", "market", "rose"], ["stock", "prices", "fell"]] * 20
    model = gensim_models.FastText(
        sentences, vector_size=8, min_count=1, min_n=3, max_n=5, bucket=97, epochs=1, seed=1
    )
    kv = model.wv
    ours = SubwordVectors(kv.index_to_key, kv.vectors, kv.vectors_ngrams, kv.min_n, kv.max_n)
    for word in ("markets", "stocky", "rise"):
        np.testing.assert_allclose(ours.vector(word), kv[word], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ours.vector("market"), kv["market"])
