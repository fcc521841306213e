"""Logistic regression over sparse feature vectors (bag of n-grams, tf-idf).

The linear map is an ``EmbeddingBag`` in "sum" mode with per-sample weights: for a sparse row x it
computes sum_j x_j * W[j], i.e. x @ W, touching only the non-zero features.  Binary problems have
one logit (sigmoid + BCE), multinomial ones K logits (softmax + cross-entropy), multi-label ones K
logits with a sigmoid each (one binary logistic regression per label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ffnlp.models.heads import ClassifierInputs, make_head, multilabel_argument, output_size
from ffnlp.models.registry import register


@dataclass(frozen=True)
class LogisticRegressionConfig:
    """[model] for type = "logreg": no section of its own. The sizes come from the data, the
    loss settings from [loss]; the weights start at zero whatever [model.init] says."""


@register("logreg", config=LogisticRegressionConfig, features=("ngrams", "ngrams+lexicon"))
class LogisticRegression(nn.Module):
    def __init__(
        self,
        num_features: int,
        num_classes: int,
        sparse: bool = False,
        label_smoothing: float = 0.0,
        class_weight: list[float] | None = None,
        multilabel: bool = False,
    ):
        super().__init__()
        out = output_size(num_classes, multilabel)
        self.linear = nn.EmbeddingBag(num_features, out, mode="sum", sparse=sparse)  # W: (F, K')
        self.bias = nn.Parameter(torch.zeros(out))  # (K',)
        nn.init.zeros_(self.linear.weight)  # the convex problem needs no symmetry breaking
        self.head = make_head(num_classes, label_smoothing, class_weight, multilabel)

    @classmethod
    def arguments(
        cls, config: LogisticRegressionConfig, inputs: ClassifierInputs
    ) -> dict[str, Any]:
        """Constructor arguments (model.json's ``args``) for ``config`` and the data's ``inputs``."""
        return {
            "num_features": inputs.input_size,
            "num_classes": inputs.num_classes,
            "label_smoothing": inputs.label_smoothing,
            "class_weight": inputs.class_weight,
            "sparse": inputs.sparse,
            **multilabel_argument(inputs),
        }

    def reinit(self, scheme: str, std: float = 0.02) -> None:
        """[model.init] leaves logistic regression at zero: the problem is convex, so there is no
        symmetry to break and zero is the start scikit-learn's solvers take too."""

    def forward(
        self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        # ids, weights: (nnz,) feature ids and values of the batch's rows; offsets: (B,) row starts
        return self.linear(ids, offsets, per_sample_weights=weights) + self.bias  # (B, K')

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(batch["ids"], batch["offsets"], batch["weights"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])
