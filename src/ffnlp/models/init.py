"""Initialisation schemes for weight matrices, and ``[model.init]``, which applies one to a model.

A scheme is a name in :data:`SCHEMES`. ``"default"`` keeps the weights as they are: each model's
own initialisation (the MLP block's Xavier-uniform with its activation's gain, the pooled
classifier's table, ...), or ``nn.Linear``'s for a layer built outside a model. ``"torch"`` is an
older spelling of ``"default"`` (what ``MLP(init=...)`` took), still accepted. The other schemes
take the gain of the non-linearity after the layer from :data:`ffnlp.models.activations.ACTIVATIONS`
(``"linear"`` for an output layer), and set biases to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ffnlp.config import option
from ffnlp.errors import ConfigError
from ffnlp.models.activations import ACTIVATIONS, LEAKY_SLOPE, GainName

KEEP = "default"  # the scheme that leaves the weights as they are
SCHEMES = (
    KEEP,
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "normal",
    "zeros",
)
ALIASES = {"torch": KEEP}  # older spellings -> the scheme they mean
INITS = (*SCHEMES, *ALIASES)  # every name accepted


@dataclass(frozen=True)
class InitConfig:
    """Section [model.init]: re-initialise a built model's weight matrices by one scheme."""

    scheme: str = option(
        KEEP,
        "initialisation of weight matrices (biases start at zero); 'default' keeps each model's "
        "own, 'torch' is an alias of it",
        choices=INITS,
    )
    std: float = option(0.02, "standard deviation for scheme = 'normal'", gt=0)


def init_weight(w: torch.Tensor, scheme: str, activation: str = "relu", std: float = 0.02) -> None:
    """Initialise a weight matrix laid out (fan_out, fan_in), as nn.Linear's, in place by
    ``scheme`` (the gain suits ``activation``, the non-linearity after the layer; 'linear' for an
    output layer). 'default' leaves it as it is. Pass a transposed view for an (in, out) table."""
    if keeps_weights(scheme):
        return
    gain = _gain_name(activation)
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(w, gain=_gain(gain))
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(w, gain=_gain(gain))
    elif scheme in ("kaiming_uniform", "kaiming_normal"):
        fn = nn.init.kaiming_uniform_ if scheme == "kaiming_uniform" else nn.init.kaiming_normal_
        if gain == "leaky_relu":
            fn(w, a=LEAKY_SLOPE, nonlinearity="leaky_relu")
        else:  # He et al.'s ReLU setting for every other one, the output layer's too
            fn(w, nonlinearity="relu")
    elif scheme == "normal":
        nn.init.normal_(w, 0.0, std)
    else:  # "zeros", the last one
        nn.init.zeros_(w)


def init_linear(layer: nn.Linear, scheme: str, activation: str = "relu", std: float = 0.02) -> None:
    """Initialise one Linear layer's weight by ``scheme`` and zero its bias ('default' keeps both)."""
    if keeps_weights(scheme):
        return
    init_weight(layer.weight, scheme, activation, std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def initialize(model: nn.Module, cfg: InitConfig, nonlinearity: str = "relu") -> nn.Module:
    """Re-initialise ``model`` by ``cfg.scheme`` ('default' keeps the model's own initialisation).

    A module with a ``reinit(scheme, std)`` method (the MLP block, the feature classifier) does
    its own layers: it knows which layer is the output one (a linear gain) and which tables are
    weights; any other ``nn.Linear`` gets the scheme with ``nonlinearity``'s gain.
    """
    if keeps_weights(cfg.scheme):
        return model
    done: set[int] = set()
    for module in model.modules():
        if id(module) in done:
            continue
        reinit = getattr(module, "reinit", None)
        if callable(reinit):
            reinit(cfg.scheme, cfg.std)
            done.update(id(m) for m in module.modules())
        elif isinstance(module, nn.Linear):
            init_linear(module, cfg.scheme, nonlinearity, cfg.std)
    return model


def keeps_weights(scheme: str) -> bool:
    """Whether ``scheme`` leaves the weights as they are ('default' or its alias 'torch');
    ConfigError for a name that is no scheme."""
    if ALIASES.get(scheme, scheme) not in SCHEMES:
        raise ConfigError(f"the init scheme must be one of {', '.join(INITS)}; got {scheme!r}")
    return ALIASES.get(scheme, scheme) == KEEP


def _gain_name(activation: str) -> GainName:
    """calculate_gain's name for the non-linearity after a layer ('linear' for an output layer)."""
    spec = ACTIVATIONS.get(activation)
    return spec.gain if spec is not None else "linear"


def _gain(name: GainName) -> float:
    return nn.init.calculate_gain(name, LEAKY_SLOPE if name == "leaky_relu" else None)
