"""The learning-rate range test, its suggestion rule, and `classify lr-find` / `lm lr-find`."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.inspect.diagnostics import centred_average, lr_range_test, suggest_lr
from ffnlp.tasks.sample import write_sample
from ffnlp.training import TensorBatches, TrainConfig

runner = CliRunner()
KEYS = {
    "lr",
    "loss",
    "raw_loss",
    "suggested_lr",
    "rule",
    "min_loss_lr",
    "min_over_10_lr",
    "steepest_lr",
    "stop_reason",
    "config_lr",
    "optimizer",
    "plot",
}


class Regression(nn.Module):
    """Least squares on a fixed linear target: the loss falls until the rate is too large."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((self.linear(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()


def regression_data() -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    return TensorBatches({"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 1.0})


def test_the_sweep_grows_exponentially_stops_when_the_loss_explodes_and_leaves_the_model() -> None:
    model = Regression()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(optimizer="sgd", batch_size=32, device="cpu")
    result = lr_range_test(model, config, regression_data(), lr_min=1e-4, lr_max=100.0, steps=60)
    lrs = result["lr"]
    assert lrs[0] == pytest.approx(1e-4)
    ratios = [b / a for a, b in zip(lrs, lrs[1:], strict=False)]
    assert ratios == pytest.approx([1e6 ** (1 / 59)] * len(ratios))
    assert result["stop_reason"] and len(lrs) < 60  # plain SGD diverges long before lr 100
    assert len(result["loss"]) == len(result["raw_loss"]) == len(lrs)
    assert lrs[0] <= result["suggested_lr"] <= lrs[-1]
    assert result["suggested_lr"] == pytest.approx(result["min_loss_lr"] / 10)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_suggestion_is_a_tenth_of_the_lowest_smoothed_loss() -> None:
    lrs = [10.0 ** (e / 4) for e in range(-20, 1)]  # 1e-5 .. 1
    # falls fastest around 10^-3.5, lowest at 1e-2, then explodes
    losses = [2.0 - math.tanh(math.log10(lr) + 3.5) if lr <= 1e-2 else 1.0 + 50 * lr for lr in lrs]
    result = suggest_lr(lrs, losses)
    assert result["min_loss_lr"] == pytest.approx(1e-2)
    assert result["suggested_lr"] == pytest.approx(1e-3)
    assert result["steepest_lr"] == pytest.approx(10**-3.5)


def test_the_centred_average_does_not_lag() -> None:
    assert centred_average([0, 0, 3, 0, 0], 1) == [0, 1, 1, 1, 0]
    step = [1.0] * 10 + [0.0] * 10
    smoothed = centred_average(step, 3)
    assert smoothed[9] > 0.5 > smoothed[10]  # the step stays where it was


def test_bad_sweeps_are_refused() -> None:
    with pytest.raises(ConfigError, match="0 < min-lr < max-lr; got 1 and 0.1"):
        lr_range_test(Regression(), TrainConfig(), regression_data(), lr_min=1.0, lr_max=0.1)
    with pytest.raises(ConfigError, match="at least 5 steps"):
        lr_range_test(Regression(), TrainConfig(), regression_data(), steps=3)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 40, 40))


def test_classify_lr_find_writes_the_plot_and_suggests_a_rate_in_the_sweep(
    sample, tmp_path
) -> None:
    plot = tmp_path / "plots" / "lr.png"
    result = runner.invoke(
        app,
        [
            "classify",
            "lr-find",
            "--train",
            str(sample["train"]),
            "--set",
            'model.type="mlp"',
            "--set",
            "model.mlp.hidden=[8]",
            "--min-lr",
            "1e-5",
            "--max-lr",
            "10",
            "--steps",
            "40",
            "--plot",
            str(plot),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= KEYS
    assert plot.is_file() and plot.stat().st_size > 1000 and report["plot"] == str(plot)
    assert 1e-5 <= report["suggested_lr"] <= 10
    assert report["optimizer"] == "adam" and report["config_lr"] == 0.01

    text = runner.invoke(
        app,
        [
            "classify",
            "lr-find",
            "--train",
            str(sample["train"]),
            "--steps",
            "20",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert text.exit_code == 0, text.output
    assert "Suggested learning rate" in text.stdout and "--set train.lr=" in text.stdout
    assert (tmp_path / "out" / "lr_find.png").is_file()
    saved = json.loads((tmp_path / "out" / "lr_find.json").read_text())
    assert len(saved["lr"]) == len(saved["loss"]) <= 20


def test_the_plot_goes_to_the_current_folder_by_default(sample, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["classify", "lr-find", "--train", str(sample["train"]), "--steps", "8"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lr_find.png").is_file() and not (tmp_path / "lr_find.json").exists()


def test_classify_lr_find_builds_the_model_training_would(sample, monkeypatch) -> None:
    """Same model, same initial weights as `classify train` with the same settings."""
    import ffnlp.tasks.lr_find as lr_find
    from ffnlp.runtime import seed_everything
    from ffnlp.tasks.classify.config import resolve_config
    from ffnlp.tasks.classify.lr_find import find_lr
    from ffnlp.tasks.classify.train import fresh_model, prepare, read_splits

    seen = {}

    def spy(model, config, source, *args):
        seen["model"], seen["config"] = model, config
        return {"lr": [1.0], "loss": [1.0]}

    monkeypatch.setattr(lr_find, "lr_range_test", spy)
    settings = ['model.type="mlp"', "model.mlp.hidden=[8]", "train.lr=0.3", "train.seed=5"]
    find_lr(sample["train"], overrides=settings)
    cfg = resolve_config(None, settings)
    prepared = prepare(cfg, read_splits(cfg, sample["train"], None, None))
    seed_everything(cfg.train.seed)  # as the run seeds it: right before the model is built
    model, _, _ = fresh_model(cfg, prepared)
    assert seen["config"] == cfg.train
    theirs, ours = seen["model"].state_dict(), model.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)


def test_lm_lr_find(sample, tmp_path) -> None:
    tiny = [
        "model.context_size=2",
        "model.embedding_dim=8",
        "model.hidden_sizes=[8]",
        "train.batch_size=64",
        "train.threads=1",
    ]
    sets = [a for s in tiny for a in ("--set", s)]
    result = runner.invoke(
        app,
        [
            "lm",
            "lr-find",
            "--train",
            str(sample["corpus"]),
            *sets,
            "--steps",
            "30",
            "--plot",
            str(tmp_path / "lm.png"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= KEYS and (tmp_path / "lm.png").is_file()
    assert report["lr"][0] <= report["suggested_lr"] <= report["lr"][-1]
    counted = runner.invoke(
        app,
        [
            "lm",
            "lr-find",
            "--train",
            str(sample["corpus"]),
            "--set",
            'kind="kneser_ney"',
        ],
    )
    assert counted.exit_code == 1
    assert 'kind = "kneser_ney" is fitted by counting' in counted.output


def test_the_range_test_checks_where_it_writes_before_it_sweeps(tmp_path) -> None:
    """report.lr_find.range_test: a plot that cannot be written is refused before a batch is
    trained; else the task's sweep gets the settings and the result the plot's path."""
    from ffnlp.errors import FfnlpError
    from ffnlp.report.lr_find import range_test

    calls: list[dict] = []

    def find_lr(train, **settings):
        calls.append({"train": train, **settings})
        return {"lr": [1e-3, 1e-2], "loss": [1.0, 0.5], "optimizer": "sgd"}

    (tmp_path / "folder.png").mkdir()
    with pytest.raises(FfnlpError, match="folder.png"):
        range_test(find_lr, tmp_path / "t.txt", tmp_path / "folder.png", None, steps=5)
    assert calls == []
    drawn: list[str] = []
    import ffnlp.report.plots as plots

    original = plots.plot_lr_range
    plots.plot_lr_range = lambda result, name, title: drawn.append(title)  # type: ignore[assignment]
    try:
        result = range_test(find_lr, tmp_path / "t.txt", None, tmp_path / "out", steps=5, seed=1)
    finally:
        plots.plot_lr_range = original
    assert calls == [{"train": tmp_path / "t.txt", "steps": 5, "seed": 1}]
    assert drawn == ["lr range test: default config"]
    assert result["plot"] == str(tmp_path / "out" / "lr_find.png")
    assert json.loads((tmp_path / "out" / "lr_find.json").read_text())["plot"] == result["plot"]
