"""Kernels of the feed-forward language model (:mod:`ffnlp.models.lm`) for CPU training.

- :class:`ByteMaskDropout`: inverted dropout whose mask costs one random byte per element;
- :func:`tied_lookup`: under bf16 autocast, one low-precision copy of a tied embedding table a
  step, used for both the look-up and the output product (:class:`TiedLookup`);
- :func:`softmax_cross_entropy`: the mean cross-entropy of bf16 scores with the softmax kept in
  bf16 and the backward pass made in place (:class:`SoftmaxCrossEntropy`).

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
    """``(table, e)`` under autocast: the tied table in the autocast dtype (V, D) and the rows of
    ``ids`` in it (..., D), made in one autograd node (:class:`TiedLookup`); None outside autocast,
    where the table is used as it is."""
    device = ids.device.type
    if not torch.is_autocast_enabled(device):
        return None
    table, e = TiedLookup.apply(ids, weight, torch.get_autocast_dtype(device))
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
    """A low-precision copy of the tied table and the context words' rows of it, in one node.

    Returns ``(table, e)``: ``table = weight.to(dtype)`` for the output product, ``e =
    table[ids]`` for the input.  Autograd would give the look-up a dense (V, D) gradient (a
    zero-filled table with the rows added in) and then add it to the output product's: two passes
    over the table a step for a few thousand rows.  Here the output product's gradient, cast to
    the table's dtype, becomes the table's gradient and the rows are added into it in place.
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
