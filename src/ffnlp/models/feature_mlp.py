"""A feed-forward classifier over feature vectors: dense (hand-built features) or sparse (bag of
n-grams, tf-idf).

    x (B, F) dense or sparse -> MLP -> logits (B, K)

With no hidden layer this is multinomial logistic regression; each hidden layer adds a learned
non-linear combination of the features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models.mlp import MLP, MLPConfig


class FeatureMLP(nn.Module):
    """Feature vector (B, F) -> logits (B, K)."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        mlp: MLPConfig | None = None,
        *,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes; got {num_classes}")
        if num_features < 1:
            raise ConfigError(
                f"a feature classifier needs at least one feature; got {num_features}"
            )
        self.num_features = num_features
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.mlp = MLP.from_config(num_features, num_classes, mlp or MLPConfig())
        self.register_buffer(
            "class_weights",
            class_weights.float() if class_weights is not None else torch.ones(num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.num_features:
            raise ValueError(f"expected {self.num_features} features per row; got {x.shape[-1]}")
        return self.mlp(x)  # (B, F) -> (B, K)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self(batch["x"])  # (B, K)
        return F.cross_entropy(
            logits, batch["y"], weight=self.class_weights, label_smoothing=self.label_smoothing
        )

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        probs = torch.softmax(self(x), dim=1)  # (B, K)
        self.train(was)
        return probs

    def input_weights(self) -> torch.Tensor:
        """The first layer's weight (H or K, F): with no hidden layer, one row per class."""
        first = next(m for m in self.mlp.layers if isinstance(m, nn.Linear))
        return first.weight.detach()
