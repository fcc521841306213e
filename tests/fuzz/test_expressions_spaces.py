"""Property-based fuzzing (Hypothesis) of two more readers of what a user writes: ``ffnlp explain
graph`` expressions (with their name=NUMBER values) and search-space / configuration TOML files.
Whatever they hold, ffnlp raises nothing but its own errors (FfnlpError and subclasses).

The default suite runs each property on 200 examples; the ``slow`` variants run 10,000
(``pytest -m slow tests/fuzz/test_expressions_spaces.py``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from ffnlp.config import build, load_toml
from ffnlp.inspect.graph import autograd_max_diff, explain, parse_assignments, to_dot
from ffnlp.tasks.classify.config import ClassifyConfig
from ffnlp.tune.space import check_space, parse_space
from tests.extras import needs
from tests.fuzz.test_readers import FAST, SLOW, _settings, only_ffnlp_errors

hypothesis = needs("hypothesis")
given = hypothesis.given
st = needs("hypothesis.strategies")

# ------------------------------------------------------------------------------- expressions

TOKENS = [
    "a", "b", "x_1", "exp", "log", "tanh", "sigmoid", "relu", "nosuch", "0", "1", "2", "0.5",
    ".5", "1e308", "1e-308", "1e999", "9" * 400, "+", "-", "*", "/", "**", "(", ")", "(" * 40,
    ")" * 40, "-" * 60, "a**" * 30, "exp(" * 30, " ", "\t", "$", "é", ",", "=", "1e", "0x1",
]  # fmt: skip

expressions = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=40).map(
    "".join
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324, 710.0, -745.0]),
)
value_texts = st.one_of(
    numbers.map(repr), st.sampled_from(["nan", "inf", "1e999", "", "x", "1_0"]), st.text(max_size=6)
)
names = st.sampled_from(["a", "b", "x_1", "c", "exp", "1a", "", "a b"])


@st.composite
def assignments(draw: st.DrawFn) -> list[str]:
    """name=value strings, mostly well formed, sometimes not."""
    pairs = draw(
        st.lists(st.tuples(names, value_texts, st.sampled_from(["=", "", "=="])), max_size=4)
    )
    return [f"{name}{sep}{value}" for name, value, sep in pairs]


def _explain_all(expression: str, pairs: list[str]) -> None:
    values = parse_assignments(pairs)
    graph = explain(expression, values)
    to_dot(graph)
    json.dumps(graph.to_dict())
    autograd_max_diff(graph)


def _fuzz_expressions(examples: int) -> int:
    calls = [0]

    @_settings(examples)
    @given(expression=expressions, pairs=assignments())
    def property(expression: str, pairs: list[str]) -> None:
        calls[0] += 1
        only_ffnlp_errors(lambda: _explain_all(expression, pairs))
        # the same expression with every variable given a value, so that evaluation runs too
        only_ffnlp_errors(lambda: _explain_all(expression, ["a=1.5", "b=-2", "x_1=0"]))

    property()
    return calls[0]


def test_explain_graph_raises_only_ffnlp_errors() -> None:
    assert _fuzz_expressions(FAST) >= FAST


@pytest.mark.slow
def test_explain_graph_raises_only_ffnlp_errors_10000() -> None:
    assert _fuzz_expressions(SLOW) >= SLOW


# ------------------------------------------------------------------------------ space files

KEYS = [
    "train.lr", "train.epochs", "train.optimizer", "model.mlp.hidden", "model.type",
    "features.ngram_range", "train", "nosuch.key", "", "a." * 40 + "a", "k" * 300,
]  # fmt: skip
FIELDS = ["type", "low", "high", "step", "log", "choices", "when", "extra"]


def _string(text: str) -> str:
    return json.dumps(text)  # a TOML basic string for most texts (TOML may refuse a few)


scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    numbers.map(lambda x: "nan" if x != x else ("inf" if x == float("inf") else "-inf" if x == float("-inf") else repr(x))),
    st.sampled_from(
        ['"float"', '"int"', '"categorical"', '"sgd"', '"adam"', "true", "false",
         "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "0x10", "1e-320", "1e308"]
    ),
    st.text(max_size=8).map(_string),
)  # fmt: skip
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(KEYS + FIELDS).map(_string), inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=12,
)


@st.composite
def space_texts(draw: st.DrawFn) -> str:
    """A search-space file: tables of parameters (sometimes [fixed], arrays of tables, dotted
    keys at the top), with fields of any value, and now and then a raw piece of text."""
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(KEYS))
        style = draw(st.sampled_from(["table", "fixed", "array", "dotted", "raw"]))
        if style == "raw":
            lines.append(draw(st.text(max_size=30)))
            continue
        if style == "dotted":
            lines.append(f"{_string(key)} = {draw(toml_values)}")
            continue
        header = "[fixed]" if style == "fixed" else f"[{_string(key)}]"
        lines.append(f"[{header}]" if style == "array" else header)
        for name in draw(st.lists(st.sampled_from(FIELDS + KEYS), max_size=5, unique=True)):
            lines.append(f"{_string(name)} = {draw(toml_values)}")
    return "\n".join(lines) + "\n"


def _fuzz_spaces(examples: int) -> int:
    folder = Path(tempfile.mkdtemp(prefix="ffnlp-fuzz-space-"))
    calls = [0]

    def check(path: Path) -> None:
        space, problems = parse_space(path)
        check_space(space, ClassifyConfig, {}, [], None, None, problems)

    @_settings(examples)
    @given(text=space_texts())
    def property(text: str) -> None:
        calls[0] += 1
        path = folder / "space.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        only_ffnlp_errors(lambda: check(path))
        only_ffnlp_errors(lambda: build(ClassifyConfig, load_toml(path)))  # as a --config file

    try:
        property()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return calls[0]


def test_space_files_raise_only_ffnlp_errors() -> None:
    assert _fuzz_spaces(FAST) >= FAST


@pytest.mark.slow
def test_space_files_raise_only_ffnlp_errors_10000() -> None:
    assert _fuzz_spaces(SLOW) >= SLOW
