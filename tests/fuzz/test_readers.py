"""Property-based fuzzing (Hypothesis): whatever bytes a data file or a run folder holds, ffnlp
raises nothing but its own errors (FfnlpError and subclasses).

The default suite runs each property on 200 examples; the ``slow`` variants run 10,000
(``pytest -m slow tests/fuzz/test_readers.py``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ffnlp
from ffnlp.errors import FfnlpError
from ffnlp.tasks.sample import write_sample
from ffnlp.text.readers import (
    detect_format,
    read_corpus,
    read_labeled,
    read_lines,
    read_stream_lines,
)
from tests.extras import needs

hypothesis = needs("hypothesis")
HealthCheck, given, settings = hypothesis.HealthCheck, hypothesis.given, hypothesis.settings
st = needs("hypothesis.strategies")

FAST, SLOW = 200, 10_000
FORMATS = ["auto", "label-text", "fasttext", "csv", "tsv", "jsonl", "parquet", "arrow"]
ENCODINGS = ["utf-8", "latin-1", "utf-16", "utf-16-le", "utf-32", "cp1252", "ascii"]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


def only_ffnlp_errors(call: Callable[[], Any]) -> None:
    """Run ``call``; an FfnlpError is a fine answer, any other exception fails the property."""
    with contextlib.suppress(FfnlpError):
        call()


# ---------------------------------------------------------------------------------------------
# data files: every reader, every format, plain or gzip, in several encodings

PIECES = [
    "1", "0", "pos", "__label__", "__label__a", " ", "  ", "\t", ",", '"', "'", "\n", "\r\n", "\r",
    "{", "}", "[", "]", ":", '"text"', '"label"', "text", "label", "\x00", "\ufeff", "\u0085",
    "\u2028", "é", "日本", "$\\foo$", "9" * 50, "null", "true", "1.5", "\\", "\x85", "\udcff",
]  # fmt: skip

texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=60).map("".join)


@st.composite
def file_bytes(draw: st.DrawFn) -> bytes:
    """Raw bytes, or text in some encoding; sometimes gzip-compressed, sometimes truncated."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=600))
    else:
        data = draw(texts).encode(draw(st.sampled_from(ENCODINGS)), "replace")
    if draw(st.integers(0, 3)) == 0:
        data = gzip.compress(data)
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
    return data


def _fuzz_readers(examples: int) -> int:
    """Run the property on ``examples`` examples; return how many inputs it was called with."""
    folder = Path(tempfile.mkdtemp(prefix="ffnlp-fuzz-"))
    calls = [0]

    @_settings(examples)
    @given(
        content=file_bytes(),
        suffix=st.sampled_from(
            [".txt", ".csv", ".tsv", ".jsonl", ".txt.gz", ".parquet", ".arrow", ""]
        ),
        fmt=st.sampled_from(FORMATS),
        encoding=st.sampled_from(ENCODINGS),
        skip_invalid=st.booleans(),
    )
    def property(content: bytes, suffix: str, fmt: str, encoding: str, skip_invalid: bool) -> None:
        calls[0] += 1
        path = folder / f"data{suffix}"
        path.write_bytes(content)
        only_ffnlp_errors(
            lambda: read_labeled(path, format=fmt, encoding=encoding, skip_invalid=skip_invalid)
        )
        only_ffnlp_errors(lambda: list(read_corpus(path, encoding)))
        only_ffnlp_errors(lambda: list(read_lines(path, encoding)))
        only_ffnlp_errors(lambda: detect_format(path, encoding))
        only_ffnlp_errors(lambda: list(read_stream_lines(io.BytesIO(content), "stdin", encoding)))
        pieces = content.splitlines(keepends=True)  # an iterable of byte lines, not a file
        only_ffnlp_errors(lambda: list(read_stream_lines(iter(pieces), "stdin", encoding)))

    try:
        property()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return calls[0]


def test_readers_raise_only_ffnlp_errors() -> None:
    assert _fuzz_readers(FAST) >= FAST


@pytest.mark.slow
def test_readers_raise_only_ffnlp_errors_10000() -> None:
    assert _fuzz_readers(SLOW) >= SLOW


# ---------------------------------------------------------------------------------------------
# run folders: random or mutated model.json / vocab.json / summary.json / config.toml / weights


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz-runs")
    data = write_sample(root / "data", sizes=(120, 20, 20))
    small = ["train.epochs=1", "train.threads=1"]
    ffnlp.train_classifier(data["train"], dev=data["dev"], out=root / "clf", overrides=small)
    ffnlp.train_classifier(data["train"], out=root / "pooled", overrides=[
        *small, "model.type=pooled", "features.kind=ids", "features.buckets=20", "model.pooled.dim=4"])  # fmt: skip
    ffnlp.train_lm(data["corpus"], out=root / "lm", overrides=[
        *small, "model.embedding_dim=4", "model.hidden_sizes=[4]", "model.context_size=2", "samples=0"])  # fmt: skip
    ffnlp.train_lm(
        data["corpus"], out=root / "kn", overrides=['kind="kneser_ney"', "kneser_ney.order=2"]
    )
    ffnlp.train_word2vec(data["corpus"], out=root / "w2v", overrides=[
        *small, "model.dim=4", "model.workers=1", "train.checkpoint=false"])  # fmt: skip
    return {name: root / name for name in ("clf", "pooled", "lm", "kn", "w2v")}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, 2, -1, 10**13, 2**63])
    | st.floats()
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

FILES = ["model.json", "vocab.json", "summary.json", "config.toml", "model.safetensors"]


def _places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every (path to a value) in a JSON document."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:5]):  # a few items of long lists
            out += _places(value, (*path, i))
    return out


@st.composite
def damage(draw: st.DrawFn, run: Path) -> tuple[str, bytes]:
    """One file of ``run`` and the bytes it gets instead of its own."""
    name = draw(st.sampled_from(FILES))
    original = (run / name).read_bytes() if (run / name).is_file() else b""
    how = draw(st.sampled_from(["bytes", "json", "mutate", "mutate", "mutate", "truncate", "flip"]))
    if how == "bytes":
        return name, draw(st.binary(max_size=300))
    if how == "json":
        return name, json.dumps(draw(json_values)).encode()
    if how == "truncate":
        return name, original[: draw(st.integers(0, max(len(original) - 1, 0)))]
    if how == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return name, bytes(data)
    try:
        document = json.loads(original) if name.endswith(".json") else None
        lines = original.decode().splitlines() or ["x = 1"]
    except ValueError:  # damaged already by an earlier draw: damage it some more
        return name, original + draw(st.binary(max_size=20))
    if name == "config.toml":
        i = draw(st.integers(0, len(lines) - 1))
        key = lines[i].split("=")[0].strip() if "=" in lines[i] else "x"
        value = draw(st.sampled_from(['"x"', "-1", "0", "1e300", "[]", "true", '"ids"', '"lexicon"',
                                      '"pooled"', "10000000000000", '"\\u0000"']))  # fmt: skip
        lines[i] = f"{key} = {value}"
        return name, "\n".join(lines).encode()
    if name == "model.safetensors":  # a header of random JSON, of the right length
        header = json.dumps(draw(json_values)).encode()
        return name, len(header).to_bytes(8, "little") + header + original[8:][:64]
    place = draw(st.sampled_from(_places(document)))
    if not place:
        return name, json.dumps(draw(json_values)).encode()
    parent = document
    for step in place[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[place[-1]]
    else:
        parent[place[-1]] = draw(json_values)
    return name, json.dumps(document).encode()


def _use(loaded: Any) -> None:
    """What a loaded run is for: predict, generate, neighbours. Absurd but finite weights (1e30)
    make NumPy warn of an overflow, which is no exception: such warnings are let through."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _predict(loaded)


def _predict(loaded: Any) -> None:
    if isinstance(loaded, ffnlp.Classifier):
        loaded.predict(["a good film", ""], k=2)
    elif isinstance(loaded, ffnlp.LanguageModel):
        loaded.generate("the", max_tokens=2, seed=0)
    else:
        loaded.most_similar(loaded.wv.words[0], 2)


def _fuzz_runs(runs: dict[str, Path], examples: int) -> int:
    """Run the property on ``examples`` examples; return how many damaged runs it loaded."""
    from ffnlp.report.html import write_report

    folder = Path(tempfile.mkdtemp(prefix="ffnlp-fuzz-runs-"))
    calls = [0]

    @_settings(examples)
    @given(data=st.data(), kind=st.sampled_from(list(runs)))
    def property(data: st.DataObject, kind: str) -> None:
        calls[0] += 1
        run = folder / "run"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(runs[kind], run)
        for _ in range(data.draw(st.integers(1, 2))):
            name, content = data.draw(damage(run))
            (run / name).write_bytes(content)
        only_ffnlp_errors(lambda: _use(ffnlp.load(run)))
        only_ffnlp_errors(lambda: write_report(run, folder / "report.html"))

    try:
        property()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return calls[0]


def test_run_folder_loader_raises_only_ffnlp_errors(runs: dict[str, Path]) -> None:
    assert _fuzz_runs(runs, FAST) >= FAST


@pytest.mark.slow
def test_run_folder_loader_raises_only_ffnlp_errors_10000(runs: dict[str, Path]) -> None:
    assert _fuzz_runs(runs, SLOW) >= SLOW
