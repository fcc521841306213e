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

:class:`BagStep` is the Trainer's step strategy around it (``Trainer(..., step=...)``); a
model's ``fused_step(config)`` returns one where the kernel makes exactly the update that
``loss.backward()`` + the configured optimiser would make (see :func:`fusable_config`), and None
otherwise: the autograd path. ``FFNLP_JIT=0`` (or no Numba) also means the autograd path. The
parity tests (tests/models/test_bag_step.py) compare both in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ffnlp import jit
from ffnlp.training.config import TrainConfig
from ffnlp.training.optim import LazyAdam, lazy_zeros
from ffnlp.training.steps import AutogradStep

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


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


def fusable_config(config: TrainConfig) -> bool:
    """Whether the training settings are ones :func:`bag_step` makes: Adam (with the table's
    sparse gradients, i.e. LazyAdam) or plain SGD; no weight decay, L1/L2 penalty, clipping,
    training diagnostics (which read gradients) or ``train.fused_step = false``."""
    if not config.fused_step:
        return False
    if config.weight_decay or config.l1 or config.l2 or config.clip_norm or config.diagnostics:
        return False
    if config.optimizer == "adam":
        return config.sparse  # a dense table under Adam moves every row each step: not this step
    return config.optimizer == "sgd" and config.momentum == 0


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


class BagStep:
    """The Trainer's step for a bag model: :func:`bag_step` with the optimiser's own state, so
    checkpoints, resuming and a later autograd step see the same moments and step counts."""

    own_threads = False  # one compiled call a step; torch's threads only evaluate

    def __init__(self, layout: BagLayout, kernel: Any):
        self.layout = layout
        self.kernel = kernel
        self.slot = np.full(layout.table.shape[0], -1, dtype=np.int64)
        # the table rows moved since rows_changed last answered (None: unknown, e.g. after an
        # autograd step or under weight averaging, whose average moves every row)
        self.touched = np.zeros(layout.table.shape[0], dtype=np.bool_)
        self.tracked = True
        self._cached: tuple[list[int], list[np.ndarray]] | None = None
        self._no_draws1 = np.empty(0, dtype=np.float32)  # torch.rand's type
        self._no_draws2 = np.empty((0, 0), dtype=np.float32)

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.adam = trainer.config.optimizer == "adam"
        optimizers = getattr(trainer.optimizer, "optimizers", [trainer.optimizer])
        self.owner: dict[int, torch.optim.Optimizer] = {
            id(p): o for o in optimizers for g in o.param_groups for p in g["params"]
        }
        group = trainer.optimizer.param_groups[0]
        beta1, beta2 = group.get("betas", (0.9, 0.999))
        self.betas = (float(beta1), float(beta2))
        self.eps = float(group.get("eps", 1e-8))
        self.fallback = AutogradStep()
        self.fallback.bind(trainer)
        # the kernel's state is the optimisers' own: LazyAdam's for the table under Adam
        table_owner = self.owner.get(id(self.layout.table))
        self.usable = trainer.device.type == "cpu" and (
            not self.adam or isinstance(table_owner, LazyAdam)
        )
        self.tracked = self.usable and not trainer.config.ema_decay

    def rows_changed(self, tensor: torch.Tensor) -> torch.Tensor | None:
        """The rows of ``tensor`` (when it is the table's memory) that steps have moved since
        the previous call, which starts the count again; None where that is not known (another
        tensor, an autograd step in between, weight averaging). BestWeights copies only these
        rows of a large table into its snapshot."""
        if (
            tensor.data_ptr() != self.layout.table.data_ptr()
            or tensor.shape != self.layout.table.shape
        ):
            return None
        known = self.tracked
        rows = torch.from_numpy(np.flatnonzero(self.touched)) if known else None
        self.touched[:] = False
        self.tracked = self.usable and not self.trainer.config.ema_decay
        return rows

    def _dense_state(self, p: torch.Tensor) -> dict[str, Any]:
        """torch.optim.Adam's state of ``p``, made as its first step makes it when absent."""
        state = self.owner[id(p)].state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _table_state(self) -> dict[str, Any]:
        """LazyAdam's state of the table, made as its first step makes it when absent."""
        p = self.layout.table
        state = self.owner[id(p)].state[p]
        if not state:
            state["step"] = 0
            state["moments"] = lazy_zeros(p.shape[0], 2 * p.shape[1], dtype=p.dtype)
        return state

    def random_draws(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """This step's draws from torch's generator (None where not used): uniform numbers for
        word dropout (N,) and dropout (B, D), which the kernel compares with the probabilities,
        and the per-id weights after input dropout (N,)."""
        lay = self.layout
        n = batch["ids"].numel() if lay.word_dropout > 0 else 0
        m = batch["offsets"].numel() * lay.table.shape[1] if lay.dropout > 0 else 0
        u = torch.rand(n + m) if n + m else None  # one draw for both
        word_u = u[:n] if u is not None and n else None
        drop_u = u[n:].view(-1, lay.table.shape[1]) if u is not None and m else None
        weights = batch.get("weights")
        if weights is not None and lay.input_dropout > 0:
            weights = torch.nn.functional.dropout(weights, lay.input_dropout)
        return word_u, weights, drop_u

    def __call__(self, batch: dict[str, Any], need_norm: bool) -> tuple[float, float | None]:
        trainer = self.trainer
        if not self.usable or "ids" not in batch:  # dense rows, not bags: the autograd step
            self.tracked = False
            return self.fallback(batch, need_norm)
        word_u, weights, drop_u = self.random_draws(batch)
        loss = self.run(batch, trainer.scheduler.lr(), word_u, weights, drop_u)
        trainer.check_loss(loss)
        return loss, None

    def _state_arrays(self) -> list[np.ndarray]:
        """The weights and the optimiser's state as NumPy arrays over their memory, made again
        only when a tensor or its memory was replaced (a checkpoint loaded into the optimiser,
        ``param.data = ...``)."""
        lay = self.layout
        dense = [lay.weight, lay.bias] + ([lay.in_bias] if lay.in_bias is not None else [])
        tensors: list[torch.Tensor] = [lay.table, *dense]
        if self.adam:
            table_state = self._table_state()
            tensors.append(table_state["moments"])
            for p in dense:
                state = self._dense_state(p)
                tensors += [state["exp_avg"], state["exp_avg_sq"], state["step"]]
        where = [t.data_ptr() for t in tensors]
        cached = self._cached
        if cached is None or cached[0] != where:
            arrays = [t.detach().numpy() for t in tensors]
            arrays = [a.reshape(1) if a.ndim == 0 else a for a in arrays]
            self._cached = cached = (where, arrays)
        return cached[1]

    def run(
        self,
        batch: dict[str, Any],
        lr: float,
        word_u: torch.Tensor | None,
        weights: torch.Tensor | None,
        drop_u: torch.Tensor | None,
    ) -> float:
        """The kernel on ``batch`` with the given draws (:meth:`random_draws`); the batch's mean
        loss."""
        lay = self.layout
        arrays = self._state_arrays()
        kind = arrays[0].dtype
        none1, none2 = self._empty(kind)
        has_bias = lay.in_bias is not None
        table, w, b = arrays[0], arrays[1], arrays[2]
        in_bias = arrays[3] if has_bias else none1
        if self.adam:
            table_state = self.owner[id(lay.table)].state[lay.table]
            table_state["step"] += 1
            rest = arrays[4 if has_bias else 3 :]
            moments = rest[0]
            w_m, w_v, w_t = rest[1:4]
            b_m, b_v, b_t = rest[4:7]
            in_m, in_v, in_t = rest[7:10] if has_bias else (none1, none1, none1)
            for t in (w_t, b_t, in_t):
                if t.shape[0]:
                    t += 1  # torch.optim.Adam's count of each dense weight
            sparse_step, dense_step = table_state["step"], float(w_t[0])
        else:
            moments = self._empty_moments(kind)
            w_m = w_v = none2
            b_m = b_v = in_m = in_v = none1
            sparse_step, dense_step = 0, 0.0
        y = batch["y"]
        loss = self.kernel(
            table,
            moments,
            batch["ids"].numpy(),
            batch["offsets"].numpy(),
            weights.numpy() if weights is not None else none1,
            word_u.numpy() if word_u is not None else self._no_draws1,
            self.layout.word_dropout,
            lay.mean,
            in_bias,
            in_m,
            in_v,
            lay.relu,
            drop_u.numpy() if drop_u is not None else self._no_draws2,
            self.layout.dropout,
            w,
            w_m,
            w_v,
            b,
            b_m,
            b_v,
            y.numpy() if y.dtype == torch.int64 else y.long().numpy(),
            float(lr),
            self.betas[0],
            self.betas[1],
            self.eps,
            dense_step,
            sparse_step,
            self.adam,
            self.slot,
            self.touched,
        )
        return float(loss)

    def _empty(self, kind: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        return np.empty(0, dtype=kind), np.empty((0, 0), dtype=kind)

    def _empty_moments(self, kind: np.dtype) -> np.ndarray:
        return np.empty((0, 0), dtype=kind)


def bag_fused_step(
    model: torch.nn.Module, head: torch.nn.Module, layout: BagLayout, config: TrainConfig
) -> BagStep | None:
    """A :class:`BagStep` for ``model`` when :func:`bag_step` makes its update exactly: compiled
    kernels on, settings it makes (:func:`fusable_config`), a single-label head
    without label smoothing or class weights, every parameter trained, on the CPU, in one
    floating-point type. Otherwise None (the caller's autograd step)."""
    from ffnlp.models.heads import ClassifierHead

    if not fusable_config(config):
        return None
    if (
        not isinstance(head, ClassifierHead)
        or head.label_smoothing
        or head.class_weight is not None
    ):
        return None
    params = list(model.parameters())
    if not all(p.requires_grad for p in params):
        return None
    if {p.device.type for p in params} != {"cpu"} or {p.dtype for p in params} - {
        layout.table.dtype
    }:
        return None
    if layout.table.dtype not in (torch.float32, torch.float64):
        return None
    compiled = bag_step.compiled()
    if compiled is None:  # FFNLP_JIT=0, or no Numba (logged once by ffnlp.jit)
        return None
    return BagStep(layout, compiled)
