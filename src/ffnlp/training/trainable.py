"""What the Trainer asks of a model: ``loss(batch)`` returning a scalar tensor, nothing else.

Written as a Protocol so that the loop is type-checked without knowing any model class; the
evaluators' wider contracts (logits, token scores, word vectors) are in
:mod:`ffnlp.models.protocols`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from ffnlp.errors import ConfigError


@runtime_checkable
class Trainable(Protocol):
    def loss(self, batch: dict[str, Any]) -> torch.Tensor: ...


def as_trainable(model: object) -> Trainable:
    """``model`` typed as :class:`Trainable`, or an error naming what it lacks."""
    if isinstance(model, Trainable):
        return model
    raise ConfigError(
        f"a {type(model).__name__} cannot be trained: the Trainer calls model.loss(batch), "
        "which it does not define"
    )
