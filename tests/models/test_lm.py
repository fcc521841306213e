"""The feed-forward LM: shapes, the perplexity convention, options, memorising a tiny corpus.

Its CPU kernels (dropout mask, tied look-up, bf16 cross-entropy) are tested against the plain
PyTorch reference in test_models_kernels_lm.py."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ffnlp.config import build
from ffnlp.errors import ConfigError
from ffnlp.models.lm import FeedForwardLM, FFLMConfig, ResidualBlock
from ffnlp.models.registry import build_model
from ffnlp.tasks.lm import resolve_config as lm_config
from ffnlp.tasks.lm.evaluate import make_evaluator, perplexity_of, token_log_probs_nn
from ffnlp.text.corpus import LMBatches

V = 37


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread (and do not fight other jobs for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def batch(B: int = 6, C: int = 3) -> dict[str, torch.Tensor]:
    return {"context": torch.randint(0, V, (B, C)), "target": torch.randint(0, V, (B,))}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"hidden_sizes": [], "tie_weights": False},
        {"hidden_sizes": [16, 8], "activation": "relu", "direct": True},
        {"tie_weights": True, "hidden_sizes": [12], "embedding_dim": 12},
        {"softmax": "adaptive", "tie_weights": False, "adaptive_cutoffs": [5, 20]},
        {"precision": "bf16"},
        {"history": "fofe", "context_size": 9, "fofe_exact": 2, "fofe_alpha": 0.5},
        {"history": "fofe", "context_size": 9, "fofe_exact": 0, "direct": True},
        {"residual_blocks": 2, "residual_inner": 24},
        {"history": "fofe", "context_size": 9, "residual_blocks": 1, "tie_weights": False},
        {
            "residual_blocks": 1,
            "softmax": "adaptive",
            "tie_weights": False,
            "adaptive_cutoffs": [5],
        },
        {"history": "fofe", "context_size": 9, "residual_blocks": 1, "precision": "bf16"},
    ],
)
def test_shapes_finite_loss_and_gradients_everywhere(options: dict) -> None:
    base = {"context_size": 3, "embedding_dim": 8, "hidden_sizes": [16], "dropout": 0.0}
    cfg = FFLMConfig(**{**base, **options})
    model = FeedForwardLM(V, cfg)
    b = batch(C=cfg.context_size)
    logp = model.log_probs(b["context"])
    assert logp.shape == (6, V)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(6), atol=1e-5)
    nll = model.token_nll(b)
    assert nll.shape == (6,)
    assert torch.allclose(nll, -logp.gather(1, b["target"][:, None])[:, 0], atol=1e-5)
    loss = model.loss(b)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_tied_weights_share_the_embedding_matrix() -> None:
    model = FeedForwardLM(V, FFLMConfig(context_size=2, embedding_dim=8, hidden_sizes=[16]))
    assert model.output is not None and model.output.weight is model.embedding.weight
    assert model.projection is not None and model.projection.weight.shape == (8, 16)


def test_fofe_code_is_the_recurrence_over_the_history() -> None:
    # z_t = alpha z_{t-1} + e(w_t) from z = 0, run word by word over the C words of history
    cfg = FFLMConfig(context_size=5, embedding_dim=3, history="fofe", fofe_alpha=0.6, fofe_exact=2)
    model = FeedForwardLM(V, cfg).eval()
    context = torch.tensor([[4, 9, 4, 1, 30], [0, 0, 7, 7, 2]])  # (B, C), oldest word first
    e = model.embedding(context)  # (B, C, D)
    z = torch.zeros(2, 3)
    for t in range(5):
        z = 0.6 * z + e[:, t]
    encoded = model.encode_history(e)
    assert encoded.shape == (2, 3 * 3)  # [e(t-2); e(t-1); z]
    assert torch.allclose(encoded[:, 6:], z, atol=1e-6)
    assert torch.equal(encoded[:, :3], e[:, 3]) and torch.equal(encoded[:, 3:6], e[:, 4])
    # by hand for the second row: word 2 one back, 7 two and three back, 0 four and five back
    E = model.embedding.weight
    by_hand = E[2] + (0.6 + 0.6**2) * E[7] + (0.6**3 + 0.6**4) * E[0]
    assert torch.allclose(encoded[1, 6:], by_hand, atol=1e-6)
    # what the hidden layer reads: (K+1)*D wide, whatever C is
    assert model.hidden[0].in_features == 9


def test_a_residual_block_adds_its_branch_to_its_input() -> None:
    cfg = FFLMConfig(
        context_size=2,
        embedding_dim=4,
        hidden_sizes=[6],
        residual_blocks=1,
        residual_inner=10,
        tie_weights=False,
    )
    model = FeedForwardLM(V, cfg).eval()
    (block,) = model.blocks
    assert isinstance(block, ResidualBlock)
    assert (block.inner.in_features, block.inner.out_features) == (6, 10)
    assert (block.outer.in_features, block.outer.out_features) == (10, 6)
    h = torch.randn(5, 6)
    normed = torch.nn.functional.layer_norm(h, (6,))  # a fresh LN: weight 1, bias 0
    branch = block.outer(torch.tanh(block.inner(normed)))
    assert torch.allclose(block(h), h + branch, atol=1e-6)
    torch.nn.init.zeros_(block.outer.weight)
    torch.nn.init.zeros_(block.outer.bias)
    assert torch.equal(block(h), h)  # a zero branch: the identity
    # the last block's output is layer-normed before the output layer: mean 0, variance 1
    context = torch.randint(0, V, (5, 2))
    last, _ = model.features(context)  # (5, 6): no projection, the output layer reads it
    assert torch.allclose(last.mean(-1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(last.var(-1, unbiased=False), torch.ones(5), atol=1e-3)


def test_tying_shares_the_parameter_with_fofe_and_residual_blocks() -> None:
    cfg = FFLMConfig(
        context_size=6, embedding_dim=8, history="fofe", residual_blocks=2, hidden_sizes=[16]
    )
    model = FeedForwardLM(V, cfg)
    assert model.output is not None and model.output.weight is model.embedding.weight
    names = [n for n, _ in model.named_parameters()]
    assert "output.weight" not in names  # one parameter, counted once
    model.loss(batch(C=6)).backward()
    # the gradient of the shared table holds both uses: look-up rows and output rows
    assert model.embedding.weight.grad is not None
    assert int((model.embedding.weight.grad.abs().sum(1) > 0).sum()) == V


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fofe_alpha": 1.0}, "model.fofe_alpha must be < 1; got 1.0"),
        ({"fofe_alpha": 0.0}, "model.fofe_alpha must be > 0; got 0.0"),
        ({"fofe_alpha": 1.5}, "model.fofe_alpha must be < 1; got 1.5"),
        ({"history": "fifo"}, "model.history must be one of 'window', 'fofe'; got 'fifo'"),
        ({"residual_blocks": -1}, "model.residual_blocks must be >= 0; got -1"),
        ({"residual_inner": -4}, "model.residual_inner must be >= 0; got -4"),
        ({"fofe_exact": -1}, "model.fofe_exact must be >= 0; got -1"),
        (
            {"history": "fofe", "context_size": 4, "fofe_exact": 4},
            "model.fofe_exact = 4 must be below model.context_size = 4",
        ),
        (
            {"history": "fofe", "context_size": 5000},
            "model.context_size = 5000 is more history than a FOFE code needs (at most 1024",
        ),
    ],
)
def test_bad_history_and_block_settings_name_the_option(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        lm_config(None, [f"model.{k}={json.dumps(v)}" for k, v in settings.items()])
    assert message in str(err.value)


@pytest.mark.parametrize("fused", [True, False])
def test_word_dropout_acts_on_the_history_words_before_the_fofe_sum(fused: bool) -> None:
    # p = 0.9 over C = 4 words: all four dropped (a zero code and zero exact words) in
    # 0.9^4 = 66% of the rows while training; never in evaluation
    cfg = FFLMConfig(
        context_size=4, embedding_dim=6, history="fofe", fofe_exact=1, word_dropout=0.9
    )
    model = FeedForwardLM(V, cfg, fused=fused)
    seen: list[torch.Tensor] = []
    model.hidden[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    context = torch.randint(1, V, (2000, 4))
    torch.manual_seed(0)
    model.train()
    model(context)
    model.eval()
    model(context)
    trained, evaluated = ((x.abs().sum(1) == 0).float().mean().item() for x in seen)
    assert seen[0].shape == (2000, 12)
    assert trained == pytest.approx(0.9**4, abs=0.04)
    assert evaluated == 0.0


def test_a_fofe_context_of_the_wrong_length_names_the_setting() -> None:
    model = FeedForwardLM(V, FFLMConfig(context_size=6, history="fofe"))
    with pytest.raises(ConfigError) as err:
        model(torch.zeros(2, 4, dtype=torch.long))
    assert "this LM reads C = 6 context words (model.context_size = 6" in str(err.value)
    assert "got contexts of 4; pass (B, 6) contexts" in str(err.value)


def _fit_tiny_corpus(model: FeedForwardLM, context_size: int) -> LMBatches:
    """150 full-batch Adam steps on a corpus in which each word follows from the previous one
    (13 types; a model that learns it reaches a perplexity near 1); the corpus's batches."""
    sentence = [3, 7, 1, 9, 4, 12, 5, 8, 2, 6]
    stream = torch.tensor([0] + (sentence + [0]) * 20, dtype=torch.int32)
    source = LMBatches(stream, context_size, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    (whole,) = source.batches(len(source), None)
    for _ in range(150):
        opt.zero_grad()
        model.loss(whole).backward()
        opt.step()
    return source


@pytest.mark.parametrize(
    "options",
    [
        {"history": "fofe", "context_size": 6, "fofe_exact": 1},
        {"residual_blocks": 1, "residual_inner": 8},
        {"history": "fofe", "context_size": 6, "residual_blocks": 1},
    ],
)
def test_fofe_and_residual_memorise_a_tiny_corpus(options: dict) -> None:
    # each word follows from the previous one: perplexity -> 1 (fused path, dropout on)
    cfg = FFLMConfig(
        **{"embedding_dim": 16, "hidden_sizes": [32], "dropout": 0.05, "context_size": 2, **options}
    )
    model = FeedForwardLM(13, cfg)
    source = _fit_tiny_corpus(model, cfg.context_size)
    assert make_evaluator(64)(model, source)["perplexity"] < 1.3


def test_config_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        build(FFLMConfig, {"softmax": "adaptive", "tie_weights": True, "direct": True})
    message = str(err.value)
    assert "tie_weights = true does not work with model.softmax = 'adaptive'" in message
    assert "model.direct = true needs model.softmax = 'full'" in message


def test_registry_rebuilds_the_model_from_its_json_args() -> None:
    model = build_model(
        "ffnn_lm", {"vocab_size": V, "config": {"context_size": 2, "embedding_dim": 4}}
    )
    assert isinstance(model, FeedForwardLM)
    assert model.config.context_size == 2


def test_a_uniform_model_has_perplexity_equal_to_the_vocabulary_size() -> None:
    model = FeedForwardLM(V, FFLMConfig(context_size=3, embedding_dim=8, tie_weights=False))
    assert model.output is not None
    torch.nn.init.zeros_(model.output.weight)
    torch.nn.init.zeros_(model.output.bias)
    stream = torch.randint(0, V, (500,), dtype=torch.int32)
    stream[0] = 0
    source = LMBatches(stream, 3, 0)
    metrics = make_evaluator(64)(model, source)
    assert metrics["perplexity"] == pytest.approx(V, rel=1e-6)
    assert metrics["loss"] == pytest.approx(math.log(V), rel=1e-6)
    assert perplexity_of(token_log_probs_nn(model, source)) == pytest.approx(V, rel=1e-6)


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_memorises_a_tiny_corpus(softmax: str) -> None:
    # a deterministic sequence: each word follows from the previous one, so perplexity -> 1
    cfg = FFLMConfig(
        context_size=2,
        embedding_dim=16,
        hidden_sizes=[32],
        dropout=0.0,
        softmax=softmax,
        tie_weights=False,
        adaptive_cutoffs=[4, 8],
    )
    model = FeedForwardLM(13, cfg)
    source = _fit_tiny_corpus(model, 2)
    assert perplexity_of(token_log_probs_nn(model, source)) < 1.05


def test_word_dropout_zeroes_whole_history_words_in_training_only() -> None:
    torch.manual_seed(0)
    model = FeedForwardLM(
        20,
        {
            "context_size": 4,
            "embedding_dim": 6,
            "hidden_sizes": [8],
            "dropout": 0.0,
            "word_dropout": 0.5,
        },
    )
    context = torch.randint(1, 20, (500, 4))
    model.train()
    _, e = model.features(context)
    words = e.view(500, 4, 6)
    dropped = (words == 0).all(dim=2)  # (B, C) whole words zeroed
    assert 0.4 < dropped.float().mean().item() < 0.6
    kept = words[~dropped]
    torch.testing.assert_close(kept, model.embedding(context)[~dropped])  # the rest untouched
    model.eval()
    _, e = model.features(context)
    torch.testing.assert_close(e, model.embedding(context).flatten(1))  # nothing dropped in eval


def test_bf16_training_step_is_close_to_fp32() -> None:
    """Loss and gradients of a bf16 step (tied table copy, softmax kept in bf16) against fp32."""
    cfg = {"context_size": 4, "embedding_dim": 32, "hidden_sizes": [48], "dropout": 0.0}
    vocab = 300
    torch.manual_seed(0)
    context, target = torch.randint(0, vocab, (64, 4)), torch.randint(0, vocab, (64,))
    grads, losses = [], []
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = FeedForwardLM(vocab, {**cfg, "precision": precision})
        loss = model.loss({"context": context, "target": target})
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert abs(losses[0] - losses[1]) < 2e-3  # a bf16 log-softmax was 8e-3 off here
    for name, reference in grads[0].items():
        error = (grads[1][name] - reference).norm() / reference.norm()
        assert error < 0.02, (name, error.item())
