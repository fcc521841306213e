"""The classifier's evaluator: loss, accuracy and macro-F1 of a model on a batch source."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ffnlp.models.protocols import as_classifier, head_of
from ffnlp.tasks.classify.metrics import classification_metrics
from ffnlp.training.data import BatchSource
from ffnlp.training.trainer import Evaluate


def make_evaluator(labels: list[str], full: bool = False, batch_size: int = 2048) -> Evaluate:
    """evaluate(model, source) -> loss, accuracy, macro_f1 (+ per-class and confusion when full)."""

    @torch.no_grad()
    def evaluate(model: nn.Module, source: BatchSource) -> dict[str, Any]:
        classifier = as_classifier(model)
        head = head_of(classifier)
        golds, preds, loss_sum, n = [], [], 0.0, 0
        for batch in source.batches(batch_size, None):
            logits = classifier.logits(batch)  # (B, K')
            b = int(batch["y"].shape[0])
            loss_sum += float(head.loss(logits, batch["y"])) * b
            n += b
            golds.append(batch["y"])
            preds.append(head.predict(logits))  # (B,)
        m = classification_metrics(torch.cat(golds), torch.cat(preds), labels)
        out: dict[str, Any] = {
            "loss": loss_sum / max(n, 1),
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
        }
        if full:
            out.update(per_class=m["per_class"], confusion=m["confusion"], examples=n)
        return out

    return evaluate
