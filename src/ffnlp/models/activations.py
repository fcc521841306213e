"""The one table of hidden-layer non-linearities every model chooses from.

Each entry says how to make the module and which gain an initialisation scheme should use after
it (the ``nonlinearity`` name of ``torch.nn.init.calculate_gain``): a layer followed by ReLU gets
a larger initial scale than one followed by tanh, so that signals keep their size layer to layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

GainName = Literal["linear", "sigmoid", "tanh", "relu", "leaky_relu"]  # calculate_gain's names
LEAKY_SLOPE = 0.01  # leaky_relu's slope for x < 0 (torch's default); its init gain uses it too


@dataclass(frozen=True)
class Activation:
    """One non-linearity: ``make()`` builds the module; ``gain`` names its init gain."""

    make: Callable[[], nn.Module]
    gain: GainName  # "linear" and "sigmoid" = 1, "relu" = sqrt 2, "tanh" = 5/3, ...


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(nn.Sigmoid, "sigmoid"),  # gain 1: Glorot's original setting
    "tanh": Activation(nn.Tanh, "tanh"),
    "hardtanh": Activation(nn.Hardtanh, "tanh"),  # tanh's piecewise-linear stand-in
    "relu": Activation(nn.ReLU, "relu"),
    "leaky_relu": Activation(lambda: nn.LeakyReLU(LEAKY_SLOPE), "leaky_relu"),
    "gelu": Activation(nn.GELU, "relu"),  # a smooth ReLU
    "elu": Activation(nn.ELU, "relu"),  # ReLU for x > 0; He et al.'s gain, as ELU's authors use
    # no non-linearity: stacked layers collapse to one linear map (a teaching case)
    "identity": Activation(nn.Identity, "linear"),
}
