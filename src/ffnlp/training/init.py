"""model.init: re-initialise a built model's weight matrices by one scheme; biases start at zero."""

from __future__ import annotations

from torch import nn

from ffnlp.training.config import InitConfig


def initialize(model: nn.Module, cfg: InitConfig, nonlinearity: str = "relu") -> nn.Module:
    """Re-initialise ``model`` by ``cfg.scheme`` ('default' keeps the model's own initialisation).

    A module with a ``reinit(scheme, std)`` method (the MLP block, the feature classifier) does
    its own layers: it knows which layer is the output one (a linear gain) and which tables are
    weights; any other ``nn.Linear`` gets the scheme with ``nonlinearity``'s gain. The schemes
    themselves are :func:`ffnlp.models.mlp.init_weight`.
    """
    from ffnlp.models.mlp import init_linear

    if cfg.scheme == "default":
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
