"""The default evaluation: the model's mean loss over a data source (a task hands the Trainer its
own evaluator for anything else)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ffnlp.training.data import BatchSource, batch_size_of
from ffnlp.training.distributed import evaluation_batches, evaluation_results
from ffnlp.training.trainable import as_trainable

# evaluate(model, dev data) -> metrics, e.g. {"loss": 0.31, "accuracy": 0.88}
Evaluate = Callable[[nn.Module, BatchSource], dict[str, Any]]


@torch.no_grad()
def mean_loss(model: nn.Module, source: BatchSource, batch_size: int = 1024) -> dict[str, Any]:
    """Default evaluation: the model's loss averaged over every example of ``source``."""
    total, count = 0.0, 0
    trainable = as_trainable(model)
    parts = {}  # under torchrun's shared evaluation, this rank's batches only
    for i, batch in evaluation_batches(source.batches(batch_size, None)):
        n = batch_size_of(batch)
        parts[i] = (float(trainable.loss(batch)) * n, n)
    for loss_sum, n in evaluation_results(parts):
        total += loss_sum
        count += n
    return {"loss": total / max(count, 1)}
