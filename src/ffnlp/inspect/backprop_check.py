"""The NumPy network's hand-written gradients against PyTorch autograd on the same weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ffnlp.errors import ConfigError
from ffnlp.inspect.numpy_mlp import NumpyMLP, finite_difference_check

TORCH_ACTS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
MAX_SIZE = 4096  # a layer of the teaching network (its finite differences cost O(size^2) each)
MAX_BATCH = 100_000
SIZES_HELP = "comma-separated layer sizes D,H1,...,K like 20,16,8,3 (at least two, each 1..4096)"


def parse_sizes(text: str) -> list[int]:
    """``"20,16,8,3"`` -> ``[20, 16, 8, 3]``; anything else is a ConfigError naming --sizes."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--sizes must be {SIZES_HELP}; got {text!r}") from None
    check_sizes(sizes)
    return sizes


def check_sizes(sizes: Sequence[int]) -> None:
    if len(sizes) < 2 or any(
        isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SIZE for n in sizes
    ):
        raise ConfigError(f"--sizes must be {SIZES_HELP}; got {','.join(map(str, sizes))}")
    if sizes[-1] < 2:
        raise ConfigError(
            f"--sizes {','.join(map(str, sizes))}: the last size is the number of classes K, and "
            "a softmax over one class gives it probability 1, loss 0 and zero gradients, so "
            "there would be nothing to check; end --sizes with K >= 2"
        )


def compare_with_autograd(
    sizes: Sequence[int], activation: str = "tanh", batch: int = 32, seed: int = 0
) -> dict[str, Any]:
    """Losses and per-layer max |dW| differences (float64), plus a finite-difference check."""
    check_sizes(sizes)
    if activation not in TORCH_ACTS:
        raise ConfigError(
            f"--activation must be one of {', '.join(TORCH_ACTS)}; got {activation!r}"
        )
    if not 1 <= batch <= MAX_BATCH:
        raise ConfigError(f"--batch must be between 1 and {MAX_BATCH}; got {batch}")
    rng = np.random.default_rng(seed)
    net = NumpyMLP(sizes, activation, seed=seed)
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    loss_np, grads_w, grads_b = net.gradients(x, y)

    weights = [torch.tensor(w, requires_grad=True) for w in net.weights]
    biases = [torch.tensor(b, requires_grad=True) for b in net.biases]
    h = torch.tensor(x)
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = h @ w + b  # (B, H_l)
        h = TORCH_ACTS[activation](z) if i < len(weights) - 1 else z
    loss_t = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss_t.backward()
    return {
        "loss_numpy": loss_np,
        "loss_torch": float(loss_t.detach()),
        "max_abs_diff": [
            float(np.abs(g - _grad(w)).max()) for g, w in zip(grads_w, weights, strict=True)
        ],
        "max_abs_diff_bias": [
            float(np.abs(g - _grad(b)).max()) for g, b in zip(grads_b, biases, strict=True)
        ],
        "finite_difference": finite_difference_check(net, x, y),
    }


def _grad(t: torch.Tensor) -> np.ndarray:
    assert t.grad is not None, "backward() did not reach this tensor"
    return t.grad.numpy()
