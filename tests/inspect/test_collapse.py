"""Linear collapse: a network without non-linearities equals one affine layer."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.inspect.collapse import Affine, collapse, compare, linear_layers
from ffnlp.models.mlp import MLP
from ffnlp.models.pooled import PooledEmbeddingClassifier
from ffnlp.tasks.classify import load, read_split
from ffnlp.tasks.sample import NEGATIVE, POSITIVE, write_sample
from tests.conftest import ROOT, shared_data

runner = CliRunner()
IDENTITY = ['model.type="mlp"', 'model.mlp.activation="identity"', "train.epochs=3"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    paths = write_sample(folder, sizes=(300, 60, 60))
    # a lexicon for the hand-built features: the sample's own sentiment words
    (folder / "positive-words.txt").write_text("\n".join(POSITIVE), encoding="utf-8")
    (folder / "negative-words.txt").write_text("\n".join(NEGATIVE), encoding="utf-8")
    return {**paths, "lexicon": folder}


def train(sample, out, overrides):
    ffnlp.train_classifier(
        sample["train"], out=out, overrides=["train.checkpoint=false", *overrides]
    )
    return out


@pytest.fixture(scope="module")
def linear_run(sample, tmp_path_factory):
    """Two hidden layers, dropout before, between and after them: still one linear map."""
    out = tmp_path_factory.mktemp("runs") / "linear"
    extra = ["model.mlp.hidden=[16, 8]", "model.mlp.dropout=0.3", "model.mlp.input_dropout=0.1"]
    return train(sample, out, [*IDENTITY, *extra])


def dev_source(run, sample):
    clf = load(run)
    dev = read_split(sample["dev"], clf.config)
    return clf, clf.source(dev.texts, dev.labels)


def test_collapse_multiplies_the_layers_out() -> None:
    g = torch.Generator().manual_seed(0)
    sizes = [7, 5, 4, 3]
    layers = [
        Affine(f"l{i}", torch.randn(b, a, generator=g), torch.randn(b, generator=g))
        for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))
    ]
    x = torch.randn(6, 7, generator=g).double()
    h = x
    for layer in layers:
        h = h @ layer.weight.double().t() + layer.bias.double()  # one layer after the other
    one = collapse(layers)
    assert one.shape == (3, 7)
    torch.testing.assert_close(x @ one.weight.t() + one.bias, h)
    w1, w2, w3 = (layer.weight.double() for layer in layers)
    torch.testing.assert_close(one.weight, w3 @ w2 @ w1)  # W0 = W3 W2 W1


def test_a_trained_identity_network_equals_its_collapsed_layer(linear_run, sample) -> None:
    clf, source = dev_source(linear_run, sample)
    report = compare(clf.model, source)
    assert [layer["weight"][0] for layer in report["layers"]] == [16, 8, 1]
    assert report["collapsed_weight"] == [1, report["layers"][0]["weight"][1]]
    assert report["pass_through"] == [
        "input_dropout (Dropout)",
        "rest.1 (Dropout)",
        "rest.2.layers.2 (Dropout)",
    ]
    assert report["examples"] == 60
    assert report["max_abs_diff"] < 1e-5 and report["max_abs_logit"] > 0.1
    assert report["collapsed_accuracy"] == report["network_accuracy"] > 0.6
    assert report["agreement"] == 1.0
    assert clf.model.training is False  # compare leaves the mode as it found it


@pytest.mark.parametrize(
    "settings",
    [
        ['features.kind="lexicon"', "model.mlp.hidden=[6]"],  # dense feature rows
        ['features.kind="ngrams+lexicon"', "model.mlp.hidden=[6, 5]"],  # sparse rows + lexicon
        ['model.type="pooled"', 'features.kind="ids"', 'model.pooled.pooling="mean"'],
        ['model.type="pooled"', 'features.kind="ids"', 'model.pooled.pooling="sum"'],
    ],
    ids=["lexicon", "ngrams+lexicon", "pooled-mean", "pooled-sum"],
)
def test_every_linear_family_collapses(sample, tmp_path, settings) -> None:
    extra = ["model.mlp.hidden=[6, 4]", "model.pooled.dim=12", "features.buckets=500"]
    lexicon = f'features.lexicon.path="{sample["lexicon"]}"'
    run = train(sample, tmp_path / "r", [*IDENTITY, *extra, lexicon, *settings])
    clf, source = dev_source(run, sample)
    report = compare(clf.model, source)
    assert report["max_abs_diff"] < 1e-5
    assert report["collapsed_accuracy"] == report["network_accuracy"]


def test_logistic_regression_is_already_one_layer(sample, tmp_path) -> None:
    run = train(sample, tmp_path / "r", ["train.epochs=2"])  # the default type: logreg
    clf, source = dev_source(run, sample)
    report = compare(clf.model, source)
    assert len(report["layers"]) == 1 and report["max_abs_diff"] < 1e-5
    assert report["network_parameters"] == report["collapsed_parameters"]


def test_a_non_linearity_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        linear_layers(MLP(5, 2, hidden=[4], activation="relu", dropout=0.2))
    assert str(err.value) == (
        "the network has a non-linearity between its layers (layers.1 is ReLU), so they do not "
        "collapse into one layer; only a network with none does (dropout is fine: it is the "
        'identity when the network is evaluated). Train one with model.mlp.activation = "identity" '
        "(--set model.mlp.activation=identity)."
    )
    pooled = PooledEmbeddingClassifier(30, 2, dim=4, pooling="max", activation="identity")
    with pytest.raises(ConfigError, match="'max' is not linear"):
        linear_layers(pooled)


def test_explain_collapse_cli(linear_run, sample, tmp_path) -> None:
    result = runner.invoke(
        app, ["explain", "collapse", str(linear_run), "--data", str(sample["dev"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {
        "layers",
        "collapsed_weight",
        "max_abs_diff",
        "network_accuracy",
        "collapsed_accuracy",
        "agreement",
        "data",
    } <= set(report)
    text = runner.invoke(
        app, ["explain", "collapse", str(linear_run), "--data", str(sample["dev"])]
    )
    assert text.exit_code == 0, text.output
    assert "W0 = W3 W2 W1" in text.stdout and "logit difference" in text.stdout
    shape_only = runner.invoke(app, ["explain", "collapse", str(linear_run), "--json"])
    assert shape_only.exit_code == 0 and "max_abs_diff" not in json.loads(shape_only.stdout)

    relu = train(
        sample, tmp_path / "relu", ['model.type="mlp"', "model.mlp.hidden=[4]", "train.epochs=1"]
    )
    refused = runner.invoke(app, ["explain", "collapse", str(relu)])
    assert refused.exit_code == 1
    assert (
        "Error: the network has a non-linearity between its layers (rest.0 is ReLU)"
        in refused.output
    )


@pytest.mark.slow
def test_the_deep_linear_sst2_network_equals_its_collapsed_layer_on_dev(tmp_path) -> None:
    """The docs' example (docs/classifiers.md), two epochs instead of ten."""
    train_file, dev_file = (
        shared_data("sst2/stsa.binary.train"),
        shared_data("sst2/stsa.binary.dev"),
    )
    clf = ffnlp.train_classifier(
        train_file,
        config=ROOT / "configs" / "sst2_ffnn.toml",
        out=tmp_path / "linear",
        overrides=[
            'model.mlp.activation="identity"',
            "model.mlp.hidden=[64, 64]",
            "train.epochs=2",
        ],
    )
    dev = read_split(dev_file, clf.config)
    report = compare(clf.model, clf.source(dev.texts, dev.labels))
    assert report["examples"] == 872 and report["max_abs_diff"] < 1e-5
    assert report["collapsed_accuracy"] == report["network_accuracy"] > 0.75
