"""ffnlp quantize: the codes, pruning, retraining, the quantised run as a run, bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.export.quantize import input_table, prune, quantize_run
from ffnlp.models.quantized import decode_int8, decode_pq, encode_int8, encode_pq
from ffnlp.text.readers import read_labeled

runner = CliRunner()


def test_int8_codes_are_within_half_a_step_of_the_weights() -> None:
    w = torch.randn(50, 16) * torch.linspace(0.01, 3, 50).unsqueeze(1)
    w[7] = 0.0  # a row of zeros has scale 0 and decodes to zeros
    parts, entry = encode_int8(w)
    assert parts["q"].dtype == torch.int8 and entry["axis"] == 0
    back = decode_int8(parts, entry)
    step = parts["scale"].unsqueeze(1)
    assert ((back - w).abs() <= step / 2 + 1e-7).all()
    assert (back[7] == 0).all()
    narrow = torch.randn(40, 1)  # a logistic regression's column: one scale for it
    parts, entry = encode_int8(narrow)
    assert entry["axis"] == 1 and parts["scale"].shape == (1,)
    assert torch.allclose(decode_int8(parts, entry), narrow, atol=float(parts["scale"][0]) / 2)


@pytest.mark.parametrize("qnorm", [False, True])
def test_product_quantisation_reconstructs_the_table(qnorm) -> None:
    torch.manual_seed(0)
    w = torch.randn(3000, 8)
    parts, entry = encode_pq(w, dsub=2, qnorm=qnorm)
    assert parts["codes"].shape == (3000, 4) and parts["codes"].dtype == torch.uint8
    back = decode_pq(parts, entry)
    relative = ((back - w).norm(dim=1) / w.norm(dim=1)).mean()
    assert relative < 0.25  # 256 centroids per 2-D block of a Gaussian
    shuffled = decode_pq({**parts, "codes": parts["codes"][torch.randperm(3000)]}, entry)
    assert ((shuffled - w).norm(dim=1) / w.norm(dim=1)).mean() > 1.0  # the codes matter


def test_a_small_table_gets_padded_codebooks() -> None:
    parts, entry = encode_pq(torch.randn(10, 4), dsub=2)
    assert parts["centroids"].shape == (2, 256, 2)
    assert decode_pq(parts, entry).shape == (10, 4)


@pytest.mark.parametrize("name", ["pooled", "pooled_subwords_max"])
def test_pruning_drops_the_pruned_rows_from_the_bags(runs, texts, name) -> None:
    clf = ffnlp.load(runs[name])
    table = input_table(clf.model)
    rows = clf.model.state_dict()[table.name].shape[0]
    pruned = prune(clf, table, rows // 3, "norm", None)
    norms = clf.model.state_dict()[table.name].norm(dim=1)
    kept = torch.zeros(rows, dtype=torch.bool)
    kept[torch.argsort(norms, descending=True, stable=True)[: rows // 3]] = True
    # the original model on its own bags, less the pruned rows
    bags = clf.featurizer.bags(clf.tokenizer.tokenize_all(texts))
    bag_of = torch.repeat_interleave(torch.arange(len(bags)), bags.lengths)
    keep = kept[bags.ids]
    lengths = torch.zeros(len(bags), dtype=torch.long).index_add_(0, bag_of, keep.long())
    with torch.no_grad():
        logits = clf.model(bags.ids[keep], torch.cumsum(lengths, 0) - lengths)
        expected = clf.model.head.probabilities(logits).numpy()
    np.testing.assert_allclose(pruned.predict_proba(texts), expected, atol=1e-6)
    assert pruned.featurizer.input_size == rows // 3
    assert len(pruned.featurizer.fitted_vocab()) + len(pruned.featurizer.bucket_rows) == rows // 3


def test_pruning_ngrams_keeps_each_kept_feature_and_its_idf(runs) -> None:
    clf = ffnlp.load(runs["mlp"])
    table = input_table(clf.model)
    pruned = prune(clf, table, 50, "norm", None)
    old, new = clf.featurizer.bag, pruned.featurizer.bag
    assert new.n_features == 50
    for name in new.feature_names:
        i, j = old.vocabulary_[name], new.vocabulary_[name]
        assert new.idf_[j] == old.idf_[i]
        assert torch.equal(pruned.model.input.weight[j], clf.model.input.weight[i])


def test_pruning_by_count_keeps_the_rows_training_reads(runs, sample) -> None:
    clf = ffnlp.load(runs["pooled"])
    table = input_table(clf.model)
    train = read_labeled(sample["train"])
    bags = clf.featurizer.bags(clf.tokenizer.tokenize_all(train.texts))
    seen = torch.unique(bags.ids)
    pruned = prune(clf, table, len(seen), "count", train)
    again = pruned.featurizer.bags(pruned.tokenizer.tokenize_all(train.texts))
    assert again.ids.numel() == bags.ids.numel()  # every row training reads is still there
    assert pruned.featurizer.input_size == len(seen)


@pytest.fixture(scope="module")
def quantized(runs, sample, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("q") / "pooled_q"
    report = quantize_run(
        runs["pooled"],
        out,
        method="pq",
        cutoff=2000,
        retrain=True,
        train=sample["train"],
        dev=sample["dev"],
        test=sample["test"],
        epochs=2,
    )
    return out, report


def test_a_quantised_run_is_smaller_and_reads_as_any_run(quantized, runs, sample) -> None:
    out, report = quantized
    assert report["rows"][1] == 2000 < report["rows"][0]
    assert report["codecs"] == {"embedding.weight": "pq", "mlp.layers.0.weight": "int8"}
    assert report["quantized"]["model_bytes"] * 4 < report["original"]["model_bytes"]
    arch = json.loads((out / "model.json").read_text())
    assert arch["quantized"]["method"] == "pq"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quantized"]["rows"] == report["rows"]
    assert summary["test"] == report["quantized"]["test"]
    assert (out / "metrics.jsonl").read_text().strip()  # the retraining's history
    clf = ffnlp.load(out)
    assert clf.model.embedding.weight.shape == (2000, 16)
    assert clf.model.embedding.weight.dtype == torch.float32
    metrics = clf.test(sample["test"])
    assert metrics["accuracy"] == pytest.approx(report["quantized"]["test"]["accuracy"])
    result = runner.invoke(app, ["classify", "eval", str(out), "--data", str(sample["test"])])
    assert result.exit_code == 0, result.output


def test_a_quantised_run_exports_and_onnx_agrees(quantized, texts, tmp_path) -> None:
    ort = pytest.importorskip(
        "onnxruntime", reason="needs the export extra: pip install -e '.[export]'"
    )
    pytest.importorskip("onnx", reason="needs the export extra: pip install -e '.[export]'")
    from ffnlp.export.exporter import export_run
    from ffnlp.export.featurize import featurize

    out, _ = quantized
    written = export_run(out, onnx=tmp_path / "q.onnx")
    spec = json.loads(written["features"].read_text())
    assert spec["bucket_rows"] is not None
    session = ort.InferenceSession(str(written["onnx"]), providers=["CPUExecutionProvider"])
    probs = session.run(["probabilities"], featurize(spec, texts))[0]
    np.testing.assert_allclose(probs, ffnlp.load(out).predict_proba(texts), atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "logreg", "multilabel", "pooled_subwords_max"])
def test_every_kind_quantises_with_int8(runs, name, tmp_path, sample) -> None:
    test = None if name == "multilabel" else sample["test"]
    report = quantize_run(runs[name], tmp_path / "q", method="int8", cutoff=100, test=test)
    clf = ffnlp.load(tmp_path / "q")
    assert set(report["codecs"].values()) == {"int8"}
    assert clf.featurizer.input_size == 100
    original = ffnlp.load(runs[name])
    assert clf.labels.labels == original.labels.labels
    assert clf.multilabel == original.multilabel
    if test is not None:
        # a tenth of the rows: the scores stay within reach of the original's
        assert report["quantized"]["test"]["accuracy"] > 0.5


def test_without_cutoff_int8_keeps_the_predictions(runs, texts, tmp_path) -> None:
    quantize_run(runs["pooled_subwords_max"], tmp_path / "q", method="int8")
    original = ffnlp.load(runs["pooled_subwords_max"]).predict_proba(texts)
    np.testing.assert_allclose(ffnlp.load(tmp_path / "q").predict_proba(texts), original, atol=0.02)


def _error(args: list[str]) -> str:
    result = runner.invoke(app, ["quantize", *args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return result.output


def test_bad_options_are_refused_naming_them(runs, tmp_path) -> None:
    run, out = str(runs["pooled"]), str(tmp_path / "q")
    assert "--method must be one of int8, pq; got 'int4'" in _error(
        [run, "--out", out, "--method", "int4"]
    )
    assert "--prune-by must be one of norm, count" in _error(
        [run, "--out", out, "--cutoff", "5", "--prune-by", "size"]
    )
    assert "--cutoff must be" in _error([run, "--out", out, "--cutoff", "-3"])
    text = _error([run, "--out", out, "--retrain"])
    assert "--train FILE" in text and "--cutoff N" in text
    assert "--prune-by count counts the rows in the training data" in _error(
        [run, "--out", out, "--cutoff", "5", "--prune-by", "count"]
    )
    assert "is the run being quantised" in _error([run, "--out", run])
    assert not (tmp_path / "q").exists()


def test_bad_runs_are_refused(runs, sample, tmp_path) -> None:
    out = str(tmp_path / "q")
    assert "does not exist" in _error([str(tmp_path / "nowhere"), "--out", out])
    lm = tmp_path / "lm"
    ffnlp.train_lm(sample["corpus"], out=lm, overrides=['kind="kneser_ney"', "kneser_ney.order=2"])
    assert "not a classify run" in _error([str(lm), "--out", out])
    assert not (tmp_path / "q").exists()


def test_bad_destinations_are_refused(runs, tmp_path) -> None:
    run = str(runs["pooled"])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert "already holds files; pass --force" in _error([run, "--out", str(tmp_path / "taken")])
    assert "not an ffnlp run" in _error([run, "--out", str(tmp_path / "taken"), "--force"])
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert "symbolic link" in _error([run, "--out", str(tmp_path / "link")])
    (tmp_path / "file").write_text("x")
    assert "is a file" in _error([run, "--out", str(tmp_path / "file")])
    assert not (tmp_path / "elsewhere").exists()


def test_a_failure_midway_leaves_nothing(runs, sample, tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("2 a label the run never saw\n")
    with pytest.raises(DataError, match="not in the run"):
        quantize_run(runs["pooled"], tmp_path / "q", test=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]


def test_replacing_a_quantised_run_needs_force(runs, tmp_path) -> None:
    quantize_run(runs["logreg"], tmp_path / "q", method="int8")
    with pytest.raises(Exception, match="--force"):
        quantize_run(runs["logreg"], tmp_path / "q", method="int8")
    quantize_run(runs["logreg"], tmp_path / "q", method="int8", cutoff=20, force=True)
    assert ffnlp.load(tmp_path / "q").featurizer.input_size == 20


def test_lexicon_runs_cannot_be_pruned(sample, tmp_path) -> None:
    lexicon = tmp_path / "lexicon"
    lexicon.mkdir()
    (lexicon / "positive-words.txt").write_text("good\ngreat\nfunny\n")
    (lexicon / "negative-words.txt").write_text("bad\ndull\nboring\n")
    run = tmp_path / "lex"
    ffnlp.train_classifier(
        sample["train"],
        out=run,
        overrides=[
            'features.kind="lexicon"',
            'model.type="mlp"',
            f'features.lexicon.path="{lexicon}"',
            "train.epochs=1",
        ],
    )
    with pytest.raises(ConfigError, match="has none to prune"):
        quantize_run(run, tmp_path / "q", cutoff=3)
    quantize_run(run, tmp_path / "q", method="int8")  # quantising alone works
    assert ffnlp.load(tmp_path / "q").predict("a good film")[0][0] in ("0", "1")


def test_damaged_quantised_files_are_model_file_errors(quantized, tmp_path) -> None:
    out, _ = quantized
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    arch = json.loads((broken / "model.json").read_text())
    arch["quantized"]["tensors"]["embedding.weight"]["codec"] = "int3"
    (broken / "model.json").write_text(json.dumps(arch))
    with pytest.raises(ModelFileError, match="codec 'int3'"):
        ffnlp.load(broken)
    arch["quantized"] = "yes"
    (broken / "model.json").write_text(json.dumps(arch))
    with pytest.raises(ModelFileError, match="quantized"):
        ffnlp.load(broken)
    arch["quantized"] = {"method": "pq", "tensors": {"mlp.layers.0.weight": {"codec": "pq"}}}
    (broken / "model.json").write_text(json.dumps(arch))
    with pytest.raises(ModelFileError, match="lacks mlp.layers.0.weight.codes"):
        ffnlp.load(broken)
