"""The feed-forward neural language model of Bengio et al. (2003).

    e = [E x_{t-C}; ...; E x_{t-1}]          (B, C*D)   the context words' embeddings, concatenated
    h = act(W e + b)   (one or more layers)  (B, H)
    z = U h (+ W_direct e)                   (B, V)     scores over the vocabulary
    p(w_t | context) = softmax(z)

Options: several hidden layers and any activation; Bengio's direct connection from the embeddings
to the output; weight tying (U = E, with a linear projection H -> D when the sizes differ);
dropout; and an adaptive softmax (Grave et al. 2017) that makes the output layer cheaper for large
vocabularies by giving rare words smaller, clustered output matrices.

Beyond the fixed window, still feed-forward:

- ``history = "fofe"``: the fixed-size ordinally-forgetting encoding of Zhang et al. (2015) in
  place of the concatenation, z = sum_{k=1..C} alpha^(k-1) E x_{t-k} (the recurrence
  z_t = alpha z_{t-1} + E x_t unrolled over the C words of history, in closed form), beside the
  ``fofe_exact`` most recent words' embeddings concatenated: e = [E x_{t-K}; ...; E x_{t-1}; z],
  (B, (K+1)*D). With alpha = 0.7 a word 20 back weighs 0.001, so a long C covers the whole
  useful history at the cost of C look-ups.
- ``residual_blocks``: pre-norm residual blocks after the hidden layers (the modernised neural
  LM of Sun & Iyyer 2021): h = h + dropout(W2 act(W1 LN(h) + b1) + b2), and a layer norm on
  the last block's output.

``fused=True`` (the default) trains with the CPU kernels of :mod:`ffnlp.models.kernels.lm_cpu`
(a dropout mask from random bytes; the output layer and its cross-entropy in one node with one
(B, V) buffer; a tied table's look-up rows added into the output product's gradient, with no
dense (V, D) look-up gradient; with bf16 products (``precision``) one bf16 copy of a tied table a
step and the softmax kept in bf16); ``fused=False`` runs the plain PyTorch reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.config import build, option
from ffnlp.errors import ConfigError
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.models.kernels import lm_cpu
from ffnlp.models.registry import register
from ffnlp.precision import PRECISIONS, choose_precision

MAX_FOFE_CONTEXT = 1024  # words of history a FOFE model looks up for every prediction


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
    history: str = option(
        "window",
        "how the C words of history reach the hidden layer: window = their embeddings "
        "concatenated (Bengio), fofe = the ordinally-forgetting encoding of all C words "
        "(sum of alpha^(k-1) E x(t-k)) beside the fofe_exact most recent words concatenated",
        choices=("window", "fofe"),
    )
    fofe_alpha: float = option(
        0.7, "history = 'fofe': the forgetting factor alpha (Zhang et al. 2015: 0.7)", gt=0, lt=1
    )
    fofe_exact: int = option(
        2,
        "history = 'fofe': the most recent words also given one by one (their embeddings "
        "concatenated before the code); 0 = the code alone",
        ge=0,
    )
    residual_blocks: int = option(
        0,
        "pre-norm residual blocks after the hidden layers: h = h + dropout(W2 act(W1 LN(h))), "
        "a layer norm on the last one's output (Sun & Iyyer 2021); 0 = none",
        ge=0,
    )
    residual_inner: int = option(
        0,
        "residual blocks: the inner width of W1 (0 = the blocks' width, the last hidden size)",
        ge=0,
    )
    precision: str = option(
        "auto",
        "matrix products while training: bf16 (autocast; about 2x faster where the hardware has "
        "bf16 units: CPUs with AVX512-BF16/AMX, CUDA devices of compute capability >= 8) or "
        "fp32; auto = bf16 where it is native, else fp32 (emulated bf16 is slower than fp32); "
        "evaluation always runs in fp32",
        choices=PRECISIONS,
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
        if self.history == "fofe" and self.context_size > MAX_FOFE_CONTEXT:
            problems.append(
                f"model.context_size = {self.context_size} is more history than a FOFE code "
                f"needs (at most {MAX_FOFE_CONTEXT}: even alpha = 0.99 weighs a word that far "
                "back 0.00003, and every word of the window is looked up for every prediction); "
                f"set model.context_size <= {MAX_FOFE_CONTEXT}"
            )
        if self.history == "fofe" and self.fofe_exact >= self.context_size:
            problems.append(
                f"model.fofe_exact = {self.fofe_exact} must be below model.context_size = "
                f"{self.context_size} (the code covers all C words; the exact ones are the "
                "most recent of them): raise context_size or lower fofe_exact"
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


@register("ffnn_lm")
class FeedForwardLM(nn.Module):
    """P(w_t | w_{t-C} .. w_{t-1}); batches are {"context": (B, C) long, "target": (B,) long}.

    ``fused``: train with the CPU kernels (True) or the plain PyTorch reference (False).
    """

    def __init__(
        self, vocab_size: int, config: FFLMConfig | dict | None = None, *, fused: bool = True
    ):
        super().__init__()
        if isinstance(config, dict):
            config = build(FFLMConfig, config)
        cfg = config or FFLMConfig()
        self.config = cfg
        self.vocab_size = vocab_size
        self.fused = fused
        self._auto_precision: dict[str, str] = {}  # device -> what precision = "auto" chose there
        dropout = lm_cpu.ByteMaskDropout if fused else nn.Dropout
        D = cfg.embedding_dim
        self.embedding = nn.Embedding(vocab_size, D)
        self.dropout = dropout(cfg.dropout)
        layers: list[nn.Module] = []
        width = self.input_width
        for size in cfg.hidden_sizes:
            layers += [
                nn.Linear(width, size),
                ACTIVATIONS[cfg.activation].make(),
                dropout(cfg.dropout),
            ]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(
            ResidualBlock(width, cfg.residual_inner or width, cfg.activation, dropout(cfg.dropout))
            for _ in range(cfg.residual_blocks)
        )
        self.final_norm = nn.LayerNorm(width) if cfg.residual_blocks else None
        self.direct = nn.Linear(self.input_width, vocab_size, bias=False) if cfg.direct else None
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

    @property
    def input_width(self) -> int:
        """Width of what the first hidden layer reads: C*D (window) or (K+1)*D (fofe)."""
        cfg = self.config
        words = cfg.fofe_exact + 1 if cfg.history == "fofe" else cfg.context_size
        return words * cfg.embedding_dim

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
        if context.shape[-1] != self.config.context_size:
            self._wrong_context(context.shape[-1])
        e = F.embedding(context, self.embedding.weight) if e is None else e  # (B, C, D)
        if self.training:
            mask = None
            if isinstance(self.dropout, lm_cpu.ByteMaskDropout):
                # one mask for both dropouts: whole history words, and single elements
                if self.dropout.threshold:
                    mask = self.dropout.mask(e.shape, e.dtype, e.device)
            else:
                e = self.dropout(e)
            p = self.config.word_dropout
            if p > 0:
                keep = (torch.rand(context.shape, device=context.device) >= p).to(e.dtype)
                mask = keep.unsqueeze(2) if mask is None else mask.mul_(keep.unsqueeze(2))
            if mask is not None:
                e = e * mask
        e = self.encode_history(e)  # (B, C*D), or (B, (K+1)*D) with FOFE
        h = self.hidden(e)  # (B, H)
        for block in self.blocks:
            h = block(h)
        if self.final_norm is not None:
            h = self.final_norm(h)
        if self.projection is not None:
            h = self.projection(h)  # (B, D)
        return h, e

    def encode_history(self, e: torch.Tensor) -> torch.Tensor:
        """The context words' embeddings (B, C, D) as the hidden layer reads them: concatenated
        (B, C*D), or with FOFE [e_{t-K}; ...; e_{t-1}; z] (B, (K+1)*D)."""
        if self.config.history != "fofe":
            return e.flatten(1)
        # alpha^(k-1) for the word k back, oldest word first: (C,)
        C = e.shape[1]
        powers = torch.arange(C - 1, -1, -1, dtype=torch.float64, device=e.device)
        weights = torch.pow(self.config.fofe_alpha, powers).to(e.dtype)
        z = torch.einsum("bcd,c->bd", e, weights)  # (B, D)
        K = self.config.fofe_exact
        if K == 0:
            return z
        return torch.cat([e[:, -K:].flatten(1), z], dim=1)  # (B, (K+1)*D)

    def _wrong_context(self, given: int) -> None:
        C, D = self.config.context_size, self.embedding.embedding_dim
        if self.config.history == "fofe":
            raise ConfigError(
                f"this LM reads C = {C} context words (model.context_size = {C}; their FOFE code "
                f"weighs word k back by alpha^(k-1)) but got contexts of {given}; pass (B, {C}) "
                f"contexts, or train with model.context_size = {given}"
            )
        first = next((m for m in self.hidden if isinstance(m, nn.Linear)), None)
        product = "the output product" if first is None else "the first hidden product"
        out = first.out_features if first is not None else self.vocab_size
        raise ConfigError(
            f"this LM reads C = {C} context words (model.context_size = {C}) but got contexts of "
            f"{given}: e = [E·x(t-{given}); ...; E·x(t-1)] would be (B, {given * D}) where "
            f"{product} expects (B, {C * D}) @ ({C * D}, {out}); pass (B, {C}) contexts, or "
            f"train with model.context_size = {given}"
        )

    def _last_hidden(
        self, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(h, e, table)``: the last hidden layer, the concatenated embeddings, and the tied
        table's low-precision copy when the fused path made one (else None)."""
        table = e = None
        if self.fused and self.config.tie_weights and self.output is not None:
            # one node for the look-up and the table the output product uses (under autocast a
            # low-precision copy of it, made once a step), whose backward adds the looked-up rows
            # into the product's gradient
            tied = lm_cpu.tied_lookup(context, self.embedding.weight)
            if tied is not None:
                table, e = tied
        h, e = self.features(context, e)
        return h, e, table

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary: logits (full softmax) or log-probabilities (adaptive)."""
        h, e, table = self._last_hidden(context)
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

    def trains_in_bf16(self, device: torch.device) -> bool:
        """Whether training's products run in bf16 on ``device``: ``precision = "bf16"``, or
        "auto" where bf16 is native (:func:`ffnlp.precision.choose_precision`, once a device)."""
        if self.config.precision != "auto":
            return self.config.precision == "bf16"
        key = str(device)
        if key not in self._auto_precision:
            self._auto_precision[key] = choose_precision("auto", device).used
        return self._auto_precision[key] == "bf16"

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean negative log-likelihood per target word.

        With bf16 (:meth:`trains_in_bf16`; training only) the products run under bf16 autocast. The
        fused path makes one bf16 copy of a tied table a step and, with a full softmax and no
        direct connection, computes the output layer and the loss in one node
        (:func:`~ffnlp.models.kernels.lm_cpu.output_cross_entropy`: one (B, V) buffer for the
        scores, the probabilities and the gradient; the softmax kept in bf16, which reduces in
        fp32 inside; the mean taken in fp32); in fp32 the same node replaces the log-softmax
        forward and backward. The reference takes the cross-entropy of the scores converted to
        fp32.
        """
        context, target = batch["context"], batch["target"]
        fast = self.training and self.trains_in_bf16(context.device)
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=fast):
            if self.adaptive is not None:
                h, _ = self.features(context)
                return self.adaptive(h, target).loss.float()
            if self.fused and self.direct is None:
                # the output layer and the loss in one node, one (B, V) buffer
                assert self.output is not None
                h, _, table = self._last_hidden(context)
                weight = self.output.weight if table is None else table
                return lm_cpu.output_cross_entropy(h, weight, self.output.bias, target)
            z = self.forward(context)  # (B, V), bf16 under autocast
        if fast and self.fused:
            return lm_cpu.softmax_cross_entropy(z, target)
        return F.cross_entropy(z.float(), target)  # (no copy when z is fp32 already)


class ResidualBlock(nn.Module):
    """Pre-norm residual feed-forward block: h + dropout(W2 act(W1 LN(h) + b1) + b2)."""

    def __init__(self, width: int, inner: int, activation: str, dropout: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, inner)
        self.act = ACTIVATIONS[activation].make()
        self.outer = nn.Linear(inner, width)
        self.dropout = dropout

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.dropout(self.outer(self.act(self.inner(self.norm(h)))))
