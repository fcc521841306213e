"""Scoring text with a language model: per-token log-probabilities, perplexity, the trainer's dev
evaluation, and the mixture of two models (weight fitted by EM).

The perplexity convention is :mod:`ffnlp.text.corpus`'s: exp(mean negative log-likelihood per
predicted token over the whole text), every word and one ``</s>`` per sentence predicted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ffnlp.models.protocols import as_token_scorer
from ffnlp.text.corpus import LMBatches
from ffnlp.training.distributed import evaluation_batches, evaluation_results


@torch.no_grad()
def token_log_probs_nn(model: nn.Module, source: LMBatches, batch_size: int = 4096) -> np.ndarray:
    """log p of every target of ``source`` under the neural model, in order: (T,) float64."""
    scorer = as_token_scorer(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = {}  # under torchrun's shared evaluation, this rank's batches only
    for i, batch in evaluation_batches(source.batches(batch_size, None)):
        batch = {k: v.to(device) for k, v in batch.items()}
        parts[i] = -scorer.token_nll(batch).double().cpu()  # (B,)
    model.train(was_training)
    out = evaluation_results(parts)  # every rank's, in order
    return torch.cat(out).numpy() if out else np.zeros(0)


def perplexity_of(log_probs: np.ndarray) -> float:
    """exp(mean negative log-likelihood per token)."""
    return float(math.exp(-float(np.mean(log_probs))))


def make_evaluator(batch_size: int) -> Callable[[nn.Module, Any], dict[str, float]]:
    """The trainer's dev evaluation: mean NLL per token and perplexity over the whole text."""

    def evaluate(model: nn.Module, source: Any) -> dict[str, float]:
        lp = token_log_probs_nn(model, source, batch_size)
        loss = -float(np.mean(lp))
        return {"loss": loss, "perplexity": math.exp(loss)}

    return evaluate


def fit_mixture_weight(first: np.ndarray, second: np.ndarray, iterations: int = 100) -> float:
    """The λ maximising Σ log(λ p1 + (1-λ) p2) over tokens, by EM (from log-probabilities)."""
    lam = 0.5
    p1, p2 = np.exp(first), np.exp(second)
    for _ in range(iterations):
        mix = lam * p1 + (1 - lam) * p2
        new = float(np.mean(lam * p1 / mix))
        if abs(new - lam) < 1e-7:
            lam = new
            break
        lam = new
    return lam


def mix_log_probs(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """log(weight p1 + (1 - weight) p2) per token, from the two models' log-probabilities."""
    return (
        np.logaddexp(np.log(weight) + first, np.log1p(-weight) + second)
        if 0 < weight < 1
        else (first if weight >= 1 else second)
    )
