"""Seeing inside: hand-written backprop vs autograd, shape traces, dead units, the explain CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.inspect.backprop_check import compare_with_autograd
from ffnlp.inspect.diagnostics import dead_units
from ffnlp.inspect.numpy_mlp import NumpyMLP, finite_difference_check
from ffnlp.inspect.shapes import trace_shapes
from ffnlp.tasks.sample import write_sample
from ffnlp.training import TensorBatches


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_numpy_backprop_equals_autograd(activation: str) -> None:
    result = compare_with_autograd([7, 6, 5, 4], activation, batch=9)
    assert result["loss_numpy"] == pytest.approx(result["loss_torch"], abs=1e-12)
    assert max(result["max_abs_diff"]) < 1e-12
    assert max(result["max_abs_diff_bias"]) < 1e-12
    assert result["finite_difference"] < 1e-5


def test_finite_difference_check_catches_a_wrong_gradient() -> None:
    net = NumpyMLP([4, 3, 2], "tanh")
    x, y = np.random.default_rng(0).normal(size=(5, 4)), np.array([0, 1, 0, 1, 1])
    good = finite_difference_check(net, x, y)
    original = net.gradients

    def broken(x, y):
        loss, gw, gb = original(x, y)
        return loss, [g * 1.5 for g in gw], gb

    net.gradients = broken  # type: ignore[method-assign]
    assert good < 1e-6 < finite_difference_check(net, x, y)


def test_numpy_network_learns() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)  # XOR-like: needs the hidden layer
    net = NumpyMLP([2, 16, 2], "tanh")
    first = net.loss(x, y)
    for _ in range(2000):
        net.sgd_step(x, y, lr=0.5)
    assert net.loss(x, y) < 0.3 * first


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(50, 8, mode="mean")
        self.hidden = nn.Linear(8, 6)
        self.act = nn.ReLU()
        self.out = nn.Linear(6, 3)

    def logits(self, batch):
        return self.out(self.act(self.hidden(self.emb(batch["ids"], batch["offsets"]))))


def test_trace_shapes_lists_every_product_in_order() -> None:
    model = Tiny()
    batch = {"ids": torch.tensor([1, 2, 3, 4, 5]), "offsets": torch.tensor([0, 2])}
    calls = trace_shapes(model, lambda: model.logits(batch))
    assert [c.name for c in calls] == ["emb", "hidden", "act", "out"]
    assert calls[1].product == "(2, 8) @ (8, 6)" and calls[1].macs == 2 * 8 * 6
    assert calls[0].product == "sparse (2, 50; 5 nz) @ (50, 8)"
    assert calls[3].output == (2, 3)


def test_dead_units_counts_units_that_never_fire() -> None:
    model = Tiny()
    with torch.no_grad():
        model.hidden.bias[:2] = -1e4  # units 0 and 1 can never be positive
        model.hidden.bias[2:] = 1e4  # the rest always are
    ids = torch.randint(0, 50, (30,))
    source = TensorBatches({"ids": ids.reshape(10, 3)})

    class Flat:
        def batches(self, batch_size, generator):
            for b in source.batches(batch_size, generator):
                yield {"ids": b["ids"].reshape(-1), "offsets": torch.arange(0, b["ids"].numel(), 3)}

    report = dead_units(model, Flat())  # type: ignore[arg-type]
    assert report == {"act": {"units": 6, "dead": 2, "dead_fraction": pytest.approx(2 / 6)}}


def test_explain_cli(tmp_path) -> None:
    data = write_sample(tmp_path / "d", sizes=(200, 40, 40))
    ffnlp.train_classifier(
        data["train"],
        out=tmp_path / "r",
        overrides=[
            'model.type="pooled"',
            'features.kind="ids"',
            "model.mlp.hidden=[8]",
            "train.epochs=1",
            "features.buckets=1000",
        ],
    )
    runner = CliRunner()
    shapes = runner.invoke(
        app, ["explain", "shapes", str(tmp_path / "r"), "--json", "--text", "a b c"]
    )
    assert shapes.exit_code == 0, shapes.output
    kinds = [layer["kind"] for layer in json.loads(shapes.stdout)["layers"]]
    assert kinds[0] == "EmbeddingBag" and "Linear" in kinds and "ReLU" in kinds
    dead = runner.invoke(
        app, ["explain", "dead", str(tmp_path / "r"), "--data", str(data["dev"]), "--json"]
    )
    assert dead.exit_code == 0, dead.output
    assert all(v["units"] == 8 for v in json.loads(dead.stdout).values())
    bp = runner.invoke(app, ["explain", "backprop", "--sizes", "5,4,3"])
    assert bp.exit_code == 0 and "finite differences" in bp.stdout
