"""The bag classifiers' compiled step (models/kernels/bag_step.py) against the PyTorch reference:
autograd + the configured optimiser, in float64, with the same random draws."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from ffnlp import jit
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.pooled import BagBatches, Bags, PooledEmbeddingClassifier
from ffnlp.tasks.classify.fused import BagStep, fused_step
from ffnlp.training import Trainer
from ffnlp.training.config import TrainConfig
from ffnlp.training.data import SparseRowBatches

needs_jit = pytest.mark.skipif(not jit.enabled(), reason="numba off (FFNLP_JIT=0) or missing")

V, D = 40, 6


def bag_batch(
    b: int, k: int, gen: torch.Generator, weights: bool = False, empty: bool = True
) -> dict[str, torch.Tensor]:
    """``b`` bags of 0-7 ids (with repeats) over V rows, labels of ``k`` classes."""
    lengths = torch.randint(1, 8, (b,), generator=gen)
    if empty:
        lengths[1] = 0  # an empty bag pools to zeros
    offsets = torch.cumsum(lengths, 0) - lengths
    ids = torch.randint(0, V, (int(lengths.sum()),), generator=gen)
    batch = {"ids": ids, "offsets": offsets, "y": torch.randint(0, k, (b,), generator=gen)}
    if weights:
        batch["weights"] = torch.rand(ids.numel(), generator=gen, dtype=torch.float64) + 0.5
    return batch


def pooled(k: int, pooling: str = "mean", **kw: Any) -> PooledEmbeddingClassifier:
    torch.manual_seed(3)
    model = PooledEmbeddingClassifier(V, k, D, pooling=pooling, sparse=True, **kw).double()
    with torch.no_grad():
        model.mlp.layers[-1].bias.fill_(0.1)
    return model


def mlp(k: int, hidden: tuple[int, ...] = (5,), **kw: Any) -> FeatureMLP:
    torch.manual_seed(4)
    return FeatureMLP(V, k, hidden=hidden, sparse=True, **kw).double()


def config(optimizer: str = "adam", **kw: Any) -> TrainConfig:
    return TrainConfig(optimizer=optimizer, sparse=True, lr=0.05, checkpoint=False, **kw)


def trainer_for(model: torch.nn.Module, cfg: TrainConfig, batch: dict[str, Any]) -> Trainer:
    bags = Bags(batch["ids"], batch["offsets"], batch["y"])
    return Trainer(model, cfg, BagBatches(bags))


def kept_bags(
    batch: dict[str, torch.Tensor], keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's word dropout (pooled.drop_words) with the given draws."""
    ids, offsets = batch["ids"], batch["offsets"]
    n, b = ids.numel(), offsets.numel()
    lengths = torch.diff(offsets, append=offsets.new_tensor([n]))
    bag = torch.repeat_interleave(torch.arange(b), lengths)
    kept = torch.zeros(b, dtype=torch.long).index_add_(0, bag, keep.long())
    emptied = kept == 0
    keep = keep | emptied[bag]
    new_lengths = torch.where(emptied, lengths, kept)
    return ids[keep], torch.cumsum(new_lengths, 0) - new_lengths


def reference_pooled_loss(
    model: PooledEmbeddingClassifier,
    batch: dict[str, torch.Tensor],
    word_u: torch.Tensor | None,
    drop_u: torch.Tensor | None,
) -> torch.Tensor:
    """The loss with the reference's ops, the draws ``word_u`` and ``drop_u`` made masks."""
    ids, offsets = batch["ids"], batch["offsets"]
    if word_u is not None:
        ids, offsets = kept_bags(batch, word_u >= model.word_dropout)
    drop = masks(drop_u, model.mlp.layers[0].p) if drop_u is not None else None
    pooled_vec = model.embedding(ids, offsets)  # (B, D)
    if drop is not None:
        pooled_vec = pooled_vec * drop
    linear = model.mlp.layers[-1]
    return model.head.loss(linear(pooled_vec), batch["y"])


def reference_mlp_loss(
    model: FeatureMLP,
    batch: dict[str, torch.Tensor],
    weights: torch.Tensor,
    drop_u: torch.Tensor | None,
) -> torch.Tensor:
    drop = masks(drop_u, model.rest[1].p) if drop_u is not None else None
    h = model.input(batch["ids"], batch["offsets"], per_sample_weights=weights)
    h = torch.relu(h + model.input_bias)
    if drop is not None:
        h = h * drop
    linear = model.rest[2].layers[-1]
    return model.head.loss(linear(h), batch["y"])


def compare(a: torch.nn.Module, b: torch.nn.Module, ta: Trainer, tb: Trainer) -> None:
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12, msg=name)
    # the optimiser's state is the same too: a checkpoint or an autograd step carries on
    sa, sb = ta.optimizer.state_dict(), tb.optimizer.state_dict()
    torch.testing.assert_close(sa, sb, rtol=1e-10, atol=1e-12)


def masks(drop_u: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout's multipliers from uniform draws: 0 below ``p``, 1 / (1 - p) above."""
    return (drop_u >= p).double() / (1 - p)


def draws(batch: dict[str, torch.Tensor], word: bool, drop: bool, width: int, g: Any):
    word_u = torch.rand(batch["ids"].numel(), generator=g) if word else None
    drop_u = torch.rand(batch["offsets"].numel(), width, generator=g) if drop else None
    return word_u, drop_u


@needs_jit
@pytest.mark.parametrize(
    ("k", "pooling", "optimizer"),
    [(2, "mean", "adam"), (3, "mean", "adam"), (2, "sum", "sgd"), (4, "mean", "sgd")],
)
def test_pooled_step_matches_autograd(k: int, pooling: str, optimizer: str) -> None:
    g = torch.Generator().manual_seed(k)
    batches = [bag_batch(6, k, g) for _ in range(4)]
    cfg = config(optimizer)
    ref = pooled(k, pooling, input_dropout=0.3, word_dropout=0.4)
    fused = pooled(k, pooling, input_dropout=0.3, word_dropout=0.4)
    fused.load_state_dict(ref.state_dict())
    t_ref, t_fused = trainer_for(ref, cfg, batches[0]), trainer_for(fused, cfg, batches[0])
    step = fused_step(fused, cfg)
    assert isinstance(step, BagStep)
    step.bind(t_fused)
    for i, batch in enumerate(batches):
        if i == 2:  # memory replaced under the parameter: the step follows it
            fused.embedding.weight.data = fused.embedding.weight.data.clone()
        word_u, drop_u = draws(batch, True, True, D, g)
        loss = reference_pooled_loss(ref, batch, word_u, drop_u)
        t_ref.optimizer.zero_grad()
        loss.backward()
        t_ref.optimizer.step()
        fused_loss = step.run(batch, cfg.lr, word_u, None, drop_u)
        assert fused_loss == pytest.approx(loss.item(), rel=1e-12)
    compare(ref, fused, t_ref, t_fused)


@needs_jit
@pytest.mark.parametrize(("k", "optimizer"), [(2, "adam"), (3, "adam"), (2, "sgd")])
def test_mlp_step_matches_autograd(k: int, optimizer: str) -> None:
    g = torch.Generator().manual_seed(10 + k)
    batches = [bag_batch(5, k, g, weights=True) for _ in range(4)]
    cfg = config(optimizer)
    ref, fused = mlp(k, dropout=0.5), mlp(k, dropout=0.5)
    fused.load_state_dict(ref.state_dict())
    t_ref, t_fused = trainer_for(ref, cfg, batches[0]), trainer_for(fused, cfg, batches[0])
    step = fused_step(fused, cfg)
    assert isinstance(step, BagStep)
    step.bind(t_fused)
    for batch in batches:
        _, drop_u = draws(batch, False, True, 5, g)
        loss = reference_mlp_loss(ref, batch, batch["weights"], drop_u)
        t_ref.optimizer.zero_grad()
        loss.backward()
        t_ref.optimizer.step()
        fused_loss = step.run(batch, cfg.lr, None, batch["weights"], drop_u)
        assert fused_loss == pytest.approx(loss.item(), rel=1e-12)
    compare(ref, fused, t_ref, t_fused)


@needs_jit
def test_float32_step_close_to_autograd() -> None:
    """The models' own dtype: the same update within float32 rounding."""
    g = torch.Generator().manual_seed(7)
    batch = bag_batch(8, 2, g)
    cfg = config()
    ref = pooled(2).float()
    fused = pooled(2).float()
    t_ref, t_fused = trainer_for(ref, cfg, batch), trainer_for(fused, cfg, batch)
    step = fused_step(fused, cfg)
    assert step is not None
    step.bind(t_fused)
    loss = reference_pooled_loss(ref, batch, None, None)
    loss.backward()
    t_ref.optimizer.step()
    step.run(batch, cfg.lr, None, None, None)
    for pa, pb in zip(ref.parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


@needs_jit
def test_trainer_fit_same_weights_as_autograd() -> None:
    """Whole fits through the Trainer (no random draws): the compiled step, chosen by the
    model, ends where autograd + LazyAdam/Adam ends."""
    g = torch.Generator().manual_seed(1)
    data = [bag_batch(1, 2, g, empty=False) for _ in range(50)]
    ids = torch.cat([b["ids"] for b in data])
    lengths = torch.tensor([b["ids"].numel() for b in data])
    bags = Bags(ids, torch.cumsum(lengths, 0) - lengths, torch.cat([b["y"] for b in data]))
    cfg = TrainConfig(optimizer="adam", sparse=True, lr=0.05, epochs=2, batch_size=8)
    ref, fused = pooled(2), pooled(2)
    t_ref = Trainer(ref, cfg, BagBatches(bags))
    t_fused = Trainer(fused, cfg, BagBatches(bags), step=fused_step(fused, cfg))
    t_ref.fit()
    t_fused.fit()
    assert isinstance(t_fused.step_strategy, BagStep)
    compare(ref, fused, t_ref, t_fused)
    assert [r["train"]["loss"] for r in t_ref.history.epochs] == pytest.approx(
        [r["train"]["loss"] for r in t_fused.history.epochs], rel=1e-10
    )


@needs_jit
def test_dense_rows_take_the_autograd_step() -> None:
    """A FeatureMLP fed dense rows (no bags) trains through the fallback."""
    cfg = config("sgd")
    model = mlp(2)
    x = torch.rand(6, V, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    from ffnlp.training.data import TensorBatches

    step = fused_step(model, cfg)
    assert step is not None
    trainer = Trainer(model, cfg, TensorBatches({"x": x, "y": y}), step=step)
    before = model.input.weight.detach().clone()
    trainer.fit()
    assert not torch.equal(before, model.input.weight)
    assert trainer.step > 0


@pytest.mark.parametrize(
    ("build", "cfg", "why"),
    [
        (lambda: pooled(2, hidden=[4]), config(), "a hidden layer"),
        (lambda: pooled(2, label_smoothing=0.1), config(), "label smoothing"),
        (lambda: pooled(2, class_weight=[1.0, 2.0]), config(), "class weights"),
        (lambda: pooled(3, multilabel=True), config(), "multi-label"),
        (lambda: pooled(2, fused=False), config(), "fused=False"),
        (lambda: pooled(2), config(clip_norm=1.0), "clipping"),
        (lambda: pooled(2), config("adam", weight_decay=0.1), "weight decay"),
        (lambda: pooled(2), TrainConfig(optimizer="adam", sparse=False), "dense Adam"),
        (lambda: pooled(2), config("sgd", momentum=0.9), "momentum"),
        (lambda: pooled(2), config(fused_step=False), "train.fused_step = false"),
        (lambda: mlp(2, hidden=(4, 3)), config(), "two hidden layers"),
        (lambda: mlp(2, activation="tanh"), config(), "tanh"),
        (lambda: FeatureMLP(V, 2, sparse=True), config(), "no hidden layer"),
    ],
)
def test_autograd_where_the_kernel_does_not_apply(build: Any, cfg: TrainConfig, why: str) -> None:
    assert fused_step(build(), cfg) is None, why


def test_jit_off_takes_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFNLP_JIT", "0")
    jit.reset()
    try:
        assert fused_step(pooled(2), config()) is None
        assert fused_step(mlp(2), config()) is None
    finally:
        monkeypatch.delenv("FFNLP_JIT")
        jit.reset()


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_row_batches_same_batches_as_row_selection() -> None:
    """The epoch laid out once, then sliced: each batch is the rows of the shuffled order."""
    x = torch.tensor([[0, 1.0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0], [1, 1, 1, 1], [0, 0, 5, 0]])
    y = torch.arange(5)
    source = SparseRowBatches(x.to_sparse_csr(), y=y)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    got = list(source.batches(2, gen))
    assert len(got) == 3
    for i, batch in enumerate(got):
        want = source.rows(order[2 * i : 2 * i + 2])
        for key in want:
            assert torch.equal(batch[key], want[key]), key
        dense = torch.zeros(len(batch["y"]), 4)
        rows = torch.repeat_interleave(
            torch.arange(len(batch["y"])),
            torch.diff(batch["offsets"], append=torch.tensor([batch["ids"].numel()])),
        )
        dense[rows, batch["ids"]] = batch["weights"]
        assert torch.equal(dense, x[batch["y"]])
    assert F.one_hot(torch.cat([b["y"] for b in got]), 5).sum(0).tolist() == [1] * 5


@needs_jit
def test_best_weights_copies_only_moved_rows_and_match_a_full_copy() -> None:
    """BestWeights takes the rows the compiled step reports moved; its snapshot equals a whole
    copy taken at the same evaluations."""
    import contextlib

    from ffnlp.training.best_weights import BestWeights
    from ffnlp.training.callbacks import Callback

    class FullCopies(Callback):
        def __init__(self) -> None:
            self.last: dict[str, torch.Tensor] | None = None

        @contextlib.contextmanager
        def evaluation_context(self, trainer: Trainer):  # type: ignore[no-untyped-def]
            best = trainer.history.best_step
            yield
            if trainer.history.best_step != best:
                self.last = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    g = torch.Generator().manual_seed(5)
    data = [bag_batch(1, 2, g, empty=False) for _ in range(60)]
    ids = torch.cat([b["ids"] for b in data])
    lengths = torch.tensor([b["ids"].numel() for b in data])
    bags = Bags(ids, torch.cumsum(lengths, 0) - lengths, torch.cat([b["y"] for b in data]))
    cfg = TrainConfig(
        optimizer="adam",
        sparse=True,
        lr=0.05,
        epochs=4,
        batch_size=8,
        eval_every=3,
        monitor="dev.loss",
    )
    model = pooled(2, word_dropout=0.3, input_dropout=0.2)
    full = FullCopies()
    trainer = Trainer(
        model,
        cfg,
        BagBatches(bags),
        dev=BagBatches(bags),
        callbacks=[full],
        step=fused_step(model, cfg),
    )
    best = next(cb for cb in trainer.callbacks if isinstance(cb, BestWeights))
    best_state: list[dict[str, torch.Tensor]] = []
    original = best.on_fit_end
    best.on_fit_end = lambda t: (best_state.append(dict(best.state or {})), original(t))  # type: ignore[method-assign]
    trainer.fit()
    assert full.last is not None and best_state
    assert len(trainer.history.records) > 10
    for k, v in full.last.items():
        assert torch.equal(best_state[0][k], v), k
    for k, v in model.state_dict().items():
        assert torch.equal(v, full.last[k]), k
