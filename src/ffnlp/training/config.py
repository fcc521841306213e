"""The [train] section every task shares: the loop's knobs, each default with its reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ffnlp.config import option
from ffnlp.threads import thread_problem

OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULES = ("constant", "step", "linear", "cosine", "plateau")


MAX_SEED = 2**63 - 1  # the largest seed torch's generators take


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(10, "passes over the training data", ge=1)
    batch_size: int = option(
        32,
        "examples per step: 1 = stochastic, >= the training set = full-batch gradient descent",
        ge=1,
    )
    optimizer: str = option("adam", "update rule", choices=OPTIMIZERS)
    lr: float = option(1e-3, "peak learning rate (after warm-up)", gt=0)
    momentum: float = option(0.0, "SGD momentum (0 = plain SGD); also RMSprop's", ge=0, lt=1)
    nesterov: bool = option(False, "Nesterov momentum for SGD (needs momentum > 0)")
    betas: list[float] = option([0.9, 0.999], "Adam/AdamW moment decay rates")
    eps: float = option(1e-8, "denominator guard of the adaptive optimisers", gt=0)
    weight_decay: float = option(
        0.0,
        "decoupled weight decay (AdamW-style: shrinks weights directly, not via the gradient)",
        ge=0,
    )
    sparse: bool = option(
        False, "sparse gradients for embedding tables (fast for big vocabularies; SGD/Adagrad/Adam)"
    )
    schedule: str = option("constant", "learning-rate schedule after warm-up", choices=SCHEDULES)
    warmup_steps: int = option(
        0,
        "linear warm-up from 0 to lr over this many steps, at most max_warmup_fraction of the run",
        ge=0,
    )
    max_warmup_fraction: float = option(
        0.1,
        "the warm-up lasts at most this fraction of the run's steps, so that a short run (a "
        "small corpus, --set train.epochs=1) is not all warm-up",
        ge=0,
        le=1,
    )
    step_size: int = option(1, "'step' schedule: epochs between decays", ge=1)
    gamma: float = option(
        0.5, "'step'/'plateau' schedules: multiply lr by this at each decay", gt=0, le=1
    )
    min_lr_ratio: float = option(
        0.0, "'linear'/'cosine' schedules: final lr as a fraction of lr", ge=0, le=1
    )
    plateau_patience: int = option(
        1, "'plateau' schedule: evaluations without improvement before a decay", ge=0
    )
    l1: float = option(
        0.0, "L1 penalty on weights (not biases); with l2 > 0 this is elastic net", ge=0
    )
    l2: float = option(0.0, "L2 penalty (0.5 * l2 * ||w||^2) on weights (not biases)", ge=0)
    clip_norm: float = option(0.0, "clip gradients to this global L2 norm (0 = off)", ge=0)
    eval_every: int = option(
        0, "evaluate on dev every N steps (0 = at the end of each epoch)", ge=0
    )
    monitor: str = option(
        "dev.loss", "metric that picks the best epoch and drives early stopping, e.g. dev.accuracy"
    )
    monitor_mode: str = option(
        "auto",
        "whether higher is better (max) or lower (min); auto: min for loss/perplexity",
        choices=("auto", "max", "min"),
    )
    early_stopping: bool = option(False, "stop when the monitored metric stops improving")
    patience: int = option(3, "evaluations without improvement before early stopping", ge=1)
    min_delta: float = option(0.0, "smallest change that counts as an improvement", ge=0)
    restore_best: bool = option(
        True, "end with the weights of the best evaluation (needs dev data)"
    )
    seed: int = option(13, "seed for initialisation, shuffling and dropout", ge=0, le=MAX_SEED)
    device: str = option("auto", "auto (CUDA when available), cpu or cuda[:N]")
    threads: int | Literal["auto"] = option(
        "auto",
        "CPU intra-op threads: auto (1 for a small model's steps, every physical core the process "
        "may use for large matrix products; see docs/training.md), N (at most 4 per available core), "
        "or 0 = every available core",
        ge=0,
    )
    log_every: int = option(50, "write a step record to metrics.jsonl every N steps", ge=1)
    tensorboard: str = option(
        "",
        "also write metrics.jsonl's figures (train loss, lr, gradient norm, dev metrics) as "
        "TensorBoard scalars into this folder while training (needs the tensorboard extra: pip "
        "install 'ffnlp[tensorboard]'); '' = off",
    )
    checkpoint: bool = option(True, "write a resumable checkpoint at the end of every epoch")
    max_steps: int = option(0, "stop after this many steps in all (0 = no limit)", ge=0)
    ema_decay: float = option(
        0.0,
        "keep an exponential moving average of the weights (Polyak averaging), updated after "
        "every step t as avg = d * avg + (1 - d) * w with d = min(ema_decay, (1 + t) / (4 + t)) "
        "(a warm-up: short runs get an average of their own last steps, not of the initial "
        "weights); evaluation, the best-epoch snapshot and the final model use it. 0 = off; "
        "0.999 averages about the last 1000 steps",
        ge=0,
        lt=1,
    )
    fused_step: bool = option(
        True,
        "a task that has a hand-made update for its model uses it in place of autograd + "
        "optimiser where it makes the same update, faster: plain SGD (optimizer = 'sgd' with no "
        "momentum, weight decay, penalty or clipping), and for the pooled and n-gram MLP "
        "classifiers also Adam with sparse = true (one compiled step; see docs/classifiers.md); "
        "false = always autograd + torch.optim",
    )
    diagnostics: bool = option(
        False,
        "record what happens inside the network at every evaluation (dead / saturated units per "
        "hidden layer, gradient norm and update/weight ratio per weight matrix) into "
        "metrics.jsonl, with warnings and advice when the loss diverges or plateaus or units "
        "die or saturate en masse; false = nothing installed, nothing measured",
    )

    def check(self) -> list[str]:
        problems = []
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            problems.append("nesterov needs optimizer = 'sgd' and momentum > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1); got {self.betas!r}")
        if "." not in self.monitor:
            problems.append(
                f"monitor must name a split and a metric, like 'dev.accuracy'; got {self.monitor!r}"
            )
        threads = thread_problem("threads", self.threads)
        if threads:
            problems.append(threads)
        if self.sparse and self.optimizer not in ("sgd", "adagrad", "adam"):
            problems.append(
                f"sparse = true works with optimizer sgd, adagrad or adam; got {self.optimizer!r}"
            )
        return problems

    @property
    def fused_sgd(self) -> bool:
        """Whether a hand-made plain-SGD update may replace autograd + optimiser: ``fused_step``
        on, and SGD with no momentum, weight decay, L1/L2 penalty or clipping."""
        return (
            self.fused_step
            and self.optimizer == "sgd"
            and self.momentum == 0
            and self.weight_decay == 0
            and self.l1 == 0
            and self.l2 == 0
            and self.clip_norm == 0
        )

    @property
    def mode(self) -> str:
        if self.monitor_mode != "auto":
            return self.monitor_mode
        name = self.monitor.split(".", 1)[1]
        return "min" if name in ("loss", "perplexity", "nll", "bpc") else "max"
