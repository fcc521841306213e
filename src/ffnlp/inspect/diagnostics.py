"""Diagnostics of a network: dead ReLUs, and the learning-rate range test."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ffnlp.config import replace
from ffnlp.errors import ConfigError, TrainingError
from ffnlp.models.protocols import as_scorer
from ffnlp.training.config import TrainConfig
from ffnlp.training.data import BatchSource, move_to
from ffnlp.training.trainer import Trainer


def dead_units(
    model: nn.Module, source: BatchSource, batch_size: int = 1024
) -> dict[str, dict[str, float]]:
    """For every ReLU-like layer: the fraction of its units that never fire on ``source``.

    A unit is dead when its output is zero for every example: it passes no gradient back.
    """
    alive: dict[str, torch.Tensor] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        fired = (output.reshape(-1, output.shape[-1]) > 0).any(0)  # (H,)
        key = names[module]
        alive[key] = fired if key not in alive else alive[key] | fired

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))
    ]
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
    return {
        name: {
            "units": int(a.numel()),
            "dead": int((~a).sum()),
            "dead_fraction": float((~a).float().mean()),
        }
        for name, a in alive.items()
    }


def lr_range_test(
    model: nn.Module,
    config: TrainConfig,
    source: BatchSource,
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    steps: int = 100,
    diverge: float = 4.0,
) -> dict[str, Any]:
    """The learning-rate range test (Smith 2017): train a copy of ``model`` for ``steps`` batches
    while the learning rate grows exponentially from ``lr_min`` to ``lr_max``, and watch the loss.

    Each step is the Trainer's own (the configured optimiser, penalties, clipping and weight decay,
    on ``config``'s device, batches of ``config.batch_size`` shuffled by ``config.seed``), made at
    the rate lr_min * (lr_max / lr_min) ** (i / (steps - 1)) instead of the schedule's. The sweep
    stops early once the loss explodes: a loss that is not finite, or a running average (an
    exponential moving average, decay 0.9, bias-corrected) above ``diverge`` times its lowest
    value. ``model`` is left unchanged. The curve and the suggestion: :func:`suggest_lr`.

    Returns ``lr``, ``loss`` (smoothed) and ``raw_loss`` per step, ``stop_reason`` ("" when every
    step ran) and the keys of :func:`suggest_lr`.
    """
    if not 0 < lr_min < lr_max:
        raise ConfigError(
            f"the range test needs 0 < min-lr < max-lr; got {lr_min:g} and {lr_max:g}"
        )
    if steps < 5:
        raise ConfigError(f"the range test needs at least 5 steps to draw a curve; got {steps}")
    probe = copy.deepcopy(model).train()
    # the Trainer builds the optimiser and the update exactly as training does; nothing is written
    # and no callback runs, since only its step is used (and none that watches is installed)
    trainer = Trainer(probe, replace(config, checkpoint=False, diagnostics=False), source)
    factor = (lr_max / lr_min) ** (1 / (steps - 1))
    lrs: list[float] = []
    raw: list[float] = []
    running, lowest, stop_reason = 0.0, math.inf, ""
    while len(lrs) < steps and not stop_reason:
        for batch in source.batches(config.batch_size, trainer.generator):
            lr = lr_min * factor ** len(lrs)
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            try:
                loss, _ = trainer.step_strategy(move_to(batch, trainer.device), False)
            except TrainingError:  # the loss is not finite: the step was not made
                stop_reason = f"the loss was not finite at lr {lr:.3g}"
                break
            lrs.append(lr)
            raw.append(loss)
            running = 0.9 * running + 0.1 * loss
            average = running / (1 - 0.9 ** len(lrs))
            lowest = min(lowest, average)
            if average > diverge * lowest:
                stop_reason = f"the loss passed {diverge:g} x its lowest value at lr {lr:.3g}"
                break
            if len(lrs) >= steps:
                break
    if len(lrs) < 3:
        raise TrainingError(
            f"the loss exploded within the first steps of the sweep (lr {lr_min:g} and up); "
            "lower --min-lr"
        )
    smoothed = centred_average(raw, max(2, steps // 20))
    return {
        "lr": lrs,
        "loss": smoothed,
        "raw_loss": raw,
        "stop_reason": stop_reason,
        **suggest_lr(lrs, smoothed),
    }


def centred_average(values: list[float], half: int) -> list[float]:
    """The mean of each value with its ``half`` neighbours on either side (fewer at the ends).

    Centred rather than a running average: a running average at step i is mostly made of steps
    before i, taken at smaller learning rates, so it moves the whole curve, its minimum included,
    towards larger rates (by about 3x with decay 0.9 and 100 steps over six decades).
    """
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half) : i + half + 1]
        out.append(sum(window) / len(window))
    return out


def suggest_lr(lrs: list[float], losses: list[float]) -> dict[str, Any]:
    """A learning rate from a range test's (lr, smoothed loss) curve.

    The suggestion is the rate of the lowest loss divided by 10 (``min_over_10_lr``). At the
    minimum the loss has already stopped falling: the sweep's last good rate, one step from
    where training becomes unstable, and a rate that is best over a sweep of about one epoch is
    too large for a run of many (it learns fast and then overfits); a tenth of it keeps a margin.
    The rate of steepest descent (of loss against log lr, before the minimum) is returned too
    (``steepest_lr``): the other common rule, tried and found worse on SST-2, where it fell in the
    noisy floor of the curve (docs/training.md has the figures).
    """
    lowest = min(range(len(losses)), key=losses.__getitem__)
    log_lr = [math.log(lr) for lr in lrs]
    # central differences d loss / d log lr at the points before the minimum
    slopes = {
        i: (losses[i + 1] - losses[i - 1]) / (log_lr[i + 1] - log_lr[i - 1])
        for i in range(1, lowest)
    }
    steepest = min(slopes, key=slopes.__getitem__) if slopes else lowest
    return {
        "suggested_lr": lrs[lowest] / 10,
        "rule": "a tenth of the rate of the lowest smoothed loss",
        "min_loss_lr": lrs[lowest],
        "min_over_10_lr": lrs[lowest] / 10,
        "steepest_lr": lrs[steepest],
    }
