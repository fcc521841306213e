"""MLP block, pooled-embedding classifier and feature MLP: shapes, semantics, errors."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from ffnlp.errors import ConfigError, DataError
from ffnlp.features.subwords import SubwordTable, subword_buckets
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.init import INITS
from ffnlp.models.mlp import MLP, MLPConfig
from ffnlp.models.pooled import (
    BagBatches,
    PooledEmbeddingClassifier,
    drop_words,
    encode_bags,
)
from ffnlp.text.ngrams import ngram_hashes
from tests.extras import needs

# --------------------------------------------------------------------------------------- MLP


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("hidden", [[], [7], [7, 5, 3]])
def test_mlp_shapes_and_gradients(activation: str, hidden: list[int]) -> None:
    mlp = MLP(4, 3, hidden=hidden, activation=activation, dropout=0.2)
    out = mlp(torch.randn(6, 4))
    assert out.shape == (6, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in mlp.parameters())
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in mlp.modules())
    assert n_linear == len(hidden) + 1


def test_mlp_activation_is_the_named_one() -> None:
    mlp = MLP(3, 2, hidden=[4], activation="hardtanh", init="normal", init_std=5.0)
    x = torch.randn(5, 3)
    lin1, lin2 = mlp.layers[0], mlp.layers[2]
    expected = lin2(torch.clamp(lin1(x), -1, 1))
    torch.testing.assert_close(mlp(x), expected)


def test_dropout_only_in_training() -> None:
    mlp = MLP(10, 2, hidden=[50], dropout=0.5, input_dropout=0.3)
    x = torch.randn(8, 10)
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp(x))
    mlp.train()
    assert not torch.allclose(mlp(x), mlp(x))


@pytest.mark.parametrize("init", INITS)
def test_init_schemes_zero_biases(init: str) -> None:
    mlp = MLP(200, 3, hidden=[100], init=init)
    biases = [m.bias for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    if init not in ("default", "torch"):  # these two keep nn.Linear's own weights and biases
        assert all(torch.count_nonzero(b) == 0 for b in biases)
    w = mlp.layers[0].weight
    if init == "xavier_uniform":  # bound = gain * sqrt(6 / (fan_in + fan_out)), relu gain sqrt 2
        assert w.abs().max() <= 2**0.5 * (6 / 300) ** 0.5 + 1e-6
    if init == "normal":
        assert abs(w.std().item() - 0.02) < 0.002


def test_model_init_reaches_every_layer_of_the_feature_classifier() -> None:
    """model.init re-initialises the feature classifier's first (F, H1) table too (it is an
    embedding bag, not an nn.Linear), with F as its fan-in; the MLP's output layer gets a linear
    gain."""
    from ffnlp.models.init import InitConfig, initialize

    torch.manual_seed(0)
    model = FeatureMLP(2000, 3, hidden=[400, 300], activation="relu")
    initialize(model, InitConfig(scheme="zeros"), "relu")
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())
    initialize(model, InitConfig(scheme="kaiming_normal"), "relu")
    table = model.input.weight  # (F, H1): fan-in F
    assert abs(table.std().item() - (2 / 2000) ** 0.5) < 0.002
    initialize(model, InitConfig(scheme="xavier_uniform"), "relu")
    mlp = model.rest[2]
    hidden, out = mlp.layers[0].weight, mlp.layers[-1].weight  # (300, 400), (3, 300)
    assert hidden.abs().max() > 1.2 * (6 / 700) ** 0.5  # relu gain sqrt 2 on a hidden layer
    assert out.abs().max() <= (6 / 303) ** 0.5 + 1e-6  # gain 1 on the output layer
    assert torch.count_nonzero(model.input_bias) == 0


def test_mlp_sparse_input_matches_dense() -> None:
    mlp = MLP(6, 2, hidden=[4], activation="tanh")
    x = torch.randn(5, 6).relu()
    torch.testing.assert_close(mlp(x.to_sparse()), mlp(x))


def test_mlp_config_rejects_bad_sizes() -> None:
    assert MLPConfig(hidden=[3, 0]).check() == ["hidden must hold positive layer sizes; got [3, 0]"]
    with pytest.raises(ConfigError, match="activation must be one of"):
        MLP(3, 2, activation="swish")


# ---------------------------------------------------------------------------------- pooled


def _model(pooling: str = "mean", **kw: object) -> PooledEmbeddingClassifier:
    return PooledEmbeddingClassifier(20, 3, 4, pooling=pooling, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("pooling", ["mean", "sum", "max", "mean_max"])
def test_pooling_matches_manual(pooling: str) -> None:
    model = _model(pooling, hidden=[5])
    model.eval()
    ids = torch.tensor([1, 2, 3, 4, 5, 6])
    offsets = torch.tensor([0, 1, 4])
    w = model.embedding.weight
    bags = [ids[0:1], ids[1:4], ids[4:6]]
    reducers = {
        "mean": lambda e: e.mean(0),
        "sum": lambda e: e.sum(0),
        "max": lambda e: e.max(0).values,
        "mean_max": lambda e: torch.cat([e.mean(0), e.max(0).values]),
    }
    pooled = torch.stack([reducers[pooling](w[b]) for b in bags])
    torch.testing.assert_close(model(ids, offsets), model.mlp(pooled))


def test_empty_text_pools_to_zero_and_uses_the_bias() -> None:
    model = _model()
    model.eval()
    logits = model(torch.tensor([3]), torch.tensor([0, 1]))  # second bag is empty
    torch.testing.assert_close(logits[1], model.mlp(torch.zeros(1, 4))[0])


def test_word_dropout_drops_whole_tokens_and_never_empties_a_bag() -> None:
    ids = torch.arange(1000)
    offsets = torch.tensor([0, 1, 2, 500])  # two one-token bags
    kept, new_offsets = drop_words(ids, offsets, 0.5)
    lengths = torch.diff(new_offsets, append=torch.tensor([kept.numel()]))
    assert (lengths >= 1).all()
    assert lengths[0] == 1 and lengths[1] == 1
    assert 400 < kept.numel() < 600
    assert set(kept.tolist()) <= set(ids.tolist())
    # tokens keep their bag: every id of bag 2 stays below 500
    assert (kept[new_offsets[2] : new_offsets[3]] < 500).all()


def test_word_dropout_off_in_eval() -> None:
    model = _model(word_dropout=0.9)
    ids, offsets = torch.arange(12), torch.tensor([0, 6])
    model.eval()
    torch.testing.assert_close(model(ids, offsets), model(ids, offsets))
    model.train()
    assert not torch.allclose(model(ids, offsets), model(ids, offsets))


def test_sparse_gradients_and_learning() -> None:
    torch.manual_seed(1)
    model = _model(sparse=True)
    batch = {
        "ids": torch.tensor([1, 2, 3, 4]),
        "offsets": torch.tensor([0, 2]),
        "y": torch.tensor([0, 2]),
    }
    loss = model.loss(batch)
    loss.backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.is_sparse
    opt = torch.optim.SparseAdam([model.embedding.weight], lr=0.1)
    opt2 = torch.optim.Adam(model.mlp.parameters(), lr=0.1)
    for _ in range(50):
        opt.zero_grad()
        opt2.zero_grad()
        model.loss(batch).backward()
        opt.step()
        opt2.step()
    assert model.loss(batch).item() < 0.05  # overfits a tiny batch


def test_max_pooling_with_sparse_gradients_is_refused() -> None:
    with pytest.raises(ConfigError, match="set train.sparse = false"):
        _model("max", sparse=True)


def test_freeze_keeps_the_table() -> None:
    model = _model(freeze=True)
    assert not model.embedding.weight.requires_grad


def test_pretrained_dimension_mismatch_is_a_clear_error() -> None:
    model = _model()
    with pytest.raises(
        ConfigError,
        match=r"model.pooled.dim = 4 but the pretrained vectors have 7 dimensions: .* is "
        r"\(B, 4\) @ \(4, 3\), and these vectors would make it \(B, 7\) @ \(4, 3\); set "
        r"model.pooled.dim = 7",
    ):
        model.load_vectors(torch.tensor([0]), torch.zeros(1, 7))


def test_encode_bags_words_then_hashed_ngrams() -> None:
    vocab = {"a": 0, "b": 1, "c": 2}
    texts = [["a", "b", "zz"], [], ["c"], ["c", "a"]]
    bags = encode_bags(texts, vocab, ngrams=2, buckets=10, labels=[1, 0, 1, 0])
    assert bags.offsets.tolist() == [0, 4, 4, 5]
    assert bags.lengths.tolist() == [4, 0, 1, 3]
    grams = [3 + h for h in ngram_hashes(["a", "b", "zz"], 2, 10)]  # after the vocabulary
    assert bags.ids[:4].tolist() == [0, 1, *grams]  # unknown 'zz' is left out, its bigram is not
    assert bags.ids[5:].tolist() == [2, 0, 3 + ngram_hashes(["c", "a"], 2, 10)[0]]
    assert bags.labels is not None and bags.labels.tolist() == [1, 0, 1, 0]


def test_encode_bags_reads_a_vocab_without_its_specials_once() -> None:
    """A Vocab's word -> row map is built on the first call and kept (a call of a few texts
    must not cost a pass over the whole vocabulary); specials never enter a bag."""
    from ffnlp.text.vocab import Vocab

    vocab = Vocab(["<pad>", "<unk>", "a", "b"])
    first = encode_bags([["a", "<unk>", "b", "<pad>"]], vocab)
    kept = vocab._bag_lookup[1]  # type: ignore[attr-defined]
    assert first.ids.tolist() == [2, 3] and kept == {"a": 2, "b": 3}
    again = encode_bags([["b", "x", "a"]], vocab)
    assert again.ids.tolist() == [3, 2] and vocab._bag_lookup[1] is kept  # type: ignore[attr-defined]
    other = Vocab(["<pad>", "<unk>", "b"])
    assert encode_bags([["b", "a"]], other).ids.tolist() == [2]


def test_encode_bags_with_subwords_follows_fasttexts_line() -> None:
    vocab = {"a": 0, "b": 1, "cat": 2}
    texts = [["cat", "zz", "a"], [], ["zz"]]
    bags = encode_bags(texts, vocab, ngrams=2, buckets=50, minn=2, maxn=3, labels=[1, 0, 1])

    def sub(word: str) -> list[int]:  # rows of the word's character n-grams, after the vocabulary
        return [3 + b for b in subword_buckets(word, 2, 3, 50)]

    assert sub("cat") and sub("zz") and sub("a")  # every word here has character n-grams
    grams = [3 + h for h in ngram_hashes(["cat", "zz", "a"], 2, 50)]
    # each token: its own row when the vocabulary has it, then its subwords ('zz' has no row of
    # its own, so only its subwords); the word bigrams after every token, as fastText's getLine
    first = [2, *sub("cat"), *sub("zz"), 0, *sub("a"), *grams]
    assert bags.ids.tolist() == first + sub("zz")
    assert bags.offsets.tolist() == [0, len(first), len(first)]
    assert bags.lengths.tolist() == [len(first), 0, len(sub("zz"))]


def test_encode_bags_subword_rows_match_fasttext_supervised(tmp_path) -> None:
    fasttext = needs("fasttext")
    train = tmp_path / "train.txt"
    train.write_text("__label__a where is the café\n__label__b naïve where\n" * 5, "utf-8")
    model = fasttext.train_supervised(
        str(train), minn=2, maxn=4, bucket=1000, epoch=1, dim=4, verbose=0, thread=1
    )
    n_words = len(model.words)
    vocab = {w: i for i, w in enumerate(model.words)}  # fastText's word ids, buckets after them
    for word in ["where", "café", "naïve", "unseen", "日本"]:
        ids = model.get_subwords(word)[1].tolist()  # fastText: word id (if known) + subwords
        ours = encode_bags([[word]], vocab, buckets=1000, minn=2, maxn=4).ids.tolist()
        assert ours == ids and (ids[0] < n_words) == (word in vocab)


def test_encode_bags_subword_rows_are_the_subword_tables() -> None:
    words = ["where", "naïve", "a", "x" * 9]
    table = SubwordTable(words, 3, 6, 1000)
    bags = encode_bags(
        [[w] for w in words], {w: i for i, w in enumerate(words)}, buckets=1000, minn=3, maxn=6
    )
    for i in range(len(words)):
        start, end = int(bags.offsets[i]), int(bags.offsets[i]) + int(bags.lengths[i])
        assert bags.ids[start:end].tolist() == table.word_rows(i).tolist()


def test_encode_bags_without_subwords_is_unchanged_by_minn() -> None:
    vocab = {"a": 0, "b": 1, "c": 2}
    texts = [["a", "b", "zz"], [], ["c", "a"]]
    plain = encode_bags(texts, vocab, ngrams=2, buckets=10)
    for minn in (1, 3, 9):
        other = encode_bags(texts, vocab, ngrams=2, buckets=10, minn=minn, maxn=0)
        assert other.ids.tolist() == plain.ids.tolist()
        assert other.offsets.tolist() == plain.offsets.tolist()


@pytest.mark.parametrize(
    ("minn", "maxn", "buckets", "message"),
    [
        (0, 4, 10, "features.minn must be at least 1, got 0"),
        (5, 3, 10, "features.maxn (3) is smaller than features.minn (5)"),
        (2, 4, 0, "features.buckets must be at least 1 when subwords are on, got 0"),
    ],
)
def test_encode_bags_rejects_bad_subword_settings(minn, maxn, buckets, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        encode_bags([["a"]], {"a": 0}, buckets=buckets, minn=minn, maxn=maxn)


def test_bag_batches_gather_the_right_bags() -> None:
    vocab = {w: i for i, w in enumerate("abcdefg")}
    texts = [list("ab"), list("c"), list("defg"), [], list("a")]
    bags = encode_bags(texts, vocab, labels=[0, 1, 0, 1, 0])
    source = BagBatches(bags)
    batch = source.select(torch.tensor([2, 0, 3, 4]))
    assert batch["ids"].tolist() == [3, 4, 5, 6, 0, 1, 0]
    assert batch["offsets"].tolist() == [0, 4, 6, 6]
    assert batch["y"].tolist() == [0, 0, 1, 0]
    seen = sorted(
        int(y) for b in source.batches(2, torch.Generator().manual_seed(0)) for y in b["y"]
    )
    assert seen == [0, 0, 0, 1, 1] and source.num_batches(2) == 3


# ------------------------------------------------------------------------------ feature MLP


def test_feature_mlp_dense_and_sparse_agree() -> None:
    model = FeatureMLP(8, 3, hidden=[4])
    x = torch.randn(3, 8).relu()
    x[1] = 0.0  # an all-zero row
    torch.testing.assert_close(model(x), model(x.to_sparse()))
    nz = x.nonzero()  # (nnz, 2) row-major: the SparseRowBatches layout
    offsets = torch.searchsorted(nz[:, 0], torch.arange(3))
    batch = {"ids": nz[:, 1], "weights": x[nz[:, 0], nz[:, 1]], "offsets": offsets}
    torch.testing.assert_close(model.logits(batch), model(x))
    y = torch.tensor([0, 1, 2])
    torch.testing.assert_close(model.loss({"x": x, "y": y}), F.cross_entropy(model(x), y))


def test_binary_feature_mlp_has_one_logit() -> None:
    model = FeatureMLP(5, 2, hidden=[3])
    x, y = torch.randn(4, 5), torch.tensor([0, 1, 1, 0])
    z = model(x)
    assert z.shape == (4, 1)
    torch.testing.assert_close(
        model.loss({"x": x, "y": y}), F.binary_cross_entropy_with_logits(z[:, 0], y.float())
    )
    torch.testing.assert_close(model.predict_proba(x)[:, 1], torch.sigmoid(z[:, 0]))


def test_feature_mlp_errors() -> None:
    with pytest.raises(ConfigError, match="at least two classes"):
        FeatureMLP(3, 1)
    with pytest.raises(ConfigError, match="at least one feature; got 0"):
        FeatureMLP(0, 2)
    with pytest.raises(
        DataError, match=r"it \(B, 4\) @ \(3, 1\): the model was built for 3 features"
    ):
        FeatureMLP(3, 2)(torch.zeros(1, 4))
