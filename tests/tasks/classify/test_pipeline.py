"""The feed-forward classifiers end to end: pooled and MLP models through the classify pipeline,
pretrained vectors, bad input, cross-validation and the `classify cv` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError
from ffnlp.experiments.cv import cross_validate, split_off, stratified_folds
from ffnlp.tasks.classify import load, train_classifier
from ffnlp.tasks.sample import write_sample
from ffnlp.text.readers import LabeledData
from tests.extras import needs

POOLED = [
    "model.type=pooled",
    "features.kind=ids",
    "features.buckets=5000",
    "model.pooled.dim=16",
    "train.sparse=true",
    "train.lr=0.05",
    "train.epochs=5",
    "train.checkpoint=false",
    "train.threads=1",
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(400, 80, 80))


@pytest.fixture(scope="module")
def pooled_run(sample: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pooled"
    train_classifier(
        sample["train"],
        dev=sample["dev"],
        test=sample["test"],
        overrides=[*POOLED, "model.pooled.word_dropout=0.1"],
        out=out,
    )
    return out


def test_pooled_run_learns_and_writes_its_plots(pooled_run: Path) -> None:
    summary = json.loads((pooled_run / "summary.json").read_text())
    assert summary["model"] == "pooled"
    assert summary["test"]["accuracy"] > 0.7
    for plot in ("loss.png", "dev_accuracy.png", "confusion.png"):
        assert (pooled_run / "plots" / plot).is_file(), plot


def test_pooled_run_reloads_with_identical_predictions(
    pooled_run: Path, sample: dict[str, Path]
) -> None:
    clf = load(pooled_run)
    texts = ["the film is brilliant .", "the plot is not good .", ""]
    probs = clf.predict_proba(texts)
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    saved = json.loads((pooled_run / "summary.json").read_text())["test"]["accuracy"]
    assert clf.test(sample["test"])["accuracy"] == pytest.approx(saved)
    # an empty text pools to the zero vector: its prediction is the bias alone, the same every time
    np.testing.assert_allclose(clf.predict_proba([""]), clf.predict_proba(["", "x"])[:1])


@pytest.mark.parametrize(
    "sets",
    [
        [
            "model.type=mlp",
            "features.kind=ngrams",
            "model.mlp.hidden=[8]",
            "model.mlp.activation=tanh",
        ],
        [
            "model.type=pooled",
            "features.kind=ids",
            "model.pooled.pooling=mean_max",
            "train.sparse=false",
            "model.mlp.hidden=[8]",
        ],
    ],
    ids=["mlp-over-tfidf", "pooled-mean-max"],
)
def test_other_feed_forward_models_train(
    sets: list[str], sample: dict[str, Path], tmp_path: Path
) -> None:
    clf = train_classifier(
        sample["train"],
        dev=sample["dev"],
        test=sample["test"],
        out=tmp_path,
        overrides=[*POOLED, *sets],
    )
    assert clf.summary["test"]["accuracy"] > 0.65


def train_with_lexicon(
    sample: dict[str, Path], tmp_path: Path, positive: str, negative: str, *sets: str
):
    """An MLP trained on the sample with a lexicon of these words written to tmp_path."""
    (tmp_path / "pos.txt").write_text("".join(f"{w}\n" for w in positive.split()))
    (tmp_path / "neg.txt").write_text("".join(f"{w}\n" for w in negative.split()))
    return train_classifier(
        sample["train"],
        dev=sample["dev"],
        out=tmp_path / "run",
        overrides=[
            "model.type=mlp",
            f'features.lexicon.positive="{tmp_path / "pos.txt"}"',
            f'features.lexicon.negative="{tmp_path / "neg.txt"}"',
            "train.threads=1",
            *sets,
        ],
    )


def test_lexicon_features_through_the_pipeline(sample: dict[str, Path], tmp_path: Path) -> None:
    clf = train_with_lexicon(
        sample,
        tmp_path,
        "good great brilliant clever",
        "bad dull boring awful",
        "features.kind=lexicon",
        "train.lr=0.05",
    )
    assert clf.summary["dev"]["accuracy"] > 0.55
    again = load(tmp_path / "run")  # the standardisation statistics travel in vocab.json
    np.testing.assert_allclose(
        again.predict_proba(["great film"]), clf.predict_proba(["great film"]), rtol=1e-6
    )


def test_ngrams_plus_lexicon_features(sample: dict[str, Path], tmp_path: Path) -> None:
    clf = train_with_lexicon(
        sample,
        tmp_path,
        "good great",
        "bad dull",
        "features.kind=ngrams+lexicon",
        "model.mlp.hidden=[8]",
        "train.epochs=2",
    )
    bag = clf.featurizer.ngrams.bag  # type: ignore[attr-defined]
    assert clf.model_args["num_features"] == bag.n_features + 6
    batch = next(
        clf.featurizer.source(
            [["great", "film"]], ["great film"], torch.zeros(1, dtype=torch.long)
        ).batches(1, None)
    )
    assert batch["ids"][-6:].tolist() == list(
        range(bag.n_features, bag.n_features + 6)
    )  # lexicon columns last
    again = load(tmp_path / "run")
    np.testing.assert_allclose(
        again.predict_proba(["a great film"]), clf.predict_proba(["a great film"]), rtol=1e-6
    )


def test_model_and_feature_kind_must_match(sample: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match="model.type = 'pooled' reads features.kind 'ids'; got features.kind = 'ngrams'",
    ):
        train_classifier(sample["train"], out=tmp_path, overrides=["model.type=pooled"])


def test_max_pooling_refuses_sparse_gradients(sample: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set train.sparse = false"):
        train_classifier(
            sample["train"],
            out=tmp_path,
            overrides=[*POOLED, "model.pooled.pooling=max", "train.sparse=true"],
        )


def test_unseen_test_label_and_one_class_training(sample: dict[str, Path], tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("1 a great film .\n7 a strange label .\n")
    # found before training, naming the file and line
    with pytest.raises(DataError, match=r"odd\.txt:2: the label '7' is not in the training data"):
        train_classifier(sample["train"], test=odd, out=tmp_path / "a", overrides=POOLED)
    assert not (tmp_path / "a" / "model.safetensors").exists()
    one = tmp_path / "one.txt"
    one.write_text("1 good .\n1 great .\n")
    with pytest.raises(
        DataError, match="every training example has the label '1'; a classifier needs at least two"
    ):
        train_classifier(one, out=tmp_path / "b", overrides=POOLED)


# ------------------------------------------------------------------------------ pretrained vectors


@pytest.fixture(scope="module")
def gensim_vectors(
    sample: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    gensim = needs("gensim")
    folder = tmp_path_factory.mktemp("vectors")
    # trained on a few sentences only, so that some training words have no vector
    sentences = [line.split()[1:] for line in sample["train"].read_text().splitlines()[:15]]
    w2v = gensim.models.Word2Vec(
        sentences, vector_size=12, min_count=1, seed=1, workers=1, epochs=1
    )
    kv = w2v.wv
    kv.save_word2vec_format(str(folder / "v.bin"), binary=True)
    kv.save_word2vec_format(str(folder / "v.txt"), binary=False)
    with (folder / "glove.txt").open("w") as fh:  # GloVe: the text format without its header line
        for word in kv.index_to_key:
            fh.write(word + " " + " ".join(repr(float(x)) for x in kv[word]) + "\n")
    return {"kv": kv, "folder": folder}


@pytest.mark.parametrize("name", ["v.bin", "v.txt", "glove.txt"])
def test_pretrained_vectors_load_identically(
    name: str, gensim_vectors: dict, sample: dict[str, Path], tmp_path: Path
) -> None:
    kv, folder = gensim_vectors["kv"], gensim_vectors["folder"]
    fmt = "glove" if name == "glove.txt" else "auto"
    clf = train_classifier(
        sample["train"],
        out=tmp_path,
        overrides=[
            *POOLED,
            "model.pooled.dim=12",
            f'model.pooled.pretrained="{folder / name}"',
            f'model.pooled.pretrained_format="{fmt}"',
            "model.pooled.freeze=true",
            "train.epochs=1",
            "features.ngram_range=[1, 1]",
        ],
    )
    vocab = clf.featurizer.vocab  # type: ignore[attr-defined]
    table = clf.model.embedding.weight.detach()  # type: ignore[union-attr]
    for word in ("film", "the", "is"):
        np.testing.assert_allclose(table[vocab.stoi(word)].numpy(), kv[word], rtol=1e-6, atol=1e-6)
    cover = clf.summary["embeddings"]
    assert cover["found"] == sum(w in kv.key_to_index for w in vocab.itos)
    assert cover["found"] + cover["missing"] == len(vocab)
    assert 0 < cover["type_coverage"] < 1 and cover["token_coverage"] > cover["type_coverage"]
    missing = [w for w in vocab.itos if w not in kv.key_to_index]
    assert (
        torch.count_nonzero(table[vocab.stoi(missing[0])]) > 0
    )  # OOV words start random, not zero


def test_pretrained_dimension_must_match(
    gensim_vectors: dict, sample: dict[str, Path], tmp_path: Path
) -> None:
    path = gensim_vectors["folder"] / "v.txt"
    with pytest.raises(
        ConfigError,
        match=r"model.pooled.dim = 16 but the vectors in .*v.txt have 12 dimensions: .*; set "
        r"model.pooled.dim = 12",
    ):
        train_classifier(
            sample["train"], out=tmp_path, overrides=[*POOLED, f'model.pooled.pretrained="{path}"']
        )


def test_freeze_without_pretrained_is_refused(sample: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="freeze = true needs model.pooled.pretrained"):
        train_classifier(
            sample["train"], out=tmp_path, overrides=[*POOLED, "model.pooled.freeze=true"]
        )


# --------------------------------------------------------------------------- cross-validation


def test_stratified_folds_are_deterministic_and_partition_the_data() -> None:
    labels = ["a"] * 30 + ["b"] * 10
    folds = stratified_folds(labels, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(40))
    assert all(
        sum(labels[i] == "b" for i in f) == 2 for f in folds
    )  # the class ratio in every fold
    assert [f.tolist() for f in folds] == [f.tolist() for f in stratified_folds(labels, 5, seed=3)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in stratified_folds(labels, 5, seed=4)]
    rest, held = split_off(labels, np.arange(40), 0.1, seed=0)
    assert len(held) == 4 and sum(labels[i] == "b" for i in held) == 1 and not set(rest) & set(held)


def test_cv_errors() -> None:
    data = LabeledData(texts=["x"] * 6, labels=["a"] * 4 + ["b"] * 2, path=Path("mem"))
    with pytest.raises(DataError, match="a class has only 2 example.*use at most 2 folds"):
        cross_validate(data, folds=3)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        stratified_folds(["a", "b"], 1)


def test_cv_command_writes_mean_and_sd(sample: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cv"
    args = [
        "classify",
        "cv",
        "--data",
        str(sample["train"]),
        "--folds",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    for s in POOLED:
        args += ["--set", s]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    acc = summary["cv"]["accuracy"]
    assert len(acc["values"]) == 3 and acc["mean"] == pytest.approx(np.mean(acc["values"]))
    assert acc["sd"] == pytest.approx(np.std(acc["values"], ddof=1))
    assert {"macro_f1", "loss", "train_seconds"} <= set(summary["cv"])
    assert sum(r["test"] for r in summary["rounds"]) == 400
    assert not (
        out / "fold_1" / "model.safetensors"
    ).exists()  # fold weights are not kept by default
    assert "Example" in CliRunner().invoke(app, ["classify", "cv", "--help"]).output
