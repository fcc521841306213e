"""A feed-forward classifier over feature vectors: dense (hand-built features) or sparse (bag of
n-grams, tf-idf).

    x (B, F) dense                       -> MLP -> logits (B, K')
    ids, weights (nnz,), offsets (B,)    -> first layer as an EmbeddingBag sum (O(non-zeros)) -> ...

With no hidden layer this is logistic regression; each hidden layer adds a learned non-linear
combination of the features.  Binary problems have one logit (sigmoid), K > 2 classes K logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ConfigError
from ffnlp.models.heads import ClassifierHead, output_size
from ffnlp.models.mlp import MLP
from ffnlp.models.registry import register


@register("mlp")
class FeatureMLP(nn.Module):
    """Feature vector (B, F) -> logits (B, K')."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        label_smoothing: float = 0.0,
        class_weight: list[float] | None = None,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ConfigError(
                f"a feature classifier needs at least one feature; got {num_features}"
            )
        self.num_features = num_features
        self.head = ClassifierHead(num_classes, label_smoothing, class_weight)
        self.mlp = MLP(
            num_features, output_size(num_classes), hidden, activation, dropout, input_dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.num_features:
            raise ValueError(f"expected {self.num_features} features per row; got {x.shape[-1]}")
        return self.mlp(x)  # (B, F) -> (B, K')

    def forward_sparse(
        self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Rows given as their non-zeros (the SparseRowBatches layout) -> logits (B, K')."""
        first = self.first_linear()
        # x @ W.T as a weighted sum of W's columns: touches only the non-zero features
        h = F.embedding_bag(
            ids, first.weight.t(), offsets, mode="sum", per_sample_weights=weights
        )  # (B, H)
        h = h + first.bias
        layers = list(self.mlp.layers)
        return nn.Sequential(*layers[layers.index(first) + 1 :])(h)  # (B, K')

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "x" in batch:
            return self(batch["x"])
        return self.forward_sparse(batch["ids"], batch["offsets"], batch["weights"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        probs = self.head.probabilities(self(x))  # (B, K)
        self.train(was)
        return probs

    def first_linear(self) -> nn.Linear:
        return next(m for m in self.mlp.layers if isinstance(m, nn.Linear))

    def input_weights(self) -> torch.Tensor:
        """The first layer's weight (H or K', F): with no hidden layer and two classes, one row
        whose sign says which class a feature pushes towards (positive = the second label)."""
        return self.first_linear().weight.detach()
