"""predictions.jsonl: every test example's gold label, prediction and probabilities, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ffnlp
from ffnlp.errors import ModelFileError
from ffnlp.experiments.cv import cross_validate
from ffnlp.tasks.classify import load
from ffnlp.tasks.classify.predictions import read_predictions
from ffnlp.tasks.sample import write_sample
from ffnlp.text.readers import read_labeled
from tests.extras import needs

sk_metrics = needs("sklearn.metrics")
accuracy_score, f1_score = sk_metrics.accuracy_score, sk_metrics.f1_score

FAST = ["train.epochs=2", "train.threads=1", "train.checkpoint=false"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("d"), sizes=(200, 40, 50))


@pytest.fixture(scope="module")
def run(sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("r") / "run"
    ffnlp.train_classifier(
        sample["train"], dev=sample["dev"], test=sample["test"], out=out, overrides=FAST
    )
    return out


def test_one_line_per_test_example_in_input_order(run, sample) -> None:
    lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    test = read_labeled(sample["test"])
    assert len(lines) == len(test) == 50
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == list(range(50))
    assert [r["label"] for r in records] == test.labels
    for r in records:
        assert list(r["probabilities"]) == ["0", "1"]  # every label, in the run's order
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["prediction"] == max(r["probabilities"], key=r["probabilities"].get)


def test_the_predictions_give_the_summarys_test_figures(run) -> None:
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    p = read_predictions(run)
    assert accuracy_score(p.gold, p.predicted) == pytest.approx(summary["test"]["accuracy"])
    macro = f1_score(p.gold, p.predicted, average="macro", labels=p.labels, zero_division=0)
    assert macro == pytest.approx(summary["test"]["macro_f1"])


def test_the_predictions_are_those_of_the_saved_model(run, sample) -> None:
    clf = load(run)
    test = read_labeled(sample["test"])
    p = read_predictions(run / "predictions.jsonl")
    assert [top[0][0] for top in clf.predict(test.texts)] == p.predicted
    assert clf.predict_proba(test.texts) == pytest.approx(p.probabilities, abs=1e-6)


def test_no_test_data_no_predictions(sample, tmp_path) -> None:
    ffnlp.train_classifier(sample["train"], out=tmp_path / "r", overrides=FAST)
    assert not (tmp_path / "r" / "predictions.jsonl").exists()
    with pytest.raises(ModelFileError) as info:
        read_predictions(tmp_path / "r")
    assert str(info.value) == (
        f"{tmp_path / 'r' / 'predictions.jsonl'} is missing: only classifier runs trained with "
        "test data (--test, a cv fold, a repeat seed) have predictions"
    )


def test_each_cv_fold_keeps_the_predictions_of_its_held_out_part(sample, tmp_path) -> None:
    result = cross_validate(sample["train"], folds=2, out=tmp_path / "cv", overrides=FAST)
    for fold in (1, 2):
        p = read_predictions(tmp_path / "cv" / f"fold_{fold}")
        assert len(p) == result["rounds"][fold - 1]["test"]
        accuracy = accuracy_score(p.gold, p.predicted)
        assert accuracy == pytest.approx(result["cv"]["accuracy"]["values"][fold - 1])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "Expecting value"),
        ('{"index": 3, "label": "1", "prediction": "1", "probabilities": {"1": 1}}', '"index": 0'),
        ('{"index": 0, "label": "1", "prediction": ["1"], "probabilities": {"1": 1}}', "both"),
        ('{"index": 0, "label": "1", "prediction": "1", "probabilities": {"1": "x"}}', "number"),
    ],
)
def test_a_damaged_file_is_named_with_its_line(tmp_path, line, problem) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ModelFileError) as info:
        read_predictions(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 1: not a prediction record (") and problem in message
    assert message.endswith("the file is damaged: retrain the run to write it again")


def test_an_empty_or_binary_file_is_named(tmp_path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError) as info:
        read_predictions(path)
    assert str(info.value) == f"{path} is empty: the run was tested on no example"
    path.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ModelFileError) as info:
        read_predictions(path)
    assert str(info.value) == (
        f"{path} is not UTF-8 text; the file is damaged: retrain the run to write it again"
    )
