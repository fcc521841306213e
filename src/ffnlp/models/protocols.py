"""The model contract, written down.

The Trainer calls one method, ``loss(batch)``; evaluators and result objects need a little more
from some families. Each need is a Protocol here, so that code using it is type-checked instead
of reaching for attributes an ``nn.Module`` does not declare:

- every model: ``loss(batch) -> scalar tensor`` (the Trainer's contract,
  :class:`ffnlp.training.trainable.Trainable`);
- :class:`Classifier` — text classifiers: ``logits(batch) -> (B, K)`` and the ``head`` that
  turns logits into a loss, probabilities and predictions;
- :class:`TokenScorer` — language models: ``token_nll(batch) -> (B,)``;
- :class:`Embedder` — word-vector models: ``word_vectors() -> (V, D)``.

:func:`as_classifier` (and the others) check a module against one of them once (at load or
evaluation time) and return it typed, with an error that says what is missing.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from ffnlp.errors import ModelFileError


@runtime_checkable
class Head(Protocol):
    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...

    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Scorer(Protocol):
    """Anything that turns a batch into class scores (what activation probes need)."""

    def logits(self, batch: dict[str, Any]) -> torch.Tensor: ...


@runtime_checkable
class Classifier(Protocol):
    head: Any  # a Head (a Protocol attribute cannot be typed as an nn.Module and a Head at once)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor: ...

    def loss(self, batch: dict[str, Any]) -> torch.Tensor: ...


@runtime_checkable
class TokenScorer(Protocol):
    def token_nll(self, batch: dict[str, Any]) -> torch.Tensor: ...

    def loss(self, batch: dict[str, Any]) -> torch.Tensor: ...


@runtime_checkable
class Embedder(Protocol):
    def word_vectors(self) -> torch.Tensor: ...


def _mismatch(model: object, contract: type) -> ModelFileError:
    names = [n for n in vars(contract) if not n.startswith("_")]
    names += list(getattr(contract, "__annotations__", {}))
    missing = sorted({n for n in names if not hasattr(model, n)})
    return ModelFileError(
        f"a {type(model).__name__} cannot be used as a {contract.__name__} model: it has no "
        f"{', '.join(missing) or 'matching methods'} (is this run from another task?)"
    )


def as_scorer(model: object) -> Scorer:
    if isinstance(model, Scorer):
        return model
    raise _mismatch(model, Scorer)


def as_classifier(model: object) -> Classifier:
    if isinstance(model, Classifier):
        return model
    raise _mismatch(model, Classifier)


def as_token_scorer(model: object) -> TokenScorer:
    if isinstance(model, TokenScorer):
        return model
    raise _mismatch(model, TokenScorer)


def as_embedder(model: object) -> Embedder:
    if isinstance(model, Embedder):
        return model
    raise _mismatch(model, Embedder)


def head_of(model: Classifier) -> Head:
    """The classifier's output head, checked."""
    if isinstance(model.head, Head):
        return model.head
    raise _mismatch(model.head, Head)
