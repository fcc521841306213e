"""The clause after a contrast word (features.contrast_words): its n-grams counted again as
features of their own. The bag's keys against a direct construction, a model that needs them
to tell two texts of the same words apart, end to end through the CLI (read back by predict on
the reference path, the same probabilities everywhere), refused by export and kept by continued
training, and bad settings refused naming the option."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.features.bag import CHAR_MARK, CLAUSE_MARK, BagOfNgrams
from ffnlp.tasks import fastpredict
from ffnlp.tasks.classify import load, resolve_config, train_classifier

runner = CliRunner()


def direct_keys(tokens: list[str], words: set[str], n_max: int, chars: tuple[int, int]) -> list:
    """The bag's keys of one text, built the plain way: the text's word and character
    n-grams, then those of the tokens after the last contrast word, marked."""

    def grams(toks: list[str], mark: str) -> list[str]:
        out = [
            mark + " ".join(toks[i : i + n])
            for n in range(1, n_max + 1)
            for i in range(len(toks) - n + 1)
        ]
        if chars != (0, 0) and toks:
            text = " " + " ".join(toks) + " "
            for n in range(chars[0], chars[1] + 1):
                out += [CHAR_MARK + mark + text[i : i + n] for i in range(len(text) - n + 1)]
        return out

    last = [
        i for i, t in enumerate(tokens) if t.lower() in words or t.lower().strip(".,!?\"'") in words
    ]
    clause = tokens[last[-1] + 1 :] if last else []
    return grams(tokens, "") + grams(clause, CLAUSE_MARK)


@pytest.mark.parametrize("chars", [(0, 0), (2, 4)])
def test_the_keys_are_the_texts_then_the_last_clauses(chars: tuple[int, int]) -> None:
    rng = random.Random(3)
    pool = ["good", "dull", "but", "But", "plot", ",", "yet", "not", "but,", '"Yet', "butter"]
    bag = BagOfNgrams(ngram_range=(1, 2), char_range=chars, contrast_words=["but", "YET"])
    texts = [[rng.choice(pool) for _ in range(rng.randint(0, 9))] for _ in range(300)]
    texts += [["but"], ["good", "but"], ["but", "but", "dull"]]
    for tokens in texts:
        want = direct_keys(tokens, {"but", "yet"}, 2, chars)
        assert sorted(bag._ngrams(tokens)) == sorted(want), tokens
    bag.fit(texts)
    names = bag.feature_names
    assert "clause:dull" in names and "clause:good plot" in names and "good plot" in names
    assert ("clause:chars:' du'" in names) == (chars != (0, 0))
    # no clause: no marked feature in the row
    row = bag.transform([["good", "plot"]]).to_dense()[0]
    assert all(not names[c].startswith("clause:") for c in row.nonzero().flatten().tolist())


def test_saved_and_read_back_the_same() -> None:
    bag = BagOfNgrams(weighting="nbsvm", char_range=(2, 3), contrast_words=["but"])
    texts = [["fine", "cast", "but", "dull"], ["dull", "but", "fine"], ["fine"], ["dull"]]
    bag.fit(texts, np.array([0, 1, 1, 0]))
    again = BagOfNgrams.from_dict(json.loads(json.dumps(bag.to_dict())))
    assert again.contrast_words == ("but",) and again.feature_names == bag.feature_names
    assert (again.transform(texts).to_dense() == bag.transform(texts).to_dense()).all()
    state = bag.to_dict()
    assert "contrast_words" not in BagOfNgrams(char_range=(2, 3)).params()  # none: not written
    for bad in ("but", [1], ["a b"]):
        with pytest.raises(ModelFileError, match="contrast_words"):
            BagOfNgrams.from_dict({**state, "contrast_words": bad})


def test_a_model_reads_the_turn_that_unigrams_cannot(tmp_path: Path) -> None:
    # "X but Y" takes Y's polarity: every text holds both words and "but", so a bag of
    # unigrams sees the same features in both classes; the marked clause tells them apart
    rng = random.Random(0)
    pos, neg = ["good", "fine", "warm", "sharp"], ["dull", "flat", "cold", "bland"]
    lines = []
    for _ in range(400):
        p, n = rng.choice(pos), rng.choice(neg)
        lines += [f"1 {n} but {p}", f"0 {p} but {n}"]
    rng.shuffle(lines)
    (tmp_path / "train.txt").write_text("\n".join(lines[:600]) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(lines[600:]) + "\n")
    sets = ["features.ngram_range=[1,1]", 'features.weighting="binary"', "train.epochs=20"]
    accuracy = {}
    for words in ("[]", '["but"]'):
        clf = train_classifier(
            tmp_path / "train.txt",
            test=tmp_path / "test.txt",
            overrides=[*sets, f"features.contrast_words={words}"],
            out=tmp_path / f"run{len(words)}",
        )
        accuracy[words] = clf.summary["test"]["accuracy"]
    assert accuracy["[]"] < 0.7 and accuracy['["but"]'] > 0.95, accuracy


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("contrast")
    rng = random.Random(1)
    pos, neg = ["good", "fine", "warm", "sharp", "clever"], ["dull", "flat", "cold", "bland"]
    lines = []
    for _ in range(150):
        p, n = rng.choice(pos), rng.choice(neg)
        lines += [f"1 the {n} start but a {p} end", f"0 a {p} cast , but {n}", f"1 {p} film"]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    out = root / "run"
    args = ["classify", "train", "--train", str(root / "train.txt"), "--out", str(out), "--quiet"]
    sets = [
        'model.type="mlp"',
        "model.mlp.hidden=[8]",
        "train.epochs=2",
        'features.weighting="tfidf"',
    ]
    sets.append('features.contrast_words=["but"]')
    result = runner.invoke(app, [*args, *[x for s in sets for x in ("--set", s)]])
    assert result.exit_code == 0, result.output
    return out, root / "train.txt"


TEXTS = ["a fine cast , but dull", "dull start but a clever end", "fine film", "but", ""]


def test_predict_reads_the_clause_on_every_path(run: tuple[Path, Path]) -> None:
    out, _ = run
    state = json.loads((out / "vocab.json").read_text())["features"]
    assert state["contrast_words"] == ["but"] and "\vdull" in state["features"]
    assert not (out / "vocab.safetensors").exists()  # the names live in vocab.json alone
    assert fastpredict.open_run(out) is None  # the word-only fast path does not mark clauses
    reference = load(out).predict_proba(TEXTS)
    np.testing.assert_allclose(ffnlp.load(out).predict_proba(TEXTS), reference, atol=1e-6)
    result = runner.invoke(
        app,
        ["classify", "predict", str(out), "--k", "2", "--json"],
        input="\n".join(TEXTS[:4]) + "\n",
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    names = load(out).labels.labels
    for line, probs in zip(lines, reference[:4], strict=True):
        want = dict(zip(names, probs.tolist(), strict=True))
        for top in line["top"]:
            assert top["prob"] == pytest.approx(want[top["label"]], abs=1e-5)


def test_export_refuses_and_continued_training_keeps_them(run: tuple[Path, Path], tmp_path) -> None:
    out, train = run
    result = runner.invoke(app, ["export", str(out), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "features.contrast_words = ['but']" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.onnx").exists()
    with pytest.raises(ConfigError, match="features.contrast_words"):
        train_classifier(
            train, out=tmp_path / "c1", init_from=out, overrides=["features.contrast_words=[]"]
        )
    assert not (tmp_path / "c1").exists()
    more = tmp_path / "more.txt"
    more.write_text("1 dull opening but a tender close\n0 tender opening , but dull\n")
    grown = train_classifier(more, out=tmp_path / "c2", init_from=out, overrides=["train.epochs=1"])
    names = grown.featurizer.bag.feature_names  # type: ignore[attr-defined]
    assert "clause:tender close" in names and grown.featurizer.bag.contrast_words == ("but",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (['features.contrast_words=["a b"]'], "must be words .*got 'a b'"),
        (['features.contrast_words=[""]'], "must be words .*got ''"),
        (
            ['features.kind="ids"', 'model.type="pooled"', 'features.contrast_words=["but"]'],
            'features.kind = "ngrams".*features.contrast_words = \\[\\]',
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_option(sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match="features.contrast_words.*" + message):
        resolve_config(None, sets)
