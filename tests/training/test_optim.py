"""Each optimiser, schedule, penalty and loss option does what it claims."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ffnlp import config as C
from ffnlp.training import TensorBatches, TrainConfig, Trainer
from ffnlp.training.optim import Schedule, build_optimizer, clip_gradients


class Linear(nn.Module):
    def __init__(self, d: int = 10, k: int = 2):
        super().__init__()
        self.lin = nn.Linear(d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch["x"]), batch["y"])


def toy(n: int = 400, d: int = 10, seed: int = 0) -> TensorBatches:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()  # only the first two features matter
    return TensorBatches({"x": x, "y": y})


def fit(**settings) -> tuple[Linear, Trainer]:
    torch.manual_seed(0)
    model = Linear()
    cfg = C.build(TrainConfig, {"checkpoint": False, "threads": 1, **settings})
    trainer = Trainer(model, cfg, toy())
    trainer.fit()
    return model, trainer


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": "sgd", "lr": 0.5},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"optimizer": "adam", "lr": 0.05},
        {"optimizer": "adamw", "lr": 0.05, "weight_decay": 0.01},
        {"optimizer": "adagrad", "lr": 0.5},
        {"optimizer": "rmsprop", "lr": 0.01},
    ],
)
def test_every_optimizer_learns(settings) -> None:
    _, trainer = fit(epochs=5, **settings)
    losses = [r["train"]["loss"] for r in trainer.history.epochs]
    assert losses[-1] < 0.5 * losses[0] + 0.05, losses
    assert losses[-1] < 0.35


def test_momentum_and_nesterov_change_the_path() -> None:
    plain, _ = fit(epochs=1, optimizer="sgd", lr=0.1)
    mom, _ = fit(epochs=1, optimizer="sgd", lr=0.1, momentum=0.9)
    nest, _ = fit(epochs=1, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True)
    assert not torch.allclose(plain.lin.weight, mom.lin.weight)
    assert not torch.allclose(mom.lin.weight, nest.lin.weight)


def test_batch_size_one_is_stochastic_and_full_batch_is_one_step() -> None:
    _, sgd = fit(epochs=1, batch_size=1, optimizer="sgd", lr=0.01)
    _, full = fit(epochs=1, batch_size=10_000, optimizer="sgd", lr=0.5)
    assert sgd.step == 400
    assert full.step == 1


def test_shuffling_is_seeded_and_differs_between_epochs() -> None:
    src = toy(n=20)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    first = [b["x"][:, 0].tolist() for b in src.batches(20, g1)]
    same = [b["x"][:, 0].tolist() for b in src.batches(20, g2)]
    second = [b["x"][:, 0].tolist() for b in src.batches(20, g1)]
    assert first == same
    assert first != second
    assert sorted(first[0]) == sorted(second[0])


def lrs(schedule: str, steps_per_epoch: int = 10, **kw) -> list[float]:
    cfg = C.build(TrainConfig, {"schedule": schedule, "lr": 1.0, "epochs": 4, **kw})
    opt = build_optimizer(Linear(), cfg)
    sched = Schedule(opt, cfg, steps_per_epoch)
    out = []
    for step in range(40):
        sched.set_step(step)
        out.append(sched.lr())
    return out


def test_schedules_follow_their_formulas() -> None:
    assert lrs("constant") == [1.0] * 40
    step = lrs("step", step_size=1, gamma=0.5)
    assert step[0] == 1.0 and step[10] == 0.5 and step[39] == 0.125
    linear = lrs("linear", min_lr_ratio=0.0)
    assert (
        linear[0] == 1.0
        and linear[20] == pytest.approx(0.5)
        and linear[39] == pytest.approx(1 / 40)
    )
    cosine = lrs("cosine")
    assert cosine[20] == pytest.approx(0.5) and cosine[10] == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )
    warm = lrs("linear", warmup_steps=4)
    assert warm[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert warm[4] == pytest.approx(1.0) and warm[5] < 1.0


def test_the_warm_up_is_at_most_a_fraction_of_a_short_run() -> None:
    # 40 steps in all: a warm-up of 300 steps is cut to 10% of the run, 4 steps
    capped = lrs("constant", warmup_steps=300)
    assert capped[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert lrs("constant", warmup_steps=300, max_warmup_fraction=0.5)[19:21] == [1.0, 1.0]
    assert lrs("constant", warmup_steps=300, max_warmup_fraction=0.5)[18] == pytest.approx(0.95)
    # the cap changes nothing where the warm-up is short enough already
    assert lrs("linear", warmup_steps=3) == lrs("linear", warmup_steps=3, max_warmup_fraction=1)
    cosine = lrs("cosine", warmup_steps=300)  # the decay starts after the capped warm-up
    assert cosine[3] == cosine[4] == 1.0 and cosine[5] < 1.0
    assert lrs("constant", warmup_steps=2, max_warmup_fraction=0.0) == [1.0] * 40


def test_plateau_schedule_decays_after_patience() -> None:
    cfg = C.build(
        TrainConfig, {"schedule": "plateau", "lr": 1.0, "gamma": 0.1, "plateau_patience": 1}
    )
    opt = build_optimizer(Linear(), cfg)
    sched = Schedule(opt, cfg, 10)
    for value in (1.0, 0.9, 0.95, 0.97):  # lower is better: best 0.9, then two without improvement
        sched.on_evaluation(value, "min", 0)
    assert sched.lr() == pytest.approx(0.1)


def test_l1_drives_irrelevant_weights_towards_zero() -> None:
    plain, _ = fit(epochs=15, optimizer="sgd", lr=0.2)
    sparse, _ = fit(epochs=15, optimizer="sgd", lr=0.2, l1=0.01)
    irrelevant = slice(2, None)  # features 2..9 do not affect the label
    before = plain.lin.weight[:, irrelevant].abs().mean()
    after = sparse.lin.weight[:, irrelevant].abs().mean()
    assert after < 0.3 * before
    assert sparse.lin.weight[:, :2].abs().mean() > 0.2  # the relevant ones survive


def test_l2_and_weight_decay_shrink_weights_but_not_biases() -> None:
    plain, _ = fit(epochs=10, optimizer="sgd", lr=0.2)
    l2, _ = fit(epochs=10, optimizer="sgd", lr=0.2, l2=0.1)
    wd, _ = fit(epochs=10, optimizer="sgd", lr=0.2, weight_decay=0.5)
    elastic, _ = fit(epochs=10, optimizer="sgd", lr=0.2, l1=0.01, l2=0.1)
    norm = plain.lin.weight.norm()
    assert l2.lin.weight.norm() < 0.7 * norm
    assert wd.lin.weight.norm() < 0.7 * norm
    assert elastic.lin.weight.norm() < l2.lin.weight.norm()


def test_clipping_bounds_the_global_norm() -> None:
    model = Linear()
    loss = model.loss({"x": torch.randn(8, 10) * 100, "y": torch.zeros(8, dtype=torch.long)})
    loss.backward()
    params = list(model.parameters())
    before = clip_gradients(params, 0.5)
    after = torch.sqrt(sum(p.grad.pow(2).sum() for p in params))
    assert before > 0.5
    assert after == pytest.approx(0.5, rel=1e-3)


def test_lazy_adam_matches_torch_sparse_adam() -> None:
    from ffnlp.training.optim import LazyAdam

    table = torch.randn(300, 8)
    ours, theirs = nn.Parameter(table.clone()), nn.Parameter(table.clone())
    opt_ours, opt_theirs = LazyAdam([ours], lr=0.01), torch.optim.SparseAdam([theirs], lr=0.01)
    g = torch.Generator().manual_seed(0)
    touched = torch.zeros(300, dtype=torch.bool)
    for _ in range(30):
        rows = torch.randint(0, 250, (50,), generator=g)  # repeats: the gradient is uncoalesced
        touched[rows] = True
        values = torch.randn(50, 8, generator=g)
        grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, (300, 8), check_invariants=True)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.equal(ours.detach()[~touched], table[~touched])  # rows 250.. never had a gradient
    assert not torch.equal(ours.detach()[touched], table[touched])


def test_a_closure_is_evaluated_and_its_loss_returned_as_torch_does() -> None:
    from ffnlp.training.optim import LazyAdam, Optimizers

    start, rows = torch.randn(20, 4), torch.tensor([1, 3, 3, 7])
    params = [nn.Parameter(start.clone()) for _ in range(3)]
    lazy = LazyAdam([params[0]], lr=0.1)
    sparse = torch.optim.SparseAdam([params[1]], lr=0.1)
    parts = Optimizers([LazyAdam([params[2]], lr=0.1)])

    def closure(param: nn.Parameter, opt: torch.optim.Optimizer):
        def run() -> float:
            opt.zero_grad()
            loss = nn.functional.embedding(rows, param, sparse=True).pow(2).sum()
            loss.backward()
            return float(loss.detach())

        return run

    for _ in range(3):
        ours, theirs, both = (
            opt.step(closure(p, opt)) for p, opt in zip(params, (lazy, sparse, parts), strict=True)
        )
        assert ours == pytest.approx(theirs, rel=1e-6) and both == ours
    assert torch.allclose(params[0], params[1], atol=1e-6)
    assert torch.equal(params[0], params[2])
    assert torch.equal(params[0].detach()[0], start[0])  # a row without gradient never moves
