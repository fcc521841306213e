"""A feed-forward classifier in NumPy with backpropagation written by hand.

For learning, and as a check: ``tests/inspect/test_explain.py`` compares every gradient with PyTorch's
autograd on the same weights, and with finite differences.  The network is

    h_0 = x                        (B, D)
    z_l = h_{l-1} W_l + b_l        (B, H_l)
    h_l = act(z_l)                 for the hidden layers
    p   = softmax(z_L)             (B, K)
    J   = -mean_i log p[i, y_i]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Activation = tuple[
    Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]
]
ACTS: dict[str, Activation] = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, h: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z, h: 1.0 - h**2),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, h: h * (1.0 - h)),
}


class NumpyMLP:
    def __init__(self, sizes: Sequence[int], activation: str = "relu", seed: int = 0):
        """``sizes`` = [D, H_1, ..., K]; Xavier-uniform weights, zero biases."""
        if activation not in ACTS:
            raise ValueError(f"activation must be one of {', '.join(ACTS)}; got {activation!r}")
        rng = np.random.default_rng(seed)
        self.activation = activation
        self.weights = []
        self.biases = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            self.weights.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)))
            self.biases.append(np.zeros(fan_out))

    @classmethod
    def from_weights(
        cls, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], activation: str = "relu"
    ) -> NumpyMLP:
        """A network with these weights (each (H_{l-1}, H_l)) and biases, copied as float64."""
        sizes = [w.shape[0] for w in weights] + [weights[-1].shape[1]]
        net = cls(sizes, activation)
        net.weights = [np.array(w, dtype=np.float64) for w in weights]
        net.biases = [np.array(b, dtype=np.float64) for b in biases]
        return net

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Logits (B, K) and the cache of pre-activations z and activations h for backward."""
        act, _ = ACTS[self.activation]
        hs, zs = [x], []
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = hs[-1] @ w + b  # (B, H_l)
            zs.append(z)
            if i < len(self.weights) - 1:
                hs.append(act(z))
        return zs[-1], zs, hs

    @staticmethod
    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        logits, _, _ = self.forward(x)
        p = self.softmax(logits)
        return float(-np.log(p[np.arange(len(y)), y]).mean())

    def gradients(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """The loss and dJ/dW_l, dJ/db_l for every layer, by the chain rule, last layer first."""
        logits, zs, hs = self.forward(x)
        p = self.softmax(logits)
        b = len(y)
        loss = float(-np.log(p[np.arange(b), y]).mean())
        delta = p.copy()  # dJ/dz_L = (softmax - one_hot) / B      (B, K)
        delta[np.arange(b), y] -= 1.0
        delta /= b
        grads_w, grads_b = self.backward(zs, hs, delta)
        return loss, grads_w, grads_b

    def backward(
        self, zs: list[np.ndarray], hs: list[np.ndarray], delta: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """dJ/dW_l, dJ/db_l for every layer from ``delta`` = dJ/dz_L (B, K) and the forward cache:
        the chain rule, last layer first (whatever loss ``delta`` came from)."""
        _, dact = ACTS[self.activation]
        grads_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grads_b: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        for layer in range(len(self.weights) - 1, -1, -1):
            grads_w[layer] = hs[layer].T @ delta  # (H_{l-1}, H_l)
            grads_b[layer] = delta.sum(axis=0)  # (H_l,)
            if layer > 0:
                back = delta @ self.weights[layer].T  # dJ/dh_{l-1}   (B, H_{l-1})
                delta = back * dact(zs[layer - 1], hs[layer])  # dJ/dz_{l-1}
        return grads_w, grads_b

    def sgd_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        loss, gw, gb = self.gradients(x, y)
        for w, b, dw, db in zip(self.weights, self.biases, gw, gb, strict=True):
            w -= lr * dw
            b -= lr * db
        return loss


def finite_difference_check(
    net: NumpyMLP, x: np.ndarray, y: np.ndarray, eps: float = 1e-6, samples: int = 20, seed: int = 0
) -> float:
    """Largest relative error between backprop and central differences on random weights."""
    rng = np.random.default_rng(seed)
    _, gw, _ = net.gradients(x, y)
    worst = 0.0
    for _ in range(samples):
        layer = int(rng.integers(len(net.weights)))
        i, j = (int(rng.integers(s)) for s in net.weights[layer].shape)
        w = net.weights[layer]
        old = w[i, j]
        w[i, j] = old + eps
        up = net.loss(x, y)
        w[i, j] = old - eps
        down = net.loss(x, y)
        w[i, j] = old
        numeric = (up - down) / (2 * eps)
        analytic = gw[layer][i, j]
        worst = max(worst, abs(numeric - analytic) / max(1e-8, abs(numeric) + abs(analytic)))
    return worst
