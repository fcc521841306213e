"""Classification metrics.

Single-label: from a confusion matrix, accuracy, per-class P/R/F1, macro-F1.

Multi-label: P@k and R@k as ``fasttext test FILE k`` computes them, so the figures compare one to
one: every example gets its k most probable labels (fastText's default threshold 0 keeps all k),
P@k = true positives / predictions made (N x k), R@k = true positives / gold labels, and an
example with no gold label (all of them unseen in training) is left out, as fastText leaves it
out. Then micro/macro P/R/F1 at a decision threshold (a label is predicted when its probability
is at least its threshold), as scikit-learn's ``f1_score(average="micro" | "macro",
zero_division=0)`` over every label of the training set, and the same per label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

AT_K = (1, 5)  # the k of P@k / R@k in summaries (fastText's tutorial reports @1 and @5)


def confusion_matrix(gold: torch.Tensor, pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts: rows are gold classes, columns predicted classes."""
    idx = gold.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _per_class(
    labels: Sequence[str],
    precision: torch.Tensor,
    recall: torch.Tensor,
    f1: torch.Tensor,
    support: torch.Tensor,
) -> dict[str, dict[str, float | int]]:
    """The per-label table of a summary: precision, recall, F1 and support of each label."""
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }


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
    f1 = torch.where(
        denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp)
    )
    n = float(cm.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "per_class": _per_class(labels, precision, recall, f1, actual),
        "confusion": cm.long().tolist(),
    }


def precision_recall_at_k(gold: torch.Tensor, probs: torch.Tensor, k: int) -> tuple[float, float]:
    """fastText's P@k and R@k of (N, K) 0/1 gold labels and (N, K) probabilities.

    Rows with no gold label must be left out beforehand (:func:`multilabel_metrics` does).
    With fewer than k labels in all, every label is predicted (fastText's top-k is then K).
    """
    n, num_labels = gold.shape
    kk = min(k, num_labels)
    if n == 0 or kk == 0:
        return 0.0, 0.0
    top = probs.topk(kk, dim=1).indices  # (N, k)
    hits = float(gold.gather(1, top).sum())  # true positives among the predictions
    return hits / (n * kk), hits / max(float(gold.sum()), 1.0)


# the headline figures of a multi-label evaluation (P@k and R@k as `fasttext test` computes them,
# F1 at the threshold): what every evaluation records and the train table shows
MULTILABEL_FIGURES = (
    "precision_at_1",
    "recall_at_1",
    "precision_at_5",
    "recall_at_5",
    "micro_f1",
    "macro_f1",
)


def multilabel_metrics(
    gold: torch.Tensor,
    probs: torch.Tensor,
    labels: Sequence[str],
    threshold: float | torch.Tensor = 0.5,
    at_k: Sequence[int] = AT_K,
) -> dict[str, Any]:
    """P@k / R@k for each k of ``at_k``, micro/macro P/R/F1 at ``threshold`` (one number, or one
    per label), and per-label precision/recall/F1/support. ``gold``: (N, K) 0/1; ``probs``:
    (N, K) independent label probabilities. Examples with no gold label are left out of all of
    them (``examples`` counts those kept)."""
    gold = gold.bool()
    keep = gold.any(dim=1)  # (N,)
    gold, probs = gold[keep], probs[keep]
    out: dict[str, Any] = {}
    for k in at_k:
        out[f"precision_at_{k}"], out[f"recall_at_{k}"] = precision_recall_at_k(gold, probs, k)
    t = torch.as_tensor(threshold, dtype=probs.dtype, device=probs.device)  # () or (K,)
    pred = probs >= t  # (N, K)
    tp = (pred & gold).sum(0).double()  # (K,)
    predicted = pred.sum(0).double()
    actual = gold.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
    both = predicted + actual
    f1 = torch.where(both > 0, 2 * tp / both.clamp(min=1), torch.zeros_like(tp))
    tp_all, pred_all, gold_all = float(tp.sum()), float(predicted.sum()), float(actual.sum())
    out.update(
        micro_precision=tp_all / pred_all if pred_all else 0.0,
        micro_recall=tp_all / gold_all if gold_all else 0.0,
        micro_f1=2 * tp_all / (pred_all + gold_all) if pred_all + gold_all else 0.0,
        macro_f1=float(f1.mean()) if len(labels) else 0.0,
        examples=int(gold.shape[0]),
        gold_labels=int(gold_all),
        per_class=_per_class(labels, precision, recall, f1, actual),
    )
    return out


MIN_TUNING_SUPPORT = 10  # dev examples a label needs before it gets a threshold of its own


def tune_thresholds(
    gold: torch.Tensor,
    probs: torch.Tensor,
    default: float,
    min_support: int = MIN_TUNING_SUPPORT,
) -> torch.Tensor:
    """Per label, the decision threshold that maximises its F1 on (N, K) ``gold`` / ``probs``.

    Every cut of a label's probabilities sorted from high to low is a candidate (predict the
    examples above it); the best cut's threshold is halfway between the last probability kept
    and the next one, so the same data gives the same predictions and nearby unseen values fall
    on the side they are closest to. Labels with fewer than ``min_support`` positive examples
    keep ``default``: with one or two positives the best cut is wherever they happen to rank,
    often far down, and the threshold it gives makes the label predicted almost everywhere. (K,)
    """
    gold = gold.bool()
    n, num_labels = gold.shape
    out = torch.full((num_labels,), float(default), dtype=torch.float64)
    if n == 0:
        return out
    p, order = probs.double().sort(dim=0, descending=True)  # (N, K) each column high to low
    hits = gold.gather(0, order).double().cumsum(0)  # (N, K) true positives when cutting at row i
    positives = gold.sum(0).double()  # (K,)
    predicted = torch.arange(1, n + 1, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    f1 = 2 * hits / (predicted + positives)  # (N, K)
    # a cut inside a run of equal probabilities is not a threshold: only the end of a run counts
    ends = torch.ones_like(p, dtype=torch.bool)
    ends[:-1] = p[:-1] != p[1:]
    best = torch.where(ends, f1, torch.full_like(f1, -1.0)).argmax(0)  # (K,)
    kept = p.gather(0, best.unsqueeze(0)).squeeze(0)  # (K,)
    below = p.gather(0, (best + 1).clamp(max=n - 1).unsqueeze(0)).squeeze(0)
    cut = torch.where(best < n - 1, (kept + below) / 2, kept)
    return torch.where(positives >= max(min_support, 1), cut, out)
