"""Scoring text with a language model: per-token log-probabilities, perplexity, the trainer's dev
evaluation, the mixture of two models (weight fitted by EM), and the unigram cache.

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
from ffnlp.text.corpus import LMBatches, mask_before_sentence_start, windows
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


@torch.no_grad()
def chunk_log_probs_nn(
    model: nn.Module,
    chunk: np.ndarray,
    history: int,
    context_size: int,
    eos_id: int,
    cross_sentences: bool = True,
    batch_size: int = 4096,
) -> np.ndarray:
    """log p of the targets of one chunk of :func:`~ffnlp.text.corpus.target_chunks`
    (``history`` ids, then the targets) under the neural model of ``context_size`` C: (n,)
    float64. Each target's window is its C ids before it, as
    :class:`~ffnlp.text.corpus.LMBatches` gives it; ``batch_size`` windows per forward pass,
    views of the chunk until then. The caller puts the model in eval mode."""
    scorer = as_token_scorer(model)
    if history < context_size:
        raise ValueError(f"a chunk needs {context_size} ids of history; it has {history}")
    ids = torch.from_numpy(np.ascontiguousarray(chunk[history - context_size :]))
    rows = windows(ids, context_size)  # (n, C + 1), a view
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size].long()  # (B, C + 1)
        context, target = batch[:, :context_size], batch[:, context_size].contiguous()
        if not cross_sentences:
            context = mask_before_sentence_start(context, eos_id)
        nll = scorer.token_nll({"context": context.to(device), "target": target.to(device)})
        parts.append(-nll.double().cpu())  # (B,)
    return torch.cat(parts).numpy() if parts else np.zeros(0)


CACHE_BLOCK = 8192  # targets whose cache windows are compared at a time (8192 x size bools)


def cache_probs(
    ids: np.ndarray,
    first: int,
    size: int,
    real_from: int = 0,
    decay: float = 1.0,
    skipped: np.ndarray | None = None,
) -> np.ndarray:
    """The unigram cache (Kuhn & De Mori 1990) of every target ``ids[first:]``: the share of the
    ``size`` ids just before it that are the same word, counting only ids from ``real_from`` on
    (those before are padding). ``decay`` < 1 weighs the word k back by decay^(k-1); ``skipped``
    (V,) bool marks words the cache neither counts nor predicts (their share is 0). NaN for a
    target with no counted word before it. (n,) float64."""
    n = len(ids) - first
    if n <= 0:
        return np.zeros(0)
    if size < 1 or first < size or not 0 <= real_from <= first:
        raise ValueError(
            "cache_probs needs size >= 1 and real_from <= first, with size ids of history"
        )
    arr = np.asarray(ids, dtype=np.int64).copy()
    arr[:real_from] = -1  # never a word
    counted = arr >= 0
    if skipped is not None:
        counted &= ~skipped[np.maximum(arr, 0)]
    weights = decay ** np.arange(size - 1, -1, -1, dtype=np.float64)  # the oldest first
    view = np.lib.stride_tricks.sliding_window_view
    out = np.empty(n)
    for s in range(0, n, CACHE_BLOCK):
        e = min(n, s + CACHE_BLOCK)
        # the size ids before each target first + s .. first + e - 1: (e - s, size), views
        before = view(arr[first + s - size : first + e - 1], size)
        used = view(counted[first + s - size : first + e - 1], size)
        hits = (before == arr[first + s : first + e, None]) & used
        total = used @ weights  # (e - s,) the counted words' weight
        out[s:e] = np.where(total > 0, (hits @ weights) / np.where(total > 0, total, 1), np.nan)
    return out


def with_cache(log_probs: np.ndarray, cache: np.ndarray, weight: float) -> np.ndarray:
    """log((1 - weight) p + weight p_cache) per target, from the model's log-probabilities and
    :func:`cache_probs`; the model's own where the cache is NaN (nothing before the target)."""
    if weight <= 0:
        return log_probs
    has = ~np.isnan(cache)
    out = np.array(log_probs, dtype=np.float64)
    with np.errstate(divide="ignore"):  # a word not in the cache: log 0 = -inf, then logaddexp
        out[has] = np.logaddexp(np.log1p(-weight) + out[has], np.log(weight) + np.log(cache[has]))
    return out


def fit_cache_weight(log_probs: np.ndarray, cache: np.ndarray) -> float:
    """The cache's share maximising the likelihood of the targets (EM, as the mixture's)."""
    has = ~np.isnan(cache)
    if not has.any():
        return 0.0
    with np.errstate(divide="ignore"):
        share = fit_mixture_weight(np.log(cache[has]), np.asarray(log_probs)[has])
    return min(share, 0.999)


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
