"""Pooled-embedding classifiers: the DAN / fastText family.

A text is a bag of ids: its words' ids, plus the ids of its hashed word n-grams (as fastText does,
each n-gram lands in one of ``buckets`` rows after the vocabulary).  One ``nn.EmbeddingBag`` looks up
and pools every bag of a batch in one call, from a flat id tensor and the offsets where each text
starts (no padding); the pooled vector goes through an :class:`~ffnlp.models.mlp.MLP` to the logits.

    ids (N,), offsets (B,) -> EmbeddingBag -> (B, D) [mean | sum | max] or (B, 2D) [mean_max]
                           -> MLP -> logits (B, K)

Word dropout (Iyyer et al. 2015) removes whole items of a bag during training, never emptying one.
A text with no known word and no n-gram pools to the zero vector: its prediction comes from the
biases alone (the class prior learned in training).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.config import option, section
from ffnlp.errors import ConfigError, DataError
from ffnlp.models.mlp import MLP, MLPConfig

POOLINGS = ("mean", "sum", "max", "mean_max")
EMBED_INITS = ("uniform", "normal", "zeros")


@dataclass(frozen=True)
class PooledConfig:
    """Section [model.pooled]: the embedding bag in front of the MLP."""

    dim: int = option(
        100, "embedding dimension D (must equal the pretrained vectors' when given)", ge=1
    )
    pooling: str = option("mean", "how a bag of embeddings becomes one vector", choices=POOLINGS)
    ngrams: int = option(
        2, "word n-grams up to this order are hashed into buckets (1 = words only)", ge=1
    )
    buckets: int = option(
        200_000, "hash buckets for word n-grams (fastText's default is 2,000,000)", ge=1
    )
    word_dropout: float = option(
        0.0, "probability of dropping each word/n-gram of a bag in training", ge=0.0, lt=1.0
    )
    init: str = option(
        "uniform",
        "random embedding init: uniform(+-init_scale) or normal(0, init_scale)",
        choices=EMBED_INITS,
    )
    init_scale: float = option(0.0, "scale of the random init; 0 = 1/D as fastText does", ge=0.0)
    pretrained: str = option(
        "", "word vectors file (word2vec .bin/.txt, GloVe, fastText .vec); '' = random"
    )
    pretrained_format: str = option(
        "auto",
        "format of the pretrained file",
        choices=("auto", "word2vec_bin", "word2vec_text", "glove", "vec"),
    )
    freeze: bool = option(False, "keep the embedding table fixed (only the MLP learns)")
    oov_init: str = option(
        "random",
        "vocabulary words missing from the pretrained file: 'random' (matched to its scale) or 'zeros'",
        choices=("random", "zeros"),
    )
    mlp: MLPConfig = section(MLPConfig)


class PooledEmbeddingClassifier(nn.Module):
    """Bag of word and n-gram ids -> pooled embedding -> MLP -> logits (B, K)."""

    def __init__(
        self,
        num_embeddings: int,
        dim: int,
        num_classes: int,
        *,
        pooling: str = "mean",
        mlp: MLPConfig | None = None,
        word_dropout: float = 0.0,
        sparse: bool = False,
        init: str = "uniform",
        init_scale: float = 0.0,
        freeze: bool = False,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(
                f"model.pooled.pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}"
            )
        if num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes; got {num_classes}")
        if sparse and pooling in ("max", "mean_max"):
            raise ConfigError(
                f"model.pooled.pooling = {pooling!r} has no sparse-gradient kernel in torch; "
                "set train.sparse = false or use pooling 'mean' or 'sum'"
            )
        self.pooling = pooling
        self.word_dropout = word_dropout
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes
        # mean_max pools twice from one table: mean in the module, max in forward()
        mode = (
            "sum" if pooling in ("sum",) else "mean" if pooling in ("mean", "mean_max") else "max"
        )
        self.embedding = nn.EmbeddingBag(num_embeddings, dim, mode=mode, sparse=sparse)
        self._init_embeddings(init, init_scale or 1.0 / dim)
        self.embedding.weight.requires_grad_(not freeze)
        width = 2 * dim if pooling == "mean_max" else dim
        self.mlp = MLP.from_config(width, num_classes, mlp or MLPConfig())
        self.register_buffer(
            "class_weights",
            class_weights.float() if class_weights is not None else torch.ones(num_classes),
        )

    @torch.no_grad()
    def _init_embeddings(self, scheme: str, scale: float) -> None:
        w = self.embedding.weight
        if scheme == "uniform":
            w.uniform_(-scale, scale)
        elif scheme == "normal":
            w.normal_(0.0, scale)
        elif scheme == "zeros":
            w.zero_()
        else:
            raise ConfigError(
                f"model.pooled.init must be one of {', '.join(EMBED_INITS)}; got {scheme!r}"
            )

    @torch.no_grad()
    def load_vectors(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        """Copy ``vectors`` (R, D) into the table rows ``rows`` (R,)."""
        if vectors.shape[1] != self.embedding.embedding_dim:
            raise ConfigError(
                f"pretrained vectors have dimension {vectors.shape[1]} but model.pooled.dim is "
                f"{self.embedding.embedding_dim}; set model.pooled.dim = {vectors.shape[1]}"
            )
        self.embedding.weight[rows] = vectors.to(self.embedding.weight.dtype)

    def pool(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """ids (N,), offsets (B,) -> pooled (B, D) or (B, 2D)."""
        if self.training and self.word_dropout > 0:
            ids, offsets = drop_words(ids, offsets, self.word_dropout)
        pooled = self.embedding(ids, offsets)  # (B, D)
        if self.pooling == "mean_max":
            maxed = F.embedding_bag(ids, self.embedding.weight, offsets, mode="max")  # (B, D)
            pooled = torch.cat([pooled, maxed], dim=1)  # (B, 2D)
        return pooled

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pool(ids, offsets))  # (B, K)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self(batch["ids"], batch["offsets"])  # (B, K)
        return F.cross_entropy(
            logits, batch["y"], weight=self.class_weights, label_smoothing=self.label_smoothing
        )

    @torch.no_grad()
    def predict_proba(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        probs = torch.softmax(self(ids, offsets), dim=1)  # (B, K)
        self.train(was)
        return probs


def drop_words(
    ids: torch.Tensor, offsets: torch.Tensor, p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop each id with probability ``p``; a bag that would become empty keeps all of its ids."""
    n, b = ids.numel(), offsets.numel()
    if n == 0:
        return ids, offsets
    lengths = torch.diff(offsets, append=torch.tensor([n], device=ids.device))  # (B,)
    bag = torch.repeat_interleave(torch.arange(b, device=ids.device), lengths)  # (N,)
    keep = torch.rand(n, device=ids.device) >= p  # (N,)
    kept = torch.zeros(b, dtype=torch.long, device=ids.device).index_add_(0, bag, keep.long())
    keep |= (kept == 0)[bag]  # never empty a bag
    new_lengths = torch.zeros(b, dtype=torch.long, device=ids.device).index_add_(
        0, bag, keep.long()
    )
    new_offsets = torch.zeros(b, dtype=torch.long, device=ids.device)
    new_offsets[1:] = torch.cumsum(new_lengths, 0)[:-1]
    return ids[keep], new_offsets


# ---------------------------------------------------------------------------------------------
# tensorising texts once: bags of ids with offsets


@dataclass
class Bags:
    """Every text of a split as one flat id tensor plus offsets (and optional labels)."""

    ids: torch.Tensor  # (N,) int64, all bags back to back
    offsets: torch.Tensor  # (B,) int64, start of each bag in ids
    labels: torch.Tensor | None = None  # (B,) int64
    lengths: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        if self.offsets.numel() and int(self.offsets[0]) != 0:
            raise DataError("bag offsets must start at 0")
        self.lengths = torch.diff(self.offsets, append=torch.tensor([self.ids.numel()]))

    def __len__(self) -> int:
        return int(self.offsets.numel())


def fnv1a(token: str) -> int:
    """64-bit FNV-1a of a token's UTF-8 bytes: a hash that is the same in every process."""
    h = 0xCBF29CE484222325
    for byte in token.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def ngram_ids(tokens: Sequence[str], max_n: int, buckets: int, cache: dict[str, int]) -> list[int]:
    """Bucket ids (0..buckets-1) of every word n-gram of order 2..max_n, fastText's recurrence."""
    if max_n < 2 or len(tokens) < 2:
        return []
    hashes = [cache.get(t) or cache.setdefault(t, fnv1a(t)) for t in tokens]
    out: list[int] = []
    for i in range(len(hashes)):
        h = hashes[i]
        for j in range(i + 1, min(len(hashes), i + max_n)):
            h = (h * 116049371 + hashes[j]) & 0xFFFFFFFFFFFFFFFF
            out.append(h % buckets)
    return out


def encode_bags(
    token_lists: Sequence[Sequence[str]],
    word_ids: dict[str, int],
    *,
    ngrams: int = 1,
    buckets: int = 0,
    labels: Sequence[int] | None = None,
) -> Bags:
    """Tokenised texts -> Bags.  Unknown words are left out (as fastText does); n-grams over all
    tokens hash to ``len(word_ids) + bucket``."""
    if ngrams > 1 and buckets <= 0:
        raise ConfigError("model.pooled.buckets must be positive when model.pooled.ngrams > 1")
    vocab_size = len(word_ids)
    flat: list[int] = []
    offsets: list[int] = []
    cache: dict[str, int] = {}
    for tokens in token_lists:
        offsets.append(len(flat))
        flat.extend(word_ids[t] for t in tokens if t in word_ids)
        if ngrams > 1:
            flat.extend(vocab_size + h for h in ngram_ids(tokens, ngrams, buckets, cache))
    y = torch.tensor(list(labels), dtype=torch.long) if labels is not None else None
    return Bags(torch.tensor(flat, dtype=torch.long), torch.tensor(offsets, dtype=torch.long), y)


class BagBatches:
    """Batch source over :class:`Bags`: each batch gathers its bags with tensor ops only."""

    def __init__(self, bags: Bags):
        if bags.labels is None:
            raise DataError("training and evaluation batches need labels")
        self.bags = bags

    def __len__(self) -> int:
        return len(self.bags)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self.bags) // batch_size)

    def select(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        bags = self.bags
        lengths = bags.lengths[rows]  # (B,)
        offsets = torch.zeros_like(lengths)
        offsets[1:] = torch.cumsum(lengths, 0)[:-1]
        total = int(lengths.sum())
        # position of every id of the selected bags in the flat tensor, with no loop over bags
        pos = torch.repeat_interleave(bags.offsets[rows] - offsets, lengths) + torch.arange(total)
        assert bags.labels is not None
        return {"ids": bags.ids[pos], "offsets": offsets, "y": bags.labels[rows]}

    def batches(
        self, batch_size: int, generator: torch.Generator | None
    ) -> Iterator[dict[str, torch.Tensor]]:
        n = len(self.bags)
        idx = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.select(idx[start : start + batch_size])
