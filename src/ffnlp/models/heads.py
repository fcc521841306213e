"""The classification heads every classifier shares: loss, probabilities, predictions.

:class:`ClassifierHead` (one label per example): binary problems use one logit with a sigmoid and
binary cross-entropy (as logistic regression is usually written); K > 2 classes use K logits with
softmax and cross-entropy.  Label smoothing and class weights apply to both.

:class:`MultiLabelHead` (a set of labels per example): K logits, one independent sigmoid each,
binary cross-entropy against a (B, K) 0/1 target (fastText's ``-loss ova``).

A model builds its head with :func:`make_head` and sizes its output layer with
:func:`output_size`, both from the same arguments, so no model branches on the kind of task.
:class:`ClassifierInputs` is what every classifier is built from besides its own config: the
sizes the data gives and the task's loss and gradient settings.
"""

from __future__ import annotations

import math
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
    multilabel: bool = False  # task.multilabel: a set of labels per example, one sigmoid each


def output_size(num_classes: int, multilabel: bool = False) -> int:
    """Logits a classifier needs: 1 for two classes, K otherwise (multi-label: always K)."""
    return 1 if num_classes == 2 and not multilabel else num_classes


def multilabel_argument(inputs: ClassifierInputs) -> dict[str, bool]:
    """What a model's ``arguments`` add for the head: ``{"multilabel": True}`` for multi-label
    data, nothing otherwise (so a single-label model.json is what it was before)."""
    return {"multilabel": True} if inputs.multilabel else {}


def make_head(
    num_classes: int,
    label_smoothing: float = 0.0,
    class_weight: list[float] | None = None,
    multilabel: bool = False,
) -> ClassifierHead | MultiLabelHead:
    """The head for one label per example, or for a set of labels (``multilabel``)."""
    check_loss_settings(num_classes, label_smoothing, class_weight)
    if multilabel:
        if class_weight:
            raise ConfigError(
                "loss.class_weight weighs the examples of each class of single-label data; "
                "multi-label data has no single class per example: set loss.class_weight = 'none'"
            )
        return MultiLabelHead(num_classes, label_smoothing)
    return ClassifierHead(num_classes, label_smoothing, class_weight)


def check_loss_settings(
    num_classes: int, label_smoothing: float, class_weight: list[float] | None
) -> None:
    """The loss settings as `train` checks them (a model.json may have been edited):
    label_smoothing in [0, 1), class weights one finite positive number per class."""
    if not (isinstance(label_smoothing, int | float) and 0 <= label_smoothing < 1):
        raise ConfigError(f"label_smoothing must be >= 0 and < 1; got {label_smoothing!r}")
    if not class_weight:
        return
    if len(class_weight) != num_classes or not all(
        isinstance(w, int | float) and math.isfinite(w) and w > 0 for w in class_weight
    ):
        shown = ", ".join(repr(w) for w in class_weight[:5])
        more = ", ..." if len(class_weight) > 5 else ""
        raise ConfigError(
            f"class_weight must be {num_classes} finite positive numbers (one per class); "
            f"got [{shown}{more}]"
        )


class ClassifierHead(nn.Module):
    """Turns logits into a loss, probabilities and predictions; holds no parameters of its own."""

    multilabel = False
    class_weight: torch.Tensor | None  # (K,) a buffer (not saved): one weight per class, or none

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        class_weight: list[float] | None = None,
    ):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(
                f"a classifier needs at least two classes; got num_classes = {num_classes}"
            )
        check_loss_settings(num_classes, label_smoothing, class_weight)
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
        weights = self.class_weight
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


class MultiLabelHead(nn.Module):
    """K independent sigmoids: each label is present or not, whatever the others are.

    The loss is binary cross-entropy summed over the K labels and averaged over the examples,
    i.e. ``BCEWithLogitsLoss(reduction="sum")(logits, target) / B`` (fastText's one-vs-all loss
    adds the K binary losses of an example the same way). A mean over the K columns as well
    would shrink every gradient by K and want a K times larger learning rate.
    """

    multilabel = True

    def __init__(self, num_classes: int, label_smoothing: float = 0.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError("a multi-label classifier needs at least two labels")
        check_loss_settings(num_classes, label_smoothing, None)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``y``: (B, K) 0/1 (any dtype), 1 where the example has the label."""
        eps = self.label_smoothing
        # smoothed towards 0.5; in the logits' dtype, so that a float64 model stays float64
        target = y.to(logits.dtype) * (1 - eps) + 0.5 * eps  # (B, K)
        per_cell = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B, K)
        return per_cell.sum(-1).mean()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) independent label probabilities (a row need not sum to 1)."""
        return torch.sigmoid(logits)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) bool: the labels with probability above 0.5."""
        return logits > 0


def balanced_class_weight(y: torch.Tensor, num_classes: int) -> list[float]:
    """n / (K * count_k) per class, as scikit-learn's class_weight='balanced'."""
    counts = torch.bincount(y, minlength=num_classes).double()
    n = float(counts.sum())
    return [n / (num_classes * float(c)) if c > 0 else 0.0 for c in counts]
