"""What happens to the shapes: every leaf module a forward pass goes through, in order.

``trace_shapes(model, run)`` hooks each leaf module, calls ``run()`` (a forward pass on a real
batch) and returns one row per call: the module, its input and output shapes, and for the layers
that are matrix products (Linear, EmbeddingBag, Embedding) the product written out, e.g.
``(32, 300) @ (300, 64)``, with its multiply-adds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class LayerCall:
    name: str
    kind: str
    inputs: list[tuple[int, ...]]
    output: tuple[int, ...]
    params: int
    product: str  # "" when the layer is not a matrix product
    macs: int  # multiply-adds of the product (0 otherwise)


def _shape(x: Any) -> tuple[int, ...] | None:
    return tuple(x.shape) if torch.is_tensor(x) else None


def _product(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> tuple[str, int]:
    if isinstance(module, nn.Linear):
        rows = int(output.numel() // module.out_features)
        return (f"({rows}, {module.in_features}) @ ({module.in_features}, {module.out_features})",
                rows * module.in_features * module.out_features)
    if isinstance(module, nn.EmbeddingBag):
        ids = inputs[0]
        bags = int(output.shape[0])
        n, d = int(ids.numel()), module.embedding_dim
        return f"sparse ({bags}, {module.num_embeddings}; {n} nz) @ ({module.num_embeddings}, {d})", n * d
    if isinstance(module, nn.Embedding):
        n = int(inputs[0].numel())
        return f"look-up: {n} rows of ({module.num_embeddings}, {module.embedding_dim})", 0
    return "", 0


def trace_shapes(model: nn.Module, run: Callable[[], Any]) -> list[LayerCall]:
    """Run ``run()`` with hooks on every leaf module of ``model``; the calls in order."""
    calls: list[LayerCall] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if not torch.is_tensor(out):
            return
        product, macs = _product(module, inputs, out)
        calls.append(LayerCall(
            name=names.get(module, "?"), kind=type(module).__name__,
            inputs=[s for s in (_shape(x) for x in inputs) if s is not None],
            output=tuple(out.shape), params=sum(p.numel() for p in module.parameters(recurse=False)),
            product=product, macs=macs,
        ))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return calls
