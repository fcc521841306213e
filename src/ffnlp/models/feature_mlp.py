"""A feed-forward classifier over feature vectors: dense (hand-built features) or sparse (bag of
n-grams, tf-idf).

    x (B, F) dense, or its non-zeros (ids, weights, offsets)
      -> first layer x @ W + b, W: (F, H1)  -> activation -> dropout -> MLP(H1 -> ... -> K')

The first layer is an ``EmbeddingBag`` in sum mode: for a sparse row it adds up the rows of W of
the non-zero features, weighted by their values, so a batch costs O(non-zeros x H1) and, with
``sparse=True`` (train.sparse), only those rows of W get a gradient and an optimiser update.
Input dropout (model.mlp.input_dropout) zeroes whole features of a text in training: for bags of
n-grams that is word dropout.  With no hidden layer this is logistic regression; each hidden layer adds a learned non-linear
combination of the features.  Binary problems have one logit (sigmoid), K > 2 classes K logits,
multi-label problems K logits with a sigmoid each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ffnlp.config import section
from ffnlp.errors import ConfigError, DataError
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.models.heads import ClassifierInputs, make_head, multilabel_argument, output_size
from ffnlp.models.init import init_weight, keeps_weights
from ffnlp.models.kernels.bag_step import BagLayout
from ffnlp.models.mlp import MLP, MLPConfig
from ffnlp.models.registry import register


@dataclass(frozen=True)
class FeatureMLPConfig:
    """[model] for type = "mlp": the layers from the features to the logits ([model.mlp])."""

    mlp: MLPConfig = section(MLPConfig)


@register("mlp", config=FeatureMLPConfig, features=("ngrams", "lexicon", "ngrams+lexicon"))
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
        sparse: bool = False,
        label_smoothing: float = 0.0,
        class_weight: list[float] | None = None,
        multilabel: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.fused = fused  # the compiled training step where it applies (see fused_step)
        if num_features < 1:
            raise ConfigError(
                f"a feature classifier needs at least one feature; got {num_features}"
            )
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.mlp.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}"
            )
        self.num_features = num_features
        self.head = make_head(num_classes, label_smoothing, class_weight, multilabel)
        hidden = list(hidden)
        out = output_size(num_classes, multilabel)
        width = hidden[0] if hidden else out
        self.activation = activation
        table = torch.empty(num_features, width)  # (F, H1); Xavier is symmetric in the two sizes
        init_weight(table, "xavier_uniform", activation if hidden else "linear")
        self.input = nn.EmbeddingBag(num_features, width, mode="sum", sparse=sparse, _weight=table)
        self.input_bias = nn.Parameter(torch.zeros(width))  # (H1,)
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        if hidden:
            self.rest: nn.Module = nn.Sequential(
                ACTIVATIONS[activation].make(),
                nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                MLP(hidden[0], out, hidden[1:], activation, dropout),
            )
        else:
            self.rest = nn.Identity()

    @classmethod
    def arguments(cls, config: FeatureMLPConfig, inputs: ClassifierInputs) -> dict[str, Any]:
        """Constructor arguments (model.json's ``args``) for ``config`` and the data's ``inputs``."""
        mlp = config.mlp
        return {
            "num_features": inputs.input_size,
            "num_classes": inputs.num_classes,
            "label_smoothing": inputs.label_smoothing,
            "class_weight": inputs.class_weight,
            "sparse": inputs.sparse,
            "hidden": list(mlp.hidden),
            "activation": mlp.activation,
            "dropout": mlp.dropout,
            "input_dropout": mlp.input_dropout,
            **multilabel_argument(inputs),
        }

    def reinit(self, scheme: str, std: float = 0.02) -> None:
        """Initialise every layer by ``scheme`` (see :func:`ffnlp.models.init.init_weight`): the
        first layer's (F, H1) table as an (H1 x F) weight, then the MLP after it; biases zero."""
        hidden = not isinstance(self.rest, nn.Identity)
        init_weight(
            self.input.weight.data.t(), scheme, self.activation if hidden else "linear", std
        )
        if not keeps_weights(scheme):
            nn.init.zeros_(self.input_bias)
        for module in self.rest.modules():
            if isinstance(module, MLP):
                module.reinit(scheme, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.num_features:
            width = self.input.embedding_dim
            raise DataError(
                f"the first layer's product is (B, {self.num_features}) @ ({self.num_features}, "
                f"{width}), but these rows make it (B, {x.shape[-1]}) @ ({self.num_features}, "
                f"{width}): the model was built for {self.num_features} features; make the rows "
                "with the featurizer it was trained with (Classifier.predict does)"
            )
        if x.layout == torch.strided:
            h = self.input_dropout(x) @ self.input.weight  # (B, F) @ (F, H1) -> (B, H1)
        else:  # a sparse matrix (dropout on it would densify it: use the batch layout to train)
            h = torch.sparse.mm(x, self.input.weight)  # (B, H1)
        return self.rest(h + self.input_bias)  # (B, K')

    def forward_sparse(
        self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Rows given as their non-zeros (the SparseRowBatches layout) -> logits (B, K')."""
        # input dropout on the non-zeros: whole n-grams vanish from a text, as word dropout
        weights = self.input_dropout(weights)  # (nnz,)
        h = self.input(ids, offsets, per_sample_weights=weights)  # (B, H1)
        return self.rest(h + self.input_bias)  # (B, K')

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "x" in batch:
            return self(batch["x"])
        return self.forward_sparse(batch["ids"], batch["offsets"], batch["weights"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])

    def bag_layout(self) -> BagLayout | None:
        """The parts the compiled training step updates (:mod:`ffnlp.models.kernels.bag_step`),
        for a model built with ``fused=True`` with one hidden layer of ReLUs; None otherwise.
        Whether the step then applies (kernels on, head, device, training settings, sparse
        batches) is :func:`ffnlp.tasks.classify.fused.fused_step`'s question."""
        if not self.fused or self.activation != "relu" or isinstance(self.rest, nn.Identity):
            return None
        assert isinstance(self.rest, nn.Sequential)
        dropout, mlp = self.rest[1], self.rest[2]
        assert isinstance(mlp, MLP)
        if mlp.hidden or any(isinstance(m, nn.Dropout) for m in mlp.layers):
            return None  # more than one hidden layer
        linear = mlp.layers[-1]
        assert isinstance(linear, nn.Linear)
        layout = BagLayout(
            table=self.input.weight,
            weight=linear.weight,
            bias=linear.bias,
            mean=False,
            input_dropout=getattr(self.input_dropout, "p", 0.0),
            in_bias=self.input_bias,
            relu=True,
            dropout=getattr(dropout, "p", 0.0),
        )
        return layout

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        probs = self.head.probabilities(self(x))  # (B, K)
        self.train(was)
        return probs

    def input_weights(self) -> torch.Tensor:
        """The first layer's weight as (H1 or K', F): with no hidden layer and two classes, one
        row whose sign says which class a feature pushes towards (positive = the second label)."""
        return self.input.weight.detach().t()
