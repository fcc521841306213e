"""The word2vec CPU kernels against the plain PyTorch reference: pair scores, the fused SGD step,
its layout and the helper threads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from ffnlp.models.kernels.sgns_cpu import PairScores, fused_step_layout, stable_word_order
from ffnlp.models.kernels.threads import SharedPool
from ffnlp.models.skipgram import SkipGram


@pytest.mark.parametrize("sparse", [True, False])
def test_pair_scores_backward_matches_autograd(sparse: bool) -> None:
    v, d = 7, 3
    w_in = torch.randn(v, d, dtype=torch.float64, requires_grad=True)
    w_out = torch.randn(v, d, dtype=torch.float64, requires_grad=True)
    source = torch.tensor([0, 3, 3, 6])
    targets = torch.tensor([[1, 2, 2], [0, 3, 5], [6, 6, 1], [4, 0, 3]])
    weights = torch.randn(4, 3, dtype=torch.float64)
    scores = PairScores.apply(w_in, w_out, source, targets, sparse)
    (scores * weights).sum().backward()
    got_in = w_in.grad.to_dense() if sparse else w_in.grad
    got_out = w_out.grad.to_dense() if sparse else w_out.grad
    a = w_in.detach().clone().requires_grad_()
    b = w_out.detach().clone().requires_grad_()
    ref = (F.embedding(targets, b) * F.embedding(source, a).unsqueeze(1)).sum(-1)
    torch.testing.assert_close(scores, ref)
    (ref * weights).sum().backward()
    torch.testing.assert_close(got_in, a.grad)
    torch.testing.assert_close(got_out, b.grad)


def test_threaded_slices_give_the_same_scores_and_gradients() -> None:
    v, d, b = 50, 8, 1100  # large enough to be split into 3 slices
    w_in, w_out = torch.randn(v, d), torch.randn(v, d)
    source, targets = torch.randint(v, (b,)), torch.randint(v, (b, 6))
    weights = torch.randn(b, 6)
    results = []
    for workers in (1, 3):
        a = w_in.clone().requires_grad_()
        c = w_out.clone().requires_grad_()
        scores = PairScores.apply(a, c, source, targets, True, workers)
        (scores * weights).sum().backward()
        results.append((scores.detach(), a.grad.to_dense(), c.grad.to_dense()))
    for x, y in zip(*results, strict=True):
        torch.testing.assert_close(x, y)


def _random_batch(v: int, b: int, n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "center": torch.randint(v, (b,), generator=g),
        "context": torch.randint(v, (b,), generator=g),
        "negatives": torch.randint(v, (b, n), generator=g),
    }


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("sparse", [True, False])
def test_fused_model_matches_the_reference_model(sparse: bool, shared: bool) -> None:
    """The model's one switch: fused=True (kernels) and fused=False (plain PyTorch) give the same
    loss and gradients, for per-pair and shared noise words."""
    v = 40
    batch = _random_batch(v, 300, seed=3)
    if shared:  # 300 pairs of 60 centres, each centre's 5 noise words shared by its pairs
        batch = {
            **batch,
            "center": batch["center"][:60],
            "negatives": batch["negatives"][:60],
            "pair_center": torch.arange(300) // 5,
            "noise_weight": torch.full((60,), 5.0),
        }
    results = []
    for fused in (True, False):
        torch.manual_seed(2)
        model = SkipGram(vocab_size=v, dim=6, sparse=sparse, fused=fused, workers=2)
        with torch.no_grad():
            model.output.weight.normal_(0, 0.5)
        loss = model.loss(batch)
        loss.backward()
        grads = [p.grad.to_dense() if sparse else p.grad for p in model.parameters()]
        results.append((loss.detach(), *grads))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("v", [30, 600])  # 600: the output rows are split between threads
def test_sgd_step_makes_the_autograd_sgd_update(workers: int, v: int) -> None:
    # the fused step = loss.backward() + SGD(lr).step() of the reference model, with repeated
    # rows in the batch
    b, lr = 900, 0.1
    torch.manual_seed(1)
    fused = SkipGram(vocab_size=v, dim=6, workers=workers)
    with torch.no_grad():
        fused.output.weight.normal_(0, 0.5)  # not zero, so both tables move
    ref = SkipGram(vocab_size=v, dim=6, fused=False)
    ref.load_state_dict(fused.state_dict())
    opt = torch.optim.SGD(ref.parameters(), lr=lr)
    for step in range(3):
        batch = _random_batch(v, b, seed=step)
        batch["center"] = batch["center"].sort().values  # runs of pairs sharing a centre
        if step == 1:  # as the batch producer hands it over, with the layout computed ahead
            batch.update(fused_step_layout(batch))
        loss = fused.sgd_step(batch, lr)
        opt.zero_grad()
        expected = ref.loss(batch)
        expected.backward()
        opt.step()
        assert loss is not None
        assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
        for name, p in ref.state_dict().items():
            torch.testing.assert_close(fused.state_dict()[name], p, rtol=1e-4, atol=1e-5)


def test_sgd_step_declines_cbow_shared_noise_and_the_reference_model() -> None:
    model = SkipGram(vocab_size=5, dim=3, cbow=True)
    before = model.input.weight.clone()
    assert model.sgd_step(_random_batch(5, 4), 0.1) is None
    shared = SkipGram(vocab_size=5, dim=3)
    assert shared.sgd_step({**_random_batch(5, 4), "pair_center": torch.zeros(4)}, 0.1) is None
    torch.testing.assert_close(model.input.weight, before)  # nothing changed
    tiny = SkipGram(vocab_size=4, dim=3)  # 6 targets a pair, 4 words: the autograd path's job
    assert tiny.sgd_step(_random_batch(4, 8), 0.1) is None
    plain = SkipGram(vocab_size=30, dim=3, fused=False)  # the switch turns the kernel off
    before = plain.input.weight.clone()
    assert plain.sgd_step(_random_batch(30, 8), 0.1) is None
    torch.testing.assert_close(plain.input.weight, before)


@pytest.mark.parametrize("high", [50, 70_000, 5_000_000])  # one radix pass, two, two (> 2**16)
def test_stable_word_order_sorts_stably(high: int) -> None:
    ids = torch.randint(high, (5000,), generator=torch.Generator().manual_seed(0))
    ids[::7] = ids[0]  # plenty of ties
    order = stable_word_order(ids)
    expected = torch.sort(ids, stable=True).indices
    assert torch.equal(order.long(), expected)


def test_the_shared_thread_pool_grows_and_shuts_the_smaller_one_down() -> None:
    pool = SharedPool()
    small = pool.get(1)
    assert pool.get(1) is small  # reused while big enough
    big = pool.get(3)
    assert big is not small and pool.size == 3
    assert pool.get(2) is big
    with pytest.raises(RuntimeError):
        small.submit(int)  # shut down: no thread of it is left behind
    big.shutdown()


def test_importing_the_kernels_does_no_work_and_the_first_step_hides_the_csr_warning() -> None:
    """torch warns once per process that sparse CSR tensors are in beta. Importing the model and
    its kernels must not take that warning (nothing runs at import); the first fused step takes
    it, silently, and only once. In a fresh process, as the warning is once per process."""
    script = """
import warnings
import torch
import ffnlp.models.skipgram
from ffnlp.models.kernels import sgns_cpu
from ffnlp.models.skipgram import SkipGram

assert sgns_cpu._quiet_csr_beta_warning.cache_info().currsize == 0, "ran at import"
warnings.simplefilter("error")
model = SkipGram(vocab_size=20, dim=4)
g = torch.Generator().manual_seed(0)
batch = {"center": torch.randint(20, (8,), generator=g).sort().values,
         "context": torch.randint(20, (8,), generator=g),
         "negatives": torch.randint(20, (8, 3), generator=g)}
for _ in range(2):
    assert model.sgd_step(batch, 0.1) is not None  # no warning escapes the step
assert sgns_cpu._quiet_csr_beta_warning.cache_info().misses == 1
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
