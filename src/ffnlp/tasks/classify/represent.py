"""What a trained classifier makes of a text before its output layer (``ffnlp classify vectors``,
like fastText's ``print-sentence-vectors``), and the batches of a stream of texts.

Two layers can be read:

- ``pooled``: the pooled embedding of a pooled classifier (mean / sum / max of its word and
  n-gram vectors; ``mean_max`` gives both halves), before any hidden layer;
- ``hidden``: the last hidden layer's activations, i.e. the input of the output layer, taken
  with a forward hook on that layer during a normal forward pass (dropout off). For a pooled
  classifier without hidden layers this is the pooled embedding. Logistic regression and a
  feature MLP without hidden layers have no such layer.

``auto`` is ``pooled`` for a pooled classifier and ``hidden`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

import torch
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models.protocols import as_classifier

LAYERS = ("auto", "pooled", "hidden")

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` consecutive items (the last one shorter), read lazily from ``items``."""
    if size < 1:
        raise ConfigError(f"the batch size must be at least 1; got {size}")
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def resolve_layer(model: nn.Module, layer: str) -> str:
    """``pooled`` or ``hidden`` for ``layer`` (``auto`` chooses), checked against the model."""
    if layer not in LAYERS:
        raise ConfigError(f"layer must be one of {', '.join(LAYERS)}; got {layer!r}")
    if isinstance(getattr(model, "members", None), nn.ModuleList):
        raise ConfigError(
            f"this run's model is an ensemble of {len(getattr(model, 'members'))} models "  # noqa: B009
            "(model.ensemble), each with its own representation of a text, and none of the "
            "ensemble's: read the vectors of a run trained with model.ensemble = 1"
        )
    pools = callable(getattr(model, "pool", None))
    if layer == "auto":
        layer = "pooled" if pools else "hidden"
    if layer == "pooled" and not pools:
        raise ConfigError(
            f'--layer pooled needs a pooled classifier (model.type = "pooled"); this run\'s '
            f"model is a {type(model).__name__}: use --layer hidden"
        )
    if layer == "hidden" and _output_layer(model) is None:
        raise ConfigError(
            f"this run's {type(model).__name__} has no hidden layer (no layer before its output): "
            "--layer hidden needs one (model.mlp.hidden = [H, ...])"
        )
    return layer


@torch.no_grad()
def represent(model: nn.Module, batch: dict[str, Any], layer: str) -> torch.Tensor:
    """The representation (B, D) of one batch at ``layer`` (``pooled`` or ``hidden``)."""
    model.eval()
    if layer == "pooled":
        pool = getattr(model, "pool")  # noqa: B009 - checked by resolve_layer
        return pool(batch["ids"], batch["offsets"])  # (B, D) or (B, 2D)
    output = _output_layer(model)
    assert output is not None  # checked by resolve_layer
    seen: dict[str, torch.Tensor] = {}

    def keep(_: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        seen["input"], seen["output"] = inputs[0], out

    handle = output.register_forward_hook(keep)
    try:
        logits = as_classifier(model).logits(batch)  # (B, K')
    finally:
        handle.remove()
    if seen.get("output") is not logits:
        raise ConfigError(
            f"cannot find the output layer of this {type(model).__name__}: its last Linear "
            "layer does not give the logits; read --layer pooled instead, if it has one"
        )
    return seen["input"]  # (B, H)


def _output_layer(model: nn.Module) -> nn.Linear | None:
    """The model's last Linear layer (registration order): the output layer of ffnlp's
    classifiers that have one."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None
