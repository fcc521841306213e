"""The CLI stays the thinnest layer: no long function, and a bound on its size.

A function's length is counted from its first decorator (else its ``def``) to its last line, the
signature (every option) and docstring included: a command whose options or body grow past the
bound moves its work into the library (or its options into cli/options.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "ffnlp" / "cli"
LONGEST_FUNCTION = 60  # lines, decorators to end
MOST_LINES = 2000  # the whole package


def function_lengths(folder: Path) -> dict[str, int]:
    """``module.py:function`` -> lines from its first decorator (else ``def``) to its end, for
    every function and method of every module in ``folder``."""
    lengths = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                assert node.end_lineno is not None
                lengths[f"{path.name}:{node.name}"] = node.end_lineno - first + 1
    return lengths


def total_lines(folder: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in folder.glob("*.py"))


def test_the_counts_read_real_functions(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import functools\n\n\n@functools.cache\ndef f(\n    x: int,\n) -> int:\n    return x\n"
        "\n\nclass C:\n    def g(self) -> None:\n        pass\n",
        encoding="utf-8",
    )
    assert function_lengths(tmp_path) == {"m.py:f": 5, "m.py:g": 2}
    assert total_lines(tmp_path) == 13


def test_no_cli_function_is_longer_than_the_bound() -> None:
    lengths = function_lengths(CLI)
    assert len(lengths) > 50  # every command module was read
    long = {name: n for name, n in lengths.items() if n > LONGEST_FUNCTION}
    assert not long, f"CLI functions over {LONGEST_FUNCTION} lines (decorators to end): {long}"


def test_the_cli_is_at_most_the_bound_in_lines() -> None:
    assert total_lines(CLI) <= MOST_LINES
