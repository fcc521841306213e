"""The loop: early stopping, label smoothing, class weights, guards, resume, atomic checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from ffnlp import config as C
from ffnlp.errors import Interrupted, ModelFileError, TrainingError
from ffnlp.models.heads import ClassifierHead, balanced_class_weight
from ffnlp.training import Callback, TensorBatches, TrainConfig, Trainer
from ffnlp.training.checkpoint import load_checkpoint, save_atomic
from ffnlp.training.stopping import early_stop_decision
from tests.training.test_optim import Linear, toy


def cfg(**settings) -> TrainConfig:
    return C.build(TrainConfig, {"threads": 1, **settings})


class Snapshots(Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_epoch_end(self, trainer) -> None:
        self.weights.append(trainer.model.lin.weight.detach().clone())


def test_early_stopping_restores_the_best_epoch() -> None:
    scripted = iter([0.50, 0.70, 0.65, 0.60, 0.55, 0.90])  # best at evaluation 2, then worse

    def evaluate(model, source):
        return {"accuracy": next(scripted)}

    snaps = Snapshots()
    trainer = Trainer(
        Linear(),
        cfg(
            epochs=6,
            optimizer="sgd",
            lr=0.1,
            monitor="dev.accuracy",
            early_stopping=True,
            patience=2,
            checkpoint=False,
        ),
        toy(),
        dev=toy(50, seed=1),
        evaluate=evaluate,
        callbacks=[snaps],
    )
    history = trainer.fit()
    assert trainer.epoch == 4  # evaluations 3 and 4 did not improve on 0.70
    assert history.best_epoch == 2
    assert trainer.stop_reason.startswith("Stopped early: dev.accuracy has not increased")
    assert torch.equal(trainer.model.lin.weight, snaps.weights[1])
    assert not torch.equal(snaps.weights[1], snaps.weights[3])


def test_early_stop_decision_is_a_pure_function() -> None:
    assert early_stop_decision([1.0, 0.9, 0.8], "min", 2, 0.0) == (False, "")
    stop, reason = early_stop_decision([0.8, 0.9, 0.85, 0.86], "max", 2, 0.0, "dev.acc")
    assert stop and "the best was 0.9000 at evaluation 2" in reason
    assert early_stop_decision([0.8, 0.805, 0.81], "max", 2, 0.02)[0]  # min_delta: no real gain


def separable(n: int = 200) -> TensorBatches:
    x = torch.randn(n, 10, generator=torch.Generator().manual_seed(0))
    return TensorBatches({"x": x * 5, "y": (x[:, 0] > 0).long()})


class HeadModel(nn.Module):
    def __init__(self, k: int, smoothing: float = 0.0):
        super().__init__()
        self.lin = nn.Linear(10, 1 if k == 2 else k)
        self.head = ClassifierHead(k, smoothing)

    def loss(self, batch):
        return self.head.loss(self.lin(batch["x"]), batch["y"])


@pytest.mark.parametrize("k", [2, 3])
def test_label_smoothing_raises_the_minimum_loss(k: int) -> None:
    data = separable()
    if k == 3:
        data.tensors["y"] = data.tensors["y"] * 2  # classes 0 and 2 used, 1 never
    finals = {}
    for eps in (0.0, 0.2):
        torch.manual_seed(0)
        t = Trainer(
            HeadModel(k, eps), cfg(epochs=30, optimizer="adam", lr=0.1, checkpoint=False), data
        )
        t.fit()
        finals[eps] = t.history.epochs[-1]["train"]["loss"]
    assert finals[0.0] < 0.05
    # the smoothed target has entropy > 0, so the loss cannot go below it
    p = (
        torch.tensor([1 - 0.2 + 0.2 / k] + [0.2 / k] * (k - 1))
        if k > 2
        else torch.tensor([0.9, 0.1])
    )
    entropy = float(-(p * p.log()).sum())
    assert finals[0.2] > entropy - 1e-3


def test_class_weights_balanced_and_weighted_mean() -> None:
    y = torch.tensor([0, 0, 0, 1])
    w = balanced_class_weight(y, 2)
    assert w == pytest.approx([4 / 6, 4 / 2])
    head = ClassifierHead(3, class_weight=[1.0, 2.0, 3.0])
    logits = torch.randn(4, 3)
    y3 = torch.tensor([0, 1, 2, 2])
    per = nn.functional.cross_entropy(logits, y3, reduction="none")
    expected = (per * torch.tensor([1.0, 2, 3, 3])).sum() / 9
    assert head.loss(logits, y3) == pytest.approx(float(expected))


class Exploding(Linear):
    def loss(self, batch):
        loss = super().loss(batch)
        return loss * float("inf") if self.blow_up else loss


def test_non_finite_loss_stops_with_a_message_and_keeps_the_checkpoint(tmp_path) -> None:
    model = Exploding()
    model.blow_up = False

    class Arm(Callback):
        def on_epoch_end(self, trainer):
            trainer.model.blow_up = True

    trainer = Trainer(
        model, cfg(epochs=3, batch_size=100), toy(), callbacks=[Arm()], run_dir=tmp_path
    )
    with pytest.raises(
        TrainingError, match=r"the training loss became inf at step 5 \(epoch 2\).*train.clip_norm"
    ):
        trainer.fit()
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 1 and state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def run_classifier(tmp_path, name, epochs, callbacks=(), resume=False, extra=()):
    from ffnlp.tasks.classify import train_classifier
    from ffnlp.tasks.sample import write_sample

    data = write_sample(tmp_path / "data", sizes=(300, 60, 60))
    return train_classifier(
        data["train"],
        dev=data["dev"],
        out=tmp_path / name,
        callbacks=list(callbacks),
        resume=resume,
        overrides=[
            f"train.epochs={epochs}",
            "train.early_stopping=false",
            "train.threads=1",
            "train.batch_size=16",
            "train.log_every=5",
            *extra,
        ],
    )


def strip_times(path) -> list[dict]:
    from ffnlp.training import read_metrics

    out = []
    for r in read_metrics(path):
        out.append({k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")})
    return out


def test_same_seed_gives_identical_metrics(tmp_path) -> None:
    a = run_classifier(tmp_path, "a", 3)
    b = run_classifier(tmp_path, "b", 3)
    assert strip_times(a.run_dir / "metrics.jsonl") == strip_times(b.run_dir / "metrics.jsonl")
    c = run_classifier(tmp_path, "c", 3, extra=["train.seed=99"])
    assert strip_times(a.run_dir / "metrics.jsonl") != strip_times(c.run_dir / "metrics.jsonl")


class InterruptAt(Callback):
    """Sends this process SIGINT at a given step, as Ctrl-C would."""

    def __init__(self, step: int):
        self.at = step

    def on_batch_end(self, trainer, loss):
        if trainer.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupt_and_resume_gives_the_same_weights(tmp_path) -> None:
    straight = run_classifier(tmp_path, "straight", 4)
    steps_per_epoch = -(-300 // 16)
    with pytest.raises(Interrupted, match=r"SIGINT at step 43 \(epoch 3\)") as info:
        run_classifier(tmp_path, "cut", 4, callbacks=[InterruptAt(2 * steps_per_epoch + 5)])
    assert info.value.run_dir == tmp_path / "cut" and info.value.signal == signal.SIGINT
    assert not (tmp_path / "cut" / "summary.json").exists()  # stopped: no evaluation, no summary
    resumed = run_classifier(tmp_path, "cut", 4, resume=True)
    assert resumed.summary["epochs"] == 4
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert strip_times(straight.run_dir / "metrics.jsonl") == strip_times(
        resumed.run_dir / "metrics.jsonl"
    )


def test_resume_after_two_epochs_to_four(tmp_path) -> None:
    straight = run_classifier(tmp_path, "s", 4)
    run_classifier(tmp_path, "two", 2)
    resumed = run_classifier(tmp_path, "two", 4, resume=True, extra=["train.epochs=4"])
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_resume_keeps_the_weight_average(tmp_path) -> None:
    ema = ["train.ema_decay=0.9", "train.restore_best=false"]
    straight = run_classifier(tmp_path, "s", 4, extra=ema)
    run_classifier(tmp_path, "two", 2, extra=ema)
    resumed = run_classifier(tmp_path, "two", 4, resume=True, extra=[*ema, "train.epochs=4"])
    for name, tensor in straight.model.state_dict().items():  # the final model is the average
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_resume_without_checkpoint_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(ModelFileError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "run")


def test_sigkill_while_writing_a_checkpoint_leaves_the_previous_one(tmp_path) -> None:
    path = tmp_path / "checkpoint" / "state.pt"
    save_atomic({"version": torch.tensor(0), "blob": torch.zeros(10)}, path)
    writer = textwrap.dedent(f"""
        import torch, sys
        from ffnlp.training.checkpoint import save_atomic
        i = 1
        print("ready", flush=True)
        while True:
            save_atomic({{"version": torch.tensor(i), "blob": torch.full((3_000_000,), float(i))}}, {str(path)!r})
            i += 1
    """)
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait()
        proc.stdout.close()
        state = load_checkpoint(path)
        v = int(state["version"])
        assert v == 0 or torch.equal(state["blob"], torch.full((3_000_000,), float(v)))
    leftovers = [p for p in path.parent.iterdir() if p.name != "state.pt"]
    assert all(p.name.endswith(".tmp") for p in leftovers)


class StepWeights(Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_batch_end(self, trainer, loss) -> None:
        self.weights.append(trainer.model.lin.weight.detach().clone())


def test_weight_averaging_evaluates_and_ends_with_the_moving_average() -> None:
    decay = 0.9
    seen: list[torch.Tensor] = []

    def evaluate(model, source):
        seen.append(model.lin.weight.detach().clone())
        return {"accuracy": 0.5}

    steps = StepWeights()
    model = Linear()
    start = model.lin.weight.detach().clone()
    trainer = Trainer(
        model,
        cfg(
            epochs=3,
            optimizer="sgd",
            lr=0.1,
            batch_size=16,
            ema_decay=decay,
            restore_best=False,
            checkpoint=False,
            monitor="dev.accuracy",
        ),
        toy(),
        dev=toy(50, seed=1),
        evaluate=evaluate,
        callbacks=[steps],
    )
    trainer.fit()
    average, per_epoch = start, len(steps.weights) // 3
    expected_at_eval = []
    for i, w in enumerate(steps.weights, 1):
        d = min(decay, i / (3 + i))  # the warm-up of the decay (update t = i - 1)
        average = d * average + (1 - d) * w
        if i % per_epoch == 0:
            expected_at_eval.append(average)
    for got, want in zip(seen, expected_at_eval, strict=True):  # evaluation saw the average
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(trainer.model.lin.weight, average)  # and the model ends with it
    assert not torch.allclose(average, steps.weights[-1])  # which differs from the last step's


def test_weight_averaging_snapshots_the_averaged_best() -> None:
    scores = iter([0.9, 0.1, 0.1])
    seen: list[torch.Tensor] = []

    def evaluate(model, source):
        seen.append(model.lin.weight.detach().clone())
        return {"accuracy": next(scores)}

    trainer = Trainer(
        Linear(),
        cfg(
            epochs=3,
            optimizer="sgd",
            lr=0.1,
            ema_decay=0.5,
            checkpoint=False,
            monitor="dev.accuracy",
        ),
        toy(),
        dev=toy(50, seed=1),
        evaluate=evaluate,
    )
    trainer.fit()
    torch.testing.assert_close(trainer.model.lin.weight, seen[0])  # best = evaluation 1's average
