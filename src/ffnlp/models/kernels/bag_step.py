"""The bag-of-ids classifiers' whole training step in one compiled call (fastText's trainer).

A step of the pooled-embedding network (:class:`~ffnlp.models.pooled.PooledEmbeddingClassifier`
with no hidden layer) or of the n-gram MLP (:class:`~ffnlp.models.feature_mlp.FeatureMLP` with
one ReLU layer) is a few thousand multiply-adds: through autograd and torch's optimisers it is
some forty operator calls, each costing more than its arithmetic (3 ms a step on SST-2, where
fastText spends a few microseconds). :func:`bag_step` makes the same step in one Numba call:

    bags of rows (ids, offsets[, weights]) -> sum or mean [-> + bias -> ReLU] -> dropout
      -> logits = h W^T + b -> loss (sigmoid or softmax cross-entropy, mean over the batch)
      -> the gradients of every weight -> Adam (the table's touched rows only, as
         :class:`~ffnlp.training.optim.LazyAdam`; the dense weights as ``torch.optim.Adam``)
         or plain SGD

with every gradient taken from the weights as they were before the step, as autograd does.
The random draws (word dropout, dropout) are made by torch in the caller and passed in, so the
step draws from the seeded generator the reference path draws from.

:class:`BagLayout` is a model's description of those parts (its ``bag_layout()``); the
Trainer's step around the kernel, with the optimisers' own state, is
:class:`ffnlp.tasks.classify.fused.BagStep`, chosen only where the kernel makes exactly the update
that ``loss.backward()`` + the configured optimiser would make, and the autograd step otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ffnlp import jit


@jit.kernel(error_model="numpy")  # no zero-divisor check in the loops: they vectorise
def bag_step(
    table,  # (V, D) the input rows
    moments,  # (V, 2D) Adam: LazyAdam's moments of each row, m then v; SGD: (0, 0)
    ids,  # (N,) rows of every bag, back to back
    offsets,  # (B,) start of each bag in ids
    weights,  # (N,) a weight per id (sum only), or (0,) for none
    word_u,  # (N,) uniform draws of word dropout (id j dropped when < word_p), or (0,)
    word_p,
    mean,  # bool: mean of the bag's rows (else their weighted sum)
    in_bias,  # (D,) bias after the bag, or (0,)
    in_bias_m,  # (D,) its Adam moments, or (0,)
    in_bias_v,
    relu,  # bool: ReLU after the bag (+ bias)
    drop_u,  # (B, D) uniform draws of dropout (dropped when < drop_p), or (0, 0) for none
    drop_p,
    w,  # (K, D) output layer
    w_m,  # (K, D) its Adam moments, or (0, 0)
    w_v,
    b,  # (K,) output bias
    b_m,  # (K,) its Adam moments, or (0,)
    b_v,
    y,  # (B,) int64 class ids (0/1 with K = 1)
    lr,
    beta1,
    beta2,
    eps,
    dense_step,  # torch.optim.Adam's step count of the dense weights, after this step's increment
    sparse_step,  # LazyAdam's step count of the table, after this step's increment
    adam,  # bool: Adam (else plain SGD)
    slot,  # (V,) int64 scratch, -1 everywhere on entry and on return
    touched,  # (V,) bool: set True for every row this step moves
):
    n_bags = offsets.shape[0]
    n_ids = ids.shape[0]
    d = table.shape[1]
    k = w.shape[0]
    has_weights = weights.shape[0] > 0
    has_keep = word_u.shape[0] > 0
    has_bias = in_bias.shape[0] > 0
    has_drop = drop_u.shape[0] > 0
    real = table.dtype.type  # every scalar in the table's type: float32 arithmetic vectorises
    zero = real(0.0)
    lr = real(lr)
    beta1 = real(beta1)
    beta2 = real(beta2)
    eps = real(eps)
    one = real(1.0)
    scale_kept = one / (one - real(drop_p)) if has_drop else one  # inverted dropout
    word_p = word_u.dtype.type(word_p)  # compared in the draws' type, as torch compares them
    drop_p = drop_u.dtype.type(drop_p)

    # forward: each bag's rows -> pre (B, D); the ids kept and the divisor of each bag
    pre = np.zeros((n_bags, d), dtype=table.dtype)
    used = np.zeros(n_ids, dtype=np.bool_)  # ids that enter their bag (word dropout)
    count = np.zeros(n_bags, dtype=np.int64)
    for i in range(n_bags):
        lo = offsets[i]
        hi = offsets[i + 1] if i + 1 < n_bags else n_ids
        every = True  # a bag that would lose every id keeps them all (pooled.drop_words)
        if has_keep:
            for j in range(lo, hi):
                if word_u[j] >= word_p:
                    every = False
                    break
        c = 0
        for j in range(lo, hi):
            if has_keep and not every and word_u[j] < word_p:
                continue
            used[j] = True
            c += 1
            r = ids[j]
            if has_weights:
                a = weights[j]
                for e in range(d):
                    pre[i, e] += a * table[r, e]
            else:
                for e in range(d):
                    pre[i, e] += table[r, e]
        count[i] = c
        if mean and c > 0:
            n = real(c)
            for e in range(d):
                pre[i, e] /= n
        if has_bias:
            for e in range(d):
                pre[i, e] += in_bias[e]
    # activation and dropout -> h (B, D); logits (B, K)
    h = np.empty((n_bags, d), dtype=table.dtype)
    for i in range(n_bags):
        for e in range(d):
            x = pre[i, e]
            if relu and x <= zero:
                x = zero
            if has_drop:
                x = x * scale_kept if drop_u[i, e] >= drop_p else zero
            h[i, e] = x
    logits = np.empty((n_bags, k), dtype=table.dtype)
    for i in range(n_bags):
        for c in range(k):
            s = b[c]
            for e in range(d):
                s += h[i, e] * w[c, e]
            logits[i, c] = s
    # loss (mean over the batch) and its gradient with respect to the logits
    grad = np.empty((n_bags, k), dtype=table.dtype)
    loss = 0.0
    for i in range(n_bags):
        if k == 1:  # one logit: sigmoid cross-entropy
            z = logits[i, 0]
            t = 1.0 if y[i] == 1 else 0.0
            loss += max(z, 0.0) - z * t + math.log1p(math.exp(-abs(z)))
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            grad[i, 0] = (p - t) / n_bags
        else:  # K logits: softmax cross-entropy
            top = logits[i, 0]
            for c in range(1, k):
                top = max(top, logits[i, c])
            total = 0.0
            for c in range(k):
                total += math.exp(logits[i, c] - top)
            lse = top + math.log(total)
            loss += lse - logits[i, y[i]]
            for c in range(k):
                grad[i, c] = math.exp(logits[i, c] - lse) / n_bags
            grad[i, y[i]] -= 1.0 / n_bags
    loss /= n_bags
    # backward, every gradient from the weights before the step
    g_w = np.zeros((k, d), dtype=table.dtype)
    g_b = np.zeros(k, dtype=table.dtype)
    g_pre = np.zeros((n_bags, d), dtype=table.dtype)  # dL/d(bag output + bias)
    for i in range(n_bags):
        for c in range(k):
            g = grad[i, c]
            g_b[c] += g
            for e in range(d):
                g_w[c, e] += g * h[i, e]
                g_pre[i, e] += g * w[c, e]
        for e in range(d):
            if has_drop:
                g_pre[i, e] = g_pre[i, e] * scale_kept if drop_u[i, e] >= drop_p else zero
            if relu and pre[i, e] <= zero:
                g_pre[i, e] = zero
    g_bias = np.zeros(d, dtype=table.dtype)
    if has_bias:
        for i in range(n_bags):
            for e in range(d):
                g_bias[e] += g_pre[i, e]
    # the table's gradient: one row per distinct id (as a coalesced sparse gradient)
    rows = np.empty(n_ids, dtype=np.int64)
    n_rows = 0
    for j in range(n_ids):
        if used[j] and slot[ids[j]] < 0:
            slot[ids[j]] = n_rows
            rows[n_rows] = ids[j]
            n_rows += 1
    g_rows = np.zeros((n_rows, d), dtype=table.dtype)
    for i in range(n_bags):
        lo = offsets[i]
        hi = offsets[i + 1] if i + 1 < n_bags else n_ids
        scale = one / real(count[i]) if mean and count[i] > 0 else one
        for j in range(lo, hi):
            if not used[j]:
                continue
            a = scale * weights[j] if has_weights else scale
            s = slot[ids[j]]
            for e in range(d):
                g_rows[s, e] += a * g_pre[i, e]
    # updates
    if adam:
        # the table: LazyAdam (only these rows' moments decay; bias correction by its step)
        bias1 = 1.0 - float(beta1) ** sparse_step
        bias2 = 1.0 - float(beta2) ** sparse_step
        size = real(float(lr) * math.sqrt(bias2) / bias1)
        c1 = one - beta1
        c2 = one - beta2
        for s in range(n_rows):
            r = rows[s]
            for e in range(d):
                g = g_rows[s, e]
                m = beta1 * moments[r, e] + c1 * g
                v = beta2 * moments[r, d + e] + c2 * g * g
                moments[r, e] = m
                moments[r, d + e] = v
                table[r, e] -= size * (m / (np.sqrt(v) + eps))
        # the dense weights: torch.optim.Adam (eps added to the bias-corrected root)
        bias1 = 1.0 - float(beta1) ** dense_step
        root2 = real(math.sqrt(1.0 - float(beta2) ** dense_step))
        size = real(float(lr) / bias1)
        for c in range(k):
            for e in range(d):
                g = g_w[c, e]
                w_m[c, e] = beta1 * w_m[c, e] + c1 * g
                w_v[c, e] = beta2 * w_v[c, e] + c2 * g * g
                w[c, e] -= size * w_m[c, e] / (np.sqrt(w_v[c, e]) / root2 + eps)
            g = g_b[c]
            b_m[c] = beta1 * b_m[c] + c1 * g
            b_v[c] = beta2 * b_v[c] + c2 * g * g
            b[c] -= size * b_m[c] / (np.sqrt(b_v[c]) / root2 + eps)
        if has_bias:
            for e in range(d):
                g = g_bias[e]
                in_bias_m[e] = beta1 * in_bias_m[e] + c1 * g
                in_bias_v[e] = beta2 * in_bias_v[e] + c2 * g * g
                in_bias[e] -= size * in_bias_m[e] / (np.sqrt(in_bias_v[e]) / root2 + eps)
    else:
        for s in range(n_rows):
            r = rows[s]
            for e in range(d):
                table[r, e] -= lr * g_rows[s, e]
        for c in range(k):
            for e in range(d):
                w[c, e] -= lr * g_w[c, e]
            b[c] -= lr * g_b[c]
        if has_bias:
            for e in range(d):
                in_bias[e] -= lr * g_bias[e]
    for s in range(n_rows):
        slot[rows[s]] = -1
        touched[rows[s]] = True
    return loss


@dataclass
class BagLayout:
    """Which parts of the step a model has: the tensors :func:`bag_step` updates."""

    table: torch.Tensor  # (V, D) parameter
    weight: torch.Tensor  # (K, D) output layer
    bias: torch.Tensor  # (K,)
    mean: bool  # mean of the bag's rows, else their (weighted) sum
    word_dropout: float = 0.0  # pooled: drop whole ids (never emptying a bag)
    input_dropout: float = 0.0  # MLP: dropout on the per-id weights
    in_bias: torch.Tensor | None = None  # (D,) bias after the bag (MLP)
    relu: bool = False  # ReLU after the bag (+ bias)
    dropout: float = 0.0  # dropout before the output layer
