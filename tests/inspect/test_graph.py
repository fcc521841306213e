"""`explain graph`: the expression parser, backprop by hand on its graph, and the CLI."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable

import pytest
import torch
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ExpressionError, FfnlpError
from ffnlp.inspect import graph as graph_module
from ffnlp.inspect.graph import autograd_max_diff, explain, parse, parse_assignments, to_dot

runner = CliRunner()
T = torch.Tensor

# (expression, values, the same function written with Python's own operators on tensors): the
# reference is parsed by Python, not by the module under test, so it also checks precedence.
CASES: list[tuple[str, dict[str, float], Callable[..., T]]] = [
    ("a*b + a", {"a": 1.5, "b": -0.5}, lambda a, b: a * b + a),
    ("exp(a) * exp(a)", {"a": 0.3}, lambda a: torch.exp(a) * torch.exp(a)),
    ("log(a*b + c**2)", {"a": 2.0, "b": 0.25, "c": -1.5}, lambda a, b, c: torch.log(a * b + c**2)),
    (
        "tanh(a - 2*b) / c",
        {"a": 0.4, "b": -0.3, "c": 1.7},
        lambda a, b, c: torch.tanh(a - 2 * b) / c,
    ),
    ("sigmoid(3*a - b)", {"a": 0.2, "b": 1.1}, lambda a, b: torch.sigmoid(3 * a - b)),
    (
        "relu(a - b) + relu(b - a)",
        {"a": 2.0, "b": 0.5},
        lambda a, b: torch.relu(a - b) + torch.relu(b - a),
    ),
    ("x**x", {"x": 1.7}, lambda x: x**x),
    ("x**3", {"x": -2.0}, lambda x: x**3),
    ("(a - b)**2", {"a": 1.0, "b": 4.0}, lambda a, b: (a - b) ** 2),
    ("-a**2", {"a": 3.0}, lambda a: -(a**2)),
    ("2**-a", {"a": 1.5}, lambda a: 2 ** (-a)),
    ("a / b / c", {"a": 3.0, "b": 2.0, "c": -4.0}, lambda a, b, c: a / b / c),
    ("a - b - c", {"a": 3.0, "b": 2.0, "c": -4.0}, lambda a, b, c: a - b - c),
    ("2**a**2", {"a": 0.7}, lambda a: 2 ** (a**2)),
    (
        "exp(-a) * sigmoid(b) + log(1 + exp(c))",
        {"a": 0.5, "b": -2.0, "c": 0.1},
        lambda a, b, c: torch.exp(-a) * torch.sigmoid(b) + torch.log(1 + torch.exp(c)),
    ),
    ("tanh(tanh(tanh(a)))", {"a": 0.9}, lambda a: torch.tanh(torch.tanh(torch.tanh(a)))),
    (
        "sigmoid(log(exp(a) + b))",
        {"a": -0.4, "b": 2.5},
        lambda a, b: torch.sigmoid(torch.log(torch.exp(a) + b)),
    ),
    ("a * a * a - 3*a", {"a": -1.3}, lambda a: a * a * a - 3 * a),
    ("1e-3 * a + .5 * b ** 2", {"a": 7.0, "b": -3.0}, lambda a, b: 1e-3 * a + 0.5 * b**2),
    ("-(a + b) * -c", {"a": 1.0, "b": 2.0, "c": 3.0}, lambda a, b, c: -(a + b) * -c),
    ("relu(-a) + relu(a)*b", {"a": 1.2, "b": 0.7}, lambda a, b: torch.relu(-a) + torch.relu(a) * b),
    ("(a + b) / (a - b)", {"a": 0.3, "b": 1.9}, lambda a, b: (a + b) / (a - b)),
    ("log(sigmoid(a))", {"a": -3.0}, lambda a: torch.log(torch.sigmoid(a))),
    ("a**b", {"a": 2.5, "b": -1.3}, lambda a, b: a**b),
    ("x**2.5 + +x - -x", {"x": 0.8}, lambda x: x**2.5 + x + x),
    (
        "c * (a + 2*b) * exp(c) / (1 + a**2)",
        {"a": -0.6, "b": 0.2, "c": 0.05},
        lambda a, b, c: c * (a + 2 * b) * torch.exp(c) / (1 + a**2),
    ),
]


def test_the_slides_example_exactly() -> None:
    g = explain("c*(a+2*b)", {"a": 3, "b": 1, "c": -2})
    assert g.output.value == -10
    assert g.grads() == {"c": 5, "a": -2, "b": -4}
    assert [g.line(s) for s in g.steps] == [
        "dL/dc += d#6/dc * dL/d#6 = 5 * 1 = 5",
        "dL/d#5 += d#6/d#5 * dL/d#6 = -2 * 1 = -2",
        "dL/da += d#5/da * dL/d#5 = 1 * -2 = -2",
        "dL/d#4 += d#5/d#4 * dL/d#5 = 1 * -2 = -2",
        "dL/db += d#4/db * dL/d#4 = 2 * -2 = -4",
    ]
    assert [s.rule for s in g.steps][:2] == ["d(x*y)/dx = y", "d(x*y)/dy = x"]
    assert [n.text for n in g.nodes] == ["c", "a", "2", "b", "2*b", "a+2*b", "c*(a+2*b)"]
    assert g.nodes[2].grad is None  # a number needs no gradient


@pytest.mark.parametrize(("expression", "values", "reference"), CASES, ids=[c[0] for c in CASES])
def test_value_and_gradients_match_autograd(expression, values, reference) -> None:
    g = explain(expression, values)
    leaves = {
        name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in values.items()
    }
    out = reference(**leaves)
    out.backward()
    assert g.output.value == pytest.approx(float(out.detach()), abs=1e-9, rel=1e-9)
    for name, leaf in leaves.items():
        assert leaf.grad is not None
        assert g.grads()[name] == pytest.approx(float(leaf.grad), abs=1e-9, rel=1e-9), name
    assert autograd_max_diff(g) < 1e-9


def test_a_shared_variable_sums_its_uses() -> None:
    g = explain("a*b + a", {"a": 1.5, "b": -0.5})
    into_a = [s for s in g.steps if g.nodes[s.input].text == "a"]
    assert len(into_a) == 2  # one chain step per use
    assert sum(s.contribution for s in into_a) == g.grads()["a"] == pytest.approx(0.5)
    assert sum(n.op == "var" for n in g.nodes) == 2


def test_identical_subexpressions_stay_separate_nodes() -> None:
    g = parse("exp(a) * exp(a)")
    assert [n.op for n in g.nodes] == ["var", "exp", "exp", "mul"]
    assert g.nodes[1].inputs == g.nodes[2].inputs == (0,)


def test_precedence_and_associativity() -> None:
    assert [n.text for n in parse("-a**2").nodes][-2:] == ["a**2", "-a**2"]
    assert parse("2**3**2").nodes[-1].inputs == (0, 3)  # 2 ** (3 ** 2)
    assert explain("2**3**2", {}).output.value == 512
    assert explain("8 / 4 / 2", {}).output.value == 1
    assert explain("1 - 2 - 3", {}).output.value == -4
    assert explain("2 + 3 * 4", {}).grads() == {}  # constants only: nothing to differentiate


@pytest.mark.parametrize(
    ("expression", "column", "message"),
    [
        ("a+", 3, "the expression ends too early (column 3)"),
        ("(a", 1, "unbalanced parentheses: the '(' at column 1 is never closed"),
        ("a)", 2, "unbalanced parentheses: the ')' at column 2 has no '('"),
        ("a $ b", 3, "unexpected character '$' at column 3"),
        (
            "foo(a)",
            1,
            "unknown function 'foo' at column 1; the functions are exp, log, tanh, sigmoid, relu",
        ),
        ("2**", 4, "the expression ends too early (column 4)"),
        ("exp + 1", 1, "exp at column 1 is a function: write exp(...)"),
        ("2a", 2, "unexpected 'a' at column 2: expected an operator (+ - * / **) or the end"),
        ("(a b)", 4, "unexpected 'b' at column 4: expected an operator (+ - * / **) or ')'"),
        ("a * ()", 6, "unexpected ')' at column 6"),
        ("log(a", 4, "unbalanced parentheses: the '(' at column 4 is never closed"),
    ],
)
def test_malformed_expressions_point_at_the_column(expression, column, message) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(expression)
    assert info.value.column == column
    first, shown, caret = str(info.value).split("\n")
    assert first.startswith(message)
    assert shown == f"  {expression}" and caret == "  " + " " * (column - 1) + "^"


def test_an_empty_expression() -> None:
    with pytest.raises(ExpressionError, match="the expression is empty"):
        parse("   ")


@pytest.mark.parametrize(
    ("expression", "values", "column", "message"),
    [
        (
            "2 + log(a - b)",
            {"a": 1, "b": 2},
            5,
            "cannot evaluate 'log(a - b)' (column 5): log of a - b = -1: log needs a positive argument",
        ),
        (
            "a / (b - 1)",
            {"a": 1, "b": 1},
            1,
            "cannot evaluate 'a / (b - 1)' (column 1): division by zero: the divisor b - 1 is 0",
        ),
        (
            "a**0.5",
            {"a": -1},
            1,
            "a negative base (-1) with a non-integer exponent (0.5) has no real value",
        ),
        ("a**b", {"a": -2, "b": 2}, 1, "with respect to its exponent needs a positive base"),
        ("exp(a)", {"a": 1000}, 1, "cannot evaluate 'exp(a)' (column 1): the result is too large"),
    ],
)
def test_evaluation_errors_name_the_node(expression, values, column, message) -> None:
    with pytest.raises(ExpressionError) as info:
        explain(expression, values)
    assert info.value.column == column
    assert message in str(info.value).split("\n")[0]


def test_values_missing_or_malformed() -> None:
    with pytest.raises(ExpressionError, match=r"^b has no value: pass b=NUMBER$"):
        explain("c*(a+2*b)", {"a": 3, "c": -2})
    with pytest.raises(ExpressionError, match=r"^c and b have no value: pass c=NUMBER b=NUMBER$"):
        explain("c*(a+2*b)", {"a": 3})
    with pytest.raises(
        ExpressionError, match=r"z=1 names no variable of the expression \(its variables: a\)"
    ):
        explain("a", {"a": 1, "z": 1})
    assert parse_assignments(["a=3", "b=-1e-3", "c = 2"]) == {"a": 3, "b": -0.001, "c": 2}
    for bad, message in [
        ("a3", "bad value 'a3': write name=NUMBER, e.g. a=3"),
        ("a=x", "bad value 'a=x': 'x' is not a number; write name=NUMBER, e.g. a=3"),
        ("1a=3", "bad value '1a=3': write name=NUMBER"),
        ("exp=1", "bad value 'exp=1': exp is a function, not a variable"),
        ("a=nan", "bad value 'a=nan': the value must be a finite number"),
    ]:
        with pytest.raises(ExpressionError) as info:
            parse_assignments([bad])
        assert str(info.value).startswith(message), bad
    with pytest.raises(ExpressionError, match=r"a is given twice \(a=1 and a=2\)"):
        parse_assignments(["a=1", "a=2"])
    assert issubclass(ExpressionError, FfnlpError)


def test_dot_has_a_box_per_node_and_an_arrow_per_edge() -> None:
    g = explain("c*(a+2*b)", {"a": 3, "b": 1, "c": -2})
    dot = to_dot(g)
    assert dot.startswith("digraph expression {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == 6  # five chain steps and one dashed arrow from the number 2
    assert 'n0 -> n6 [label="local 5"];' in dot and "n2 -> n4 [style=dashed];" in dot
    assert 'n6 [label="#6: c*(a+2*b)\\nmul   value = -10\\ndL/d#6 = 1", peripheries=2];' in dot


# ------------------------------------------------------------------------------------------ CLI


def test_cli_json_acceptance() -> None:
    result = runner.invoke(app, ["explain", "graph", "c*(a+2*b)", "a=3", "b=1", "c=-2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["value"] == -10
    assert out["grad"] == {"a": -2, "b": -4, "c": 5}
    assert len(out["nodes"]) == 7 and out["nodes"][-1]["grad"] == 1
    assert out["autograd_max_abs_diff"] < 1e-12


def test_cli_table_and_chain_rule_lines() -> None:
    result = runner.invoke(app, ["explain", "graph", "c*(a+2*b)", "a=3", "b=1", "c=-2"])
    assert result.exit_code == 0, result.output
    assert "dL/db += d#4/db * dL/d#4 = 2 * -2 = -4    (d(x*y)/dy = x)" in result.stdout
    assert "L = -10; dL/dc = 5, dL/da = -2, dL/db = -4" in result.stdout
    assert "PyTorch autograd (float64) agrees: max |difference| = 0" in result.stdout
    help_ = runner.invoke(app, ["explain", "graph", "--help"])
    assert help_.exit_code == 0 and "Example" in help_.output


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["c*(a+2*b)", "a=3", "c=-2"], "Error: b has no value: pass b=NUMBER"),
        (
            ["a+b", "a=3", "b"],
            "Error: bad value 'b': write name=NUMBER, e.g. a=3 (no spaces around '=')",
        ),
        (["a $ b", "a=1", "b=2"], "Error: unexpected character '$' at column 3"),
    ],
)
def test_cli_errors_are_one_error_line(args, error) -> None:
    result = runner.invoke(app, ["explain", "graph", *args])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == error


def test_cli_dot_without_graphviz(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    path = tmp_path / "out" / "graph.dot"
    result = runner.invoke(app, ["explain", "graph", "a*b", "a=2", "b=3", "--dot", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_text().startswith("digraph")
    assert "PNG skipped: Graphviz's dot is not on PATH" in result.stdout
    assert not (tmp_path / "out" / "graph.png").exists()
    png = runner.invoke(app, ["explain", "graph", "a", "a=1", "--dot", str(tmp_path / "g.png")])
    assert png.exit_code == 1 and "give it a .dot name" in png.stderr


def test_cli_dot_with_graphviz(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "bin" / "dot"  # stands for Graphviz: writes the file named after -o
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\necho PNG > "$2"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    result = runner.invoke(
        app, ["explain", "graph", "a*b", "a=2", "b=3", "--dot", str(tmp_path / "g.dot"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["value"] == 6  # the note goes to stderr, JSON stays clean
    assert (tmp_path / "g.png").read_text() == "PNG\n"
    assert f"and {tmp_path / 'g.png'}" in result.stderr
