"""Classification metrics from a confusion matrix: accuracy, per-class P/R/F1, macro-F1."""

from __future__ import annotations

from typing import Any

import torch


def confusion_matrix(gold: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts: rows are gold classes, columns predicted classes."""
    idx = gold.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(
    gold: torch.Tensor, pred: torch.Tensor, labels: list[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    A class with no predictions has precision 0 (and no gold examples: recall 0), as in
    scikit-learn with zero_division=0.
    """
    k = len(labels)
    cm = confusion_matrix(gold, pred, k).double()
    tp = cm.diag()
    predicted = cm.sum(0)
    actual = cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp))
    n = float(cm.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(actual[i])}
            for i, label in enumerate(labels)
        },
        "confusion": cm.long().tolist(),
    }
