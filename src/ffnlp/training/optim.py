"""Optimisers and learning-rate schedules, built from a TrainConfig.

Weight decay is decoupled (the weights shrink by ``lr * weight_decay`` each step, as AdamW does)
and applies to weight matrices only, never to biases or normalisation parameters.  Embedding
tables that produce sparse gradients get an optimiser that understands them (SparseAdam for Adam).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

import numpy as np
import torch
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.training.config import TrainConfig


def sparse_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters whose gradients will be sparse (Embedding/EmbeddingBag with sparse=True)."""
    ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse:
            ids.add(id(module.weight))
    return ids


def is_weight(name: str, param: torch.Tensor) -> bool:
    """A weight matrix (penalised, decayed) as opposed to a bias or a scale vector."""
    return param.ndim >= 2 and not name.endswith("bias")


class Optimizers(torch.optim.Optimizer):
    """Several optimisers stepped as one (dense parameters + sparse embedding tables)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers
        # expose every group so that schedules and logging see one list of param_groups
        self.param_groups = [g for o in optimizers for g in o.param_groups]
        self.defaults: dict[str, Any] = {}
        # the parts' states are their own (state_dict gathers them); this one holds none
        self.state = defaultdict(dict)

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One step of every part; a ``closure`` (re-evaluating the loss) is called once, first."""
        loss = closure() if closure is not None else None
        for o in self.optimizers:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for o, s in zip(self.optimizers, state_dict["optimizers"], strict=True):
            o.load_state_dict(s)


def lazy_zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A zero CPU tensor whose pages the system zeroes when first touched (NumPy's zeros is
    ``calloc``): the moments of a large table whose steps touch a fraction of its rows cost no
    pass over all of it (torch.zeros writes every byte: 0.05-0.15 s for SST-2's pooled table)."""
    kind = torch.empty((), dtype=dtype).numpy().dtype
    return torch.from_numpy(np.zeros(shape, dtype=kind))


class LazyAdam(torch.optim.Optimizer):
    """Adam for sparse gradients: only the rows present in a step's gradient move.

    The same update as ``torch.optim.SparseAdam`` (moments of the touched rows decay and absorb
    the gradient; bias correction by the global step), written with row gathers and scatters:
    torch's version masks the full dense moment tensors at every step (``sparse_mask``), which
    can cost more than the rest of a step whose model is mostly a large embedding table.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of the rows in each parameter's sparse gradient; a ``closure``
        (re-evaluating the loss, with gradients) is called first, as torch's optimisers do."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()  # one row per index
                rows, values = grad.indices()[0], grad.values()  # (R,), (R, D)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    # both moments side by side, (V, 2D): one gather and one scatter a step
                    state["moments"] = (
                        lazy_zeros(p.shape[0], 2 * values.shape[1], dtype=p.dtype)
                        if p.device.type == "cpu"
                        else p.new_zeros(p.shape[0], 2 * values.shape[1])
                    )
                state["step"] += 1
                d = values.shape[1]
                both = state["moments"].index_select(0, rows)  # (R, 2D)
                m, v = both[:, :d], both[:, d:]
                m.mul_(beta1).add_(values, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(values, values, value=1 - beta2)
                state["moments"].index_copy_(0, rows, both)
                bias1 = 1 - beta1 ** state["step"]
                bias2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * math.sqrt(bias2) / bias1
                update = m.div_(
                    v.sqrt_().add_(group["eps"])
                )  # (R, D), eps placed as SparseAdam does
                p.index_add_(0, rows, update, alpha=-step_size)
        return loss


def _make(
    name: str, groups: list[dict[str, Any]], cfg: TrainConfig, sparse: bool
) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if name in ("adam", "adamw"):
        if sparse:
            return LazyAdam(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps)
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        # fused: one kernel for every parameter of the step instead of a dozen ops per tensor
        # (torch has it for CPU and CUDA tensors; it changes the last bits, not the rule)
        fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
        return cls(
            groups,
            lr=cfg.lr,
            betas=(cfg.betas[0], cfg.betas[1]),  # checked: two numbers (TrainConfig.check)
            eps=cfg.eps,
            weight_decay=0.0,
            fused=fused,
        )
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=cfg.lr, eps=cfg.eps)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum, eps=cfg.eps)
    raise ValueError(f"unknown optimizer {name!r}")


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    sparse_ids = sparse_parameters(model)
    decay, no_decay, sparse = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in sparse_ids:
            sparse.append(p)
        elif is_weight(name, p):
            decay.append(p)
        else:
            no_decay.append(p)
    dense_groups = [
        {"params": decay, "weight_decay_decoupled": cfg.weight_decay},
        {"params": no_decay, "weight_decay_decoupled": 0.0},
    ]
    dense_groups = [g for g in dense_groups if g["params"]]
    optimizers = []
    if dense_groups:
        optimizers.append(_make(cfg.optimizer, dense_groups, cfg, sparse=False))
    if sparse:
        optimizers.append(
            _make(
                cfg.optimizer, [{"params": sparse, "weight_decay_decoupled": 0.0}], cfg, sparse=True
            )
        )
    if not optimizers:
        raise ConfigError(
            "the model has no trainable parameters (is every layer frozen?); nothing to train"
        )
    return optimizers[0] if len(optimizers) == 1 else Optimizers(optimizers)


@torch.no_grad()
def apply_weight_decay(optimizer: torch.optim.Optimizer) -> None:
    """Decoupled decay: w <- w - lr * wd * w, before the optimiser's own step."""
    for group in optimizer.param_groups:
        wd = group.get("weight_decay_decoupled", 0.0)
        if wd:
            for p in group["params"]:
                p.mul_(1.0 - group["lr"] * wd)


class Schedule:
    """Per-step learning-rate factor: warm-up, then constant / step / linear / cosine / plateau.

    lr(step) = cfg.lr * warmup(step) * shape(step) * plateau_factor.  The warm-up lasts
    ``warmup_steps``, but at most ``max_warmup_fraction`` of the run's steps.  The state is three
    numbers, saved in checkpoints.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
        self.optimizer = optimizer
        self.cfg = cfg
        self.steps_per_epoch = max(1, steps_per_epoch)
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.warmup_steps = min(cfg.warmup_steps, int(cfg.max_warmup_fraction * self.total_steps))
        self.plateau_factor = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0
        self.set_step(0)

    def factor(self, step: int) -> float:
        cfg = self.cfg
        warmup = self.warmup_steps
        warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
        after = max(0, step - warmup)
        span = max(1, self.total_steps - warmup)
        progress = min(1.0, after / span)
        lo = cfg.min_lr_ratio
        if cfg.schedule == "step":
            shape = cfg.gamma ** ((step // self.steps_per_epoch) // cfg.step_size)
        elif cfg.schedule == "linear":
            shape = 1.0 - (1.0 - lo) * progress
        elif cfg.schedule == "cosine":
            shape = lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * progress))
        else:  # constant, plateau
            shape = 1.0
        return warm * shape * self.plateau_factor

    def set_step(self, step: int) -> None:
        lr = self.cfg.lr * self.factor(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def on_evaluation(self, value: float | None, mode: str, step: int) -> None:
        """'plateau': decay by gamma after plateau_patience evaluations without improvement."""
        if self.cfg.schedule != "plateau" or value is None:
            return
        better = (
            self.plateau_best is None
            or (mode == "max" and value > self.plateau_best + self.cfg.min_delta)
            or (mode == "min" and value < self.plateau_best - self.cfg.min_delta)
        )
        if better:
            self.plateau_best, self.plateau_bad = value, 0
        else:
            self.plateau_bad += 1
            if self.plateau_bad > self.cfg.plateau_patience:
                self.plateau_factor *= self.cfg.gamma
                self.plateau_bad = 0
        self.set_step(step)

    def state_dict(self) -> dict[str, Any]:
        return {
            "plateau_factor": self.plateau_factor,
            "plateau_best": self.plateau_best,
            "plateau_bad": self.plateau_bad,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_factor = state["plateau_factor"]
        self.plateau_best = state["plateau_best"]
        self.plateau_bad = state["plateau_bad"]


def global_grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all gradients together (sparse gradients included)."""
    total = torch.zeros(())
    for p in params:
        g = p.grad
        if g is None:
            continue
        if g.is_sparse:
            g = g.coalesce().values()
        total = total.to(g.device) + g.detach().float().pow(2).sum()
    return total.sqrt()


@torch.no_grad()
def clip_gradients(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale every gradient so that the global norm is at most ``max_norm``; return the norm before."""
    norm = global_grad_norm(params)
    if max_norm > 0:
        scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
        for p in params:
            if p.grad is not None:
                if p.grad.is_sparse:
                    p.grad = p.grad.coalesce() * scale
                else:
                    p.grad.mul_(scale)
    return norm
