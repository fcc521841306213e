"""`explain numpy-vs-torch`: the NumPy learners against ffnlp's PyTorch models, step by step."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError
from ffnlp.inspect.numpy_learner import (
    NumpyLogisticRegression,
    classification_loss,
    numpy_copy,
    one_thread,
    read_bag_of_ngrams,
    sgd_step,
    torch_model,
    train_side_by_side,
)
from ffnlp.tasks.sample import write_sample
from tests.conftest import shared_data

runner = CliRunner()


def csr(x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return x.to_sparse_csr()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    paths = write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 80, 10))
    return paths, read_bag_of_ngrams(paths["train"], paths["dev"], max_features=400)


@pytest.mark.parametrize("classes", [2, 4])
def test_the_loss_and_its_gradient_match_torch(classes: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, size=7)
    logits = rng.normal(scale=3.0, size=(7, 1 if classes == 2 else classes))
    loss, grad = classification_loss(logits, y)
    z = torch.tensor(logits, requires_grad=True)
    if classes == 2:
        expected = F.binary_cross_entropy_with_logits(z[:, 0], torch.tensor(y, dtype=torch.float64))
    else:
        expected = F.cross_entropy(z, torch.tensor(y))
    expected.backward()
    assert z.grad is not None
    assert loss == pytest.approx(float(expected.detach()), abs=1e-14)
    assert np.abs(grad - z.grad.numpy()).max() < 1e-15


@pytest.mark.parametrize(
    ("hidden", "activation"), [((), "relu"), ((16,), "relu"), ((16,), "tanh"), ((12, 8), "sigmoid")]
)
def test_numpy_and_torch_agree_at_every_step(sample, hidden, activation) -> None:
    _, data = sample
    result = train_side_by_side(
        data.x_train,
        data.y_train,
        data.x_dev,
        data.y_dev,
        2,
        hidden=hidden,
        activation=activation,
        epochs=2,
        lr=0.5,
        batch_size=16,
        seed=3,
    )
    numpy_losses = np.array(result.step_loss["numpy"])
    torch_losses = np.array(result.step_loss["torch"])
    assert len(numpy_losses) == 2 * 19  # 300 examples in minibatches of 16, twice
    assert np.abs(numpy_losses - torch_losses).max() < 1e-12  # float64 rounding, every step
    assert result.max_weight_diff < 1e-12
    for record in result.epochs:
        assert record["numpy"]["dev_accuracy"] == record["torch"]["dev_accuracy"]
        assert record["numpy"]["loss"] == pytest.approx(record["torch"]["loss"], abs=1e-12)


@pytest.mark.parametrize("hidden", [(), (16,)])
def test_both_learn_a_separable_problem(hidden) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 20, generator=gen) * (torch.rand(300, 20, generator=gen) < 0.3)
    score = x @ torch.randn(20, generator=gen)
    y = (score > score.median()).long()
    result = train_side_by_side(
        csr(x[:200]),
        y[:200],
        csr(x[200:]),
        y[200:],
        2,
        hidden=hidden,
        epochs=10,
        lr=1.0,
        batch_size=8,
    )
    first, last = result.epochs[0], result.epochs[-1]
    assert last["numpy"]["loss"] < 0.5 * first["numpy"]["loss"]
    assert last["numpy"]["dev_accuracy"] == last["torch"]["dev_accuracy"] > 0.85


def test_softmax_head_with_four_classes() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(120, 30, generator=gen) < 0.2
    x = csr(torch.rand(120, 30, generator=gen) * mask)
    y = torch.randint(0, 4, (120,), generator=gen)
    result = train_side_by_side(x, y, x, y, 4, hidden=(10,), epochs=3, lr=0.3, batch_size=10)
    diffs = np.abs(np.array(result.step_loss["numpy"]) - np.array(result.step_loss["torch"]))
    assert diffs.max() < 1e-12  # K logits: softmax cross-entropy
    assert result.max_weight_diff < 1e-12
    assert result.epochs[-1]["numpy"]["dev_accuracy"] == result.epochs[-1]["torch"]["dev_accuracy"]


def test_the_numpy_copy_starts_from_the_torch_weights() -> None:
    torch.manual_seed(0)
    model = torch_model(6, 3, (5,), "tanh")
    net = numpy_copy(model, "tanh")
    x = np.random.default_rng(0).normal(size=(4, 6))
    with torch.no_grad():
        expected = model(torch.tensor(x)).numpy()
    assert np.abs(net.logits(x) - expected).max() < 1e-12


def test_sgd_step_moves_against_the_gradient() -> None:
    model = NumpyLogisticRegression(np.zeros((3, 1)), np.zeros(1))
    x, y = np.eye(3), np.array([1, 0, 1])
    loss = sgd_step(model, x, y, lr=3.0)
    assert loss == pytest.approx(np.log(2))  # all logits 0 at the start
    assert (model.weight[:, 0] * np.array([1, -1, 1]) > 0).all()  # towards the labels


def test_bad_settings_are_reported_together(sample) -> None:
    _, data = sample
    with pytest.raises(ConfigError) as info:
        train_side_by_side(
            data.x_train,
            data.y_train,
            data.x_dev,
            data.y_dev,
            2,
            activation="gelu",
            lr=0.0,
            epochs=0,
        )
    assert str(info.value) == (
        "--activation must be one of relu, tanh, sigmoid; got 'gelu'; "
        "--epochs must be at least 1; got 0; --lr must be positive; got 0.0"
    )


def test_one_class_training_data(tmp_path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("1 good film\n1 fine film\n")
    with pytest.raises(DataError, match="every example has the label '1'"):
        read_bag_of_ngrams(one, one)


def test_cli_prints_both_learners_and_writes_the_plot(sample, tmp_path) -> None:
    paths, _ = sample
    plot = tmp_path / "plots" / "curves.png"
    args = [
        "explain",
        "numpy-vs-torch",
        "--train",
        str(paths["train"]),
        "--dev",
        str(paths["dev"]),
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--max-features",
        "200",
        "--plot",
        str(plot),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MLP (8 relu units) on 200 features" in result.stdout
    assert "loss NumPy  loss PyTorch  dev acc NumPy  dev acc PyTorch" in result.stdout
    assert "max |weight difference| =" in result.stdout
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in lines] == ["1", "2"] and all(row[4] == row[5] for row in lines)
    as_json = runner.invoke(app, [*args[:-2], "--hidden", "0", "--json"])
    assert as_json.exit_code == 0, as_json.output
    out = json.loads(as_json.stdout)
    assert out["model"] == "logistic regression" and len(out["epochs"]) == 2
    bad = runner.invoke(app, [*args[:-2], "--activation", "gelu"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: --activation must be one of relu, tanh, sigmoid")
    bad_plot = runner.invoke(app, [*args[:-1], str(tmp_path / "curves.txt")])
    assert bad_plot.exit_code == 1
    assert "name an image file ending in .png, .pdf or .svg" in bad_plot.stderr
    help_ = runner.invoke(app, ["explain", "numpy-vs-torch", "--help"])
    assert help_.exit_code == 0 and "Example" in help_.output


@pytest.mark.slow
def test_sst2_same_dev_accuracy() -> None:
    data = read_bag_of_ngrams(
        shared_data("sst2/stsa.binary.train"),
        shared_data("sst2/stsa.binary.dev"),
        max_features=2000,
    )
    result = train_side_by_side(
        data.x_train, data.y_train, data.x_dev, data.y_dev, 2, hidden=(32,), epochs=1
    )
    last = result.epochs[-1]
    assert abs(last["numpy"]["dev_accuracy"] - last["torch"]["dev_accuracy"]) <= 0.005
    assert last["torch"]["dev_accuracy"] > 0.6


def test_one_thread_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
