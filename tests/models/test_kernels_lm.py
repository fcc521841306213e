"""The feed-forward LM's CPU kernels against the plain PyTorch reference (``fused=False``): the
byte-mask dropout, the tied look-up under autocast, the bf16 softmax cross-entropy, the output
layer + cross-entropy node."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.models.kernels.lm_cpu import (
    ByteMaskDropout,
    TiedLookup,
    output_cross_entropy,
    softmax_cross_entropy,
    tied_lookup,
)
from ffnlp.models.lm import FeedForwardLM

V = 37


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread (and do not fight other jobs for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tied_lookup_gives_the_gradients_of_autograd() -> None:
    """The look-up + low-precision copy of a tied table (one autograd node) against autograd's
    own embedding + linear, in float64 so that the comparison is exact to rounding."""
    torch.manual_seed(0)
    weight = torch.randn(V, 5, requires_grad=True)
    ids = torch.randint(0, V, (6, 3))
    h = torch.randn(6, 5, dtype=torch.float64)
    table, e = TiedLookup.apply(ids, weight, torch.float64)
    assert table.dtype == e.dtype == torch.float64
    loss = (h @ table.t()).sin().sum() + (e**2).sum()
    loss.backward()
    ours = weight.grad.clone()
    weight.grad = None
    table = weight.double()
    ((h @ table.t()).sin().sum() + (F.embedding(ids, table) ** 2).sum()).backward()
    torch.testing.assert_close(ours, weight.grad)


def test_tied_lookup_acts_under_autocast_or_when_the_weight_trains() -> None:
    """A bf16 copy under autocast; outside it the weight itself (no copy) when its gradient is
    wanted; None when there is no gradient to make (a frozen table, or no_grad)."""
    weight = torch.randn(V, 4)
    ids = torch.randint(0, V, (5, 2))
    assert tied_lookup(ids, weight) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pair = tied_lookup(ids, weight)
    assert pair is not None
    table, e = pair
    assert table.dtype == e.dtype == torch.bfloat16
    torch.testing.assert_close(e, weight.to(torch.bfloat16)[ids])
    weight.requires_grad_()
    with torch.no_grad():
        assert tied_lookup(ids, weight) is None
    pair = tied_lookup(ids, weight)
    assert pair is not None
    table, e = pair
    assert table.dtype == torch.float32 and table.data_ptr() == weight.data_ptr()
    torch.testing.assert_close(e, weight.detach()[ids], rtol=0, atol=0)


def test_tied_lookup_in_fp32_gives_the_gradients_of_autograd() -> None:
    """Outside autocast (the table is the weight itself): the look-up's rows are added into the
    output product's gradient, against autograd's dense look-up gradient + sum; the same ids
    several times (rows that accumulate)."""
    torch.manual_seed(0)
    weight = torch.randn(V, 5, requires_grad=True)
    ids = torch.randint(0, V, (6, 3))
    ids[0] = ids[1]
    h = torch.randn(6, 5)
    grads = []
    for ours in (True, False):
        pair = tied_lookup(ids, weight) if ours else None
        table, e = pair if pair is not None else (weight, F.embedding(ids, weight))
        ((h @ table.t()).sin().sum() + (e**2).sum()).backward()
        grads.append(weight.grad.clone())
        weight.grad = None
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_mask_keeps_one_minus_p_scaled_up(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    drop = ByteMaskDropout(0.25)
    mask = drop.mask(torch.Size((400, 300)), dtype, torch.device("cpu"))
    assert mask.shape == (400, 300) and mask.dtype == dtype
    values = mask.unique()
    assert values.tolist() == [0.0, torch.tensor(256 / 192, dtype=dtype).item()]
    assert abs((mask == 0).float().mean().item() - 0.25) < 0.005
    assert abs(mask.float().mean().item() - 1.0) < 0.01  # the expected value kept


def test_byte_mask_dropout_behaves_as_torch_dropout() -> None:
    """Same drop rate and scale as nn.Dropout (p a multiple of 1/256 here), identity in eval."""
    torch.manual_seed(0)
    x = torch.rand(300, 200) + 0.5
    ours, ref = ByteMaskDropout(0.25), nn.Dropout(0.25)
    a, b = ours(x), ref(x)
    for y in (a, b):
        assert abs((y == 0).float().mean().item() - 0.25) < 0.01
        torch.testing.assert_close(y[y != 0], (x / 0.75)[y != 0])
    ours.eval()
    assert ours(x) is x


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_softmax_cross_entropy_matches_torch(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    scores = (3 * torch.randn(16, V)).to(dtype)
    target = torch.randint(0, V, (16,))
    z = scores.clone().requires_grad_()
    loss = softmax_cross_entropy(z, target)
    loss.backward()
    zr = scores.clone().double().requires_grad_()
    expected = F.cross_entropy(zr, target)
    expected.backward()
    assert loss.dtype == torch.float32  # the mean is taken in fp32
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-6
    assert abs(loss.item() - expected.item()) < tol
    assert z.grad is not None and z.grad.dtype == dtype
    torch.testing.assert_close(z.grad.double(), zr.grad, atol=tol, rtol=0)


def _output_reference(
    h: torch.Tensor, table: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor
) -> torch.Tensor:
    """What the node replaces, in autograd's terms: product, bias, cross-entropy."""
    return F.cross_entropy(F.linear(h, table, bias), target)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("upstream", [1.0, 0.37])
def test_output_cross_entropy_gives_the_loss_and_gradients_of_autograd(
    with_bias: bool, upstream: float
) -> None:
    """float64 throughout: the node's loss and its three gradients against autograd's graph,
    to rounding; ``upstream``: a loss scaled afterwards (torchrun's unequal batches)."""
    torch.manual_seed(0)
    B, D = 24, 6
    h0 = torch.randn(B, D, dtype=torch.float64)
    table0 = torch.randn(V, D, dtype=torch.float64)
    bias0 = torch.randn(V, dtype=torch.float64) if with_bias else None
    target = torch.randint(0, V, (B,))
    target[:3] = target[3]  # repeated targets: the onehot subtraction accumulates per row only
    results = []
    for fn in (output_cross_entropy, _output_reference):
        h, table = h0.clone().requires_grad_(), table0.clone().requires_grad_()
        bias = bias0.clone().requires_grad_() if bias0 is not None else None
        loss = fn(h, table, bias, target)
        (loss * upstream).backward()
        grads = [h.grad, table.grad] + ([bias.grad] if bias is not None else [])
        results.append((loss.detach(), grads))
    (ours, our_grads), (expected, expected_grads) = results
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected)
    for a, b in zip(our_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_output_cross_entropy_in_bf16_is_close_to_fp32() -> None:
    """Under bf16 autocast (fp32 table and bias, as the untied model has them): the loss within
    bf16's rounding of the fp32 reference, the gradients within 2 % (relative norm)."""
    torch.manual_seed(1)
    B, D, vocab = 64, 32, 300
    h0 = torch.randn(B, D)
    table0, bias0 = 0.3 * torch.randn(vocab, D), 0.1 * torch.randn(vocab)
    target = torch.randint(0, vocab, (B,))
    results = []
    for fused in (True, False):
        h = h0.clone().requires_grad_()
        table, bias = table0.clone().requires_grad_(), bias0.clone().requires_grad_()
        if fused:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = output_cross_entropy(h, table, bias, target)
        else:
            loss = _output_reference(h, table, bias, target)
        loss.backward()
        assert loss.dtype == torch.float32
        assert h.grad.dtype == table.grad.dtype == bias.grad.dtype == torch.float32
        results.append((loss.item(), [h.grad, table.grad, bias.grad]))
    assert abs(results[0][0] - results[1][0]) < 1e-2
    names = ["h", "table", "bias"]
    for name, ours, expected in zip(names, results[0][1], results[1][1], strict=True):
        error = (ours - expected).norm() / expected.norm()
        assert error < 0.02, (name, error.item())


def test_the_fused_loss_takes_the_output_node_and_the_reference_does_not() -> None:
    """The switch: fused=True computes the loss through the node (its backward is in the
    graph), fused=False through F.cross_entropy; a direct connection keeps the plain path."""
    context, target = torch.randint(0, V, (8, 3)), torch.randint(0, V, (8,))
    cfg = {"context_size": 3, "embedding_dim": 8, "hidden_sizes": [16], "precision": "fp32"}
    for options, fused, node in (
        ({}, True, "OutputCrossEntropyBackward"),
        ({}, False, "NllLossBackward"),
        ({"direct": True}, True, "NllLossBackward"),
    ):
        model = FeedForwardLM(V, {**cfg, **options}, fused=fused)
        loss = model.loss({"context": context, "target": target})
        assert loss.grad_fn is not None
        names = []
        todo = [loss.grad_fn]
        while todo:
            fn = todo.pop()
            names.append(type(fn).__name__)
            todo += [f for f, _ in fn.next_functions if f is not None]
        assert any(node in n for n in names), (options, fused, names)


def _pair(options: dict, vocab: int = V) -> tuple[FeedForwardLM, FeedForwardLM]:
    """A fused model and a reference model with the same weights."""
    cfg = {
        "context_size": 3,
        "embedding_dim": 8,
        "hidden_sizes": [16],
        "dropout": 0.0,
        "precision": "fp32",  # the default, "auto", is bf16 on a CPU with bf16 units
        **options,
    }
    fused = FeedForwardLM(vocab, cfg)
    reference = FeedForwardLM(vocab, cfg, fused=False)
    reference.load_state_dict(fused.state_dict())
    return fused, reference


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tie_weights": False},
        {"hidden_sizes": [12], "embedding_dim": 12},  # tied without a projection
        {"hidden_sizes": [16, 8], "activation": "relu", "direct": True},
        {"softmax": "adaptive", "tie_weights": False, "adaptive_cutoffs": [5, 20]},
    ],
)
def test_fused_fp32_step_equals_the_reference(options: dict) -> None:
    fused, reference = _pair(options)
    context, target = torch.randint(0, V, (32, 3)), torch.randint(0, V, (32,))
    results = []
    for model in (fused, reference):
        loss = model.loss({"context": context, "target": target})
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    for name, grad in results[1][1].items():
        torch.testing.assert_close(results[0][1][name], grad, msg=name)
    fused.eval()
    reference.eval()
    torch.testing.assert_close(fused.log_probs(context), reference.log_probs(context))


@pytest.mark.parametrize("tie_weights", [True, False])
def test_fused_bf16_step_is_close_to_the_reference(tie_weights: bool) -> None:
    """bf16: the fused path (one bf16 copy of the tied table, softmax kept in bf16) against the
    reference (autocast, cross-entropy of fp32 scores)."""
    fused, reference = _pair(
        {
            "embedding_dim": 32,
            "hidden_sizes": [48],
            "precision": "bf16",
            "tie_weights": tie_weights,
        },
        vocab=300,
    )
    context, target = torch.randint(0, 300, (64, 3)), torch.randint(0, 300, (64,))
    results = []
    for model in (fused, reference):
        loss = model.loss({"context": context, "target": target})
        loss.backward()
        assert loss.dtype == torch.float32
        results.append((loss.item(), {n: p.grad for n, p in model.named_parameters()}))
    assert abs(results[0][0] - results[1][0]) < 2e-3
    for name, grad in results[1][1].items():
        error = (results[0][1][name] - grad).norm() / grad.norm()
        assert error < 0.02, (name, error.item())


def test_the_switch_chooses_the_dropout_and_both_drop_at_the_rate() -> None:
    cfg = {"context_size": 4, "embedding_dim": 10, "hidden_sizes": [8], "dropout": 0.25}
    fused, reference = FeedForwardLM(V, cfg), FeedForwardLM(V, cfg, fused=False)
    assert isinstance(fused.dropout, ByteMaskDropout)
    assert type(reference.dropout) is nn.Dropout
    assert all(not isinstance(m, ByteMaskDropout) for m in reference.modules())
    context = torch.randint(0, V, (500, 4))
    for model in (fused, reference):
        _, e = model.features(context)  # training mode: dropped elements are zero
        assert abs((e == 0).float().mean().item() - 0.25) < 0.01
