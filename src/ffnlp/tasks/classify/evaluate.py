"""The classifier's evaluator: loss and the task's scores of a model on a batch source.

Single-label: accuracy and macro-F1 (per class and the confusion matrix when ``full``).
Multi-label: P@1/R@1, P@5/R@5 (as ``fasttext test`` computes them), micro/macro F1 at the
threshold (the per-label table when ``full``); see :mod:`.metrics`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ffnlp.models.protocols import as_classifier, head_of
from ffnlp.tasks.classify.metrics import (
    MULTILABEL_FIGURES,
    classification_metrics,
    multilabel_metrics,
)
from ffnlp.training.data import BatchSource
from ffnlp.training.distributed import evaluation_batches, evaluation_results
from ffnlp.training.trainer import Evaluate


def make_evaluator(
    labels: list[str],
    full: bool = False,
    batch_size: int = 2048,
    multilabel: bool = False,
    threshold: float | torch.Tensor = 0.5,
) -> Evaluate:
    """evaluate(model, source) -> loss, accuracy, macro_f1 (+ per-class and confusion when full);
    multi-label: loss, precision/recall at 1 and 5, micro/macro F1 at ``threshold`` (+ micro
    precision/recall, examples and the per-label table when full)."""

    @torch.no_grad()
    def evaluate(model: nn.Module, source: BatchSource) -> dict[str, Any]:
        classifier = as_classifier(model)
        head = head_of(classifier)
        golds, preds, loss_sum, n = [], [], 0.0, 0
        parts = {}  # under torchrun's shared evaluation, this rank's batches only
        for i, batch in evaluation_batches(source.batches(batch_size, None)):
            logits = classifier.logits(batch)  # (B, K')
            b = int(batch["y"].shape[0])
            # multi-label: (B, K) probabilities; single-label: (B,) the predicted class
            pred = head.probabilities(logits) if multilabel else head.predict(logits)
            parts[i] = (float(head.loss(logits, batch["y"])) * b, b, batch["y"], pred)
        for batch_loss, b, gold, pred in evaluation_results(parts):  # every rank's, in order
            loss_sum += batch_loss
            n += b
            golds.append(gold)
            preds.append(pred)
        loss = loss_sum / max(n, 1)
        if multilabel:
            m = multilabel_metrics(torch.cat(golds), torch.cat(preds), labels, threshold)
            keys = list(MULTILABEL_FIGURES)
            if full:
                keys += ["micro_precision", "micro_recall", "examples", "gold_labels", "per_class"]
            return {"loss": loss, **{key: m[key] for key in keys}}
        m = classification_metrics(torch.cat(golds), torch.cat(preds), labels)
        out: dict[str, Any] = {
            "loss": loss,
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
        }
        if full:
            out.update(per_class=m["per_class"], confusion=m["confusion"], examples=n)
        return out

    return evaluate
