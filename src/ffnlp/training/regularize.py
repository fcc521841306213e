"""Penalties on weights (never biases): L1, L2, and both together (elastic net)."""

from __future__ import annotations

import torch
from torch import nn

from ffnlp.training.optim import is_weight, sparse_parameters


def penalised_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weight matrices that take the penalty: not biases, not sparse embedding tables.

    A penalty over a whole sparse embedding table would give every row a gradient at every step,
    which defeats the point of sparse updates; use weight_decay for those.
    """
    sparse = sparse_parameters(model)
    return [
        p
        for n, p in model.named_parameters()
        if p.requires_grad and is_weight(n, p) and id(p) not in sparse
    ]


def penalty(weights: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor | None:
    """l1 * sum|w| + 0.5 * l2 * sum w^2 over ``weights``; None when both are zero."""
    if not weights or (l1 == 0 and l2 == 0):
        return None
    total = weights[0].new_zeros(())
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + 0.5 * l2 * w.pow(2).sum()
    return total
