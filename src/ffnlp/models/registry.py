"""Model registry: a model type's name -> what builds it (:class:`ModelSpec`).

Each model module registers its class with ``@register(name, config=..., features=...)``:

- ``config``: the dataclass the model is configured by. For a text classifier its fields are the
  ``[model.X]`` sections it reads (the pooled classifier reads ``[model.mlp]`` and
  ``[model.pooled]``); the task hands the model its own config and nothing else.
- ``features``: for a text classifier, the feature kinds it reads (``features.kind``), the
  preferred one first; empty for models of other tasks.
- a classifier class also has ``arguments(config, inputs) -> dict``: its constructor's keyword
  arguments for that config and the data's :class:`~ffnlp.models.heads.ClassifierInputs`.

A model file records ``{"type": name, "args": {...}}`` (those constructor arguments);
:func:`build_model` rebuilds the module from them, so loading weights never needs pickle.

A new model type is one new module plus its name in :data:`BUILTIN_MODULES` (models defined
elsewhere, e.g. in a test, register themselves when their module is imported).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from ffnlp.errors import ConfigError

# the modules of ffnlp that register models (imported on first use of the registry)
BUILTIN_MODULES = (
    "logreg",
    "feature_mlp",
    "pooled",
    "ensemble",
    "lm",
    "skipgram",
    "subword_skipgram",
)

M = TypeVar("M", bound=type[nn.Module])


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of one model type."""

    name: str  # model.type in a config, "type" in model.json
    cls: type[nn.Module]
    config: type | None = None  # the model's own config dataclass (None: built from its args only)
    features: tuple[str, ...] = ()  # classifiers: the feature kinds it reads, preferred first

    @property
    def is_classifier(self) -> bool:
        return bool(self.features)

    def select_config(self, sections: object) -> Any:
        """The model's config, each of its fields taken by name from ``sections`` (e.g. the
        classify task's ``[model]`` table, which holds every classifier's sections)."""
        if self.config is None:
            return None
        names = [f.name for f in dataclasses.fields(self.config)]
        missing = [n for n in names if not hasattr(sections, n)]
        if missing:
            raise ConfigError(
                f"model type {self.name!r} reads the section(s) {', '.join(missing)}, which "
                f"{type(sections).__name__} lacks; add them to it as [model.{missing[0]}]"
            )
        return self.config(**{n: getattr(sections, n) for n in names})

    def arguments(self, config: Any, inputs: Any) -> dict[str, Any]:
        """The constructor arguments (model.json's ``args``) for ``config`` and ``inputs``."""
        make: Callable[[Any, Any], dict[str, Any]] | None = getattr(self.cls, "arguments", None)
        if make is None:
            raise ConfigError(
                f"model type {self.name!r} cannot be built from a config (its class "
                f"{self.cls.__name__} has no arguments(config, inputs))"
            )
        return dict(make(config, inputs))

    def build(self, config: Any, inputs: Any) -> tuple[nn.Module, dict[str, Any]]:
        """A new model for ``config`` and ``inputs``, and the arguments that rebuild it.

        A model whose parameters alone would not fit in this machine's memory is refused with
        a ConfigError before anything is allocated (its shapes are worked out on the meta
        device)."""
        args = self.arguments(config, inputs)
        self.check_fits_memory(args)
        return self.cls(**args), args

    def check_fits_memory(self, args: dict[str, Any]) -> None:
        """ConfigError if the model of ``args`` is larger than this machine's memory."""
        check_fits_memory(self.name, self.skeleton(args))

    def skeleton(self, args: dict[str, Any]) -> nn.Module:
        """The model of ``args`` on the meta device: every shape, no memory."""
        with torch.device("meta"):
            return self.cls(**args)

    def argument_types(self) -> dict[str, tuple[Any, bool]]:
        """The constructor's arguments: name -> (type annotation, required?)."""
        signature = inspect.signature(self.cls.__init__)
        hints = typing.get_type_hints(self.cls.__init__)
        return {
            name: (hints.get(name, Any), param.default is inspect.Parameter.empty)
            for name, param in list(signature.parameters.items())[1:]
            if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        }

    def rebuild(self, args: dict[str, Any]) -> nn.Module:
        """The model again from the ``args`` a model file stored."""
        return self.cls(**args)


MODELS: dict[str, ModelSpec] = {}


def register(
    name: str, *, config: type | None = None, features: tuple[str, ...] = ()
) -> Callable[[M], M]:
    """Class decorator: make ``cls`` the model type ``name`` (see the module's docstring)."""

    def deco(cls: M) -> M:
        MODELS[name] = ModelSpec(name, cls, config, tuple(features))
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def spec(name: str) -> ModelSpec:
    """The registered model type ``name``; ConfigError with the known names otherwise."""
    _load_builtin()
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown model type {name!r}{hint} Known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def specs() -> list[ModelSpec]:
    """Every registered model type, by name."""
    _load_builtin()
    return [MODELS[name] for name in sorted(MODELS)]


def check_fits_memory(name: str, skeleton: nn.Module, memory: int | None = None) -> None:
    """ConfigError when the parameters and buffers of ``skeleton`` (a model on the meta device)
    need more bytes than ``memory`` (default: this machine's physical memory)."""
    memory = memory if memory is not None else physical_memory()
    tensors = [*skeleton.parameters(), *skeleton.buffers()]
    needed = sum(t.numel() * t.element_size() for t in tensors)
    if memory and needed > memory:
        largest = max(tensors, key=lambda t: t.numel())
        raise ConfigError(
            f"a {name!r} model of these sizes needs {_gigabytes(needed)} for its parameters "
            f"alone (its largest tensor is {tuple(largest.shape)}), more than the "
            f"{_gigabytes(memory)} of memory of this machine; make it smaller (fewer features "
            "or hash buckets: features.max_features, features.buckets; smaller dimensions)"
        )


def physical_memory() -> int:
    """Bytes of RAM of this machine (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return 0


def _gigabytes(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def build_model(name: str, args: dict[str, Any]) -> nn.Module:
    """Rebuild a model from the type and args of a model file."""
    return spec(name).rebuild(args)


def _load_builtin() -> None:
    """Import the model modules so their @register lines run."""
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(f"ffnlp.models.{module}")
