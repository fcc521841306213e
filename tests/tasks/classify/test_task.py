"""The classification pipeline: bad input, the Python API, logistic regression on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ffnlp
from ffnlp.errors import DataError, ModelFileError
from ffnlp.tasks.sample import write_sample
from tests.conftest import ROOT, shared_data

FAST = ["train.epochs=2", "train.threads=1"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("s"), sizes=(300, 60, 60))


def test_api_train_predict_load_test(sample, tmp_path) -> None:
    clf = ffnlp.train_classifier(
        sample["train"], dev=sample["dev"], out=tmp_path / "r", overrides=FAST
    )
    one = clf.predict("the acting is delightful .")
    assert isinstance(one, list) and one[0][0] in ("0", "1")
    many = clf.predict(["a", "b c"], k=2)
    assert len(many) == 2 and all(len(r) == 2 for r in many)
    assert sum(p for _, p in many[0]) == pytest.approx(1.0, abs=1e-5)
    loaded = ffnlp.load(tmp_path / "r")
    np.testing.assert_allclose(
        loaded.predict_proba(["the plot is dull ."]),
        clf.predict_proba(["the plot is dull ."]),
        rtol=1e-6,
    )
    assert loaded.test(sample["test"])["accuracy"] == pytest.approx(
        clf.test(sample["test"])["accuracy"]
    )


def test_one_class_training_data_is_an_error(tmp_path) -> None:
    f = tmp_path / "one.txt"
    f.write_text("1 good\n1 great\n")
    with pytest.raises(
        DataError,
        match="every training example has the label '1'; a classifier needs at least two classes",
    ):
        ffnlp.train_classifier(f, out=tmp_path / "r", overrides=FAST)


def test_unseen_test_label_is_an_error_that_names_it(sample, tmp_path) -> None:
    clf = ffnlp.train_classifier(sample["train"], out=tmp_path / "r", overrides=FAST)
    f = tmp_path / "t.txt"
    f.write_text("1 good\n7 odd\n")
    with pytest.raises(DataError, match="'7'"):
        clf.test(f)


def test_texts_with_only_unknown_words_get_the_prior(sample, tmp_path) -> None:
    clf = ffnlp.train_classifier(sample["train"], out=tmp_path / "r", overrides=FAST)
    probs = clf.predict_proba(["zzz qqq", ""])
    assert np.allclose(probs[0], probs[1])  # both are empty feature vectors: the bias decides


def test_multiclass_uses_softmax(tmp_path) -> None:
    rng = np.random.default_rng(0)
    words = {"a": "red crimson scarlet", "b": "blue navy azure", "c": "green lime olive"}
    lines = []
    for _ in range(300):
        label = rng.choice(list(words))
        lines.append(f"{label} " + " ".join(rng.choice(words[label].split(), 3)))
    f = tmp_path / "m.txt"
    f.write_text("\n".join(lines) + "\n")
    clf = ffnlp.train_classifier(
        f, dev=f, out=tmp_path / "r", overrides=["train.epochs=5", "train.lr=0.1"]
    )
    assert clf.model.linear.weight.shape[1] == 3
    assert clf.summary["dev"]["accuracy"] == 1.0
    assert clf.predict("navy azure")[0][0] == "b"


def test_class_weight_option(sample, tmp_path) -> None:
    clf = ffnlp.train_classifier(
        sample["train"], out=tmp_path / "r", overrides=[*FAST, 'loss.class_weight="1.0,3.0"']
    )
    assert clf.model.head.class_weight.tolist() == [1.0, 3.0]
    with pytest.raises(ffnlp.ConfigError, match="loss.class_weight must be"):
        ffnlp.train_classifier(
            sample["train"], out=tmp_path / "q", overrides=[*FAST, 'loss.class_weight="2"']
        )


def test_corrupted_model_file_is_a_clear_error(sample, tmp_path) -> None:
    ffnlp.train_classifier(sample["train"], out=tmp_path / "r", overrides=FAST)
    (tmp_path / "r" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="model.safetensors cannot be read"):
        ffnlp.load(tmp_path / "r")
    (tmp_path / "r" / "model.json").write_text("{")
    with pytest.raises(ModelFileError, match="model.json is corrupted"):
        ffnlp.load(tmp_path / "r")


def test_metrics_jsonl_has_the_logged_fields(sample, tmp_path) -> None:
    ffnlp.train_classifier(
        sample["train"],
        dev=sample["dev"],
        out=tmp_path / "r",
        overrides=[*FAST, "train.log_every=5"],
    )
    records = [
        json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [r for r in records if r["event"] == "step"]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 2 and steps
    assert {"loss"} <= set(steps[0]["train"]) and steps[0]["grad_norm"] > 0
    assert {"lr", "examples_per_second", "seconds"} <= set(steps[0])
    assert {"accuracy", "macro_f1", "loss"} <= set(epochs[0]["dev"])


def test_logreg_on_sst2_beats_080(tmp_path) -> None:
    d = shared_data("sst2")
    torch.set_num_threads(2)
    clf = ffnlp.train_classifier(
        d / "stsa.binary.train",
        dev=d / "stsa.binary.dev",
        test=d / "stsa.binary.test",
        config=ROOT / "configs/sst2_logreg.toml",
        out=tmp_path / "sst2",
        overrides=["train.checkpoint=false"],
    )
    assert clf.summary["test"]["accuracy"] >= 0.80


def test_skipped_lines_are_counted_in_the_summary(sample, tmp_path) -> None:
    train = tmp_path / "train.txt"
    lines = sample["train"].read_text(encoding="utf-8").splitlines()
    train.write_text(
        "\n".join([lines[0], "no-label-here", *lines[1:], "   "]) + "\n", encoding="utf-8"
    )
    clf = ffnlp.train_classifier(
        train, dev=sample["dev"], out=tmp_path / "r", overrides=[*FAST, "data.skip_invalid=true"]
    )
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["skipped_lines"]["train"] >= 1
    assert "dev" not in summary["skipped_lines"]  # the clean file reports nothing
    assert clf.summary["train_examples"] == len(lines)
