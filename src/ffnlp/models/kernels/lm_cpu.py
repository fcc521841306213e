"""Kernels of the feed-forward language model (:mod:`ffnlp.models.lm`) for CPU training.

- :class:`ByteMaskDropout`: inverted dropout whose mask costs one random byte per element;
- :func:`tied_lookup`: under bf16 autocast, one low-precision copy of a tied embedding table a
  step, used for both the look-up and the output product (:class:`TiedLookup`);
- :func:`softmax_cross_entropy`: the mean cross-entropy of bf16 scores with the softmax kept in
  bf16 and the backward pass made in place (:class:`SoftmaxCrossEntropy`);
- :func:`output_cross_entropy`: the output layer and its loss in one node (product, bias,
  softmax, cross-entropy), with a single (B, V) buffer that holds the scores, then the
  probabilities, then the gradient (:class:`OutputCrossEntropy`).

``FeedForwardLM(..., fused=True)`` (the default) uses them; ``fused=False`` runs the plain PyTorch
reference (``nn.Dropout``, ``F.embedding`` under autocast, ``F.cross_entropy`` on fp32 scores).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ByteMaskDropout(nn.Module):
    """Inverted dropout with a cheap mask: one 64-bit random draw gives the coins of 8 elements.

    ``bernoulli_`` draws one random number per element, which costs more than the layer's own
    matrix product on a CPU.  Here each random byte is compared with ``round(256 p)``, so the drop
    probability is p rounded to a multiple of 1/256 (0.3 -> 0.3008); the survivors are scaled by
    1 / (1 - that probability), so the expected output equals the input as usual (in bf16 that
    factor is itself rounded to 3 significant digits: 1.3359 for 1 / 0.75).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = round(256 * p)  # bytes below this are dropped

    def mask(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The multiplier of one draw: 0 for dropped elements, 1 / (1 - p) for the rest."""
        n = math.prod(shape)
        words = torch.randint(
            -(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64, device=device
        )
        coins = words.view(torch.uint8)[:n].view(shape)  # uniform bytes
        # compared straight into the float mask: a bool result converted afterwards costs
        # several times more on a CPU
        keep = torch.ge(coins, self.threshold, out=torch.empty(shape, dtype=dtype, device=device))
        return keep.mul_(256.0 / (256 - self.threshold))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        return x * self.mask(x.shape, x.dtype, x.device)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def tied_lookup(
    ids: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(table, e)``: the tied table (V, D) and the rows of ``ids`` in it (..., D), made in one
    autograd node (:class:`TiedLookup`). Under autocast the table is a copy in autocast's dtype;
    outside it, when the weight's gradient is wanted, the table is the weight itself (a view of
    it) and the node only saves the dense look-up gradient. None otherwise (no gradient to
    make), where the plain look-up does the same."""
    device = ids.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    elif torch.is_grad_enabled() and weight.requires_grad:
        dtype = weight.dtype
    else:
        return None
    table, e = TiedLookup.apply(ids, weight, dtype)
    return table, e


def softmax_cross_entropy(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (fp32 scalar) of scores z (B, V) in a low precision; see
    :class:`SoftmaxCrossEntropy`."""
    loss: torch.Tensor = SoftmaxCrossEntropy.apply(z, target)
    return loss


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy from bf16 scores, with the backward pass written out.

    The forward pass keeps softmax(z) itself (one pass of exponentials); the gradient,
    (softmax(z) - onehot) / B, is then made in place in that same tensor, with no second pass of
    exponentials and no zero-filled (B, V) tensor.  bf16 keeps each probability to 3 significant
    digits; a bf16 log-probability (as a log-softmax would store) is coarser: about 0.03 at -10,
    i.e. a 3 % error in the probability.
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(z, dim=-1)  # (B, V), reduces in fp32 inside
        ctx.save_for_backward(p, target)
        p_target = p.gather(1, target[:, None]).float().clamp_min_(torch.finfo(torch.float32).tiny)
        return -p_target.log().mean()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        g, target = ctx.saved_tensors  # the saved softmax, reused as the gradient
        rows = torch.arange(len(target), device=g.device)
        g[rows, target] -= 1
        g.mul_((grad / len(target)).to(g.dtype))
        return g, None


class TiedLookup(torch.autograd.Function):
    """The tied table (a low-precision copy of it, or itself) and the context words' rows of it,
    in one node.

    Returns ``(table, e)``: ``table = weight.to(dtype)`` for the output product (the weight
    itself when ``dtype`` is its own), ``e = table[ids]`` for the input.  Autograd would give the
    look-up a dense (V, D) gradient (a zero-filled table with the rows added in) and then add it
    to the output product's: two passes over the table a step for a few thousand rows (and, in
    fp32, a third: the zero fill).  Here the output product's gradient, cast to the table's dtype
    (no copy when it is the weight's already: the product's backward made it, and this node is
    its only reader), becomes the table's gradient and the rows are added into it in place.
    """

    @staticmethod
    def forward(
        ctx: Any, ids: torch.Tensor, weight: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(ids)
        ctx.weight_dtype = weight.dtype
        ctx.weight_shape = weight.shape
        table = weight.to(dtype)
        return table, F.embedding(ids, table)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, grad_table: torch.Tensor | None, grad_e: torch.Tensor | None
    ) -> tuple[None, torch.Tensor, None]:
        (ids,) = ctx.saved_tensors
        if grad_table is None:
            grad = torch.zeros(ctx.weight_shape, dtype=ctx.weight_dtype, device=ids.device)
        else:
            grad = grad_table.to(ctx.weight_dtype)  # a new tensor: ours to add into
        if grad_e is not None:
            grad.index_add_(0, ids.reshape(-1), grad_e.reshape(-1, grad.shape[1]).to(grad.dtype))
        return None, grad, None


def output_cross_entropy(
    h: torch.Tensor, table: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy (fp32 scalar; float64 for float64 inputs) of
    ``softmax(h @ table.T + bias)`` against ``target``; see :class:`OutputCrossEntropy`.  ``h`` (B, D) and ``table`` (V, D) are brought to one dtype
    (autocast's where it is on, else the wider of theirs); ``bias`` (V,) stays in its own."""
    device = h.device.type
    if torch.is_autocast_enabled(device):  # the products in autocast's dtype, as F.linear's
        dtype = torch.get_autocast_dtype(device)
    else:
        dtype = torch.promote_types(h.dtype, table.dtype)
    # (an untied fp32 output matrix under bf16 autocast; the embeddings themselves as h when
    # there is no hidden layer)
    h, table = h.to(dtype), table.to(dtype)
    loss: torch.Tensor = OutputCrossEntropy.apply(h, table, bias, target)
    return loss


class OutputCrossEntropy(torch.autograd.Function):
    """The output layer and its mean cross-entropy in one node, with one (B, V) buffer.

    Forward: ``z = h @ table.T`` into a new (B, V) buffer, the bias added in place, softmax(z)
    written over z (``aten::_softmax.out`` with the input as its output: each row is read into
    an fp32 scratch row before it is written), and the loss from the targets' probabilities.
    Backward: the buffer becomes (softmax - onehot) in place (only B elements change) and feeds
    both gradient products; the scale ``grad / B`` is applied to the small sides, ``h`` (B, D)
    and the (B, D) result, never to the (B, V) buffer; the bias gradient is its column sums.

    Against autograd's graph (product, bias add, cross-entropy on fp32 scores), no (B, V) tensor
    is allocated beside the one buffer, there is no second pass of exponentials (the log-softmax
    backward's) and no pass that scales or converts it.  The loss is ``-log p(target)``: a
    target whose probability underflows the dtype's smallest normal number (a score 87 below
    the row's best, in fp32 or bf16) counts as that number, -log = 87.3; its gradient is exact.
    """

    @staticmethod
    def forward(
        ctx: Any,
        h: torch.Tensor,
        table: torch.Tensor,
        bias: torch.Tensor | None,
        target: torch.Tensor,
    ) -> torch.Tensor:
        z = torch.mm(h, table.t())  # (B, V)
        if bias is not None:
            z.add_(bias.to(z.dtype))  # same dtype: mixed-dtype in-place adds are slow
        torch.ops.aten._softmax.out(z, -1, False, out=z)  # in place: z now holds softmax(z)
        ctx.save_for_backward(h, table, z, target)
        ctx.bias_dtype = None if bias is None else bias.dtype
        p_target = z.gather(1, target[:, None]).to(torch.promote_types(z.dtype, torch.float32))
        tiny = torch.finfo(p_target.dtype).tiny
        return -p_target.clamp_min_(tiny).log().mean()  # fp32 (float64 for float64 scores)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None]:
        h, table, g, target = ctx.saved_tensors  # g: the saved softmax, made the gradient
        rows = torch.arange(len(target), device=g.device)
        minus_one = torch.tensor(-1.0, dtype=g.dtype, device=g.device)
        g.index_put_((rows, target), minus_one, accumulate=True)
        scale = float(grad) / len(target)
        need_h, need_table, need_bias, _ = ctx.needs_input_grad
        grad_h = torch.mm(g, table).mul_(scale) if need_h else None
        grad_table = torch.mm(g.t(), h * scale) if need_table else None
        grad_bias = None
        if need_bias:
            # summed in g's dtype (which accumulates in fp32 inside): asking the sum for an
            # fp32 result converts the whole (B, V) buffer first, four times slower in bf16
            grad_bias = g.sum(0).to(ctx.bias_dtype).mul_(scale)
        return grad_h, grad_table, grad_bias, None
