"""Character n-grams beside the word n-grams (features.char_ngram_range), end to end: a run
trained through the CLI, read back by predict (the reference featuriser, not the word-only
fast path), quantised with a cutoff, refused by export and by continued training with the
reason, and bad settings refused naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.export.quantize import quantize_run
from ffnlp.tasks import fastpredict
from ffnlp.tasks.classify import load, resolve_config, train_classifier
from ffnlp.tasks.sample import write_sample

runner = CliRunner()
SETS = [
    'model.type="mlp"',
    "model.mlp.hidden=[8]",
    "train.epochs=3",
    'features.weighting="nbsvm"',
    "features.char_ngram_range=[2,4]",
]
# "wonderfull" and "lifelessly" are not words of the sample: their characters are
TEXTS = ["a wonderfull , moving film", "dull and lifelessly", "not bad at all", ""]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 60, 60))


@pytest.fixture(scope="module")
def run(sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "chars"
    args = ["classify", "train", "--train", str(sample["train"]), "--dev", str(sample["dev"])]
    args += ["--test", str(sample["test"]), "--out", str(out), "--quiet"]
    result = runner.invoke(app, [*args, *[x for s in SETS for x in ("--set", s)]])
    assert result.exit_code == 0, result.output
    return out


def test_the_run_keeps_the_words_and_the_characters_apart(run: Path) -> None:
    state = json.loads((run / "vocab.json").read_text())["features"]
    assert state["char_ngram_range"] == [2, 4]
    words, chars = state["features"], state["char_features"]
    assert "film" in words and " fi" in chars and "lm " in chars
    assert all(" " not in w or len(w.split(" ")) == 2 for w in words)  # words and bigrams
    arch = json.loads((run / "model.json").read_text())
    assert arch["args"]["num_features"] == len(words) + len(chars) == len(state["ratios"])


def test_unknown_words_are_read_from_their_characters(run: Path) -> None:
    clf = load(run)
    rows = clf.featurizer.bag.transform(clf.tokenizer.tokenize_all(["wonderfull", "zzqx"]))
    counts = rows.crow_indices().diff().tolist()
    assert counts[0] > 5  # " w", "wo", "won", ... all known from "wonderful"
    assert counts[1] == 0  # nothing of it was seen


def test_predict_reads_the_characters_on_every_path(run: Path) -> None:
    reference = load(run).predict_proba(TEXTS)
    assert fastpredict.open_run(run) is None  # the word-only fast path does not cover them
    np.testing.assert_allclose(ffnlp.load(run).predict_proba(TEXTS), reference, atol=1e-6)
    result = runner.invoke(
        app,
        ["classify", "predict", str(run), "--k", "2", "--json"],
        input="\n".join(TEXTS[:3]) + "\n",
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 3
    names = load(run).labels.labels
    for line, probs in zip(lines, reference[:3], strict=True):
        want = dict(zip(names, probs.tolist(), strict=True))
        assert {top["label"] for top in line["top"]} == set(names)
        for top in line["top"]:
            assert top["prob"] == pytest.approx(want[top["label"]], abs=1e-5)


def test_a_cutoff_keeps_words_before_characters(run: Path, sample, tmp_path) -> None:
    quantize_run(run, tmp_path / "q", method="int8", cutoff=200, test=sample["test"])
    state = json.loads((tmp_path / "q" / "vocab.json").read_text())["features"]
    kept = len(state["features"]) + len(state["char_features"])
    assert kept == 200 and len(state["char_features"]) > 0 and len(state["ratios"]) == 200
    probs = ffnlp.load(tmp_path / "q").predict_proba(TEXTS)
    assert probs.shape == (4, 2) and np.isfinite(probs).all()


def test_export_and_continued_training_refuse_with_the_reason(run: Path, sample, tmp_path) -> None:
    result = runner.invoke(app, ["export", str(run), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "features.char_ngram_range = [2, 4]" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.onnx").exists()
    tfidf = [*SETS[:3], 'features.weighting="tfidf"', SETS[4], "train.epochs=1"]
    first = train_classifier(sample["train"], overrides=tfidf, out=tmp_path / "t")
    assert first.featurizer.bag.has_chars  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="character n-grams cannot be continued"):
        train_classifier(sample["train"], out=tmp_path / "c", init_from=tmp_path / "t")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[0,3]", "must be \\[0, 0\\] \\(no character n-grams\\) or"),
        ("[4,2]", "1 <= min_n <= max_n <= 10"),
        ("[2,11]", "1 <= min_n <= max_n <= 10"),
        ("[2]", "got \\[2\\]"),
    ],
)
def test_bad_ranges_are_refused_naming_the_option(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="features.char_ngram_range .*" + message):
        resolve_config(None, [f"features.char_ngram_range={value}"])


def test_kinds_without_word_ngrams_refuse_them() -> None:
    with pytest.raises(ConfigError, match='features.kind = "ngrams".*features.minn'):
        resolve_config(
            None, ['features.kind="ids"', 'model.type="pooled"', "features.char_ngram_range=[2,4]"]
        )
    ok = resolve_config(None, ['features.kind="ngrams+lexicon"', "features.char_ngram_range=[2,4]"])
    assert ok.features.char_ngram_range == [2, 4]
