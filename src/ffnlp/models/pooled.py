"""Pooled-embedding classifiers: the DAN / fastText family.

A text is a bag of ids: its words' ids, plus the ids of its hashed word n-grams (as fastText does,
each n-gram lands in one of ``buckets`` rows after the vocabulary), and optionally each word's
hashed character n-grams (fastText's ``-minn``/``-maxn``), in the same bucket rows.  One
``nn.EmbeddingBag`` looks up and pools every bag of a batch in one call, from a flat id tensor and
the offsets where each text starts (no padding); the pooled vector goes through an
:class:`~ffnlp.models.mlp.MLP` to the logits.

    ids (N,), offsets (B,) -> EmbeddingBag -> (B, D) [mean | sum | max] or (B, 2D) [mean_max]
                           -> MLP -> logits (B, K)

Word dropout (Iyyer et al. 2015) removes whole items of a bag during training, never emptying one.
A text with no known word and no n-gram pools to the zero vector: its prediction comes from the
biases alone (the class prior learned in training).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.config import option, section
from ffnlp.errors import ConfigError, DataError
from ffnlp.features.subwords import check_subword_settings, subword_buckets
from ffnlp.models.heads import ClassifierInputs, make_head, multilabel_argument, output_size
from ffnlp.models.kernels.bag_step import BagLayout
from ffnlp.models.mlp import MLP, MLPConfig
from ffnlp.models.registry import register

POOLINGS = ("mean", "sum", "max", "mean_max")
EMBED_INITS = ("uniform", "normal", "zeros")
VECTOR_FORMATS = ("auto", "word2vec-text", "word2vec-binary", "glove", "fasttext-vec")


@dataclass(frozen=True)
class PooledConfig:
    """Section [model.pooled]: the embedding bag in front of the MLP ([model.mlp])."""

    dim: int = option(
        100, "embedding dimension D (must equal the pretrained vectors' when given)", ge=1
    )
    pooling: str = option("mean", "how a bag of embeddings becomes one vector", choices=POOLINGS)
    word_dropout: float = option(
        0.0, "probability of dropping each word/n-gram of a text in training", ge=0.0, lt=1.0
    )
    init: str = option(
        "uniform",
        "random init: uniform(-s, s) or normal(0, s) with s = init_scale",
        choices=EMBED_INITS,
    )
    init_scale: float = option(0.0, "scale s of the random init; 0 = 1/D, as fastText", ge=0.0)
    pretrained: str = option(
        "", "word vectors file (word2vec .bin/.txt, GloVe, fastText .vec); '' = random"
    )
    pretrained_format: str = option("auto", "format of the pretrained file", choices=VECTOR_FORMATS)
    freeze: bool = option(False, "keep the embedding table fixed (only the MLP learns)")
    oov_init: str = option(
        "random",
        "vocabulary words absent from the pretrained file: random (at the file's scale) or zeros",
        choices=("random", "zeros"),
    )


@dataclass(frozen=True)
class PooledModelConfig:
    """[model] for type = "pooled": the embedding bag ([model.pooled]) and the MLP after it
    ([model.mlp])."""

    mlp: MLPConfig = section(MLPConfig)
    pooled: PooledConfig = section(PooledConfig)

    def check(self) -> list[str]:
        if self.pooled.freeze and not self.pooled.pretrained:
            return [
                "model.pooled.freeze = true needs model.pooled.pretrained (a frozen random table "
                "learns nothing)"
            ]
        return []


@register("pooled", config=PooledModelConfig, features=("ids",))
class PooledEmbeddingClassifier(nn.Module):
    """Bag of word and n-gram ids -> pooled embedding -> MLP -> logits (B, K')."""

    def __init__(
        self,
        num_embeddings: int,
        num_classes: int,
        dim: int = 100,
        *,
        pooling: str = "mean",
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        word_dropout: float = 0.0,
        sparse: bool = False,
        init: str = "uniform",
        init_scale: float = 0.0,
        freeze: bool = False,
        label_smoothing: float = 0.0,
        class_weight: list[float] | None = None,
        multilabel: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.fused = fused  # the compiled training step where it applies (see fused_step)
        if pooling not in POOLINGS:
            raise ConfigError(
                f"model.pooled.pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}"
            )
        if sparse and pooling in ("max", "mean_max"):
            raise ConfigError(
                f"model.pooled.pooling = {pooling!r} has no sparse-gradient kernel in torch; "
                "set train.sparse = false or use pooling 'mean' or 'sum'"
            )
        self.pooling = pooling
        self.word_dropout = word_dropout
        self.head = make_head(num_classes, label_smoothing, class_weight, multilabel)
        # mean_max pools twice from one table: mean in the module, max in pool()
        mode = {"mean": "mean", "sum": "sum", "max": "max", "mean_max": "mean"}[pooling]
        # _weight skips torch's normal init: the table is filled once, by _init_embeddings
        table = torch.empty(num_embeddings, dim)  # (V+buckets, D)
        self.embedding = nn.EmbeddingBag(
            num_embeddings, dim, mode=mode, sparse=sparse, _weight=table
        )
        self._init_embeddings(init, init_scale or 1.0 / dim)
        self.embedding.weight.requires_grad_(not freeze)
        width = 2 * dim if pooling == "mean_max" else dim
        out = output_size(num_classes, multilabel)
        self.mlp = MLP(width, out, hidden, activation, dropout, input_dropout)

    @classmethod
    def arguments(cls, config: PooledModelConfig, inputs: ClassifierInputs) -> dict[str, Any]:
        """Constructor arguments (model.json's ``args``) for ``config`` and the data's ``inputs``:
        ``input_size`` rows (vocabulary + n-gram buckets) of ``config.pooled.dim``."""
        mlp, pooled = config.mlp, config.pooled
        return {
            "num_embeddings": inputs.input_size,
            "num_classes": inputs.num_classes,
            "label_smoothing": inputs.label_smoothing,
            "class_weight": inputs.class_weight,
            "hidden": list(mlp.hidden),
            "activation": mlp.activation,
            "dropout": mlp.dropout,
            "input_dropout": mlp.input_dropout,
            "dim": pooled.dim,
            "pooling": pooled.pooling,
            "word_dropout": pooled.word_dropout,
            "sparse": inputs.sparse,
            "init": pooled.init,
            "init_scale": pooled.init_scale,
            "freeze": pooled.freeze,
            **multilabel_argument(inputs),
        }

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

    def check_vector_dim(self, dim: int, source: str = "the pretrained vectors") -> None:
        """ConfigError unless vectors of ``dim`` dimensions fit the table: the message names the
        product they would break (the pooled vector into the first layer), both shapes, and the
        setting to change."""
        table_dim = self.embedding.embedding_dim
        if dim == table_dim:
            return
        first = next(m for m in self.mlp.layers if isinstance(m, nn.Linear))
        width, out = first.in_features, first.out_features  # width: D, or 2D for mean_max
        given = width // table_dim * dim
        where = f"the vectors in {source}" if source != "the pretrained vectors" else source
        raise ConfigError(
            f"model.pooled.dim = {table_dim} but {where} have {dim} dimensions: the model's "
            f"first product, pooled embeddings times the first layer, is (B, {width}) @ "
            f"({width}, {out}), and these vectors would make it (B, {given}) @ ({width}, {out}); "
            f"set model.pooled.dim = {dim}"
        )

    @torch.no_grad()
    def load_vectors(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        """Copy ``vectors`` (R, D) into the table rows ``rows`` (R,)."""
        self.check_vector_dim(int(vectors.shape[1]))
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
        return self.mlp(self.pool(ids, offsets))  # (B, K')

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(batch["ids"], batch["offsets"])  # (B, K')

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head.loss(self.logits(batch), batch["y"])

    def bag_layout(self) -> BagLayout | None:
        """The parts the compiled training step updates (:mod:`ffnlp.models.kernels.bag_step`),
        for a model built with ``fused=True`` with mean or sum pooling and no hidden layer; None
        otherwise. Whether the step then applies (kernels on, head, device, training settings)
        is :func:`ffnlp.tasks.classify.fused.fused_step`'s question."""
        linear = self.mlp.layers[-1]
        dropouts = [m for m in self.mlp.layers if isinstance(m, nn.Dropout)]
        if not self.fused or self.pooling not in ("mean", "sum") or self.mlp.hidden:
            return None
        assert isinstance(linear, nn.Linear)
        layout = BagLayout(
            table=self.embedding.weight,
            weight=linear.weight,
            bias=linear.bias,
            mean=self.pooling == "mean",
            word_dropout=self.word_dropout,
            dropout=dropouts[0].p if dropouts else 0.0,
        )
        return layout

    @torch.no_grad()
    def predict_proba(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        probs = self.head.probabilities(self(ids, offsets))  # (B, K)
        self.train(was)
        return probs


def drop_words(
    ids: torch.Tensor, offsets: torch.Tensor, p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop each id with probability ``p``; a bag that would become empty keeps all of its ids."""
    n, b = ids.numel(), offsets.numel()
    if n == 0:
        return ids, offsets
    lengths = torch.diff(offsets, append=offsets.new_tensor([n]))  # (B,)
    bag = torch.repeat_interleave(torch.arange(b, device=ids.device), lengths)  # (N,)
    keep = torch.rand(n, device=ids.device) >= p  # (N,)
    kept = torch.zeros(b, dtype=torch.long, device=ids.device).index_add_(0, bag, keep.long())
    emptied = kept == 0  # (B,) bags that would lose every id keep them all
    keep |= emptied[bag]
    new_lengths = torch.where(emptied, lengths, kept)  # (B,)
    new_offsets = torch.cumsum(new_lengths, 0) - new_lengths
    return ids[keep], new_offsets


# ---------------------------------------------------------------------------------------------
# tensorising texts once: bags of ids with offsets


@dataclass
class Bags:
    """Every text of a split as one flat id tensor plus offsets (and optional labels)."""

    ids: torch.Tensor  # (N,) int64, all bags back to back
    offsets: torch.Tensor  # (B,) int64, start of each bag in ids
    labels: torch.Tensor | None = None  # (B,) int64 class ids, or (B, K) 0/1 for multi-label
    lengths: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        if self.offsets.numel() and int(self.offsets[0]) != 0:
            raise DataError("bag offsets must start at 0")
        self.lengths = torch.diff(self.offsets, append=torch.tensor([self.ids.numel()]))

    def __len__(self) -> int:
        return int(self.offsets.numel())


def _bag_lookup(word_ids: Any) -> dict[str, int]:
    """Word -> row for :func:`encode_bags`: ``word_ids`` itself when a dict; for a Vocab its
    words without the specials (<pad>/<unk> never enter a bag), built once per Vocab and kept
    on it (a Vocab does not change): predicting a few texts must not cost a pass over the
    whole vocabulary."""
    if isinstance(word_ids, dict):
        return word_ids
    key = (len(word_ids.itos), tuple(getattr(word_ids, "specials", ())))
    cached = getattr(word_ids, "_bag_lookup", None)
    if cached is not None and cached[0] == key:
        return cast(dict[str, int], cached[1])
    lookup = {w: i for i, w in enumerate(word_ids.itos)}
    for special in key[1]:
        lookup.pop(special, None)
    with contextlib.suppress(AttributeError):  # an object that takes no attributes: no cache
        word_ids._bag_lookup = (key, lookup)
    return lookup


def encode_bags(
    token_lists: Sequence[Sequence[str]],
    word_ids: Any,
    *,
    ngrams: int = 1,
    buckets: int = 0,
    labels: Sequence[int] | torch.Tensor | None = None,
    minn: int = 3,
    maxn: int = 0,
) -> Bags:
    """Tokenised texts -> Bags.  ``word_ids`` maps a word to its row (a dict or a Vocab); words it
    lacks are left out (as fastText does).  Word n-grams of order 2..``ngrams`` hash (fastText's
    hash) to rows ``len(word_ids) + bucket``.

    With ``maxn > 0`` each token stands for its row (when ``word_ids`` has it) followed by the
    rows ``len(word_ids) + bucket`` of its character n-grams of ``minn..maxn`` characters, as
    fastText's supervised ``Dictionary::getLine`` builds a line: a word outside the vocabulary
    is then read from its subwords alone. The word n-grams come after all the tokens."""
    from ffnlp.text.ngrams import ngram_hashes_flat

    if ngrams > 1 and buckets <= 0:
        raise ConfigError("features.buckets must be positive when word n-grams are used")
    if maxn > 0:
        problems = check_subword_settings(minn, maxn, buckets, where="features")
        if problems:
            raise ConfigError("; ".join(problems))
    lookup = _bag_lookup(word_ids)
    if maxn > 0:
        word_flat, word_len = _token_rows(token_lists, lookup, len(word_ids), minn, maxn, buckets)
    else:
        words = [[lookup[t] for t in tokens if t in lookup] for tokens in token_lists]
        word_len = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        word_flat = np.fromiter(
            (i for w in words for i in w), dtype=np.int64, count=int(word_len.sum())
        )
    n_texts = len(word_len)
    if ngrams > 1:
        grams, gram_off = ngram_hashes_flat(token_lists, ngrams, buckets)
        gram_len = np.diff(gram_off)
        grams = grams + len(word_ids)
    else:
        grams, gram_len = np.zeros(0, dtype=np.int64), np.zeros(n_texts, dtype=np.int64)
    # interleave: each text's words (and subwords), then its n-grams, with no loop over tokens
    lengths = word_len + gram_len  # (B,)
    starts = np.zeros(n_texts, dtype=np.int64)
    if n_texts > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    flat = np.empty(int(lengths.sum()), dtype=np.int64)
    word_pos = np.repeat(starts, word_len) + _ranks(word_len)
    gram_pos = np.repeat(starts + word_len, gram_len) + _ranks(gram_len)
    flat[word_pos] = word_flat
    flat[gram_pos] = grams
    y = None
    if labels is not None:  # a tensor keeps its dtype: (B, K) multi-label targets stay compact
        y = (
            labels
            if isinstance(labels, torch.Tensor)
            else torch.as_tensor(labels, dtype=torch.long)
        )
    return Bags(torch.from_numpy(flat), torch.from_numpy(starts), y)


def token_rows(
    word: str, lookup: dict[str, int], n_words: int, minn: int, maxn: int, buckets: int
) -> list[int]:
    """The table rows a token stands for: its own row when ``lookup`` has it, then the rows
    ``n_words + bucket`` of its character n-grams (fastText's ``Dictionary::addSubwords``)."""
    own = lookup.get(word)
    subwords = [n_words + b for b in subword_buckets(word, minn, maxn, buckets)]
    return subwords if own is None else [own, *subwords]


def _token_rows(
    token_lists: Sequence[Sequence[str]],
    lookup: dict[str, int],
    n_words: int,
    minn: int,
    maxn: int,
    buckets: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every token's rows (:func:`token_rows`), text after text: the flat rows and how many
    each text has. Each distinct token's rows are worked out once; the texts are then gathered
    from them with array operations."""
    index: dict[str, int] = {}  # each distinct token ("kind") -> its number
    setdefault = index.setdefault
    kinds = [setdefault(t, len(index)) for tokens in token_lists for t in tokens]  # (T,)
    per_kind = [token_rows(t, lookup, n_words, minn, maxn, buckets) for t in index]  # U lists
    kind_len = np.fromiter((len(r) for r in per_kind), dtype=np.int64, count=len(per_kind))
    kind_flat = np.fromiter(
        (i for r in per_kind for i in r), dtype=np.int64, count=int(kind_len.sum())
    )
    kind_start = np.cumsum(kind_len) - kind_len  # (U,)
    token_kind = np.asarray(kinds, dtype=np.int64)  # (T,)
    token_len = kind_len[token_kind]  # (T,) rows of each token
    flat = kind_flat[np.repeat(kind_start[token_kind], token_len) + _ranks(token_len)]
    tokens_per_text = np.fromiter(
        (len(t) for t in token_lists), dtype=np.int64, count=len(token_lists)
    )
    text_of_token = np.repeat(np.arange(len(token_lists)), tokens_per_text)  # (T,)
    text_len = np.bincount(text_of_token, weights=token_len, minlength=len(token_lists))
    return flat, text_len.astype(np.int64)


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """0..len-1 for each segment, concatenated: [2, 3] -> [0, 1, 0, 1, 2]."""
    total = int(lengths.sum())
    seg_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - seg_start


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
        """The bags ``rows`` (in that order) as one batch: ids, offsets and labels."""
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
        """The epoch's order is laid out once (one gather of every id); a batch is then a slice
        of it, so a step pays for no selection of its own."""
        n = len(self.bags)
        if generator is None:  # in order (evaluation): the bags as they are, nothing gathered
            bags = self.bags
            assert bags.labels is not None
            epoch = {"ids": bags.ids, "offsets": bags.offsets, "y": bags.labels}
        else:
            epoch = self.select(torch.randperm(n, generator=generator))
        starts = epoch["offsets"].tolist() + [epoch["ids"].numel()]
        for start in range(0, n, batch_size):
            end = min(start + batch_size, n)
            lo, hi = starts[start], starts[end]
            yield {
                "ids": epoch["ids"][lo:hi],
                "offsets": epoch["offsets"][start:end] - lo,
                "y": epoch["y"][start:end],
            }
