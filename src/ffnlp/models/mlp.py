"""The multi-layer perceptron block every feed-forward classifier ends in.

``MLP(in_dim, out_dim, hidden=[256, 128], activation="relu", dropout=0.5)`` is
Linear -> activation -> dropout for each hidden size, then one Linear to ``out_dim`` (the logits).
With ``hidden=[]`` it is a single affine map: logistic regression over its input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ffnlp.config import option
from ffnlp.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardtanh": nn.Hardtanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": nn.GELU,
}

INITS = (
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "normal",
    "zeros",
    "torch",
)


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


def init_weight(w: torch.Tensor, scheme: str, activation: str = "relu", std: float = 0.02) -> None:
    """Initialise a weight matrix laid out (fan_out, fan_in), as nn.Linear's, in place by
    ``scheme`` (the gain suits ``activation``, the non-linearity after the layer; 'linear' for an
    output layer). 'torch' leaves it as it is. Pass a transposed view for an (in, out) table."""
    if scheme == "torch":
        return
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(w, gain=_gain(activation))
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(w, gain=_gain(activation))
    elif scheme in ("kaiming_uniform", "kaiming_normal"):
        fn = nn.init.kaiming_uniform_ if scheme == "kaiming_uniform" else nn.init.kaiming_normal_
        if activation == "leaky_relu":
            fn(w, a=0.01, nonlinearity="leaky_relu")
        else:
            fn(w, nonlinearity="relu")
    elif scheme == "normal":
        nn.init.normal_(w, 0.0, std)
    elif scheme == "zeros":
        nn.init.zeros_(w)
    else:
        raise ConfigError(f"the init scheme must be one of {', '.join(INITS)}; got {scheme!r}")


def init_linear(layer: nn.Linear, scheme: str, activation: str = "relu", std: float = 0.02) -> None:
    """Initialise one Linear layer's weight by ``scheme`` and zero its bias ('torch' keeps both)."""
    if scheme == "torch":
        return
    init_weight(layer.weight, scheme, activation, std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _gain(activation: str) -> float:
    if activation in ("tanh", "hardtanh"):
        return nn.init.calculate_gain("tanh")
    if activation in ("relu", "gelu"):
        return nn.init.calculate_gain("relu")
    if activation == "leaky_relu":
        return nn.init.calculate_gain("leaky_relu", 0.01)
    return 1.0  # sigmoid and the output layer: Glorot's original setting


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
            layers += [linear, ACTIVATIONS[activation]()]
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

    def flops_per_example(self) -> int:
        """Multiply-adds of one forward pass (for shape reports)."""
        sizes = [self.in_dim, *self.hidden, self.out_dim]
        return sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
