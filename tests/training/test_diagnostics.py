"""Training diagnostics (train.diagnostics): nothing installed when off; dead and saturated units,
gradient norms, update ratios and warnings with advice when on."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import ffnlp
from ffnlp import config as C
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.tasks.sample import write_sample
from ffnlp.training import Callback, TensorBatches, TrainConfig, Trainer
from ffnlp.training.checkpoint import load_checkpoint
from ffnlp.training.diagnostics import ACTIVATION_MODULES, TrainingDiagnostics
from tests.conftest import shared_data


class Net(nn.Module):
    """x (B, 10) -> Linear -> activation -> Linear -> 2 logits."""

    def __init__(self, activation: nn.Module, hidden: int = 16):
        super().__init__()
        self.first = nn.Linear(10, hidden)
        self.act = activation
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.first(x)))  # (B, 2)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch["x"]), batch["y"])


def toy(n: int = 320) -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, generator=g)
    return TensorBatches({"x": x, "y": (x[:, 0] > 0).long()})


def cfg(**settings: Any) -> TrainConfig:
    base = {
        "threads": 1,
        "checkpoint": False,
        "optimizer": "sgd",
        "lr": 0.1,
        "batch_size": 32,
        "epochs": 2,
        "diagnostics": True,
    }
    return C.build(TrainConfig, {**base, **settings})


def fit(
    model: nn.Module,
    run_dir: Path | None = None,
    callbacks: list[Callback] | None = None,
    **settings: Any,
) -> Trainer:
    trainer = Trainer(
        model, cfg(**settings), toy(), dev=toy(64), callbacks=callbacks, run_dir=run_dir
    )
    trainer.fit()
    return trainer


def hooked(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if m._forward_hooks]


class HooksSeen(Callback):
    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
        self.seen.append(hooked(trainer.model))


def diagnostics_records(trainer: Trainer) -> list[dict[str, Any]]:
    return [r["diagnostics"] for r in trainer.history.records if "diagnostics" in r]


# ------------------------------------------------------------------------------- off and on


def test_off_installs_nothing_and_records_nothing(tmp_path: Path) -> None:
    model, seen = Net(nn.ReLU()), HooksSeen()
    trainer = fit(model, tmp_path, callbacks=[seen], diagnostics=False)
    assert not any(isinstance(cb, TrainingDiagnostics) for cb in trainer.callbacks)
    assert seen.seen and all(s == [] for s in seen.seen)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert lines and not any("diagnostics" in json.loads(line) for line in lines)


def test_on_hooks_the_activations_while_training_and_removes_them_after(tmp_path: Path) -> None:
    model, seen = Net(nn.ReLU()), HooksSeen()
    trainer = fit(model, tmp_path, callbacks=[seen])
    assert all(s == ["act"] for s in seen.seen)
    assert hooked(model) == []
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 2 and all("diagnostics" in r for r in epochs)
    assert not any("diagnostics" in r for r in records if r["event"] == "step")
    d = epochs[0]["diagnostics"]
    assert d["steps"] == trainer.steps_per_epoch == 10
    assert set(d["layers"]) == {"act"} and d["layers"]["act"]["units"] == 16
    assert set(d["weights"]) == {"first.weight", "out.weight"}  # matrices, not biases
    assert d["warnings"] == []


def test_on_changes_no_number() -> None:
    weights = []
    for diagnostics in (False, True):
        torch.manual_seed(0)
        model = Net(nn.Tanh())
        trainer = fit(model, diagnostics=diagnostics, optimizer="adam", lr=0.01, epochs=3)
        weights.append([p.detach().clone() for p in model.parameters()])
        losses = [r["dev"]["loss"] for r in trainer.history.evaluations]
        weights[-1].append(torch.tensor(losses))
    for off, on in zip(*weights, strict=True):
        assert torch.equal(off, on)


def test_every_activation_of_the_models_table_is_watched() -> None:
    table = {name: type(spec.make()) for name, spec in ACTIVATIONS.items() if name != "identity"}
    assert {cls: name for name, cls in table.items()} == ACTIVATION_MODULES


def test_grad_norm_and_update_ratio_are_what_they_claim() -> None:
    class Truth(Callback):
        def __init__(self) -> None:
            self.norms: list[float] = []
            self.start: torch.Tensor | None = None

        def on_fit_start(self, trainer: Trainer) -> None:
            self.start = trainer.model.first.weight.detach().clone()

        def on_batch_end(self, trainer: Trainer, loss: float | None) -> None:
            self.norms.append(float(trainer.model.first.weight.grad.norm()))

    model, truth = Net(nn.Tanh()), Truth()
    trainer = fit(model, callbacks=[truth], epochs=1)
    first = diagnostics_records(trainer)[0]["weights"]["first.weight"]
    assert first["grad_norm"] == pytest.approx(sum(truth.norms) / len(truth.norms), rel=1e-5)
    assert truth.start is not None
    moved = (model.first.weight.detach() - truth.start).norm() / truth.start.norm()
    assert first["update_ratio"] == pytest.approx(float(moved), rel=1e-5)
    assert first["norm"] == pytest.approx(float(model.first.weight.detach().norm()), rel=1e-6)


def test_only_a_sample_of_steps_is_observed() -> None:
    diag = TrainingDiagnostics(observed_per_record=3)
    trainer = Trainer(Net(nn.ReLU()), cfg(epochs=1, diagnostics=False), toy(), callbacks=[diag])
    trainer.fit()
    (d,) = diagnostics_records(trainer)
    assert d["steps"] == 10 and d["observed_steps"] == 4  # every third step: 1, 4, 7, 10


# ---------------------------------------------------------------------------------- warnings


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_dead_relus_are_counted_and_warned_about() -> None:
    model = Net(nn.ReLU())
    with torch.no_grad():
        model.first.bias[:12] = -100.0  # 12 of 16 units can never fire
    # a handler and level of its own: the CLI's logging set-up (other tests) stops
    # propagation at "ffnlp" and sets its level from --quiet
    logger, collect = logging.getLogger("ffnlp.training.diagnostics"), Collect()
    logger.addHandler(collect)
    logger.setLevel(logging.WARNING)
    try:
        trainer = fit(model, epochs=1)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(logging.NOTSET)
    (d,) = diagnostics_records(trainer)
    assert d["layers"]["act"]["dead"] == pytest.approx(12 / 16)
    (warning,) = d["warnings"]
    assert warning.startswith("act: 75% of its 16 relu units never fired on the last 10 observed")
    assert "lower train.lr (now 0.1), use a leaky_relu activation" in warning
    assert collect.messages == [warning]


def test_saturated_tanh_units_are_warned_about() -> None:
    model = Net(nn.Tanh())
    with torch.no_grad():
        model.first.weight.normal_(0.0, 20.0)
    trainer = fit(model, epochs=1)
    (d,) = diagnostics_records(trainer)
    assert d["layers"]["act"]["saturated"] > 0.9
    assert any(
        w.startswith("act: ") and "of its tanh outputs are saturated (|h| > 0.97)" in w
        for w in d["warnings"]
    )


def test_a_diverging_loss_advises_a_lower_learning_rate() -> None:
    trainer = fit(Net(nn.ReLU()), optimizer="sgd", lr=50.0, epochs=1)
    warnings = [w for d in diagnostics_records(trainer) for w in d["warnings"]]
    assert any("the learning rate is" in w and "try train.lr = 5 (now 50)" in w for w in warnings)


def test_a_flat_loss_advises_a_higher_learning_rate() -> None:
    trainer = fit(Net(nn.ReLU()), lr=1e-7, epochs=5, batch_size=8)
    warnings = [w for d in diagnostics_records(trainer) for w in d["warnings"]]
    (plateau,) = [w for w in warnings if "still within 1%" in w]
    assert plateau.startswith("after 200 steps the training loss is still within 1% of where")
    assert plateau.endswith("is the learning rate too low? try train.lr = 1e-06 (now 1e-07)")


def test_a_healthy_run_gets_no_warning() -> None:
    trainer = fit(Net(nn.ReLU()), lr=0.05, epochs=5, batch_size=8)
    assert all(d["warnings"] == [] for d in diagnostics_records(trainer))


def test_each_warning_is_given_once_and_survives_a_checkpoint(tmp_path: Path) -> None:
    model = Net(nn.ReLU())
    with torch.no_grad():
        model.first.bias[:] = -100.0
    trainer = fit(model, tmp_path, epochs=3, checkpoint=True)
    counts = [len(d["warnings"]) for d in diagnostics_records(trainer)]
    assert counts[0] >= 1 and counts[1:] == [0, 0]
    saved = load_checkpoint(tmp_path)["diagnostics"]
    assert saved["issued"] == ["dead:act"] and not math.isnan(saved["first"])


# -------------------------------------------------------------------- through the classifier


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(600, 100, 100))


MLP = [
    'model.type="mlp"',
    "model.mlp.hidden=[32]",
    "train.threads=1",
    "train.epochs=3",
    "train.checkpoint=false",
    "train.diagnostics=true",
]


def test_classifier_with_a_too_large_learning_rate_gets_the_divergence_warning(
    sample: dict[str, Path], tmp_path: Path
) -> None:
    clf = ffnlp.train_classifier(
        sample["train"], dev=sample["dev"], out=tmp_path, overrides=[*MLP, "train.lr=10"]
    )
    (warning,) = [w for w in clf.summary["warnings"] if "learning rate is too high" in w]
    assert warning.endswith("try train.lr = 1 (now 10)")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["warnings"] == clf.summary["warnings"]
    assert (tmp_path / "plots" / "diagnostics.png").is_file()


def test_sigmoid_classifier_with_large_initial_weights_gets_the_saturation_warning(
    sample: dict[str, Path], tmp_path: Path
) -> None:
    overrides = [
        *MLP,
        'model.mlp.activation="sigmoid"',
        'model.init.scheme="normal"',
        "model.init.std=20",
    ]
    clf = ffnlp.train_classifier(
        sample["train"], dev=sample["dev"], out=tmp_path, overrides=overrides
    )
    assert any(
        "of its sigmoid outputs are saturated (h outside [0.03, 0.97])" in w
        for w in clf.summary["warnings"]
    )
    from ffnlp.report.html import write_report

    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "<h2>Warnings</h2>" in page and "sigmoid outputs are saturated" in page


def test_classifier_without_diagnostics_writes_no_diagnostics(
    sample: dict[str, Path], tmp_path: Path
) -> None:
    overrides = [o for o in MLP if "diagnostics" not in o] + ["train.lr=10"]
    clf = ffnlp.train_classifier(
        sample["train"], dev=sample["dev"], out=tmp_path, overrides=overrides
    )
    assert "warnings" not in clf.summary
    assert "diagnostics" not in (tmp_path / "metrics.jsonl").read_text()
    assert not (tmp_path / "plots" / "diagnostics.png").exists()


SST2 = [
    'model.type="mlp"',
    "model.mlp.hidden=[64]",
    "train.epochs=1",
    "train.threads=1",
    "train.checkpoint=false",
    'data.format="label-text"',
]


def as_options(settings: list[str]) -> list[str]:
    return [arg for setting in settings for arg in ("--set", setting)]


@pytest.mark.slow
def test_sst2_mlp_with_diagnostics_on_the_command_line(tmp_path: Path) -> None:
    """The acceptance runs, on SST-2: a too-large learning rate, and sigmoid units started from
    large weights (tf-idf rows have unit length: with std 5 about half of the outputs saturate,
    with std 10 about three quarters)."""
    from typer.testing import CliRunner

    from ffnlp.cli.main import app

    train = shared_data("sst2/stsa.binary.train")
    dev = shared_data("sst2/stsa.binary.dev")
    runs = {
        "lr": ["train.lr=10"],
        "sigmoid": [
            'model.mlp.activation="sigmoid"',
            'model.init.scheme="normal"',
            "model.init.std=10",
        ],
    }
    summaries = {}
    for name, extra in runs.items():
        out = tmp_path / name
        args = ["classify", "train", "--train", str(train), "--dev", str(dev), "--out", str(out)]
        args += ["--diagnostics", "--json", *as_options(SST2 + extra)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summaries[name] = json.loads((out / "summary.json").read_text())
        assert "diagnostics = true" in (out / "config.toml").read_text()
    assert any("learning rate is too high" in w for w in summaries["lr"]["warnings"])
    assert any("sigmoid outputs are saturated" in w for w in summaries["sigmoid"]["warnings"])
