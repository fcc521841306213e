"""A trained classifier's network in a portable form: padded ids, a mask or weights, a gather.

ffnlp's classifiers read a batch as one flat id tensor with offsets and pool it with
``EmbeddingBag``, which is fast in PyTorch but exports poorly (ONNX has no such operator, and
the exporters' translations of it are fragile). :class:`PortableClassifier` computes the same
function from padded inputs with the operators every runtime has::

    ids (B, L) int64, mask or weights (B, L) float32
      -> Gather(table, ids)                 (B, L, D)
      -> times the mask / weights, summed   (B, D)      [mean: / max(mask.sum, 1); max: masked max]
      -> the model's own layers after it    (B, K')     logits
      -> sigmoid or softmax                 (B, K)      probabilities

Padding is row 0 with mask (or weight) 0, so it adds nothing; a text with no id at all pools to
zeros, as ``EmbeddingBag`` gives an empty bag. The weights are the model's own tensors (a
quantised run's already decoded when it was loaded), in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.pooled import PooledEmbeddingClassifier

INPUTS = {"ids": ("ids", "mask"), "ngrams": ("ids", "weights")}
OUTPUTS = ("logits", "probabilities")


class PortableClassifier(nn.Module):
    """``forward(ids, mask_or_weights) -> (logits (B, K'), probabilities (B, K))``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        bias: torch.Tensor | None = None
        rest: nn.Module = nn.Identity()
        if isinstance(model, PooledEmbeddingClassifier):
            table = model.embedding.weight
            self.pooling = model.pooling
            rest = model.mlp
            self.kind = "ids"
        elif isinstance(model, FeatureMLP):
            table, bias, rest = model.input.weight, model.input_bias, model.rest
            self.pooling = "weighted_sum"
            self.kind = "ngrams"
        elif isinstance(model, LogisticRegression):
            table, bias = model.linear.weight, model.bias
            self.pooling = "weighted_sum"
            self.kind = "ngrams"
        else:
            raise ConfigError(
                f"a {type(model).__name__} cannot be exported; ffnlp exports its pooled, "
                "logistic-regression and feature-MLP classifiers (an ensemble run, model.ensemble > 1, "
                "is K of them: train with model.ensemble = 1)"
            )
        self.table = nn.Parameter(table.detach().float().clone(), requires_grad=False)  # (R, D)
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(), False)
        self.rest = rest.float()
        head = model.head
        self.multilabel = bool(getattr(head, "multilabel", False))
        self.binary = not self.multilabel and head.num_classes == 2
        self.eval()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = F.embedding(ids, self.table)  # (B, L, D)
        weight = mask.unsqueeze(-1)  # (B, L, 1)
        if self.pooling == "max":
            pooled = self._max(rows, mask)  # (B, D)
        else:
            pooled = (rows * weight).sum(1)  # (B, D)
            if self.pooling in ("mean", "mean_max"):
                pooled = pooled / mask.sum(1, keepdim=True).clamp(min=1.0)  # (B, D)
            if self.pooling == "mean_max":
                pooled = torch.cat([pooled, self._max(rows, mask)], dim=1)  # (B, 2D)
        if self.bias is not None:
            pooled = pooled + self.bias
        logits = self.rest(pooled)  # (B, K')
        if self.binary:
            p = torch.sigmoid(logits.squeeze(-1))  # (B,)
            probabilities = torch.stack([1 - p, p], dim=-1)  # (B, 2)
        elif self.multilabel:
            probabilities = torch.sigmoid(logits)  # (B, K)
        else:
            probabilities = torch.softmax(logits, dim=-1)  # (B, K)
        return logits, probabilities

    @staticmethod
    def _max(rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The element-wise max over the real rows of each text (0 for a text with none)."""
        present = mask.unsqueeze(-1) > 0  # (B, L, 1)
        maxed = rows.masked_fill(~present, float("-inf")).amax(1)  # (B, D)
        some = mask.sum(1, keepdim=True) > 0  # (B, 1)
        return torch.where(some, maxed, torch.zeros_like(maxed))
