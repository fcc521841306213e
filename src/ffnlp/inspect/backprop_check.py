"""The NumPy network's hand-written gradients against PyTorch autograd on the same weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ffnlp.inspect.numpy_mlp import NumpyMLP, finite_difference_check

TORCH_ACTS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def compare_with_autograd(sizes: Sequence[int], activation: str = "tanh", batch: int = 32,
                          seed: int = 0) -> dict[str, Any]:
    """Losses and per-layer max |dW| differences (float64), plus a finite-difference check."""
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
        "max_abs_diff": [float(np.abs(g - _grad(w)).max()) for g, w in zip(grads_w, weights, strict=True)],
        "max_abs_diff_bias": [float(np.abs(g - _grad(b)).max()) for g, b in zip(grads_b, biases, strict=True)],
        "finite_difference": finite_difference_check(net, x, y),
    }


def _grad(t: torch.Tensor) -> np.ndarray:
    assert t.grad is not None, "backward() did not reach this tensor"
    return t.grad.numpy()
