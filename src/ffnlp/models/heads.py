"""The classification head every classifier shares: loss, probabilities, predictions.

Binary problems use one logit with a sigmoid and binary cross-entropy (as logistic regression is
usually written); K > 2 classes use K logits with softmax and cross-entropy.  Label smoothing and
class weights apply to both.  :class:`ClassifierInputs` is what every classifier is built from
besides its own config: the sizes the data gives and the task's loss and gradient settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ConfigError


@dataclass(frozen=True)
class ClassifierInputs:
    """What a classifier's ``arguments(config, inputs)`` reads besides its config."""

    input_size: int  # F feature columns, or the rows of an id table (vocabulary + n-gram buckets)
    num_classes: int  # K labels (two give one logit)
    label_smoothing: float = 0.0  # loss.label_smoothing
    class_weight: list[float] | None = None  # one weight per class (loss.class_weight), or none
    sparse: bool = False  # train.sparse: sparse gradients for the input table


def output_size(num_classes: int) -> int:
    """Logits a classifier needs: 1 for two classes, K otherwise."""
    return 1 if num_classes == 2 else num_classes


class ClassifierHead(nn.Module):
    """Turns logits into a loss, probabilities and predictions; holds no parameters of its own."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.0,
                 class_weight: list[float] | None = None):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"a classifier needs at least two classes; got num_classes = {num_classes}")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        weight = torch.tensor(class_weight, dtype=torch.float32) if class_weight else None
        self.register_buffer("class_weight", weight, persistent=False)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss; with class weights, the weighted mean sum(w_y * l) / sum(w_y)."""
        eps = self.label_smoothing
        if self.num_classes == 2:
            z = logits.squeeze(-1)  # (B,)
            # smoothed towards 0.5; in the logits' dtype, so that a float64 model stays float64
            target = y.to(z.dtype) * (1 - eps) + 0.5 * eps
            per_example = F.binary_cross_entropy_with_logits(z, target, reduction="none")  # (B,)
        else:
            per_example = F.cross_entropy(logits, y, label_smoothing=eps, reduction="none")  # (B,)
        weights: torch.Tensor | None = self.class_weight  # type: ignore[assignment]
        if weights is not None:
            w = weights[y]  # (B,)
            return (per_example * w).sum() / w.sum()
        return per_example.mean()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) class probabilities."""
        if self.num_classes == 2:
            p = torch.sigmoid(logits.squeeze(-1))  # (B,)
            return torch.stack([1 - p, p], dim=-1)  # (B, 2)
        return torch.softmax(logits, dim=-1)  # (B, K)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """(B,) the most probable class."""
        if self.num_classes == 2:
            return (logits.squeeze(-1) > 0).long()
        return logits.argmax(-1)


def balanced_class_weight(y: torch.Tensor, num_classes: int) -> list[float]:
    """n / (K * count_k) per class, as scikit-learn's class_weight='balanced'."""
    counts = torch.bincount(y, minlength=num_classes).double()
    n = float(counts.sum())
    return [n / (num_classes * float(c)) if c > 0 else 0.0 for c in counts]
