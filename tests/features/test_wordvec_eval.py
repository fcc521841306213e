"""Word-vector evaluation against gensim's KeyedVectors (the reference users compare with)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffnlp.errors import ConfigError, DataError
from ffnlp.features.wordvec_eval import (
    WordVectors,
    evaluate_analogies,
    evaluate_similarity,
    project_2d,
    rankdata,
    spearman,
)
from tests.conftest import shared_data
from tests.extras import needs

gensim_models = needs("gensim.models")


def _random_vectors(words: list[str], dim: int = 16, seed: int = 0) -> WordVectors:
    rng = np.random.default_rng(seed)
    return WordVectors(words, rng.normal(size=(len(words), dim)).astype(np.float32))


def _keyed(wv: WordVectors):
    kv = gensim_models.KeyedVectors(vector_size=wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    return kv


def test_rankdata_and_spearman_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=40).astype(float)  # many ties
    y = x + rng.normal(size=40)
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)


def test_similarity_matches_gensim(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        "# header\nTiger\tcat\t7.35\nbook\tpaper\t7.46\ncat\tdog\t8\nbook\tunknownword\t3\n"
        "dog\tpaper\t1.2\ntiger\tbook\t0.5\n",
        encoding="utf-8",
    )
    wv = _random_vectors(["tiger", "cat", "book", "paper", "dog"])
    ours = evaluate_similarity(wv, pairs)
    pearson, spear, oov_percent = _keyed(wv).evaluate_word_pairs(str(pairs))
    assert ours["spearman"] == pytest.approx(spear.statistic, rel=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, rel=1e-5)
    assert ours["oov_rate"] == pytest.approx(oov_percent / 100)
    assert ours["pairs"] == 6 and ours["oov_pairs"] == 1


def test_analogies_match_gensim_3cosadd() -> None:
    questions = shared_data("word_analogy/questions-words.txt")
    words: list[str] = []
    for line in questions.read_text(encoding="utf-8").split("\n")[:3000]:
        if line and not line.startswith(":"):
            words.extend(w.lower() for w in line.split())
    words = list(dict.fromkeys(words))
    wv = _random_vectors(words, dim=8, seed=3)
    # make some answers right so accuracy is not ~0: d := b - a + c for a few questions
    for line in questions.read_text(encoding="utf-8").split("\n")[1:300:3]:
        a, b, c, d = (w.lower() for w in line.split())
        wv.vectors[wv.index[d]] = wv.unit[wv.index[b]] - wv.unit[wv.index[a]] + wv.unit[wv.index[c]]
    wv._unit = None
    restrict = 400
    ours = evaluate_analogies(wv, questions, restrict=restrict)
    score, sections = _keyed(wv).evaluate_word_analogies(str(questions), restrict_vocab=restrict)
    assert ours["accuracy"] == pytest.approx(score)
    assert ours["correct"] > 20
    gensim_sections = {s["section"]: s for s in sections}
    for name, sec in ours["sections"].items():
        assert sec["correct"] == len(gensim_sections[name]["correct"]), name
        assert sec["questions"] == len(gensim_sections[name]["correct"]) + len(
            gensim_sections[name]["incorrect"]
        )


def test_3cosmul_matches_gensim_most_similar_cosmul(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(60)]
    wv = _random_vectors(words, dim=6, seed=7)
    kv = _keyed(wv)
    rng = np.random.default_rng(2)
    lines = [": only"]
    expected_correct = 0
    for _ in range(40):
        a, b, c = rng.choice(words, size=3, replace=False)
        best = kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=1)[0][0]
        d = best if rng.random() < 0.5 else rng.choice([w for w in words if w not in (a, b, c)])
        expected_correct += d == best
        lines.append(f"{a} {b} {c} {d}")
    path = tmp_path / "q.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ours = evaluate_analogies(wv, path, method="3cosmul")
    assert ours["correct"] == expected_correct


def test_most_similar_matches_gensim() -> None:
    words = [f"w{i}" for i in range(200)]
    wv = _random_vectors(words, dim=10)
    ours = wv.most_similar("w5", k=7)
    theirs = _keyed(wv).most_similar("w5", topn=7)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
    with pytest.raises(DataError, match="'nope' is not in the vocabulary"):
        wv.most_similar("nope")


def test_most_similar_many_is_most_similar_of_each_query() -> None:
    """Several queries in one matrix product: each query's neighbours are those of
    most_similar alone, in order, with the same scores to float rounding."""
    words = [f"w{i}" for i in range(300)]
    wv = _random_vectors(words, dim=24, seed=3)
    queries = [(["w5"], []), (["w1", "w9"], ["w3"]), (["w7"], ["w8", "w2"]), (["w5"], [])]
    many = wv.most_similar_many(queries, k=9)
    assert len(many) == len(queries)
    for (pos, neg), got in zip(queries, many, strict=True):
        want = wv.most_similar(pos, 9, negative=neg)
        assert [w for w, _ in got] == [w for w, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
    assert wv.most_similar_many([], k=3) == []
    with pytest.raises(DataError, match="'nope' is not in the vocabulary"):
        wv.most_similar_many([(["w1"], []), (["nope"], [])])
    with pytest.raises(ConfigError, match="at least one positive word"):
        wv.most_similar_many([([], ["w1"])])


def test_malformed_evaluation_files(tmp_path: Path) -> None:
    wv = _random_vectors(["a", "b"])
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\tx\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:1: the score 'x' is not a number"):
        evaluate_similarity(wv, bad)
    q = tmp_path / "q.txt"
    q.write_text(": s\na b c\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"q.txt:2: expected four words"):
        evaluate_analogies(wv, q)


def test_projection_is_pca() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)) * np.array([10, 3, 0.1, 0.1, 0.1])
    coords = project_2d(x)
    assert coords.shape == (30, 2)
    assert np.var(coords[:, 0]) >= np.var(coords[:, 1])
