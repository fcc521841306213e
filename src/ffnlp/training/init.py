"""Initialisation schemes for weight matrices; biases start at zero."""

from __future__ import annotations

from typing import Any

from torch import nn

from ffnlp.training.config import InitConfig


def initialize(model: nn.Module, cfg: InitConfig, nonlinearity: str = "relu") -> nn.Module:
    """Re-initialise every Linear layer of ``model`` by ``cfg.scheme`` ('default' keeps torch's)."""
    if cfg.scheme == "default":
        return model
    gain_name: Any = nonlinearity if nonlinearity in ("relu", "leaky_relu", "tanh", "sigmoid") else "relu"
    for module in model.modules():
        if not isinstance(module, nn.Linear):
            continue
        w = module.weight
        if cfg.scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain(gain_name))
        elif cfg.scheme == "xavier_normal":
            nn.init.xavier_normal_(w, gain=nn.init.calculate_gain(gain_name))
        elif cfg.scheme == "kaiming_uniform":
            nn.init.kaiming_uniform_(w, nonlinearity=gain_name)
        elif cfg.scheme == "kaiming_normal":
            nn.init.kaiming_normal_(w, nonlinearity=gain_name)
        elif cfg.scheme == "normal":
            nn.init.normal_(w, mean=0.0, std=cfg.std)
        elif cfg.scheme == "zeros":
            nn.init.zeros_(w)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    return model
