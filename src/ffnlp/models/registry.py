"""Model registry: a name in config/model.json -> the class that builds it.

A model file records ``{"type": name, "args": {...}}``; ``build_model`` rebuilds the module from
that, so loading weights never needs pickle.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ffnlp.errors import ConfigError

M = TypeVar("M", bound=type[nn.Module])
MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[M], M]:
    def deco(cls: M) -> M:
        MODELS[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def build_model(name: str, args: dict[str, Any]) -> nn.Module:
    _load_builtin()
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown model type {name!r}{hint} Known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**args)


def _load_builtin() -> None:
    """Import the model modules so their @register lines run."""
    import importlib

    for module in ("logreg", "mlp", "pooled", "feature_mlp", "lm", "skipgram"):
        try:
            importlib.import_module(f"ffnlp.models.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ffnlp.models.{module}":
                raise
