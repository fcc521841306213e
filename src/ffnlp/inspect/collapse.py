"""Linear collapse: without a non-linearity between them, stacked layers are one layer.

Two affine layers with nothing (or the identity) between them compose into one::

    z = W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2) = W0 x + b0

and so does any depth: W0 = WL ... W2 W1, b0 = bL + WL b(L-1) + WL W(L-1) b(L-2) + ... A deep
network with ``activation = "identity"`` can therefore represent nothing a single layer (logistic
regression over the same input) cannot; its depth only changes how gradient descent moves.

:func:`linear_layers` reads a classifier's layers as affine maps, input side first, and refuses a
network with anything non-linear between them (dropout is allowed: in evaluation mode it is the
identity). :func:`collapse` multiplies them into the one equivalent layer; :func:`compare` runs
the network and that layer on the same batches and reports the largest difference between their
logits and both accuracies. The first layer of each family, and the input the collapsed layer
reads:

- ``FeatureMLP`` (type "mlp"): an ``EmbeddingBag`` over the feature columns, whose (F, H1) table
  is W1 transposed; W0 is (K', F), one weight per feature, as logistic regression's;
- ``PooledEmbeddingClassifier`` (type "pooled", pooling "mean" or "sum"): the pooled vector is
  x_bag E, with x_bag a text's word counts (divided by its length for "mean"), so E transposed is
  a first layer W1 (D, V) without bias and W0 is (K', V); "max" pooling is not linear;
- ``LogisticRegression`` (type "logreg"): already one layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.mlp import MLP
from ffnlp.models.pooled import PooledEmbeddingClassifier
from ffnlp.models.protocols import Head, as_classifier, head_of
from ffnlp.training.data import BatchSource

# modules that are the identity when the network is evaluated: they do not stop a collapse
PASS_THROUGH = (nn.Identity, nn.Dropout)
FIX = 'Train one with model.mlp.activation = "identity" (--set model.mlp.activation=identity).'


@dataclass(frozen=True)
class Affine:
    """One layer x -> W x + b, laid out as nn.Linear's: weight (out, in), bias (out,)."""

    name: str  # the module it was read from ("input", "mlp.layers.0", ...)
    weight: torch.Tensor  # (out, in)
    bias: torch.Tensor  # (out,)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weight.shape[0]), int(self.weight.shape[1]))


@dataclass(frozen=True)
class LinearNetwork:
    """A classifier read as a chain of affine layers, and how its batches reach the first one."""

    layers: list[Affine]  # input side first
    pooling: str  # how a batch of ids becomes the first layer's input: "sum" or "mean"
    input: str  # what the first layer reads, in words
    skipped: list[str]  # modules between the layers that are the identity in evaluation mode


def linear_layers(model: nn.Module) -> LinearNetwork:
    """``model``'s layers as affine maps; ConfigError naming the first non-linear module."""
    with torch.no_grad():
        if isinstance(model, LogisticRegression):
            layer = Affine("linear", model.linear.weight.detach().t(), model.bias.detach())
            return LinearNetwork([layer], "sum", "feature columns", [])
        if isinstance(model, FeatureMLP):
            first = Affine("input", model.input.weight.detach().t(), model.input_bias.detach())
            skipped = _pass_through(model.input_dropout, "input_dropout")
            rest, rest_skipped = _walk(model.rest, "rest")
            return LinearNetwork([first, *rest], "sum", "feature columns", skipped + rest_skipped)
        if isinstance(model, PooledEmbeddingClassifier):
            if model.pooling not in ("mean", "sum"):
                raise ConfigError(
                    f"model.pooled.pooling = {model.pooling!r} is not linear in the text's words "
                    "(a maximum picks a different word per dimension), so the network does not "
                    "collapse to one layer; only pooling 'mean' or 'sum' does"
                )
            table = model.embedding.weight.detach()  # (V, D)
            first = Affine("embedding", table.t(), table.new_zeros(table.shape[1]))
            rest, skipped = _walk(model.mlp, "mlp")
            reads = "counts of a text's words and n-grams" + (
                "" if model.pooling == "sum" else " divided by their total"
            )
            return LinearNetwork([first, *rest], model.pooling, reads, skipped)
        if isinstance(model, MLP):
            layers, skipped = _walk(model, "")
            return LinearNetwork(layers, "sum", "input columns", skipped)
    raise ConfigError(
        f"explain collapse reads the classifier types mlp, pooled and logreg; this run holds a "
        f"{type(model).__name__}"
    )


def _walk(module: nn.Module, name: str) -> tuple[list[Affine], list[str]]:
    """The affine layers under ``module`` in forward order, and the pass-through modules skipped.

    Only containers whose children run one after another (Sequential, the MLP block) are walked;
    a module of any other kind between two layers is taken as a non-linearity and refused.
    """
    if isinstance(module, nn.Linear):
        bias = (
            module.bias if module.bias is not None else module.weight.new_zeros(module.out_features)
        )
        return [Affine(name, module.weight.detach(), bias.detach())], []
    if isinstance(module, PASS_THROUGH):
        return [], _pass_through(module, name)
    children = module.layers if isinstance(module, MLP) else module
    if isinstance(children, nn.Sequential):
        prefix = f"{name}.layers" if isinstance(module, MLP) else name
        layers, skipped = [], []
        for child_name, child in children.named_children():
            more, also = _walk(child, f"{prefix}.{child_name}".lstrip("."))
            layers += more
            skipped += also
        return layers, skipped
    raise ConfigError(
        f"the network has a non-linearity between its layers ({name or 'the network'} is "
        f"{type(module).__name__}), so they do not collapse into one layer; only a network with "
        f"none does (dropout is fine: it is the identity when the network is evaluated). {FIX}"
    )


def _pass_through(module: nn.Module, name: str) -> list[str]:
    return [f"{name} ({type(module).__name__})"] if isinstance(module, nn.Dropout) else []


def collapse(layers: list[Affine]) -> Affine:
    """The one affine layer equal to ``layers`` applied in order (input side first).

    Multiplied from the output side, W0 = ((WL W(L-1)) ...) W1, so no intermediate product is
    wider than (K', widest layer); in float64, so that the product itself adds no rounding error
    worth the name to the comparison with the float32 network.
    """
    if not layers:
        raise ValueError("collapse needs at least one layer")
    product = layers[-1].weight.double()  # (K', HL)
    bias = layers[-1].bias.double()  # (K',)
    for layer in reversed(layers[:-1]):
        bias = bias + product @ layer.bias.double()  # (K',) += (K', out) @ (out,)
        product = product @ layer.weight.double()  # (K', out) @ (out, in) -> (K', in)
    return Affine("collapsed", product, bias)


class CollapsedClassifier(nn.Module):
    """The collapsed layer as a classifier: reads the network's batches, shares its head."""

    head: Head

    def __init__(self, layer: Affine, head: Head, pooling: str = "sum") -> None:
        super().__init__()
        self.table = nn.Parameter(layer.weight.t().contiguous(), requires_grad=False)  # (F, K')
        self.bias = nn.Parameter(layer.bias.clone(), requires_grad=False)  # (K',)
        self.head = head
        self.pooling = pooling

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        table = self.table
        if "x" in batch:  # feature rows, dense or sparse
            x = batch["x"].to(table.dtype)
            z = torch.sparse.mm(x, table) if x.layout != torch.strided else x @ table  # (B, K')
        elif "weights" in batch:  # the non-zeros of feature rows
            weights = batch["weights"].to(table.dtype)
            z = F.embedding_bag(
                batch["ids"], table, batch["offsets"], mode="sum", per_sample_weights=weights
            )  # (B, K')
        else:  # bags of word ids, pooled as the network pools them
            z = F.embedding_bag(batch["ids"], table, batch["offsets"], mode=self.pooling)  # (B, K')
        return z + self.bias

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])


def collapsed_classifier(model: nn.Module) -> tuple[LinearNetwork, CollapsedClassifier]:
    """``model`` read as affine layers, and the one-layer classifier they collapse to."""
    network = linear_layers(model)
    head = head_of(as_classifier(model))
    return network, CollapsedClassifier(collapse(network.layers), head, network.pooling)


@torch.no_grad()
def compare(model: nn.Module, source: BatchSource, batch_size: int = 2048) -> dict[str, Any]:
    """Run ``model`` (in evaluation mode) and its collapsed layer over ``source``.

    Returns the layer shapes, both parameter counts, the largest absolute difference between the
    two sets of logits (and the largest logit, for scale), both accuracies and the share of
    examples on which they agree.
    """
    network, collapsed = collapsed_classifier(model)
    classifier = as_classifier(model)
    head = head_of(classifier)
    was_training = model.training
    model.eval()
    max_diff, max_logit, n, right_net, right_one, same = 0.0, 0.0, 0, 0, 0, 0
    try:
        for batch in source.batches(batch_size, None):
            z_net = classifier.logits(batch).double()  # (B, K')
            z_one = collapsed.logits(batch)  # (B, K')
            max_diff = max(max_diff, float((z_net - z_one).abs().max()))
            max_logit = max(max_logit, float(z_net.abs().max()))
            p_net, p_one = head.predict(z_net), head.predict(z_one)  # (B,)
            right_net += int((p_net == batch["y"]).sum())
            right_one += int((p_one == batch["y"]).sum())
            same += int((p_net == p_one).sum())
            n += int(batch["y"].numel())
    finally:
        model.train(was_training)
    return {
        **describe(model, network),
        "examples": n,
        "max_abs_diff": max_diff,
        "max_abs_logit": max_logit,  # the scale the difference is to be read against
        "network_accuracy": right_net / max(n, 1),
        "collapsed_accuracy": right_one / max(n, 1),
        "agreement": same / max(n, 1),
    }


def describe(model: nn.Module, network: LinearNetwork) -> dict[str, Any]:
    """``model``'s layers and the collapsed layer's shape and size, as plain data (for --json)."""
    layers = network.layers
    out_size, in_size = layers[-1].shape[0], layers[0].shape[1]
    return {
        "layers": [{"name": a.name, "weight": list(a.shape)} for a in layers],
        "input": network.input,
        "pass_through": network.skipped,
        "collapsed_weight": [out_size, in_size],
        "network_parameters": sum(p.numel() for p in model.parameters()),
        "collapsed_parameters": out_size * in_size + out_size,
    }
