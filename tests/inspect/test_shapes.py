"""`explain shapes` for every model: the LM's and word2vec's computation written out, FLOPs per
example checked against torch's own FLOP counter, and shape mismatches that say which product,
both shapes and the setting to change."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.features.embeddings import save_vectors
from ffnlp.inspect.shapes import (
    classifier_macs,
    lm_computation,
    skipgram_computation,
    total_macs,
)
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.io import load_model
from ffnlp.models.lm import FeedForwardLM
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.mlp import MLP
from ffnlp.models.pooled import PooledEmbeddingClassifier
from ffnlp.models.skipgram import SkipGram
from ffnlp.tasks.lm import train_lm
from ffnlp.tasks.sample import write_sample

runner = CliRunner()


def lm(**settings: Any) -> FeedForwardLM:
    base: dict[str, Any] = {"context_size": 3, "embedding_dim": 4, "hidden_sizes": [5]}
    return FeedForwardLM(20, {**base, **settings}, fused=False).eval()


def counted_macs(model: torch.nn.Module, run: Any, batch: int) -> float:
    """Multiply-adds per example as torch's FLOP counter sees them (2 FLOPs each)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        run()
    return counter.get_total_flops() / 2 / batch


# ------------------------------------------------------------------------------- the LM


def test_lm_computation_is_written_out_with_its_shapes() -> None:
    lines = lm_computation(lm(tie_weights=False), batch=2)
    assert [(x.formula, x.product, x.output, x.macs) for x in lines] == [
        (
            "e = [E·x(t-3); E·x(t-2); E·x(t-1)]",
            "3 look-ups of rows of E (V, D) = (20, 4)",
            "(B, C·D) = (2, 12)",
            0,
        ),
        ("h = tanh(W e + b)", "(B, C·D) @ (C·D, H) = (2, 12) @ (12, 5)", "(B, H) = (2, 5)", 60),
        ("z = U h + b_z", "(B, H) @ (H, V) = (2, 5) @ (5, 20)", "(B, V) = (2, 20)", 100),
        ("ŷ = softmax(z)", "", "(B, V) = (2, 20)", 0),
    ]


def test_tied_weights_project_back_to_the_embedding_size() -> None:
    lines = lm_computation(lm(), batch=1)
    assert [x.formula for x in lines] == [
        "e = [E·x(t-3); E·x(t-2); E·x(t-1)]",
        "h = tanh(W e + b)",
        "h' = P h",
        "z = U h' + b_z   (tied: U = E)",
        "ŷ = softmax(z)",
    ]
    assert lines[2].product == "(B, H) @ (H, D) = (1, 5) @ (5, 4)"


def test_deep_lm_and_long_contexts_name_every_layer() -> None:
    lines = lm_computation(lm(context_size=6, hidden_sizes=[7, 6], activation="relu"), batch=1)
    assert lines[0].formula == "e = [E·x(t-6); ...; E·x(t-1)]"
    assert lines[1].formula == "h1 = relu(W1 e + b1)"
    assert lines[2].formula == "h2 = relu(W2 h1 + b2)"
    assert lines[2].product == "(B, H1) @ (H1, H2) = (1, 7) @ (7, 6)"


def test_fofe_and_residual_blocks_are_written_out() -> None:
    model = lm(context_size=8, history="fofe", fofe_exact=2, residual_blocks=1, residual_inner=9)
    lines = lm_computation(model, batch=2)
    assert [(x.formula, x.product, x.output, x.macs) for x in lines] == [
        ("x_k = E·x(t-k), k = 1..8", "8 look-ups of rows of E (V, D) = (20, 4)",
         "(B, C, D) = (2, 8, 4)", 0),
        ("z = Σ_k 0.7^(k-1) x_k   (FOFE code of the C words)",
         "(B, D, C) @ (C) = (2, 4, 8) @ (8)", "(B, D) = (2, 4)", 32),
        ("e = [x_2; x_1; z]", "", "(B, (K+1)·D) = (2, 12)", 0),
        ("h = tanh(W e + b)", "(B, (K+1)·D) @ ((K+1)·D, H) = (2, 12) @ (12, 5)",
         "(B, H) = (2, 5)", 60),
        ("h = h + Wb1 tanh(Wa1 LN(h) + ba1) + bb1   (residual block 1)",
         "(B, H) @ (H, R) @ (R, H) = (2, 5) @ (5, 9) @ (9, 5)", "(B, H) = (2, 5)", 90),
        ("h = LN(h)", "", "(B, H) = (2, 5)", 0),
        ("h' = P h", "(B, H) @ (H, D) = (2, 5) @ (5, 4)", "(B, D) = (2, 4)", 20),
        ("z = U h' + b_z   (tied: U = E)", "(B, D) @ (D, V) = (2, 4) @ (4, 20)",
         "(B, V) = (2, 20)", 80),
        ("ŷ = softmax(z)", "", "(B, V) = (2, 20)", 0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"tie_weights": False},
        {"hidden_sizes": [6, 5]},
        {"hidden_sizes": []},
        {"direct": True, "tie_weights": False},
        {"output_bias": False, "activation": "identity"},
        {
            "softmax": "adaptive",
            "tie_weights": False,
            "embedding_dim": 16,
            "hidden_sizes": [16],
            "adaptive_cutoffs": [5, 12],
        },
        {"history": "fofe", "context_size": 8, "fofe_exact": 2},
        {"history": "fofe", "context_size": 8, "fofe_exact": 0, "direct": True},
        {"residual_blocks": 2, "residual_inner": 9},
        {"history": "fofe", "context_size": 8, "residual_blocks": 1, "tie_weights": False},
    ],
)
def test_lm_cost_matches_torchs_flop_counter(settings: dict[str, Any]) -> None:
    model = lm(**settings)
    context = torch.randint(0, 20, (5, model.config.context_size))
    counted = counted_macs(model, lambda: model.log_probs(context), 5)
    assert total_macs(lm_computation(model, 5)) == counted


def test_a_context_of_the_wrong_length_names_the_product_and_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        lm()(torch.zeros(2, 5, dtype=torch.long))
    assert str(err.value) == (
        "this LM reads C = 3 context words (model.context_size = 3) but got contexts of 5: "
        "e = [E·x(t-5); ...; E·x(t-1)] would be (B, 20) where the first hidden product expects "
        "(B, 12) @ (12, 5); pass (B, 3) contexts, or train with model.context_size = 5"
    )


# ------------------------------------------------------------------------ word2vec, classifiers


def test_skipgram_and_cbow_costs() -> None:
    sg = skipgram_computation(SkipGram(50, dim=8), negatives=5, window=4, batch=3)
    assert sg[2].formula == "s = u v" and sg[2].output == "(B, 1+N) = (3, 6)"
    assert sg[2].product == "(B, 1+N, D) @ (B, D, 1) = (3, 6, 8) @ (3, 8, 1)"
    assert total_macs(sg) == 6 * 8
    cbow = skipgram_computation(SkipGram(50, dim=8, cbow=True), negatives=5, window=4)
    assert total_macs(cbow) == 2 * 4 * 8 + 6 * 8


def test_mlp_flops_are_twice_its_multiply_adds() -> None:
    mlp = MLP(10, 3, hidden=[8, 4])
    assert mlp.macs_per_example() == 10 * 8 + 8 * 4 + 4 * 3
    assert mlp.flops_per_example() == 2 * mlp.macs_per_example()
    x = torch.randn(7, 10)
    assert counted_macs(mlp, lambda: mlp(x), 7) == mlp.macs_per_example()


def bags() -> dict[str, torch.Tensor]:
    ids = torch.tensor([1, 4, 2, 9, 9, 3, 7, 0, 5])  # 9 ids in 3 bags
    return {"ids": ids, "offsets": torch.tensor([0, 2, 6]), "weights": torch.ones(9)}


def test_classifier_costs() -> None:
    batch = bags()
    logreg = LogisticRegression(12, 3)
    assert classifier_macs(logreg, batch) == 3 * 3  # 3 non-zeros a row, K = 3
    sparse = FeatureMLP(12, 2, hidden=[6, 4])
    assert classifier_macs(sparse, batch) == 3 * 6 + 6 * 4 + 4 * 1
    dense = FeatureMLP(12, 2, hidden=[6])
    x = torch.randn(4, 12)
    counted = counted_macs(dense, lambda: dense(x), 4)
    assert classifier_macs(dense, {"x": x, "y": torch.zeros(4)}) == counted == 12 * 6 + 6
    for pooling, pools in (("mean", 1), ("mean_max", 2)):
        pooled = PooledEmbeddingClassifier(12, 2, 5, pooling=pooling, hidden=[4])
        mlp_only = counted_macs(pooled, lambda p=pooled: p.logits(batch), 3)  # bags: not counted
        assert classifier_macs(pooled, batch) == pools * 3 * 5 + mlp_only


# ------------------------------------------------------------------------------ mismatches


def test_pretrained_vectors_of_another_dimension_name_product_shapes_and_setting() -> None:
    model = PooledEmbeddingClassifier(30, 2, 100, hidden=[64])
    with pytest.raises(ConfigError) as err:
        model.check_vector_dim(50, "glove.50d.txt")
    assert str(err.value) == (
        "model.pooled.dim = 100 but the vectors in glove.50d.txt have 50 dimensions: the model's "
        "first product, pooled embeddings times the first layer, is (B, 100) @ (100, 64), and "
        "these vectors would make it (B, 50) @ (100, 64); set model.pooled.dim = 50"
    )
    both = PooledEmbeddingClassifier(30, 2, 100, pooling="mean_max")  # no hidden layer: K' = 1
    with pytest.raises(
        ConfigError,
        match=r"is \(B, 200\) @ \(200, 1\), and these vectors would "
        r"make it \(B, 100\) @ \(200, 1\); set model.pooled.dim = 50",
    ):
        both.load_vectors(torch.tensor([0]), torch.zeros(1, 50))


def test_pretrained_mismatch_in_a_training_run(tmp_path: Path) -> None:
    data = write_sample(tmp_path / "s", sizes=(60, 10, 10))
    vectors = tmp_path / "v.txt"
    words = ["good", "bad", "film"]
    save_vectors(vectors, words, np.zeros((3, 7), dtype=np.float32), format="word2vec-text")
    overrides = [
        'features.kind="ids"',
        'model.type="pooled"',
        "model.pooled.dim=16",
        f'model.pooled.pretrained="{vectors}"',
        "train.epochs=1",
        "train.threads=1",
    ]
    with pytest.raises(ConfigError) as err:
        ffnlp.train_classifier(data["train"], out=tmp_path / "r", overrides=overrides)
    assert str(err.value).startswith(
        f"model.pooled.dim = 16 but the vectors in {vectors} have 7 dimensions: the model's first"
    )
    assert str(err.value).endswith("(B, 7) @ (16, 1); set model.pooled.dim = 7")


def test_feature_rows_of_the_wrong_width_name_the_product() -> None:
    model = FeatureMLP(12, 2, hidden=[6])
    with pytest.raises(DataError) as err:
        model(torch.zeros(3, 10))
    assert str(err.value) == (
        "the first layer's product is (B, 12) @ (12, 6), but these rows make it (B, 10) @ "
        "(12, 6): the model was built for 12 features; make the rows with the featurizer it was "
        "trained with (Classifier.predict does)"
    )


def test_weights_that_do_not_fit_model_json_are_named_with_both_shapes(tmp_path: Path) -> None:
    data = write_sample(tmp_path / "s", sizes=(60, 10, 10))
    run = tmp_path / "r"
    overrides = ['model.type="mlp"', "model.mlp.hidden=[8]", "train.epochs=1", "train.threads=1"]
    ffnlp.train_classifier(data["train"], out=run, overrides=overrides)
    arch = json.loads((run / "model.json").read_text())
    features = arch["args"]["num_features"]
    arch["args"]["hidden"] = [4]
    (run / "model.json").write_text(json.dumps(arch))
    with pytest.raises(ModelFileError) as err:
        load_model(run)
    message = str(err.value)
    assert message == (  # found from the file's header, before the model is built
        f"{run / 'model.safetensors'} does not match model.json: input_bias is (8) in the "
        f"weights but model.json makes it (4); input.weight is ({features}, 8) in the weights "
        f"but model.json makes it ({features}, 4); rest.2.layers.0.weight is (1, 8) in the "
        "weights but model.json makes it (1, 4); the two files come from different runs, or "
        "model.json was edited: restore it, or retrain"
    )
    assert message.endswith(
        "the two files come from different runs, or model.json was edited: restore it, or retrain"
    )


# ------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lm")
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    corpus = root / "c.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words) for _ in range(6)) for _ in range(80)))
    small = [
        "model.embedding_dim=8",
        "model.hidden_sizes=[16]",
        "model.context_size=3",
        "train.epochs=1",
        "train.threads=1",
        "samples=0",
    ]
    train_lm(corpus, overrides=small, out=root / "nn")
    train_lm(corpus, overrides=['kind="kneser_ney"', "kneser_ney.order=3"], out=root / "kn")
    fofe = [
        'model.history="fofe"',
        "model.context_size=10",
        "model.fofe_exact=1",
        "model.residual_blocks=1",
        "model.residual_inner=12",
    ]
    train_lm(corpus, overrides=[*small, *fofe], out=root / "fofe")
    return {"nn": root / "nn", "kn": root / "kn", "fofe": root / "fofe"}


def test_explain_shapes_for_an_lm(lm_runs: dict[str, Path]) -> None:
    args = ["explain", "shapes", str(lm_runs["nn"]), "--text", "the cat", "--text", "a dog ran on"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["sizes"] == {"B": 2, "C": 3, "D": 8, "H": 16, "V": 10}  # 8 words, </s>, <unk>
    formulas = [line["formula"] for line in out["lines"]]
    assert formulas[:2] == ["e = [E·x(t-3); E·x(t-2); E·x(t-1)]", "h = tanh(W e + b)"]
    assert out["lines"][1]["product"] == "(B, C·D) @ (C·D, H) = (2, 24) @ (24, 16)"
    assert out["macs_per_example"] == 24 * 16 + 16 * 8 + 8 * 10
    assert out["flops_per_example"] == 2 * out["macs_per_example"]
    text = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "ŷ = softmax(z)" in text.stdout and "(tied: U = E)" in text.stdout
    assert "forward: 592 multiply-adds = 1,184 FLOPs per predicted word" in text.stdout


def test_explain_shapes_shows_the_fofe_code_and_the_residual_block(
    lm_runs: dict[str, Path],
) -> None:
    args = ["explain", "shapes", str(lm_runs["fofe"]), "--text", "the cat", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["sizes"] == {"B": 1, "C": 10, "D": 8, "K": 1, "H": 16, "R": 12, "V": 10}
    formulas = [line["formula"] for line in out["lines"]]
    assert formulas[:3] == [
        "x_k = E·x(t-k), k = 1..10",
        "z = Σ_k 0.7^(k-1) x_k   (FOFE code of the C words)",
        "e = [x_1; z]",
    ]
    assert "h = h + Wb1 tanh(Wa1 LN(h) + ba1) + bb1   (residual block 1)" in formulas
    # the code 10·8, the hidden layer 16·16, the block 2·16·12, P 16·8, the output 8·10
    assert out["macs_per_example"] == 80 + 16 * 16 + 2 * 16 * 12 + 16 * 8 + 8 * 10


def test_explain_shapes_refuses_a_kneser_ney_run(lm_runs: dict[str, Path]) -> None:
    result = runner.invoke(app, ["explain", "shapes", str(lm_runs["kn"])])
    assert result.exit_code == 1
    assert "holds a Kneser-Ney n-gram model: counts, no matrix products" in result.output


def test_explain_shapes_for_word2vec(tmp_path: Path) -> None:
    data = write_sample(tmp_path / "s", sizes=(100, 10, 10))
    run = tmp_path / "w2v"
    ffnlp.train_word2vec(
        data["corpus"],
        out=run,
        overrides=["model.min_count=1", "model.dim=12", "model.negative=3", "train.epochs=1"],
    )
    result = runner.invoke(app, ["explain", "shapes", str(run), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["architecture"] == "skipgram" and out["macs_per_example"] == 4 * 12
    # the table prints the formulas whole: their brackets are text, not Rich markup
    text = runner.invoke(app, ["explain", "shapes", str(run)], env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    for line in out["lines"]:
        assert line["formula"] in text.stdout
    assert "W_in[x(t)]" in text.stdout


def test_explain_shapes_for_a_classifier_gives_its_cost(tmp_path: Path) -> None:
    data = write_sample(tmp_path / "s", sizes=(60, 10, 10))
    overrides = ['model.type="mlp"', "model.mlp.hidden=[8]", "train.epochs=1", "train.threads=1"]
    ffnlp.train_classifier(data["train"], out=tmp_path / "r", overrides=overrides)
    result = runner.invoke(app, ["explain", "shapes", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["task"] == "classify" and out["batch"] == 2
    (first,) = [layer for layer in out["layers"] if layer["kind"] == "EmbeddingBag"]
    # a first layer of 8 units fed by the texts' non-zeros, then 8 -> 1
    assert out["macs_per_example"] == first["macs"] / 2 + 8 * 1


@pytest.mark.parametrize("hidden", [[], [4]])
def test_dense_features_show_the_first_layer_product(hidden: list[int]) -> None:
    """A feature MLP over dense rows multiplies them by its first table directly (no module
    call): explain shapes still shows that product, and the rows add up to the cost."""
    from ffnlp.inspect.shapes import classifier_calls, classifier_macs
    from ffnlp.models.feature_mlp import FeatureMLP

    torch.manual_seed(0)
    model = FeatureMLP(6, 2, hidden=hidden, input_dropout=0.1)
    batch = {"x": torch.randn(3, 6)}
    calls = classifier_calls(model, batch)
    names = [c.name for c in calls]
    assert names[:2] == ["input_dropout", "input"]
    first = calls[1]
    width = hidden[0] if hidden else 1  # 2 classes: one logit
    assert (first.inputs, first.output) == ([(3, 6)], (3, width))
    assert first.product == f"(3, 6) @ (6, {width})" and first.params == 6 * width + width
    assert sum(c.macs for c in calls) == 3 * classifier_macs(model, batch)
