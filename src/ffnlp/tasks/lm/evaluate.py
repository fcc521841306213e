"""Scoring text with a language model: per-token log-probabilities, perplexity, the trainer's dev
evaluation, the mixture of two models (weight fitted by EM), and the unigram cache.

The perplexity convention is :mod:`ffnlp.text.corpus`'s: exp(mean negative log-likelihood per
predicted token over the whole text), every word and one ``</s>`` per sentence predicted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    order: int = 1,
) -> np.ndarray:
    """The cache (Kuhn & De Mori 1990) of every target ``ids[first:]``. Order 1, the unigram
    cache: the share of the ``size`` ids just before the target that are the same word. Order
    n >= 2, the n-gram cache: among those ``size`` positions, the ones whose n - 1 ids before them
    are the target's n - 1 ids before it, the share that hold the target (NaN when there is
    none). Only ids from ``real_from`` on count (those before are padding). ``decay`` < 1 weighs
    the position k back by decay^(k-1); ``skipped`` (V,) bool marks words the unigram cache
    neither counts nor predicts (their share is 0). NaN for a target with nothing counted before
    it. Needs ``size + order - 1`` ids before ``first``. (n,) float64."""
    n = len(ids) - first
    if n <= 0:
        return np.zeros(0)
    if size < 1 or order < 1 or first < size + order - 1 or not 0 <= real_from <= first:
        raise ValueError(
            "cache_probs needs size >= 1, order >= 1 and real_from <= first, with size + order"
            " - 1 ids of history"
        )
    arr = np.asarray(ids, dtype=np.int64).copy()
    arr[:real_from] = -1  # never a word
    counted = arr >= 0
    if skipped is not None and order == 1:
        counted &= ~skipped[np.maximum(arr, 0)]
    weights = decay ** np.arange(size - 1, -1, -1, dtype=np.float64)  # the oldest first
    view = np.lib.stride_tricks.sliding_window_view
    out = np.empty(n)
    for s in range(0, n, CACHE_BLOCK):
        e = min(n, s + CACHE_BLOCK)
        lo, hi = first + s - size, first + e - 1
        # the size ids before each target first + s .. first + e - 1: (e - s, size), views
        before = view(arr[lo:hi], size)
        used = view(counted[lo:hi], size)
        for i in range(1, order):  # the positions whose id i back is the target's i back
            back = arr[first + s - i : first + e - i]
            used = used & (view(arr[lo - i : hi - i], size) == back[:, None]) & (back >= 0)[:, None]
        hits = (before == arr[first + s : first + e, None]) & used
        total = used @ weights  # (e - s,) the counted positions' weight
        out[s:e] = np.where(total > 0, (hits @ weights) / np.where(total > 0, total, 1), np.nan)
    return out


def with_cache(
    log_probs: np.ndarray, cache: np.ndarray, weight: float | Sequence[float]
) -> np.ndarray:
    """The model's probabilities mixed with the caches: ``cache`` (n,) or (K, n) from
    :func:`cache_probs` of orders 1..K, ``weight`` their shares w_k. Per target, over the caches
    it has (not NaN): p = ((1 - sum w) p_model + sum w_k p_k) / ((1 - sum w) + sum w_k), so a cache
    with nothing to say gives its share back to the others (the model's own probability where
    no cache has anything). log p, (n,)."""
    caches = np.atleast_2d(np.asarray(cache, dtype=np.float64))
    shares = np.atleast_1d(np.asarray(weight, dtype=np.float64))
    if shares.sum() <= 0:
        return log_probs
    has = ~np.isnan(caches)
    rest = 1.0 - float(shares.sum())
    out = np.log(rest) + np.asarray(log_probs, dtype=np.float64)
    norm = np.full(out.shape, rest)
    with np.errstate(divide="ignore"):  # a word not in a cache: log 0 = -inf, then logaddexp
        for k, share in enumerate(shares):
            if share > 0:
                h = has[k]
                out[h] = np.logaddexp(out[h], np.log(share) + np.log(caches[k, h]))
                norm[h] += share
    return out - np.log(norm)


def fit_cache_weight(
    log_probs: np.ndarray, cache: np.ndarray, iterations: int = 200
) -> tuple[float, ...]:
    """The caches' shares maximising the likelihood of the targets under :func:`with_cache`
    (``cache`` (n,) or (K, n)): w_k <- w_k sum_t r_kt / sum_t q_kt, with r_kt the posterior of
    cache k for target t and q_kt its renormalised prior (w_k / the shares of the components
    target t has); EM's update when every cache has something for every target. Their sum is
    at most 0.999."""
    caches = np.atleast_2d(np.asarray(cache, dtype=np.float64))
    has = ~np.isnan(caches)
    K = len(caches)
    if not has.any():
        return (0.0,) * K
    probs = np.vstack([np.exp(np.asarray(log_probs, dtype=np.float64)), np.where(has, caches, 0)])
    avail = np.vstack([np.ones((1, has.shape[1]), dtype=bool), has])
    rows = avail[1:].any(axis=1)  # a cache with nothing for any target keeps share 0
    w = np.array([0.5, *np.where(rows, 0.5 / max(int(rows.sum()), 1), 0.0)])
    for _ in range(iterations):
        prior = w[:, None] * avail
        prior /= prior.sum(axis=0)
        post = prior * probs
        post /= post.sum(axis=0)
        new = w * post.sum(axis=1) / np.maximum(prior.sum(axis=1), 1e-300)
        new /= new.sum()
        done = float(np.max(np.abs(new - w))) < 1e-7
        w = new
        if done:
            break
    shares = w[1:]
    if shares.sum() > 0.999:
        shares = shares * (0.999 / shares.sum())
    return tuple(float(x) for x in shares)


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
