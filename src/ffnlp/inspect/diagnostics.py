"""Diagnostics of a network: dead ReLUs, and the learning-rate range test."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ffnlp.models.protocols import as_scorer
from ffnlp.training.data import BatchSource
from ffnlp.training.trainable import as_trainable


def dead_units(model: nn.Module, source: BatchSource, batch_size: int = 1024) -> dict[str, dict[str, float]]:
    """For every ReLU-like layer: the fraction of its units that never fire on ``source``.

    A unit is dead when its output is zero for every example: it passes no gradient back.
    """
    alive: dict[str, torch.Tensor] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        fired = (output.reshape(-1, output.shape[-1]) > 0).any(0)  # (H,)
        key = names[module]
        alive[key] = fired if key not in alive else alive[key] | fired

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    was_training = model.training
    model.eval()
    try:
        scorer = as_scorer(model)
        with torch.no_grad():
            for batch in source.batches(batch_size, None):
                scorer.logits(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: {"units": int(a.numel()), "dead": int((~a).sum()), "dead_fraction": float((~a).float().mean())}
            for name, a in alive.items()}


def lr_range_test(model: nn.Module, source: BatchSource, make_optimizer: Callable[[Any, float], torch.optim.Optimizer],
                  lr_min: float = 1e-5, lr_max: float = 1.0, steps: int = 100, batch_size: int = 32,
                  seed: int = 0) -> dict[str, Any]:
    """Raise the learning rate exponentially from lr_min to lr_max, one batch a step, on a copy.

    Returns the (lr, smoothed loss) curve and a suggestion: the lr of steepest descent of the
    smoothed loss, a common starting point (Smith 2017).  The model itself is left unchanged.
    """
    probe = copy.deepcopy(model).train()
    opt = make_optimizer(probe.parameters(), lr_min)
    generator = torch.Generator().manual_seed(seed)
    factor = (lr_max / lr_min) ** (1 / max(1, steps - 1))
    lrs, losses = [], []
    smooth, best = 0.0, math.inf
    step = 0
    while step < steps:
        for batch in source.batches(batch_size, generator):
            lr = lr_min * factor**step
            for g in opt.param_groups:
                g["lr"] = lr
            loss = as_trainable(probe).loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = float(loss.detach())
            smooth = value if step == 0 else 0.9 * smooth + 0.1 * value
            lrs.append(lr)
            losses.append(smooth)
            best = min(best, smooth)
            step += 1
            if step >= steps or not math.isfinite(smooth) or smooth > 4 * best:
                step = steps if (not math.isfinite(smooth) or smooth > 4 * best) else step
                break
    slopes = [(losses[i + 1] - losses[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1]))
              for i in range(1, len(lrs) - 1)]
    suggestion = lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)] if slopes else lrs[0]
    return {"lr": lrs, "loss": losses, "suggested_lr": suggestion}
