"""ffnlp export: the portable network, the featurisation spec, ONNX and TorchScript files."""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, ModelFileError, OutputError
from ffnlp.export.exporter import export_run
from ffnlp.export.featurize import feature_spec, featurize, fnv1a
from ffnlp.export.network import PortableClassifier
from ffnlp.features.subwords import fnv1a_32
from ffnlp.text.ngrams import ngram_hashes

runner = CliRunner()
EXPORTED = ("pooled", "pooled_subwords_max", "mlp", "logreg", "multilabel", "mlp_nbsvm")


def _spec(run) -> dict:
    return json.loads(json.dumps(feature_spec(ffnlp.load(run))))  # as a consumer reads it


def _torch_inputs(spec: dict, texts: list[str]) -> list[torch.Tensor]:
    return [torch.from_numpy(a) for a in featurize(spec, texts).values()]


@pytest.mark.parametrize("name", EXPORTED)
def test_the_portable_network_computes_what_the_classifier_does(runs, texts, name) -> None:
    clf = ffnlp.load(runs[name])
    spec = _spec(runs[name])
    _, probs = PortableClassifier(clf.model)(*_torch_inputs(spec, texts))
    expected = clf.predict_proba(texts)
    assert probs.shape == expected.shape
    np.testing.assert_allclose(probs.detach().numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["pooled", "pooled_subwords_max", "multilabel"])
def test_the_reference_featurisation_gives_the_rows_ffnlp_gives(runs, texts, name) -> None:
    clf = ffnlp.load(runs[name])
    bags = clf.featurizer.bags(clf.tokenizer.tokenize_all(texts))
    inputs = featurize(_spec(runs[name]), texts)
    for i in range(len(texts)):
        start, length = int(bags.offsets[i]), int(bags.lengths[i])
        ours = sorted(bags.ids[start : start + length].tolist())
        n = int(inputs["mask"][i].sum())
        assert sorted(inputs["ids"][i, :n].tolist()) == ours, texts[i]
        assert (inputs["mask"][i, n:] == 0).all()


@pytest.mark.parametrize("name", ["mlp", "logreg", "mlp_nbsvm"])
def test_the_reference_featurisation_gives_the_tfidf_rows_ffnlp_gives(runs, texts, name) -> None:
    clf = ffnlp.load(runs[name])
    rows = clf.featurizer.bag.transform(clf.tokenizer.tokenize_all(texts)).to_dense().numpy()
    inputs = featurize(_spec(runs[name]), texts)
    dense = np.zeros_like(rows)
    for i in range(len(texts)):
        np.add.at(dense[i], inputs["ids"][i], inputs["weights"][i])
    np.testing.assert_allclose(dense, rows, atol=1e-7)
    assert rows.sum() > 0


def test_the_spec_hashes_as_fasttext_does() -> None:
    for word in ("film", "très", "naïve", "<fi", "日本"):
        assert fnv1a(word.encode()) == fnv1a_32(word.encode())
    spec = {
        "kind": "ids",
        "words": ["a"],
        "buckets": 1000,
        "word_ngrams": 3,
        "minn": 3,
        "maxn": 0,
        "bucket_rows": None,
        "tokenizer": {"kind": "whitespace", "lowercase": False},
    }
    from ffnlp.export.featurize import _prepare, text_rows

    _prepare(spec)
    tokens = ["a", "très", "bon", "film"]
    assert text_rows(spec, tokens) == [0] + [1 + b for b in ngram_hashes(tokens, 3, 1000)]


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_runtime_agrees_with_ffnlp(runs, texts, name, tmp_path) -> None:
    ort = pytest.importorskip(
        "onnxruntime", reason="needs the export extra: pip install -e '.[export]'"
    )
    pytest.importorskip("onnx", reason="needs the export extra: pip install -e '.[export]'")
    written = export_run(runs[name], onnx=tmp_path / "m.onnx")
    assert written["features"] == tmp_path / "m.onnx.features.json"
    spec = json.loads(written["features"].read_text(encoding="utf-8"))
    session = ort.InferenceSession(str(written["onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == spec["inputs"]
    clf = ffnlp.load(runs[name])
    expected = clf.predict_proba(texts)
    # several batch sizes and lengths through the same file: both axes are dynamic
    for part in (texts, texts[:1], texts[3:7]):
        probs = session.run(["probabilities"], featurize(spec, part))[0]
        np.testing.assert_allclose(probs, clf.predict_proba(part), atol=1e-5)
    probs = session.run(["probabilities"], featurize(spec, texts))[0]
    assert (probs.argmax(1) == expected.argmax(1)).all()
    import onnx

    model = onnx.load(str(written["onnx"]))
    assert model.opset_import[0].version >= 17
    assert not [n for n in model.graph.node if "EmbeddingBag" in n.op_type]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["labels"]) == clf.labels.labels == spec["labels"]


def test_torchscript_agrees_with_ffnlp(runs, texts, tmp_path) -> None:
    written = export_run(runs["pooled_subwords_max"], torchscript=tmp_path / "m.pt")
    spec = json.loads(written["features"].read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's own
        module = torch.jit.load(str(written["torchscript"]))
    with torch.no_grad():
        _, probs = module(*_torch_inputs(spec, texts))
    expected = ffnlp.load(runs["pooled_subwords_max"]).predict_proba(texts)
    np.testing.assert_allclose(probs.numpy(), expected, atol=1e-6)


def test_the_cli_exports_both_and_reports_the_files(runs, tmp_path) -> None:
    pytest.importorskip("onnx", reason="needs the export extra: pip install -e '.[export]'")
    args = ["export", str(runs["logreg"]), "--onnx", str(tmp_path / "a.onnx")]
    args += ["--torchscript", str(tmp_path / "a.pt"), "--features", str(tmp_path / "f.json")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert set(written) == {"onnx", "torchscript", "features"}
    assert all(os.path.getsize(p) > 0 for p in written.values())
    again = runner.invoke(app, args)  # the files exist now
    assert again.exit_code == 1
    assert "already exists; pass --force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def _error(args: list[str]) -> str:
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return result.output


def test_bad_runs_are_refused_with_the_reason(runs, tmp_path) -> None:
    out = str(tmp_path / "m.pt")
    assert "does not exist" in _error([str(tmp_path / "nowhere"), "--torchscript", out])
    (tmp_path / "empty").mkdir()
    assert "not an ffnlp run" in _error([str(tmp_path / "empty"), "--torchscript", out])
    assert "nothing to export" in _error([str(runs["pooled"])])
    assert not (tmp_path / "m.pt").exists()


def test_an_lm_run_is_refused(sample, tmp_path) -> None:
    run = tmp_path / "lm"
    ffnlp.train_lm(sample["corpus"], out=run, overrides=['kind="kneser_ney"', "kneser_ney.order=2"])
    assert "not a classify run" in _error([str(run), "--torchscript", str(tmp_path / "m.pt")])


def test_lexicon_features_are_refused_naming_the_kinds_that_export(tmp_path) -> None:
    class Fake:
        config = type("C", (), {"features": type("F", (), {"kind": "lexicon"})})()
        tokenizer = ffnlp.tasks.classify.result.Tokenizer()
        labels = type("L", (), {"labels": ["0", "1"], "__len__": lambda self: 2})()
        multilabel = False
        featurizer = object()

        def decision_thresholds(self):
            return [0.0, 0.0]

    with pytest.raises(ConfigError, match="'ids' \\(pooled\\) or 'ngrams'"):
        feature_spec(Fake())


def test_bad_destinations_are_refused_before_anything_is_written(runs, tmp_path) -> None:
    run = str(runs["pooled"])
    assert "is a directory" in _error([run, "--torchscript", str(tmp_path)])
    (tmp_path / "file").write_text("x")
    assert "which is a file" in _error([run, "--torchscript", str(tmp_path / "file" / "m.pt")])
    (tmp_path / "link.pt").symlink_to(tmp_path / "elsewhere.pt")
    assert "symbolic link" in _error([run, "--torchscript", str(tmp_path / "link.pt"), "--force"])
    assert not (tmp_path / "elsewhere.pt").exists()
    same = str(tmp_path / "same")
    assert "both" in _error([run, "--torchscript", same, "--features", same])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "link.pt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(runs, tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert "permission denied" in _error(
            [str(runs["pooled"]), "--torchscript", str(folder / "m.pt")]
        )
    finally:
        folder.chmod(0o700)


def test_a_failed_later_write_removes_the_earlier_files(runs, tmp_path, monkeypatch) -> None:
    from ffnlp.export import exporter

    real = exporter.write_atomic

    def failing(path, data, within=None):
        if str(path).endswith(".features.json"):
            raise OutputError(f"no space left on the device to write {path}")
        return real(path, data, within)

    monkeypatch.setattr(exporter, "write_atomic", failing)
    with pytest.raises(OutputError):
        export_run(runs["pooled"], torchscript=tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_the_extra_names_it(runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails
    with pytest.raises(ConfigError, match=r"pip install 'ffnlp\[export\]'"):
        export_run(runs["pooled"], onnx=tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_corrupted_run_is_a_model_file_error(runs, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["pooled"], run)
    (run / "vocab.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="vocab.json"):
        export_run(run, torchscript=tmp_path / "m.pt")
