"""A scalar expression as a computation graph, differentiated by hand one edge at a time.

    ffnlp explain graph "c*(a+2*b)" a=3 b=1 c=-2

The expression is read by a small tokenizer and a recursive-descent parser (no ``eval``) into a
list of :class:`Node` s in which every node comes after its inputs (a topological order). Then

- **forward**: each node's value from its inputs' values, in that order;
- **backward**: the output L gets the gradient dL/dL = 1; walking the nodes in the reverse order,
  each node hands its gradient (the *upstream* dL/dnode) to each of its inputs by the chain rule,
  ``dL/dinput += (dnode/dinput) * dL/dnode``, and every such step is kept as a :class:`ChainStep`.
  A node is finished before it hands anything on, because all its users come after it.

A variable is one node however often it is used, so its gradient is the sum over its uses (one
``+=`` per edge), as autograd accumulates ``.grad``. Identical sub-expressions are *not* merged:
in ``exp(a) * exp(a)`` each ``exp(a)`` is a node of its own (both read the one node ``a``).
Numbers are constants: they need no gradient, so no chain step goes into them (as a tensor without
``requires_grad`` in PyTorch). :func:`autograd_max_diff` checks everything against PyTorch.

Grammar, with Python's precedence: ``**`` binds tighter than a unary minus on its left, so ``-a**2``
is ``-(a**2)``, and it groups to the right, so ``2**3**2`` is ``2**(3**2)``::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := ("-" | "+") unary | power
    power  := atom ("**" unary)?
    atom   := NUMBER | NAME | FUNCTION "(" expr ")" | "(" expr ")"

Derivatives at points where they do not exist follow PyTorch: relu'(0) = 0; d(x**y)/dy = 0 at
x = 0 with y >= 0. Where PyTorch would give nan or inf (the exponent's gradient with a negative
base, x**y at x = 0 with y < 1) an :class:`~ffnlp.errors.ExpressionError` says so instead.
"""

# Over 400 lines on purpose: tokenizer, parser, graph, forward and hand-written backward of one teaching tool, read top to bottom.

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffnlp.errors import ConfigError, ExpressionError, FfnlpError, shown

FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "relu")
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}

# The local derivative of each operation with respect to each of its inputs (x, then y).
RULES: dict[str, tuple[str, ...]] = {
    "add": ("d(x+y)/dx = 1", "d(x+y)/dy = 1"),
    "sub": ("d(x-y)/dx = 1", "d(x-y)/dy = -1"),
    "mul": ("d(x*y)/dx = y", "d(x*y)/dy = x"),
    "div": ("d(x/y)/dx = 1/y", "d(x/y)/dy = -x/y**2"),
    "pow": ("d(x**y)/dx = y*x**(y-1)", "d(x**y)/dy = x**y*log(x)"),
    "neg": ("d(-x)/dx = -1",),
    "exp": ("d exp(x)/dx = exp(x)",),
    "log": ("d log(x)/dx = 1/x",),
    "tanh": ("d tanh(x)/dx = 1 - tanh(x)**2",),
    "sigmoid": ("d sigmoid(x)/dx = sigmoid(x)*(1 - sigmoid(x))",),
    "relu": ("d relu(x)/dx = 1 if x > 0 else 0",),
}

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/()])"
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ------------------------------------------------------------------------------------- the graph


@dataclass
class Node:
    """One operation (or a variable, or a number) of the expression."""

    index: int
    op: str  # "var", "const", "add", "sub", "mul", "div", "pow", "neg" or one of FUNCTIONS
    text: str  # the sub-expression as written: a variable's name, a number, "a+2*b"
    column: int  # 1-based column where it starts (a variable: its first use)
    inputs: tuple[int, ...] = ()  # indices of the nodes it reads (x, then y)
    value: float = math.nan
    grad: float | None = None  # dL/dnode; None for nodes that depend on no variable

    @property
    def name(self) -> str:
        """How the node is called in the chain-rule lines: a variable by its name, others #i."""
        return self.text if self.op == "var" else f"#{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.index,
            "name": self.name,
            "op": self.op,
            "text": self.text,
            "column": self.column,
            "inputs": list(self.inputs),
            "value": self.value,
            "grad": self.grad,
        }


@dataclass(frozen=True)
class ChainStep:
    """One use of the chain rule: ``dL/d[input] += local * upstream``."""

    node: int  # the node handing its gradient back
    input: int  # the input receiving a share of it
    rule: str  # the local derivative as a formula, e.g. "d(x*y)/dx = y"
    local: float  # d node / d input, at the forward values
    upstream: float  # dL/d node

    @property
    def contribution(self) -> float:
        return self.local * self.upstream

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "input": self.input,
            "rule": self.rule,
            "local": self.local,
            "upstream": self.upstream,
            "contribution": self.contribution,
        }


@dataclass
class Graph:
    """The nodes in topological order (the output last) and, after :func:`backward`, the steps."""

    expression: str
    nodes: list[Node]
    variables: dict[str, int]  # name -> node index, in order of first use
    steps: list[ChainStep] = field(default_factory=list)

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def grads(self) -> dict[str, float]:
        """dL/dv for every variable v."""
        return {name: float(self.nodes[i].grad or 0.0) for name, i in self.variables.items()}

    def line(self, step: ChainStep) -> str:
        """A chain step written out: ``dL/da += d#4/da * dL/d#4 = 1 * -2 = -2``."""
        node, inp = self.nodes[step.node], self.nodes[step.input]
        return (
            f"dL/d{inp.name} += d{node.name}/d{inp.name} * dL/d{node.name} = "
            f"{fmt(step.local)} * {fmt(step.upstream)} = {fmt(step.contribution)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "value": self.output.value,
            "grad": self.grads(),
            "nodes": [n.to_dict() for n in self.nodes],
            "steps": [s.to_dict() for s in self.steps],
        }


def fmt(value: float) -> str:
    """A number as people write it: 6 significant digits, no trailing ".0"."""
    return f"{value:.6g}"


# ----------------------------------------------------------------------------------- reading it


MAX_EXPRESSION_CHARS = 10_000
"""The longest expression read (a teaching tool's expressions are a line; the graph of a longer
one would not be read by anyone)."""
MAX_DEPTH = 100
"""How deeply an expression may nest: parentheses, function calls, unary signs and the right
side of ``**`` each count one level (the parser recurses per level; 300 nested parentheses used
to end in Python's RecursionError)."""
_SHOWN_AROUND = 36  # characters of the expression shown on each side of the caret


def _error(expression: str, column: int, message: str) -> ExpressionError:
    """An ExpressionError whose message shows the expression with a caret under ``column`` (a
    long expression: the part around the column)."""
    start = max(0, column - 1 - _SHOWN_AROUND)
    end = column - 1 + _SHOWN_AROUND
    part = expression[start:end]
    before = "..." if start > 0 else ""
    after = "..." if end < len(expression) else ""
    caret = " " * (len(before) + column - 1 - start) + "^"
    return ExpressionError(f"{message}\n  {before}{part}{after}\n  {caret}", column=column)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    start: int  # 0-based offset in the expression

    @property
    def column(self) -> int:
        return self.start + 1

    def describe(self) -> str:
        return "the end of the expression" if self.kind == "end" else repr(self.text)


def tokenize(expression: str) -> list[Token]:
    """Numbers, names and operators with their offsets, ending with an "end" token."""
    tokens, pos = [], 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise _error(
                expression, pos + 1, f"unexpected character {expression[pos]!r} at column {pos + 1}"
            )
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(expression)))
    return tokens


class _Parser:
    """Recursive descent over the tokens, one method per grammar rule (see the module docstring).

    Each method returns the node it built and the span (start, end) of its text in the expression.
    """

    def __init__(self, expression: str):
        if not isinstance(expression, str):
            raise ExpressionError(f"the expression must be a string; got {shown(expression)}")
        if len(expression) > MAX_EXPRESSION_CHARS:
            raise ExpressionError(
                f"the expression is {len(expression):,} characters long; the longest read is "
                f"{MAX_EXPRESSION_CHARS:,}"
            )
        self.expression = expression
        self.tokens = tokenize(expression)
        self.pos = 0
        self.depth = 0  # levels of nesting open now (see MAX_DEPTH)
        self.nodes: list[Node] = []
        self.variables: dict[str, int] = {}

    def parse(self) -> Graph:
        if self.tokens[0].kind == "end":
            raise ExpressionError('the expression is empty; write one, e.g. "c*(a+2*b)"')
        self.expr()
        token = self.peek()
        if token.text == ")":
            raise _error(
                self.expression,
                token.column,
                f"unbalanced parentheses: the ')' at column {token.column} has no '('",
            )
        if token.kind != "end":
            raise self.unexpected(token, "an operator (+ - * / **) or the end")
        return Graph(self.expression, self.nodes, self.variables)

    # -- helpers

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def unexpected(self, token: Token, wanted: str) -> ExpressionError:
        where = f"at column {token.column}"
        return _error(
            self.expression,
            token.column,
            f"unexpected {token.describe()} {where}: expected {wanted}",
        )

    def add(self, op: str, start: int, end: int, inputs: tuple[int, ...]) -> tuple[int, int, int]:
        text = self.expression[start:end].strip()
        self.nodes.append(Node(len(self.nodes), op, text, start + 1, inputs))
        return len(self.nodes) - 1, start, end

    # -- the grammar

    def expr(self) -> tuple[int, int, int]:
        left, start, end = self.term()
        while self.peek().text in ("+", "-"):
            op = BINARY[self.take().text]
            right, _, end = self.term()
            left, start, end = self.add(op, start, end, (left, right))
        return left, start, end

    def term(self) -> tuple[int, int, int]:
        left, start, end = self.unary()
        while self.peek().text in ("*", "/"):
            op = BINARY[self.take().text]
            right, _, end = self.unary()
            left, start, end = self.add(op, start, end, (left, right))
        return left, start, end

    def unary(self) -> tuple[int, int, int]:
        token = self.peek()
        if self.depth >= MAX_DEPTH:
            raise _error(
                self.expression,
                token.column,
                f"the expression nests more than {MAX_DEPTH} levels deep at column "
                f"{token.column} (parentheses, functions, signs and ** each count one); "
                "write it flatter",
            )
        self.depth += 1
        try:
            return self._unary(token)
        finally:
            self.depth -= 1

    def _unary(self, token: Token) -> tuple[int, int, int]:
        if token.text == "-":
            self.take()
            operand, _, end = self.unary()
            return self.add("neg", token.start, end, (operand,))
        if token.text == "+":  # a unary plus changes nothing: no node
            self.take()
            operand, _, end = self.unary()
            return operand, token.start, end
        return self.power()

    def power(self) -> tuple[int, int, int]:
        base, start, end = self.atom()
        if self.peek().text == "**":
            self.take()
            exponent, _, end = self.unary()  # right-associative; 2**-1 is allowed, as in Python
            return self.add("pow", start, end, (base, exponent))
        return base, start, end

    def atom(self) -> tuple[int, int, int]:
        token = self.take()
        wanted = "a number, a name, a function or '('"
        if token.kind == "number":
            return self.add("const", token.start, token.start + len(token.text), ())
        if token.kind == "name":
            if self.peek().text == "(":
                return self.call(token)
            if token.text in FUNCTIONS:
                raise _error(
                    self.expression,
                    token.column,
                    f"{token.text} at column {token.column} is a function: write {token.text}(...)",
                )
            return self.variable(token)
        if token.text == "(":
            inner, end = self.parenthesised(token)
            return inner, token.start, end
        if token.kind == "end":
            raise _error(
                self.expression,
                token.column,
                f"the expression ends too early (column {token.column}): expected {wanted}",
            )
        raise self.unexpected(token, wanted)

    def parenthesised(self, opening: Token) -> tuple[int, int]:
        """What follows an opening '(' up to its ')': the inner node and the end of the span."""
        inner, _, _ = self.expr()
        closing = self.take()
        if closing.kind == "end":
            raise _error(
                self.expression,
                opening.column,
                f"unbalanced parentheses: the '(' at column {opening.column} is never closed",
            )
        if closing.text != ")":
            raise self.unexpected(closing, "an operator (+ - * / **) or ')'")
        return inner, closing.start + 1

    def call(self, name: Token) -> tuple[int, int, int]:
        if name.text not in FUNCTIONS:
            raise _error(
                self.expression,
                name.column,
                f"unknown function {shown(name.text, 40)} at column {name.column}; "
                f"the functions are {', '.join(FUNCTIONS)}",
            )
        argument, end = self.parenthesised(self.take())
        return self.add(name.text, name.start, end, (argument,))

    def variable(self, token: Token) -> tuple[int, int, int]:
        end = token.start + len(token.text)
        if token.text not in self.variables:
            self.variables[token.text] = self.add("var", token.start, end, ())[0]
        return self.variables[token.text], token.start, end


def parse(expression: str) -> Graph:
    """The graph of ``expression`` (values not computed yet); ExpressionError if it is malformed."""
    return _Parser(expression).parse()


def parse_assignments(pairs: Iterable[str]) -> dict[str, float]:
    """``["a=3", "b=1e-3"]`` -> ``{"a": 3.0, "b": 0.001}``; ExpressionError on a malformed pair."""
    values: dict[str, float] = {}
    if isinstance(pairs, str) or not isinstance(pairs, Iterable):
        raise ExpressionError(f"the values must be a list of name=NUMBER; got {shown(pairs)}")
    for pair in pairs:
        if not isinstance(pair, str):
            raise ExpressionError(f"bad value {shown(pair, 40)}: write name=NUMBER, e.g. a=3")
        name, sep, text = pair.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not _NAME.match(name) or not text:
            raise ExpressionError(
                f"bad value {shown(pair, 40)}: write name=NUMBER, e.g. a=3 (no spaces around '=')"
            )
        if name in FUNCTIONS:
            raise ExpressionError(
                f"bad value {shown(pair, 40)}: {name} is a function, not a variable"
            )
        try:
            value = float(text)
        except ValueError:
            raise ExpressionError(
                f"bad value {shown(pair, 40)}: {shown(text, 40)} is not a number; write name=NUMBER, e.g. {name}=3"
            ) from None
        if not math.isfinite(value):
            raise ExpressionError(f"bad value {shown(pair, 40)}: the value must be a finite number")
        if name in values:
            raise ExpressionError(f"{name} is given twice ({name}={fmt(values[name])} and {pair})")
        values[name] = value
    return values


# ------------------------------------------------------------------------ forward and backward


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # never overflows for x < 0
    return e / (1.0 + e)


def _apply(
    node: Node, args: list[float], texts: list[str], fail: Callable[[str], ExpressionError]
) -> float:
    """The value of one node from its inputs' values (``texts``: the inputs as written)."""
    op = node.op
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    if op == "mul":
        return args[0] * args[1]
    if op == "div":
        if args[1] == 0:
            raise fail(f"division by zero: the divisor {texts[1]} is 0")
        return args[0] / args[1]
    if op == "pow":
        x, y = args
        if x < 0 and not y.is_integer():
            raise fail(
                f"a negative base ({fmt(x)}) with a non-integer exponent ({fmt(y)}) "
                "has no real value"
            )
        if x == 0 and y < 0:
            raise fail(f"division by zero: 0 to the power {fmt(y)}")
        return x**y
    if op == "neg":
        return -args[0]
    if op == "exp":
        return math.exp(args[0])
    if op == "log":
        if args[0] <= 0:
            raise fail(f"log of {texts[0]} = {fmt(args[0])}: log needs a positive argument")
        return math.log(args[0])
    if op == "tanh":
        return math.tanh(args[0])
    if op == "sigmoid":
        return _sigmoid(args[0])
    if op == "relu":
        return max(args[0], 0.0)
    raise AssertionError(f"unknown op {op}")


def forward(graph: Graph, values: Mapping[str, float]) -> float:
    """Every node's value, inputs first; returns the output's. ExpressionError on a missing value
    or an operation without a real, finite value (naming the node)."""
    missing = [name for name in graph.variables if name not in values]
    if missing:
        names = " and ".join(
            [", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing
        )
        have = "has" if len(missing) == 1 else "have"
        raise ExpressionError(
            f"{names} {have} no value: pass " + " ".join(f"{name}=NUMBER" for name in missing)
        )
    unused = [name for name in values if name not in graph.variables]
    if unused:
        known = ", ".join(graph.variables) or "none"
        raise ExpressionError(
            f"{unused[0]}={fmt(values[unused[0]])} names no variable of the "
            f"expression (its variables: {known})"
        )
    for node in graph.nodes:

        def fail(message: str, node: Node = node) -> ExpressionError:
            return _error(
                graph.expression,
                node.column,
                f"cannot evaluate {shown(node.text, 40)} (column {node.column}): {message}",
            )

        if node.op == "var":
            node.value = float(values[node.text])
        elif node.op == "const":
            node.value = float(node.text)
        else:
            try:
                inputs = [graph.nodes[i] for i in node.inputs]
                node.value = _apply(node, [n.value for n in inputs], [n.text for n in inputs], fail)
            except OverflowError:
                raise fail("the result is too large for a float") from None
        if not math.isfinite(node.value):
            raise fail(f"the result is {node.value}")
    return graph.output.value


def _local(graph: Graph, node: Node, position: int) -> float:
    """d node / d input ``position`` at the forward values (see RULES)."""
    args = [graph.nodes[i].value for i in node.inputs]
    op, v = node.op, node.value
    if op == "add":
        return 1.0
    if op == "sub":
        return 1.0 if position == 0 else -1.0
    if op == "mul":
        return args[1 - position]
    if op == "div":
        return 1.0 / args[1] if position == 0 else -args[0] / args[1] ** 2
    if op == "pow":
        x, y = args
        where = f"{shown(node.text, 40)} (column {node.column})"
        if position == 0:
            if y == 0:
                return 0.0
            if x == 0 and y < 1:
                raise _error(
                    graph.expression,
                    node.column,
                    f"the derivative of {where} with respect to its base is infinite "
                    f"at base 0 (exponent {fmt(y)})",
                )
            return y * x ** (y - 1)
        if x > 0:
            return v * math.log(x)
        if x == 0 and y >= 0:
            return 0.0  # as PyTorch: the limit from the right
        raise _error(
            graph.expression,
            node.column,
            f"the derivative of {where} with respect to its exponent needs a positive "
            f"base; the base is {fmt(x)} (make the exponent a number)",
        )
    if op == "neg":
        return -1.0
    if op == "exp":
        return v
    if op == "log":
        return 1.0 / args[0]
    if op == "tanh":
        return 1.0 - v * v
    if op == "sigmoid":
        return v * (1.0 - v)
    if op == "relu":
        return 1.0 if args[0] > 0 else 0.0
    raise AssertionError(f"node {node.index} ({op}) has no inputs")


def backward(graph: Graph) -> dict[str, float]:
    """dL/dnode for every node that depends on a variable, by the chain rule, last node first;
    the steps are kept in ``graph.steps``. Returns dL/dv for every variable v."""
    for node in graph.nodes:  # inputs come first, so their flags are known
        needs = node.op == "var" or any(graph.nodes[i].grad is not None for i in node.inputs)
        node.grad = 0.0 if needs else None
    graph.steps = []
    if graph.output.grad is None:  # a constant expression: nothing to differentiate
        return graph.grads()
    graph.output.grad = 1.0  # dL/dL
    for node in reversed(graph.nodes):
        if node.grad is None:
            continue
        for position, i in enumerate(node.inputs):
            target = graph.nodes[i]
            if target.grad is None:  # a constant
                continue
            try:
                local = _local(graph, node, position)
            except OverflowError:
                raise _error(
                    graph.expression,
                    node.column,
                    f"the derivative of {shown(node.text, 40)} "
                    f"(column {node.column}) is too large for a float",
                ) from None
            step = ChainStep(node.index, i, RULES[node.op][position], local, node.grad)
            graph.steps.append(step)
            target.grad += step.contribution
    return graph.grads()


def explain(expression: str, values: Mapping[str, float]) -> Graph:
    """Parse, evaluate and differentiate ``expression`` at ``values``."""
    graph = parse(expression)
    forward(graph, values)
    backward(graph)
    return graph


# ---------------------------------------------------------------------- the check with autograd


def autograd_max_diff(graph: Graph) -> float:
    """The largest |difference| between this module's value and gradients (every node that has
    one) and PyTorch autograd's, computing the same graph in float64."""
    import torch

    ops: dict[str, Callable[..., torch.Tensor]] = {
        "add": torch.add,
        "sub": torch.sub,
        "mul": torch.mul,
        "div": torch.div,
        "pow": torch.pow,
        "neg": torch.neg,
        "exp": torch.exp,
        "log": torch.log,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
    }
    tensors: list[torch.Tensor] = []
    for node in graph.nodes:
        if node.op in ("var", "const"):
            t = torch.tensor(node.value, dtype=torch.float64, requires_grad=node.op == "var")
        else:
            t = ops[node.op](*(tensors[i] for i in node.inputs))
            if t.requires_grad:
                t.retain_grad()
        tensors.append(t)
    out = tensors[-1]
    diff = abs(float(out.detach()) - graph.output.value)
    if not out.requires_grad:
        return diff
    out.backward()
    for node, t in zip(graph.nodes, tensors, strict=True):
        if node.grad is not None:
            theirs = 0.0 if t.grad is None else float(t.grad)
            diff = max(diff, abs(theirs - node.grad))
    return diff


# ------------------------------------------------------------------------------------- Graphviz


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz's DOT language: a box per node (text, op, value, gradient), an arrow
    from each input to its user labelled with the local derivative."""

    def label(*rows: str) -> str:  # one quoted DOT string, rows joined by "\\n"
        escaped = (row.replace("\\", "\\\\").replace('"', '\\"') for row in rows)
        return '"' + "\\n".join(escaped) + '"'

    lines = [
        "digraph expression {",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica"];',
    ]
    for node in graph.nodes:
        head = node.text if node.op in ("var", "const") else f"{node.name}: {node.text}"
        rows = [head, f"{node.op}   value = {fmt(node.value)}"]
        if node.grad is not None:
            rows.append(f"dL/d{node.name} = {fmt(node.grad)}")
        style = ", peripheries=2" if node is graph.output else ""
        lines.append(f"  n{node.index} [label={label(*rows)}{style}];")
    for node in graph.nodes:  # inputs that need no gradient (numbers): a dashed arrow
        for i in node.inputs:
            if graph.nodes[i].grad is None:
                lines.append(f"  n{i} -> n{node.index} [style=dashed];")
    for step in graph.steps:  # one arrow per chain step, with its local derivative
        lines.append(
            f"  n{step.input} -> n{step.node} [label={label('local ' + fmt(step.local))}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def check_dot_path(path: str | Path) -> tuple[Path, Path | None]:
    """The files ``--dot FILE`` will write, checked before any work: FILE (a ``.dot`` name, not
    a folder, not a symbolic link, in a folder that can be written) and, when Graphviz's ``dot``
    is on PATH, the PNG beside it (checked the same way); (dot file, png file or None)."""
    from ffnlp.outputs import check_output_file

    dot_path = check_output_file(path, "--dot")
    if dot_path.suffix.lower() == ".png":
        raise ConfigError(
            f"--dot {dot_path}: this is the DOT text file; give it a .dot name "
            "(the PNG is written beside it)"
        )
    if shutil.which("dot") is None:
        return dot_path, None
    png = dot_path.with_suffix(".png")
    check_output_file(png, "--dot (its PNG)")
    return dot_path, png


def write_dot(graph: Graph, path: str | Path) -> tuple[Path, Path | None]:
    """Write the DOT file, and beside it a PNG (same name, ``.png``) when Graphviz's ``dot`` is on
    PATH: both or neither, each atomically (:class:`ffnlp.fileio.Outputs`). Returns (dot file,
    png file or None when ``dot`` is absent)."""
    from ffnlp.fileio import Outputs

    dot_path, png = check_dot_path(path)
    text = to_dot(graph)
    with Outputs() as outputs:
        outputs.write(dot_path, text)
        if png is not None:
            executable = shutil.which("dot") or "dot"

            def draw(name: str) -> None:
                try:
                    done = subprocess.run(
                        [executable, "-Tpng", "-o", name],
                        input=text,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                except OSError as exc:  # gone from PATH, not executable
                    raise FfnlpError(f"Graphviz dot could not be run ({exc})") from None
                if done.returncode != 0:
                    raise FfnlpError(
                        f"Graphviz dot could not draw {dot_path}: {done.stderr.strip()}"
                    )

            outputs.write_with(png, draw)
    return dot_path, png


def explain_command(
    expression: str, assignments: Iterable[str], dot: str | Path | None = None
) -> tuple[Graph, dict[str, Any], tuple[Path, Path | None] | None]:
    """What `ffnlp explain graph` shows: the graph of ``expression`` at the values of
    ``assignments`` (``name=NUMBER``), its report (every node and step, and the largest
    difference from PyTorch autograd), and the files written when ``dot`` is given (the DOT file
    and its PNG, see :func:`write_dot`; the path checked before any work)."""
    if dot is not None:
        check_dot_path(dot)  # before the work: a folder, a link, a read-only place
    result = explain(expression, parse_assignments(assignments))
    diff = autograd_max_diff(result)
    drawn = write_dot(result, dot) if dot is not None else None
    return result, {**result.to_dict(), "autograd_max_abs_diff": diff}, drawn
