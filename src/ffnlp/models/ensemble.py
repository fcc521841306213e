"""A seed ensemble: K classifiers of one type whose class probabilities are averaged.

``ffnlp classify train --ensemble K`` (``[model] ensemble = K``) trains K members of the
configured model type, one after the other, each from its own seed (:func:`member_seed`), on the
same features, and saves them as this one model: the run folder holds one ``model.safetensors``
with each member's tensors under ``members.<i>.`` and a ``model.json`` of type ``ensemble``
whose arguments are the member type, the members' constructor arguments (the same for all) and
K. Loading it is loading any model (:func:`ffnlp.models.io.load_model`): the registry rebuilds
the K members from those arguments and checks every stored shape, so predict, eval and serve
read an ensemble run as they read any run.

The ensemble is a classifier as the task sees one (:class:`ffnlp.models.protocols.Classifier`):
its ``logits`` are those of the averaged probabilities, so that its head (the members' head)
turns them back into exactly that average: ``log p`` for softmax heads (softmax(log p) = p
when p sums to 1), the log-odds ``log p - log(1 - p)`` for sigmoid heads (two classes, or each
label of multi-label data). Its loss is the head's loss of those logits, the negative
log-likelihood of the average, which is what its dev loss reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models import registry
from ffnlp.models.protocols import as_classifier

MAX_MEMBERS = 100


def member_seed(seed: int, member: int) -> int:
    """The seed of member ``member`` of an ensemble trained with the run seed ``seed``: the run
    seed itself for the first member (so a one-member ensemble is the plain run), then seeds
    drawn from (seed, member), far from seed + 1, seed + 2... so that the ensembles of runs with
    consecutive seeds share no member."""
    if member == 0:
        return seed
    state = np.random.SeedSequence([seed, member]).generate_state(1, dtype=np.uint32)
    return int(state[0]) % (2**31 - 1)


def probability_logits(head: Any, probabilities: torch.Tensor) -> torch.Tensor:
    """Logits that ``head`` turns back into ``probabilities`` ((B, K), as its ``probabilities``
    gives them): log-odds for a sigmoid head, log-probabilities for a softmax head."""
    tiny = torch.finfo(probabilities.dtype).tiny
    if getattr(head, "multilabel", False):
        p = probabilities.clamp(tiny, 1.0)  # (B, K)
        return torch.log(p) - torch.log1p(-p).clamp_min(np.log(tiny))
    if getattr(head, "num_classes", 0) == 2:  # one logit: the second class's log-odds
        p = probabilities[:, 1:].clamp(tiny, 1.0)  # (B, 1)
        q = probabilities[:, :1].clamp(tiny, 1.0)  # (B, 1)
        return torch.log(p) - torch.log(q)
    return torch.log(probabilities.clamp_min(tiny))  # (B, K)


@registry.register("ensemble")
class EnsembleClassifier(nn.Module):
    """``size`` classifiers of the registered type ``member``, each built from ``member_args``;
    predicts the mean of their probabilities."""

    def __init__(self, member: str, member_args: dict[str, Any], size: int):
        super().__init__()
        spec = registry.spec(member)
        if not spec.is_classifier or member == "ensemble":
            raise ConfigError(
                f"an ensemble's members must be text classifiers of one registered type; got "
                f"{member!r}"
            )
        if not 1 <= size <= MAX_MEMBERS:
            raise ConfigError(f"an ensemble has 1 to {MAX_MEMBERS} members; got {size}")
        self.member = member
        self.member_args = dict(member_args)
        self.members = nn.ModuleList(spec.rebuild(dict(member_args)) for _ in range(size))

    @classmethod
    def of(
        cls, members: list[nn.Module], member: str, member_args: dict[str, Any]
    ) -> tuple[EnsembleClassifier, dict[str, Any]]:
        """The ensemble of trained ``members`` (their weights copied in), and its arguments
        (model.json's ``args``)."""
        args: dict[str, Any] = {
            "member": member,
            "member_args": dict(member_args),
            "size": len(members),
        }
        with torch.device("meta"):  # the trained members replace these: no allocation twice
            ensemble = cls(member, dict(member_args), len(members))
        ensemble.members = nn.ModuleList(members)
        return ensemble, args

    @property
    def head(self) -> Any:
        """The members' head (every member has the same: same labels, same loss settings)."""
        return self.members[0].head

    def member_probabilities(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(M, B, K) each member's class probabilities."""
        head = self.head
        return torch.stack(
            [head.probabilities(as_classifier(m).logits(batch)) for m in self.members]
        )

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, K') the logits of the members' mean probabilities (see the module's docstring)."""
        return probability_logits(self.head, self.member_probabilities(batch).mean(0))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])
