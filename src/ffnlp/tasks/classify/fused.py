"""The bag classifiers' compiled training step as the Trainer's :class:`~ffnlp.training.steps.Step`.

The kernel itself (:func:`ffnlp.models.kernels.bag_step.bag_step`) and the model's description of
its parts (:class:`~ffnlp.models.kernels.bag_step.BagLayout`, from the model's ``bag_layout()``)
live with the models; the step that runs the kernel with the optimisers' own state lives here,
above both the models and the training loop, which never import each other. The task asks
:func:`fused_step` for it and hands it to the Trainer (None: the autograd step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ffnlp.models.kernels.bag_step import BagLayout, bag_step
from ffnlp.training.config import TrainConfig
from ffnlp.training.optim import LazyAdam, lazy_zeros
from ffnlp.training.steps import AutogradStep, Step

if TYPE_CHECKING:
    from ffnlp.training.trainer import Trainer


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


def fused_step(model: torch.nn.Module, config: TrainConfig) -> Step | None:
    """The compiled step for ``model`` under ``config`` where it makes the configured update
    exactly (the model describes its parts with ``bag_layout()``; see :func:`bag_fused_step`),
    else None: the Trainer's autograd step."""
    describe = getattr(model, "bag_layout", None)
    layout = describe() if callable(describe) else None
    if layout is None:
        return None
    head = getattr(model, "head", None)
    if not isinstance(head, torch.nn.Module):
        return None
    return bag_fused_step(model, head, layout, config)
