"""Queries on word vectors — most_similar with positive and negative words (3CosAdd, 3CosMul),
doesnt_match — against gensim's KeyedVectors on the same vectors, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError
from ffnlp.features.wordvec_eval import WordVectors
from ffnlp.models.skipgram import SkipGram
from ffnlp.tasks.w2v import W2VConfig, Word2VecRun, nearest_words
from ffnlp.text.vocab import Vocab
from tests.extras import needs

gensim_models = needs("gensim.models")

WORDS = [f"w{i}" for i in range(300)]


@pytest.fixture(scope="module")
def wv() -> WordVectors:
    rng = np.random.default_rng(3)
    return WordVectors(WORDS, rng.normal(size=(len(WORDS), 12)).astype(np.float32))


@pytest.fixture(scope="module")
def kv(wv: WordVectors):  # type: ignore[no-untyped-def]
    keyed = gensim_models.KeyedVectors(vector_size=wv.dim)
    keyed.add_vectors(wv.words, wv.vectors)
    return keyed


def queries(count: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        picked = [str(w) for w in rng.choice(WORDS, size=4, replace=False)]
        n_pos, n_neg = (
            (1, 0) if i % 4 == 0 else (2, 1) if i % 4 == 1 else (3, 1) if i % 4 == 2 else (1, 2)
        )
        out.append((picked[:n_pos], picked[n_pos : n_pos + n_neg]))
    return out


@pytest.mark.parametrize("restrict", [0, 120])
def test_3cosadd_queries_match_gensim_most_similar(wv: WordVectors, kv, restrict: int) -> None:  # type: ignore[no-untyped-def]
    for pos, neg in queries(40, seed=restrict):
        ours = wv.most_similar(pos, 10, restrict, negative=neg)
        theirs = kv.most_similar(
            positive=pos, negative=neg, topn=10, restrict_vocab=restrict or None
        )
        assert [w for w, _ in ours] == [w for w, _ in theirs], (pos, neg)
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
        assert not set(pos + neg) & {w for w, _ in ours}  # the query words are left out


def test_3cosmul_queries_match_gensim_most_similar_cosmul(wv: WordVectors, kv) -> None:  # type: ignore[no-untyped-def]
    for pos, neg in queries(40, seed=1):
        ours = wv.most_similar(pos, 10, negative=neg, method="3cosmul")
        theirs = kv.most_similar_cosmul(positive=pos, negative=neg, topn=10)
        assert [w for w, _ in ours] == [w for w, _ in theirs], (pos, neg)
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)


def test_doesnt_match_and_centrality_match_gensim(wv: WordVectors, kv) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    for size in (3, 4, 5, 8) * 5:
        words = [str(w) for w in rng.choice(WORDS, size=size, replace=False)]
        assert wv.doesnt_match(words) == kv.doesnt_match(words)
        ours = wv.rank_by_centrality(words)
        theirs = kv.rank_by_centrality(words)
        assert [w for w, _ in ours] == [w for _, w in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for s, _ in theirs], rtol=1e-5)


def test_one_word_is_the_plain_neighbour_list(wv: WordVectors, kv) -> None:  # type: ignore[no-untyped-def]
    assert wv.most_similar("w7", 5) == wv.most_similar(["w7"], 5)
    assert [w for w, _ in wv.most_similar("w7", 5)] == [w for w, _ in kv.most_similar("w7", topn=5)]
    # 3CosMul of one word ranks by cosine too
    assert [w for w, _ in wv.most_similar("w7", 5, method="3cosmul")] == [
        w for w, _ in wv.most_similar("w7", 5)
    ]


def test_a_known_analogy_is_answered() -> None:
    # king - man + woman = queen, built in: queen = king - man + woman exactly
    rng = np.random.default_rng(0)
    base = {w: rng.normal(size=8) for w in ["king", "man", "woman", "apple", "car", "tree"]}
    base["queen"] = base["king"] - base["man"] + base["woman"]
    vectors = WordVectors(list(base), np.array(list(base.values()), dtype=np.float32))
    for method in ("3cosadd", "3cosmul"):
        top = vectors.most_similar(["king", "woman"], 1, negative=["man"], method=method)
        assert top[0][0] == "queen"


def test_nearest_words_is_the_answer_of_w2v_neighbors(wv: WordVectors) -> None:
    words = nearest_words(wv, ["w7", "w9"], k=3)
    assert list(words) == ["w7", "w9"]
    assert words["w7"] == [[n, s] for n, s in wv.most_similar("w7", 3)]
    query = nearest_words(wv, [], ["w1", "w2"], ["w3"], k=4, method="3cosmul")
    expected = wv.most_similar(["w1", "w2"], 4, negative=["w3"], method="3cosmul")
    assert query == {
        "positive": ["w1", "w2"],
        "negative": ["w3"],
        "method": "3cosmul",
        "neighbors": [[n, s] for n, s in expected],
    }


def test_bad_queries_say_what_to_do(wv: WordVectors) -> None:
    with pytest.raises(
        ConfigError,
        match=r"The 'k' parameter of WordVectors.most_similar must be an int >= 1 \(pass the "
        r"words to subtract as negative=\[\.\.\.\]\); got \['w2'\] \(list\)\.",
    ):
        wv.most_similar(["w1"], ["w2"])  # type: ignore[arg-type]  # gensim's positional order
    with pytest.raises(
        ConfigError,
        match="The 'method' parameter of WordVectors.most_similar must be one of '3cosadd', "
        "'3cosmul'; got 'cos' \\(str\\)",
    ):
        wv.most_similar("w1", method="cos")
    with pytest.raises(ConfigError, match="needs at least one positive word"):
        wv.most_similar([], negative=["w1"])
    with pytest.raises(DataError, match="the word 'nope' is not in the vocabulary"):
        wv.most_similar(["w1"], negative=["nope"])
    with pytest.raises(ConfigError, match="give at least three words to compare; got 2"):
        wv.doesnt_match(["w1", "w2"])
    with pytest.raises(DataError, match="the word 'nope' is not in the vocabulary"):
        wv.doesnt_match(["w1", "w2", "nope"])


def test_word2vec_run_methods(wv: WordVectors) -> None:
    torch.manual_seed(0)
    model = SkipGram(len(WORDS), dim=12)
    with torch.no_grad():
        model.input.weight.copy_(torch.from_numpy(wv.vectors))
    vocab = Vocab(WORDS, specials=())
    run = Word2VecRun(W2VConfig(), vocab, model)
    assert run.most_similar(["w1", "w2"], 4, negative=["w3"]) == wv.most_similar(
        ["w1", "w2"], 4, negative="w3"
    )
    assert run.most_similar("w1", 3, method="3cosmul") == wv.most_similar("w1", 3, method="3cosmul")
    assert run.doesnt_match(["w1", "w2", "w3"]) == wv.doesnt_match(["w1", "w2", "w3"])


def test_cli_neighbors_with_positive_and_negative(wv: WordVectors, kv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vec = tmp_path / "v.vec"
    wv.save(vec)
    runner = CliRunner()
    args = ["w2v", "neighbors", str(vec), "--positive", "w1, w2", "--negative", "w3", "--k", "4"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["positive"] == ["w1", "w2"] and out["negative"] == ["w3"]
    expected = kv.most_similar(positive=["w1", "w2"], negative=["w3"], topn=4)
    assert [w for w, _ in out["neighbors"]] == [w for w, _ in expected]
    result = runner.invoke(app, [*args, "--method", "3cosmul"])
    assert result.exit_code == 0, result.output
    first = kv.most_similar_cosmul(positive=["w1", "w2"], negative=["w3"], topn=1)[0][0]
    assert result.output.startswith(f"w1 + w2 - w3: {first} (")
    result = runner.invoke(app, ["w2v", "neighbors", str(vec), "w5", "--k", "2", "--json"])
    assert [w for w, _ in json.loads(result.output)["w5"]] == [
        w for w, _ in kv.most_similar("w5", topn=2)
    ]

    for bad, message in (
        (["--negative", "w3"], "--negative needs --positive words"),
        (["w1", "--positive", "w2"], "give query words or --positive/--negative, not both"),
        ([], "give query words or --positive WORDS"),
        (["w1", "--method", "cos"], "--method must be 3cosadd or 3cosmul"),
    ):
        result = runner.invoke(app, ["w2v", "neighbors", str(vec), *bad])
        assert result.exit_code == 2, bad
        assert message in " ".join(result.output.replace("│", " ").split()), result.output


def test_cli_doesnt_match(wv: WordVectors, kv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vec = tmp_path / "v.vec"
    wv.save(vec)
    words = ["w10", "w11", "w12", "w13"]
    runner = CliRunner()
    result = runner.invoke(app, ["w2v", "doesnt-match", str(vec), *words])
    assert result.exit_code == 0, result.output
    assert result.output.split("\n")[0] == kv.doesnt_match(words)
    result = runner.invoke(app, ["w2v", "doesnt-match", str(vec), *words, "--json"])
    out = json.loads(result.output)
    assert out["odd"] == kv.doesnt_match(words) == out["centrality"][-1][0]
    result = runner.invoke(app, ["w2v", "doesnt-match", str(vec), "w1", "w2", "zzz"])
    assert result.exit_code == 1
    assert "Error: the word 'zzz' is not in the vocabulary" in result.output
