"""A fourth classifier type, written as a user adds one: this file and its ``@register`` line.

``toy_bag`` sums the n-gram features of a text into a small tanh layer, then one linear layer to
the logits. It reads bag-of-n-grams batches (``features.kind = "ngrams"``) and, from the
configuration, only the width of [model.mlp]'s first hidden layer. Nothing else in ffnlp names
it: the classify task builds, trains, saves and reloads it through the registry, and the model
contract test runs over it with the built-in types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ffnlp.config import section
from ffnlp.models.heads import ClassifierHead, ClassifierInputs, output_size
from ffnlp.models.mlp import MLPConfig
from ffnlp.models.registry import register


@dataclass(frozen=True)
class ToyBagConfig:
    """[model] for type = "toy_bag": the width comes from [model.mlp] hidden[0] (8 without one)."""

    mlp: MLPConfig = section(MLPConfig)


@register("toy_bag", config=ToyBagConfig, features=("ngrams",))
class ToyBag(nn.Module):
    """Sparse feature rows -> sum of feature vectors (B, W) -> tanh -> logits (B, K')."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        width: int = 8,
        class_weight: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(num_features, width, mode="sum")  # (F, W)
        self.out = nn.Linear(width, output_size(num_classes))
        self.head = ClassifierHead(num_classes, class_weight=class_weight)

    @classmethod
    def arguments(cls, config: ToyBagConfig, inputs: ClassifierInputs) -> dict[str, Any]:
        return {
            "num_features": inputs.input_size,
            "num_classes": inputs.num_classes,
            "width": config.mlp.hidden[0] if config.mlp.hidden else 8,
            "class_weight": inputs.class_weight,
        }

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.bag(batch["ids"], batch["offsets"], per_sample_weights=batch["weights"])  # (B, W)
        return self.out(torch.tanh(h))  # (B, K')

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.logits(batch)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])
