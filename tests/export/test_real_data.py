"""Export and quantisation on the real data: ONNX Runtime against ffnlp on SST-2 test and Cooking
valid, and a quantised SST-2 run ten times smaller within a point of the original (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffnlp.tasks.classify import train_classifier
from ffnlp.tasks.classify.data import read_split
from tests.conftest import ROOT, shared_data

pytestmark = pytest.mark.slow

CASES = {  # preset -> (train, test) under ../shared/data
    "sst2_pooled": ("sst2/stsa.binary.train", "sst2/stsa.binary.test"),
    "sst2_ffnn": ("sst2/stsa.binary.train", "sst2/stsa.binary.test"),
    "cooking_multilabel": ("cooking/cooking.train", "cooking/cooking.valid"),
}


@pytest.mark.parametrize("preset", list(CASES))
def test_onnx_runtime_gives_ffnlps_labels_and_probabilities(preset, tmp_path) -> None:
    ort = pytest.importorskip(
        "onnxruntime", reason="needs the export extra: pip install -e '.[export]'"
    )
    pytest.importorskip("onnx", reason="needs the export extra: pip install -e '.[export]'")
    from ffnlp.export.exporter import export_run
    from ffnlp.export.featurize import featurize

    train, test = (shared_data(p) for p in CASES[preset])
    clf = train_classifier(
        train,
        config=ROOT / "configs" / f"{preset}.toml",
        out=tmp_path / "run",
        overrides=["train.epochs=2", "train.checkpoint=false"],
        seed=0,
    )
    written = export_run(tmp_path / "run", onnx=tmp_path / "m.onnx")
    spec = json.loads(written["features"].read_text(encoding="utf-8"))
    session = ort.InferenceSession(str(written["onnx"]), providers=["CPUExecutionProvider"])
    texts = read_split(test, clf.config).texts
    ours = clf.predict_proba(texts)
    theirs = np.concatenate(
        [
            session.run(["probabilities"], featurize(spec, texts[i : i + 500]))[0]
            for i in range(0, len(texts), 500)
        ]
    )
    assert theirs.shape == ours.shape == (len(texts), len(clf.labels))
    assert np.abs(theirs - ours).max() <= 1e-5
    if clf.multilabel:
        # the same labels: those that reach the run's thresholds (what predict returns)
        cut = clf.decision_thresholds()
        assert ((ours >= cut) == (theirs >= cut)).all()
        # and the same first label, except where two labels tie at float32's precision (a
        # saturated sigmoid gives several labels 1.0 or 0.9999999, in either order)
        top = np.sort(ours, axis=1)
        tied = top[:, -1] - top[:, -2] <= 1e-6
        assert (ours.argmax(1) == theirs.argmax(1))[~tied].all()
    else:
        assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_a_quantised_sst2_run_is_ten_times_smaller_within_a_point(tmp_path) -> None:
    from ffnlp.export.quantize import quantize_run

    train, dev, test = (
        shared_data(f"sst2/stsa.binary.{split}") for split in ("train", "dev", "test")
    )
    train_classifier(
        train,
        dev=dev,
        config=ROOT / "configs" / "sst2_pooled.toml",
        out=tmp_path / "run",
        overrides=["train.checkpoint=false"],
        seed=0,
    )
    report = quantize_run(
        tmp_path / "run",
        tmp_path / "q",
        cutoff=50_000,
        retrain=True,
        train=train,
        dev=dev,
        test=test,
    )
    before, after = report["original"], report["quantized"]
    assert before["model_bytes"] >= 10 * after["model_bytes"]
    assert after["test"]["accuracy"] >= before["test"]["accuracy"] - 0.01
