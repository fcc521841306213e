"""The feed-forward neural language model of Bengio et al. (2003).

    e = [E x_{t-C}; ...; E x_{t-1}]          (B, C*D)   the context words' embeddings, concatenated
    h = act(W e + b)   (one or more layers)  (B, H)
    z = U h (+ W_direct e)                   (B, V)     scores over the vocabulary
    p(w_t | context) = softmax(z)

Options: several hidden layers and any activation; Bengio's direct connection from the embeddings
to the output; weight tying (U = E, with a linear projection H -> D when the sizes differ);
dropout; and an adaptive softmax (Grave et al. 2017) that makes the output layer cheaper for large
vocabularies by giving rare words smaller, clustered output matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.config import build, option
from ffnlp.models.registry import register

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class FFLMConfig:
    context_size: int = option(
        5, "words of history (C); the model is a (C+1)-gram model with learned smoothing", ge=1
    )
    embedding_dim: int = option(256, "word embedding size (D)", ge=1)
    hidden_sizes: list[int] = option(
        [512], "sizes of the hidden layers (H); [] = no hidden layer (log-bilinear model)"
    )
    activation: str = option(
        "tanh", "hidden-layer non-linearity (Bengio used tanh)", choices=list(ACTIVATIONS)
    )
    direct: bool = option(
        False,
        "Bengio's direct connections from the concatenated embeddings to the output (costly: C*D*V)",
    )
    tie_weights: bool = option(
        True, "share the output matrix with the input embeddings (projection H -> D when H != D)"
    )
    dropout: float = option(
        0.3, "dropout on the concatenated embeddings and on every hidden layer", ge=0, lt=1
    )
    word_dropout: float = option(
        0.0,
        "training only: drop each history word with this probability (its embedding becomes "
        "zero), so that the model also learns to predict from shorter histories, as an n-gram "
        "model backs off",
        ge=0,
        lt=1,
    )
    output_bias: bool = option(
        True, "a bias per word in the output layer (full softmax; the unigram prior)"
    )
    softmax: str = option(
        "full",
        "output layer: full softmax, or adaptive (cheaper for large vocabularies)",
        choices=("full", "adaptive"),
    )
    adaptive_cutoffs: list[int] = option(
        [2000, 6000],
        "adaptive softmax: word ranks where the tail clusters start (vocab sorted by frequency)",
    )
    adaptive_div_value: float = option(4.0, "adaptive softmax: each cluster's size divisor", gt=1)
    precision: str = option(
        "fp32",
        "matrix products while training: fp32, or bf16 (autocast; about 2x faster on CPUs with "
        "AVX512-BF16/AMX); evaluation always runs in fp32",
        choices=("fp32", "bf16"),
    )

    def check(self) -> list[str]:
        problems = []
        if any(h < 1 for h in self.hidden_sizes):
            problems.append(f"model.hidden_sizes must hold positive sizes; got {self.hidden_sizes}")
        if self.softmax == "adaptive" and self.tie_weights:
            problems.append(
                "model.tie_weights = true does not work with model.softmax = 'adaptive'; "
                "set one of them differently"
            )
        if self.softmax == "adaptive" and self.direct:
            problems.append("model.direct = true needs model.softmax = 'full'")
        if (
            list(self.adaptive_cutoffs) != sorted(set(self.adaptive_cutoffs))
            or not self.adaptive_cutoffs
        ):
            problems.append(
                f"model.adaptive_cutoffs must be increasing positive ranks; got {self.adaptive_cutoffs}"
            )
        return problems


class Dropout(nn.Module):
    """Inverted dropout with a cheap mask: one 64-bit random draw gives the coins of 8 elements.

    ``bernoulli_`` draws one random number per element, which costs more than the layer's own
    matrix product on a CPU.  Here each random byte is compared with ``round(256 p)``, so the drop
    probability is p rounded to a multiple of 1/256 (0.3 -> 0.3008); the survivors are scaled by
    1 / (1 - that probability), so the expected output equals the input as usual (in bf16 that
    factor is itself rounded to 3 significant digits: 1.3359 for 1 / 0.75).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = round(256 * p)  # bytes below this are dropped

    def mask(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The multiplier of one draw: 0 for dropped elements, 1 / (1 - p) for the rest."""
        n = math.prod(shape)
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64, device=device)
        coins = words.view(torch.uint8)[:n].view(shape)  # uniform bytes
        # compared straight into the float mask: a bool result converted afterwards costs
        # several times more on a CPU
        keep = torch.ge(coins, self.threshold, out=torch.empty(shape, dtype=dtype, device=device))
        return keep.mul_(256.0 / (256 - self.threshold))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        return x * self.mask(x.shape, x.dtype, x.device)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy from bf16 scores, with the backward pass written out.

    The forward pass keeps softmax(z) itself (one pass of exponentials); the gradient,
    (softmax(z) - onehot) / B, is then made in place in that same tensor, with no second pass of
    exponentials and no zero-filled (B, V) tensor.  bf16 keeps each probability to 3 significant
    digits; a bf16 log-probability (as a log-softmax would store) is coarser: about 0.03 at -10,
    i.e. a 3 % error in the probability.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(z, dim=-1)  # (B, V), reduces in fp32 inside
        ctx.save_for_backward(p, target)
        p_target = p.gather(1, target[:, None]).float().clamp_min_(torch.finfo(torch.float32).tiny)
        return -p_target.log().mean()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        g, target = ctx.saved_tensors  # the saved softmax, reused as the gradient
        rows = torch.arange(len(target), device=g.device)
        g[rows, target] -= 1
        g.mul_((grad / len(target)).to(g.dtype))
        return g, None


class _TiedLookup(torch.autograd.Function):
    """A low-precision copy of the tied table and the context words' rows of it, in one node.

    Returns ``(table, e)``: ``table = weight.to(dtype)`` for the output product, ``e =
    table[ids]`` for the input.  Autograd would give the look-up a dense (V, D) gradient (a
    zero-filled table with the rows added in) and then add it to the output product's: two passes
    over the table a step for a few thousand rows.  Here the output product's gradient, cast to
    the table's dtype, becomes the table's gradient and the rows are added into it in place.
    """

    @staticmethod
    def forward(
        ctx, ids: torch.Tensor, weight: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(ids)
        ctx.weight_dtype = weight.dtype
        ctx.weight_shape = weight.shape
        table = weight.to(dtype)
        return table, F.embedding(ids, table)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx, grad_table: torch.Tensor | None, grad_e: torch.Tensor | None
    ) -> tuple[None, torch.Tensor, None]:
        (ids,) = ctx.saved_tensors
        if grad_table is None:
            grad = torch.zeros(ctx.weight_shape, dtype=ctx.weight_dtype, device=ids.device)
        else:
            grad = grad_table.to(ctx.weight_dtype)  # a new tensor: ours to add into
        if grad_e is not None:
            grad.index_add_(0, ids.reshape(-1), grad_e.reshape(-1, grad.shape[1]).to(grad.dtype))
        return None, grad, None


@register("ffnn_lm")
class FeedForwardLM(nn.Module):
    """P(w_t | w_{t-C} .. w_{t-1}); batches are {"context": (B, C) long, "target": (B,) long}."""

    def __init__(self, vocab_size: int, config: FFLMConfig | dict | None = None):
        super().__init__()
        if isinstance(config, dict):
            config = build(FFLMConfig, config)
        cfg = config or FFLMConfig()
        self.config = cfg
        self.vocab_size = vocab_size
        C, D = cfg.context_size, cfg.embedding_dim
        self.embedding = nn.Embedding(vocab_size, D)
        self.dropout = Dropout(cfg.dropout)
        layers: list[nn.Module] = []
        width = C * D
        for size in cfg.hidden_sizes:
            layers += [
                nn.Linear(width, size),
                ACTIVATIONS[cfg.activation](),
                Dropout(cfg.dropout),
            ]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.direct = nn.Linear(C * D, vocab_size, bias=False) if cfg.direct else None
        self.projection: nn.Linear | None = None
        self.output: nn.Linear | None = None
        self.adaptive: nn.AdaptiveLogSoftmaxWithLoss | None = None
        if cfg.softmax == "adaptive":
            cutoffs = [c for c in cfg.adaptive_cutoffs if c < vocab_size - 1]
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
                width, vocab_size, cutoffs=cutoffs, div_value=cfg.adaptive_div_value
            )
        else:
            if cfg.tie_weights and width != D:
                self.projection = nn.Linear(width, D, bias=False)
                width = D
            self.output = nn.Linear(width, vocab_size, bias=cfg.output_bias)
            if cfg.tie_weights:
                self.output.weight = self.embedding.weight
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        if self.output is not None and self.output.bias is not None:
            nn.init.zeros_(self.output.bias)
        if self.direct is not None:
            nn.init.zeros_(self.direct.weight)  # starts as the plain model; learns what it adds

    def features(
        self, context: torch.Tensor, e: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last hidden layer and the concatenated embeddings; ``e``: the context words'
        embeddings (B, C, D) when already looked up."""
        e = F.embedding(context, self.embedding.weight) if e is None else e  # (B, C, D)
        if self.training:
            # one mask for both dropouts: whole history words, and single elements
            mask = (
                self.dropout.mask(e.shape, e.dtype, e.device) if self.dropout.threshold else None
            )
            p = self.config.word_dropout
            if p > 0:
                keep = (torch.rand(context.shape, device=context.device) >= p).to(e.dtype)
                mask = keep.unsqueeze(2) if mask is None else mask.mul_(keep.unsqueeze(2))
            if mask is not None:
                e = e * mask
        e = e.flatten(1)  # (B, C*D)
        h = self.hidden(e)  # (B, H)
        if self.projection is not None:
            h = self.projection(h)  # (B, D)
        return h, e

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary: logits (full softmax) or log-probabilities (adaptive)."""
        table = e = None
        device = context.device.type
        if self.config.tie_weights and self.output is not None and torch.is_autocast_enabled(device):
            # one low-precision copy of the tied table a step, for the look-up and the output
            table, e = _TiedLookup.apply(
                context, self.embedding.weight, torch.get_autocast_dtype(device)
            )
        h, e = self.features(context, e)
        if self.adaptive is not None:
            return self.adaptive.log_prob(h)  # (B, V)
        assert self.output is not None
        # the product without the bias, then the bias added in place: a CPU addmm first copies
        # the bias into every row of the (B, V) result and multiplies with beta = 1, which costs
        # about as much again as the product itself
        z = F.linear(h, self.output.weight if table is None else table)  # (B, V)
        if self.output.bias is not None:
            z.add_(self.output.bias.to(z.dtype))  # same dtype: mixed-dtype in-place adds are slow
        if self.direct is not None:
            z = z + self.direct(e)  # (B, V)
        return z

    def log_probs(self, context: torch.Tensor) -> torch.Tensor:
        """log p(w | context) for every word: (B, V)."""
        out = self.forward(context)
        return out if self.adaptive is not None else F.log_softmax(out, dim=-1)

    def token_nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Negative log-likelihood of each target: (B,)."""
        if self.adaptive is not None:
            h, _ = self.features(batch["context"])
            return -self.adaptive(h, batch["target"]).output  # (B,)
        return F.cross_entropy(self.forward(batch["context"]), batch["target"], reduction="none")

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean negative log-likelihood per target word.

        With ``precision = "bf16"`` (training only) the products run under bf16 autocast, on one
        bf16 copy of a tied table a step, and the softmax stays in bf16 too (it reduces in fp32
        inside; converting the (B, V) scores to fp32 and back costs more than the output product
        itself); the mean is taken in fp32.
        """
        context, target = batch["context"], batch["target"]
        fast = self.config.precision == "bf16" and self.training
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=fast):
            if self.adaptive is not None:
                h, _ = self.features(context)
                return self.adaptive(h, target).loss.float()
            z = self.forward(context)  # (B, V), bf16 under autocast
        if not fast:
            return F.cross_entropy(z, target)
        return _SoftmaxCrossEntropy.apply(z, target)
