"""Streaming prediction (lazy, constant memory) and the representations a classifier computes
(classify vectors), in Python and on the command line."""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError
from ffnlp.tasks.classify import Classifier, load, train_classifier
from ffnlp.tasks.classify.represent import batched
from ffnlp.tasks.sample import write_sample
from ffnlp.text.readers import read_input_lines

runner = CliRunner()
WORDS = ["a", "gripping", "funny", "film", "dull", "long", "joy", "flat", "lifeless", "bright"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 60, 60))


def _train(sample: dict[str, Path], root: Path, name: str, sets: list[str]) -> Classifier:
    return train_classifier(
        sample["train"], overrides=["train.epochs=2", *sets], out=root / name, seed=1
    )


@pytest.fixture(scope="module")
def models(sample: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    pooled = ['model.type="pooled"', 'features.kind="ids"', "model.pooled.dim=8"]
    _train(sample, root, "logreg", [])
    _train(sample, root, "mlp", ['model.type="mlp"', "model.mlp.hidden=[6]"])
    _train(sample, root, "pooled", pooled)
    _train(sample, root, "pooled_hidden", [*pooled, "model.mlp.hidden=[5]"])
    _train(sample, root, "mean_max", [*pooled, 'model.pooled.pooling="mean_max"'])
    return {name: root / name for name in ("logreg", "mlp", "pooled", "pooled_hidden", "mean_max")}


def texts(count: int, seed: int = 0) -> Iterator[str]:
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), size=6))


# ------------------------------------------------------------------------------------------------
# streaming


def test_stream_predictions_equal_the_batch_ones(models: dict[str, Path]) -> None:
    clf = load(models["logreg"])
    lines = list(texts(250))
    streamed = list(clf.predict_stream(iter(lines), k=2, batch_size=64))
    assert [t for t, _ in streamed] == lines
    assert [p for _, p in streamed] == clf.predict(lines, k=2)


def test_the_stream_is_read_lazily(models: dict[str, Path]) -> None:
    clf = load(models["logreg"])
    pulled = 0

    def endless() -> Iterator[str]:  # a stream that never ends, like a pipe still open
        nonlocal pulled
        for line in texts(10**9):
            pulled += 1
            yield line

    answers = clf.predict_stream(endless(), batch_size=100)
    first = next(answers)
    assert pulled == 100 and first[0] and first[1]  # one batch read, not the stream
    for _ in range(150):
        next(answers)
    assert pulled == 200


def test_streaming_memory_does_not_grow_with_the_input(models: dict[str, Path]) -> None:
    clf = load(models["logreg"])
    list(clf.predict_stream(texts(500), batch_size=500))  # warm up caches and lazy imports

    def peak(count: int) -> int:
        tracemalloc.start()
        for _ in clf.predict_stream(texts(count, seed=count), batch_size=500):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1_000), peak(12_000)  # 12 times the input
    # held in a list, 12,000 lines would add about 1 MB to a peak of about 0.45 MB
    assert large < 1.25 * small, (small, large)


def test_batched_checks_its_size() -> None:
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ConfigError, match="the batch size must be at least 1; got 0"):
        list(batched(range(5), 0))


def test_cli_predict_streams_stdin_and_files(models: dict[str, Path], tmp_path: Path) -> None:
    lines = list(texts(30))
    stdin = "\n".join(lines) + "\n"
    result = runner.invoke(
        app,
        ["classify", "predict", str(models["logreg"]), "--json", "--batch-size", "7"],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    got = [json.loads(x) for x in result.output.strip().split("\n")]
    expected = load(models["logreg"]).predict(lines)
    assert [g["text"] for g in got] == lines
    assert [(g["label"], pytest.approx(g["prob"])) for g in got] == [p[0] for p in expected]
    path = tmp_path / "in.txt"
    path.write_text(stdin, encoding="utf-8")
    from_file = runner.invoke(
        app, ["classify", "predict", str(models["logreg"]), "--json", "--input", str(path)]
    )
    assert from_file.output == result.output
    result = runner.invoke(app, ["classify", "predict", str(models["logreg"])], input="")
    assert result.exit_code == 1 and "standard input has no text to classify" in result.output
    result = runner.invoke(
        app, ["classify", "predict", str(models["logreg"])], input=b"caf\xe9 film\n"
    )
    assert result.exit_code == 1
    assert "standard input: line 1 (byte 3) is not valid utf-8 (0xe9)" in result.output
    result = runner.invoke(
        app,
        ["classify", "predict", str(models["logreg"]), "--encoding", "latin-1"],
        input=b"caf\xe9 film\n",
    )
    assert result.exit_code == 0 and result.output.rstrip("\n").endswith("\tcafé film")


def test_input_lines_of_a_file_are_split_on_newlines_only(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes("caf\xe9 film\r\na\x0bb\n".encode("latin-1"))
    assert list(read_input_lines(path, "latin-1")) == ["café film", "a\x0bb"]


def test_cli_reads_stdin_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    class Endless:
        def __init__(self) -> None:
            self.read = 0

        def __iter__(self) -> Iterator[bytes]:
            while True:
                self.read += 1
                yield b"a line\r\n"

    class Stdin:
        buffer = Endless()

    monkeypatch.setattr(sys, "stdin", Stdin())
    lines = read_input_lines("-", "utf-8")
    assert [next(lines) for _ in range(3)] == ["a line"] * 3
    assert Stdin.buffer.read == 3


# ------------------------------------------------------------------------------------------------
# representations


def test_pooled_vectors_are_the_mean_of_the_bag(models: dict[str, Path]) -> None:
    clf = load(models["pooled"])
    lines = list(texts(5))
    got = clf.vectors(lines)  # auto = pooled for a pooled model
    assert got.shape == (5, 8) and got.dtype == np.float32
    batch = next(clf.source(lines).batches(5, None))
    table = clf.model.embedding.weight.detach()  # (V + buckets, D)
    offsets = batch["offsets"].tolist() + [len(batch["ids"])]
    for row in range(5):
        bag = batch["ids"][offsets[row] : offsets[row + 1]]
        np.testing.assert_allclose(got[row], table[bag].mean(0).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(clf.vectors(lines, layer="pooled"), got)
    np.testing.assert_array_equal(clf.vectors(lines, layer="hidden"), got)  # no hidden layer
    assert clf.vectors("one text").shape == (1, 8)
    assert load(models["mean_max"]).vectors(lines).shape == (5, 16)


def test_hidden_vectors_are_what_the_output_layer_reads(models: dict[str, Path]) -> None:
    for name, width in (("pooled_hidden", 5), ("mlp", 6)):
        clf = load(models[name])
        lines = list(texts(7))
        hidden = clf.vectors(lines, layer="hidden")
        assert hidden.shape == (7, width)
        output = [m for m in clf.model.modules() if isinstance(m, torch.nn.Linear)][-1]
        logits = output(torch.from_numpy(hidden)).detach().numpy()
        batch = next(clf.source(lines).batches(7, None))
        expected = clf.model.logits(batch).detach().numpy()
        np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
        assert (hidden >= 0).all()  # after the ReLU
    assert load(models["pooled_hidden"]).vectors(lines, layer="pooled").shape == (7, 8)


def test_models_without_the_layer_say_so(models: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="this run's LogisticRegression has no hidden layer"):
        load(models["logreg"]).vectors(["a film"])
    with pytest.raises(ConfigError, match="--layer pooled needs a pooled classifier"):
        load(models["mlp"]).vectors(["a film"], layer="pooled")
    with pytest.raises(ConfigError, match="layer must be one of auto, pooled, hidden; got 'top'"):
        load(models["mlp"]).vectors(["a film"], layer="top")


def test_cli_vectors(models: dict[str, Path]) -> None:
    lines = list(texts(4))
    stdin = "\n".join(lines) + "\n"
    result = runner.invoke(app, ["classify", "vectors", str(models["pooled"])], input=stdin)
    assert result.exit_code == 0, result.output
    rows = [[float(x) for x in line.split(" ")] for line in result.output.strip().split("\n")]
    np.testing.assert_allclose(rows, load(models["pooled"]).vectors(lines), rtol=1e-6)
    result = runner.invoke(
        app, ["classify", "vectors", str(models["mlp"]), "--layer", "hidden", "--json"], input=stdin
    )
    assert result.exit_code == 0, result.output
    got = [json.loads(x) for x in result.output.strip().split("\n")]
    assert [g["text"] for g in got] == lines and len(got[0]["vector"]) == 6
    result = runner.invoke(app, ["classify", "vectors", str(models["logreg"])], input=stdin)
    assert result.exit_code == 1 and "has no hidden layer" in result.output
    result = runner.invoke(app, ["classify", "vectors", str(models["pooled"])], input="")
    assert result.exit_code == 1 and "standard input has no text" in result.output


def test_a_missing_input_file_is_named(models: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["classify", "predict", str(models["logreg"]), "--input", str(tmp_path / "no.txt")]
    )
    assert result.exit_code == 1 and "no.txt: no such file" in result.output
