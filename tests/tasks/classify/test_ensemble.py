"""Seed ensembles (model.ensemble, ``classify train --ensemble K``) and the nbsvm weighting,
end to end: one run folder whose one model averages K members, read back by predict and eval
as any run; NBSVM's ratios fitted on the training split and kept with the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.models.ensemble import EnsembleClassifier, member_seed, probability_logits
from ffnlp.models.heads import make_head
from ffnlp.tasks.classify import load, train_classifier
from ffnlp.tasks.sample import write_sample

runner = CliRunner()
MLP = ['model.type="mlp"', "model.mlp.hidden=[8]", "train.epochs=3", "train.lr=0.02"]
TEXTS = ["a wonderful , moving film", "dull and lifeless", "not bad at all"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 60, 60))


@pytest.fixture(scope="module")
def ensemble_run(sample, tmp_path_factory) -> Path:
    """``classify train --ensemble 3`` with nbsvm features, through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "ens"
    sets = [*MLP, 'features.weighting="nbsvm"']
    args = ["classify", "train", "--train", str(sample["train"]), "--dev", str(sample["dev"])]
    args += ["--test", str(sample["test"]), "--out", str(out), "--ensemble", "3", "--seed", "5"]
    result = runner.invoke(app, [*args, *[x for s in sets for x in ("--set", s)], "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_one_run_folder_holds_one_model_of_three_members(ensemble_run: Path) -> None:
    arch = json.loads((ensemble_run / "model.json").read_text())
    assert arch["type"] == "ensemble" and arch["args"]["size"] == 3
    assert arch["args"]["member"] == "mlp"
    summary = json.loads((ensemble_run / "summary.json").read_text())
    members = summary["ensemble"]["members"]
    assert [m["seed"] for m in members] == [member_seed(5, i) for i in range(3)]
    assert members[0]["seed"] == 5 and len({m["seed"] for m in members}) == 3
    # the fit time is every member's
    total = sum(m["train_seconds"] for m in members)
    assert summary["train_seconds"] == pytest.approx(total)
    assert summary["epochs"] == sum(m["epochs"] for m in members)
    assert "test" in summary and "dev" in summary


def test_the_model_predicts_the_mean_of_its_members_probabilities(ensemble_run: Path) -> None:
    clf = load(ensemble_run)
    assert isinstance(clf.model, EnsembleClassifier)
    batch = next(iter(clf.source(TEXTS).batches(len(TEXTS), None)))
    with torch.no_grad():
        each = [m.head.probabilities(m.logits(batch)).numpy() for m in clf.model.members]
    mean = np.mean(each, axis=0)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), mean, atol=1e-6)
    assert not np.allclose(each[0], each[1])  # members from different seeds differ


def test_predict_and_eval_read_the_ensemble_as_any_run(
    ensemble_run: Path, sample, tmp_path
) -> None:
    inputs = tmp_path / "texts.txt"
    inputs.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    result = runner.invoke(
        app, ["classify", "predict", str(ensemble_run), "--input", str(inputs), "--json"]
    )
    assert result.exit_code == 0, result.output
    predicted = [json.loads(line) for line in result.stdout.splitlines()]
    want = load(ensemble_run).predict(TEXTS)
    assert [(p["label"], round(p["prob"], 5)) for p in predicted] == [
        (w[0][0], round(w[0][1], 5)) for w in want
    ]
    result = runner.invoke(
        app, ["classify", "eval", str(ensemble_run), "--data", str(sample["test"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((ensemble_run / "summary.json").read_text())
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(summary["test"]["accuracy"])


def test_nbsvm_ratios_are_fitted_on_the_training_split_and_saved(ensemble_run, sample) -> None:
    clf = load(ensemble_run)
    bag = clf.featurizer.bag  # type: ignore[attr-defined]
    assert bag.weighting == "nbsvm" and bag.ratios_ is not None
    lines = sample["train"].read_text(encoding="utf-8").splitlines()
    tokens = [line.split(" ", 1)[1].split() for line in lines]
    labels = np.asarray(clf.labels.encode([line.split(" ", 1)[0] for line in lines]))
    refit = type(bag)((1, 2), "nbsvm", sublinear_tf=bag.sublinear_tf).fit(tokens, labels)
    np.testing.assert_allclose(bag.ratios_, refit.ratios_)  # the training split's, only


def test_the_numpy_predict_path_equals_the_pytorch_one_for_nbsvm(sample, tmp_path, monkeypatch):
    clf = train_classifier(
        sample["train"],
        dev=sample["dev"],
        out=tmp_path / "nb",
        overrides=[*MLP, 'features.weighting="nbsvm"'],
    )
    fast = load(tmp_path / "nb").predict_proba(TEXTS)
    assert load(tmp_path / "nb").fast_path() is not None
    monkeypatch.setenv("FFNLP_FAST_PREDICT", "0")
    np.testing.assert_allclose(load(tmp_path / "nb").predict_proba(TEXTS), fast, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), fast, atol=1e-6)


HOSTILE = [*TEXTS, "", "zzz qqq", "très — 映画 bon", "film " * 300, "a\tgood\nfilm"]


@pytest.mark.parametrize("kind", ["mlp", "pooled"])
def test_an_ensemble_predicts_on_the_numpy_path_as_on_pytorch_s(
    kind: str, ensemble_run: Path, sample, tmp_path, monkeypatch
) -> None:
    """Every member on the NumPy path (compiled loops), their probabilities averaged: the
    same as the ensemble's PyTorch forward to float rounding, labels included."""
    run = ensemble_run
    if kind == "pooled":
        run = tmp_path / "pooled"
        sets = [
            'model.type="pooled"',
            'features.kind="ids"',
            "model.pooled.dim=8",
            "train.epochs=2",
        ]
        train_classifier(sample["train"], dev=sample["dev"], out=run, overrides=sets + [
            "model.ensemble=3"
        ])  # fmt: skip
    clf = load(run)
    fast = clf.fast_path()
    assert fast is not None and len(fast.forwards) == 3
    got = clf.predict_proba(HOSTILE)
    monkeypatch.setenv("FFNLP_FAST_PREDICT", "0")
    reference = load(run)
    assert reference.fast_path() is None
    np.testing.assert_allclose(got, reference.predict_proba(HOSTILE), atol=1e-6)
    assert [p[0][0] for p in clf.predict(HOSTILE)] == [p[0][0] for p in reference.predict(HOSTILE)]


def test_classify_predict_reads_an_ensemble_without_pytorch(ensemble_run: Path, tmp_path) -> None:
    """``open_run`` (what ``ffnlp classify predict`` reads a run with, NumPy only) reads every
    member of an ensemble run, and predicts as the loaded run; a model file with a tensor
    beyond the members' is left to the checked path (``None``)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    from ffnlp.tasks.fastpredict import open_run

    fast = open_run(ensemble_run)
    assert fast is not None and len(fast.forwards) == 3
    np.testing.assert_allclose(
        fast.predict_proba(HOSTILE), load(ensemble_run).predict_proba(HOSTILE), atol=1e-6
    )
    odd = tmp_path / "odd"
    shutil.copytree(ensemble_run, odd)
    tensors = load_file(str(odd / "model.safetensors"))
    tensors["members.3.input_bias"] = tensors["members.0.input_bias"]
    save_file(tensors, str(odd / "model.safetensors"))
    assert open_run(odd) is None


def test_an_ensemble_is_neither_resumed_nor_continued(ensemble_run, sample, tmp_path) -> None:
    before = sorted(p.name for p in ensemble_run.iterdir())
    with pytest.raises(ConfigError, match="can be neither resumed nor continued"):
        train_classifier(
            sample["train"], out=ensemble_run, resume=True, overrides=[*MLP, "model.ensemble=2"]
        )
    assert sorted(p.name for p in ensemble_run.iterdir()) == before
    with pytest.raises(ConfigError, match="can be neither resumed nor continued"):
        train_classifier(sample["train"], out=tmp_path / "more", init_from=ensemble_run)
    with pytest.raises(ConfigError, match="is an ensemble of 3 models"):
        train_classifier(
            sample["train"], out=tmp_path / "more", init_from=ensemble_run, **{"model.ensemble": 1}
        )
    assert not (tmp_path / "more").exists()


@pytest.mark.parametrize(("k", "multilabel"), [(2, False), (4, False), (3, True)])
def test_the_logits_of_the_mean_give_the_mean_back(k: int, multilabel: bool) -> None:
    head = make_head(k, multilabel=multilabel)
    generator = torch.Generator().manual_seed(0)
    width = 1 if k == 2 and not multilabel else k
    probs = torch.stack(
        [head.probabilities(torch.randn(5, width, generator=generator)) for _ in range(3)]
    )
    mean = probs.mean(0)  # (B, K)
    back = head.probabilities(probability_logits(head, mean))
    torch.testing.assert_close(back, mean, atol=1e-6, rtol=1e-5)


def test_member_seeds_differ_between_runs_of_consecutive_seeds() -> None:
    first = {member_seed(13, i) for i in range(5)}
    second = {member_seed(14, i) for i in range(5)}
    assert len(first) == 5 and not first & second


def test_an_ensemble_has_no_one_vector_of_a_text(ensemble_run: Path) -> None:
    with pytest.raises(ConfigError, match="ensemble of 3 models"):
        load(ensemble_run).vectors(TEXTS)


def test_the_documented_command_trains_an_nbsvm_ensemble(sample, tmp_path) -> None:
    """docs/classifiers.md's command, on the sample data (two epochs, for time)."""
    text = (Path(__file__).resolve().parents[3] / "docs/classifiers.md").read_text("utf-8")
    line = next(x for x in text.splitlines() if x.startswith("ffnlp classify train --ensemble 3"))
    args = line.split()[1:]
    for split in ("train", "dev", "test"):
        args[args.index(f"../shared/data/sst2/stsa.binary.{split}")] = str(sample[split])
    args[args.index("runs/sst2_nbsvm_x3")] = str(tmp_path / "run")
    result = runner.invoke(app, [*args, "--set", "train.epochs=2", "--quiet"])
    assert result.exit_code == 0, result.output
    clf = load(tmp_path / "run")
    assert isinstance(clf.model, EnsembleClassifier) and len(clf.model.members) == 3
    assert clf.featurizer.bag.weighting == "nbsvm"  # type: ignore[attr-defined]
    assert clf.config.model.type == "mlp" and clf.config.model.mlp.hidden == [64]  # sst2_ffnn's


def test_serve_maps_every_member_and_predicts_as_the_library(ensemble_run: Path) -> None:
    pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
    import asyncio

    from ffnlp.serve.limits import Limits
    from ffnlp.serve.runs import ServedRun

    served = ServedRun("ens", ensemble_run, Limits())
    try:
        assert served.mapped and served.task == "classify"
        answer = asyncio.run(served.handle("predict", {"text": TEXTS, "k": 2}))
        want = load(ensemble_run).predict(TEXTS, k=2)
        got = [[(t["label"], t["prob"]) for t in r["top"]] for r in answer["results"]]
        assert [[g[0] for g in row] for row in got] == [[w[0] for w in row] for row in want]
        assert [g[1] for row in got for g in row] == pytest.approx(
            [w[1] for row in want for w in row], rel=1e-6
        )
    finally:
        asyncio.run(served.close())


def test_explain_shapes_counts_every_member_s_pass(ensemble_run: Path) -> None:
    from ffnlp.inspect.shapes import classifier_forward

    clf = load(ensemble_run)
    calls, macs = classifier_forward(clf, TEXTS)
    assert isinstance(clf.model, EnsembleClassifier)
    one = clf.model.members[0]
    clf.model = one  # the first member alone, on the same features
    _, alone = classifier_forward(clf, TEXTS)
    assert macs == pytest.approx(3 * alone) and alone > 0
    assert sum(c.name.startswith("members.2.") for c in calls) > 0


def test_nbsvm_on_multilabel_data_weighs_by_the_largest_one_vs_rest_ratio(sample, tmp_path) -> None:
    from tests.export.conftest import multilabel_file

    data = multilabel_file(sample["train"], tmp_path / "ml.train")
    clf = train_classifier(
        data,
        out=tmp_path / "ml",
        overrides=[
            *MLP,
            'features.weighting="nbsvm"',
            'data.format="fasttext"',
            'train.monitor="train.loss"',
        ],
    )
    assert clf.multilabel and len(clf.labels) == 4
    bag = clf.featurizer.bag  # type: ignore[attr-defined]
    lines = data.read_text(encoding="utf-8").splitlines()
    tokens = [[w for w in line.split() if not w.startswith("__label__")] for line in lines]
    y = np.zeros((len(lines), len(clf.labels)), dtype=bool)
    for i, line in enumerate(lines):
        for w in line.split():
            if w.startswith("__label__"):
                y[i, clf.labels.labels.index(w.removeprefix("__label__"))] = True
    refit = type(bag)((1, 2), "nbsvm").fit(tokens, y)
    np.testing.assert_allclose(bag.ratios_, refit.ratios_)
    assert (bag.ratios_ >= 0).all() and bag.ratios_.max() > 0
    np.testing.assert_allclose(
        load(tmp_path / "ml").predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6
    )
