"""The multi-layer perceptron block every feed-forward classifier ends in.

``MLP(in_dim, out_dim, hidden=[256, 128], activation="relu", dropout=0.5)`` is
Linear -> activation -> dropout for each hidden size, then one Linear to ``out_dim`` (the logits).
With ``hidden=[]`` it is a single affine map: logistic regression over its input. The activations
are :data:`ffnlp.models.activations.ACTIVATIONS`; ``init`` is a scheme of :mod:`ffnlp.models.init`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ffnlp.config import option
from ffnlp.errors import ConfigError
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.models.init import init_linear


@dataclass(frozen=True)
class MLPConfig:
    """Section [model.mlp]: the hidden layers between a representation and the logits.

    Weights start Xavier-uniform (gain for the activation); [model.init] chooses another scheme.
    """

    hidden: list[int] = option(
        [], "sizes of the hidden layers, input side first; [] = no hidden layer (linear)"
    )
    activation: str = option(
        "relu", "non-linearity after each hidden layer", choices=tuple(ACTIVATIONS)
    )
    dropout: float = option(
        0.0, "dropout probability after each hidden activation (training only)", ge=0.0, lt=1.0
    )
    input_dropout: float = option(
        0.0, "dropout probability on the MLP's input (training only)", ge=0.0, lt=1.0
    )

    def check(self) -> list[str]:
        if any(h <= 0 for h in self.hidden):
            return [f"hidden must hold positive layer sizes; got {self.hidden!r}"]
        return []


class MLP(nn.Module):
    """(B, in_dim) -> hidden layers -> (B, out_dim)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        init: str = "xavier_uniform",
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.mlp.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}"
            )
        if in_dim <= 0 or out_dim <= 0:
            raise ConfigError(
                f"an MLP needs positive input and output sizes; got {in_dim} -> {out_dim}"
            )
        self.in_dim, self.out_dim = in_dim, out_dim
        self.hidden = list(hidden)
        self.activation = activation
        layers: list[nn.Module] = []
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = in_dim
        for size in self.hidden:
            linear = nn.Linear(width, size)
            init_linear(linear, init, activation, init_std)
            layers += [linear, ACTIVATIONS[activation].make()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        out = nn.Linear(width, out_dim)
        init_linear(out, init, "linear", init_std)
        layers.append(out)
        self.layers = nn.Sequential(*layers)

    def reinit(self, scheme: str, std: float = 0.02) -> None:
        """Initialise every layer by ``scheme``: hidden layers with their activation's gain, the
        output layer with a linear one; biases zero."""
        linears = [m for m in self.layers if isinstance(m, nn.Linear)]
        for i, linear in enumerate(linears):
            init_linear(linear, scheme, self.activation if i < len(linears) - 1 else "linear", std)

    @classmethod
    def from_config(cls, in_dim: int, out_dim: int, config: MLPConfig) -> MLP:
        return cls(
            in_dim,
            out_dim,
            hidden=config.hidden,
            activation=config.activation,
            dropout=config.dropout,
            input_dropout=config.input_dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout != torch.strided:
            # sparse rows (bag of n-grams): the first product costs O(non-zeros); input dropout,
            # which would densify x, is skipped
            first = next(i for i, m in enumerate(self.layers) if isinstance(m, nn.Linear))
            linear = self.layers[first]
            assert isinstance(linear, nn.Linear)
            h = torch.sparse.mm(x, linear.weight.t()) + linear.bias  # (B, in_dim) -> (B, H)
            return self.layers[first + 1 :](h)  # (B, out_dim)
        return self.layers(x)  # (B, in_dim) -> (B, out_dim)

    def extra_repr(self) -> str:
        sizes = " -> ".join(str(s) for s in [self.in_dim, *self.hidden, self.out_dim])
        return f"{sizes}, activation={self.activation}"

    def macs_per_example(self) -> int:
        """Multiply-adds of one example's forward pass: the products of its Linear layers."""
        sizes = [self.in_dim, *self.hidden, self.out_dim]
        return sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))

    def flops_per_example(self) -> int:
        """Floating-point operations of one example's forward pass, counted as 2 per
        multiply-add of the matrix products (biases and activations left out)."""
        return 2 * self.macs_per_example()
