"""Character n-gram subwords in the pooled classifier (features.minn / maxn): word vectors for
misspelled words, the settings saved with the run, old runs, and the configuration errors."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.tasks.classify import Classifier, load, resolve_config, train_classifier

runner = CliRunner()
# one label per keyword: each keyword's vector is pulled towards its own label, away from the others
KEYWORDS = ["wonderful", "terrible", "delightful", "boring", "brilliant", "awful"]
FILLER = [
    "the",
    "a",
    "film",
    "movie",
    "plot",
    "was",
    "is",
    "and",
    "with",
    "acting",
    "story",
    "cast",
    "this",
    "it",
]
POOLED = [
    'model.type="pooled"',
    'features.kind="ids"',
    "features.ngram_range=[1, 1]",
    "features.buckets=5000",
    "model.pooled.dim=16",
    "train.epochs=3",
    "train.lr=0.05",
    "train.early_stopping=false",
    "train.checkpoint=false",
    "train.threads=1",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("subwords")
    rng = random.Random(0)
    lines = []
    for i in range(300):
        label = i % len(KEYWORDS)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        words.insert(rng.randrange(len(words) + 1), KEYWORDS[label])
        lines.append(f"{label} {' '.join(words)}\n")
    train = root / "train.txt"
    train.write_text("".join(lines), encoding="utf-8")
    for name, maxn in (("subwords", 5), ("plain", 0)):
        train_classifier(
            train,
            overrides=[*POOLED, "features.minn=3", f"features.maxn={maxn}"],
            out=root / name,
            seed=1,
        )
    train_classifier(train, overrides=["train.epochs=1"], out=root / "logreg", seed=1)
    return {name: root / name for name in ("subwords", "plain", "logreg")}


def test_a_misspelled_word_gets_a_vector_close_to_the_correct_one(runs: dict[str, Path]) -> None:
    clf = load(runs["subwords"])
    typo, right, *others = clf.word_vectors(["wonderfull", "wonderful", *KEYWORDS[1:], "movie"])
    assert np.linalg.norm(typo) > 0
    assert cosine(typo, right) > 0.9
    assert max(cosine(typo, v) for v in others) < cosine(typo, right) - 0.4
    # and the classifier reads the misspelled words as the right ones
    predicted = clf.predict(["the wonderfull film", "a terible plot", "this was brillant"])
    assert [p[0][0] for p in predicted] == ["0", "1", "4"]


def test_without_subwords_a_misspelled_word_has_no_vector(runs: dict[str, Path]) -> None:
    clf = load(runs["plain"])
    typo, right = clf.word_vectors(["wonderfull", "wonderful"])
    assert not typo.any() and right.any()  # zeros, as fastText's get_word_vector
    np.testing.assert_array_equal(clf.word_vector("wonderful"), right)


def test_a_word_vector_is_the_mean_of_its_rows(runs: dict[str, Path]) -> None:
    clf = load(runs["subwords"])
    table = clf.model.embedding.weight.detach().numpy()
    bags = clf.featurizer.word_bags(["wonderful", "wonderfull"])  # type: ignore[attr-defined]
    rows = np.split(bags.ids.numpy(), bags.offsets.numpy()[1:])
    vocab = clf.featurizer.fitted_vocab()  # type: ignore[attr-defined]
    assert rows[0][0] == vocab.itos.index("wonderful")  # its own row first, then its subwords
    assert all(r >= len(vocab) for r in rows[1])  # an unseen word: subwords only
    expected = np.stack([table[r].mean(0) for r in rows])
    np.testing.assert_allclose(clf.word_vectors(["wonderful", "wonderfull"]), expected, rtol=1e-6)


def test_the_subword_settings_travel_with_the_run(runs: dict[str, Path], tmp_path: Path) -> None:
    clf = load(runs["subwords"])
    state = json.loads((runs["subwords"] / "vocab.json").read_text(encoding="utf-8"))["features"]
    assert (state["minn"], state["maxn"], state["buckets"]) == (3, 5, 5000)
    # a run whose config.toml lost its subword settings still encodes as it was trained
    copy = tmp_path / "copy"
    shutil.copytree(runs["subwords"], copy)
    config = (copy / "config.toml").read_text(encoding="utf-8")
    (copy / "config.toml").write_text(re.sub(r"(?m)^(minn|maxn) = .*\n", "", config), "utf-8")
    again = load(copy)
    assert (again.featurizer.minn, again.featurizer.maxn) == (3, 5)  # type: ignore[attr-defined]
    texts = ["the wonderfull film", "zzz qqq", "a terible plot"]
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    np.testing.assert_array_equal(again.vectors(texts), clf.vectors(texts))
    assert again.vectors(["zzzwonderfulzzz"]).any()  # a text of one unseen word pools its subwords


def test_a_run_saved_before_subwords_loads_as_it_was(runs: dict[str, Path], tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(runs["plain"], old)
    vocab = json.loads((old / "vocab.json").read_text(encoding="utf-8"))
    del vocab["features"]["minn"], vocab["features"]["maxn"]
    (old / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    config = (old / "config.toml").read_text(encoding="utf-8")
    (old / "config.toml").write_text(re.sub(r"(?m)^(minn|maxn) = .*\n", "", config), "utf-8")
    clf, now = load(old), load(runs["plain"])
    assert clf.featurizer.maxn == 0  # type: ignore[attr-defined]
    texts = ["the wonderful film", "a terible plot"]
    np.testing.assert_array_equal(clf.predict_proba(texts), now.predict_proba(texts))


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["features.minn=4", "features.maxn=3"],
            "features.maxn (3) is smaller than features.minn (4): set maxn >= minn, or maxn = 0 "
            "for no subwords",
        ),
        (["features.minn=0", "features.maxn=3"], "features.minn must be at least 1, got 0"),
        (
            ["features.maxn=-1"],
            "features.maxn must be 0 (no subwords) or at least minn, got -1",
        ),
        (
            ['features.kind="ngrams"', "features.maxn=5"],
            'features.maxn = 5 turns on character n-grams, which only features.kind = "ids" '
            "(the pooled classifier) reads; got features.kind = 'ngrams': set features.kind = "
            '"ids" and model.type = "pooled", or features.maxn = 0',
        ),
    ],
)
def test_bad_subword_settings_are_named(sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config(None, [*POOLED, *sets])


def test_defaults_have_no_subwords() -> None:
    cfg = resolve_config(None, POOLED)
    assert (cfg.features.minn, cfg.features.maxn) == (3, 0)


def test_word_vectors_need_a_pooled_model(runs: dict[str, Path]) -> None:
    clf: Classifier = load(runs["logreg"])
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "word vectors come from the embedding table of a pooled classifier (model.type = "
            '"pooled", features.kind = "ids"); this run\'s model is a LogisticRegression over '
            "features.kind = 'ngrams'"
        ),
    ):
        clf.word_vectors(["film"])


def test_cli_prints_word_vectors(runs: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        ["classify", "vectors", str(runs["subwords"]), "--words"],
        input="wonderful\nwonderfull\n",
    )
    assert result.exit_code == 0, result.output
    printed = np.array([[float(x) for x in line.split()] for line in result.output.splitlines()])
    expected = load(runs["subwords"]).word_vectors(["wonderful", "wonderfull"])
    np.testing.assert_allclose(printed, expected, rtol=1e-6)
    result = runner.invoke(
        app, ["classify", "vectors", str(runs["subwords"]), "--words", "--json"], input="film\n"
    )
    assert json.loads(result.output)["word"] == "film"
    result = runner.invoke(
        app,
        ["classify", "vectors", str(runs["subwords"]), "--words", "--layer", "pooled"],
        input="film\n",
    )
    assert result.exit_code == 2 and "--words reads the embedding table" in result.output
