"""ffnlp's layers: every import of src/ffnlp goes down, and no modules import each other.

The imports are read from the source (``ast``), every one of them: at the top of a module,
inside a function, under ``if TYPE_CHECKING``. A module belongs to the longest entry of
:data:`LAYERS` that names it or a package above it; it may import a module of its own entry
or of an entry on a lower layer, never one on its own layer's other entries (``models`` and
``training`` do not import each other) nor above. Cycles are looked for among the imports that
run (those under ``if TYPE_CHECKING`` only name types).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "ffnlp"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "version"),
    ("fileio", "params", "outputs", "jit"),
    ("presets",),
    ("config", "precision", "threads"),
    ("folders",),  # the run and study folders: every file name, the transaction, reading a run
    ("runtime",),  # seeds, allocator, device, rank
    # the process group: text reads its shards by rank, so these two of training sit below it
    ("training.data",),
    ("training.distributed",),
    ("text",),
    ("features",),
    ("models", "training"),
    # drawing (the only modules that import matplotlib with report.*): a run draws its plots
    ("report.text",),
    ("report.plots",),
    ("report.confusion",),
    ("inspect",),
    ("tasks",),
    ("experiments",),
    ("tune",),
    ("report",),
    ("sklearn",),
    ("",),  # ffnlp/__init__.py: the public API
    ("export", "serve"),
    ("cli",),
    ("__main__",),
)


def module_names() -> dict[str, Path]:
    """Every module of src/ffnlp by dotted name (a package by its own name)."""
    names = {}
    for path in SRC.rglob("*.py"):
        parts = ("ffnlp", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement under ``tree`` and whether it only runs for a type checker."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, typing_only
        elif isinstance(node, ast.If) and _type_checking(node):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), typing_only)
        else:
            yield from _imports(node, typing_only)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, bool]]:
    """The ffnlp modules ``name`` imports: (module, only for type checking)."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            # `from pkg import module` imports the module; `from pkg import name`, the package
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        for target in targets:
            if target.split(".")[0] != "ffnlp":
                continue
            module = known(target)
            if module is not None and module != name:
                found.add((module, typing_only))
    return found


def entry_of(module: str) -> str:
    """The entry of :data:`LAYERS` that ``module`` belongs to (its longest prefix)."""
    inner = module.removeprefix("ffnlp").removeprefix(".")
    best = None
    for layer in LAYERS:
        for entry in layer:
            names_it = entry == "" or inner == entry or inner.startswith(entry + ".")
            if names_it and (best is None or len(entry) > len(best)):
                best = entry
    assert best is not None, module
    return best


LEVEL = {entry: i for i, layer in enumerate(LAYERS) for entry in layer}


def graph() -> dict[str, set[tuple[str, bool]]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def wrong_way(edges: dict[str, set[tuple[str, bool]]]) -> list[str]:
    """The imports that go up a layer or sideways to another entry of the same layer."""
    found = []
    for module, targets in sorted(edges.items()):
        a = entry_of(module)
        for target, _ in sorted(targets):
            b = entry_of(target)
            if a != b and LEVEL[b] >= LEVEL[a]:
                way = "sideways" if LEVEL[b] == LEVEL[a] else "up"
                found.append(f"{module} -> {target} ({way}: {a or 'ffnlp'} -> {b or 'ffnlp'})")
    return found


def cycles(edges: dict[str, set[tuple[str, bool]]]) -> list[list[str]]:
    """The groups of modules that import each other (strongly connected, more than one), among
    the imports that run."""
    running = {m: sorted(t for t, typing_only in ts if not typing_only) for m, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(running):
        if root in index:
            continue
        # Tarjan's algorithm, iteratively (no recursion limit to worry about)
        work = [(root, iter(running[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(running.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_every_module_has_a_layer() -> None:
    for module in module_names():
        assert entry_of(module) in LEVEL


def test_imports_only_go_down() -> None:
    assert wrong_way(graph()) == []


def test_no_modules_import_each_other() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    ("edges", "up", "cycle"),
    [
        # a task importing the report: up
        ({"ffnlp.tasks.run": {("ffnlp.report.html", False)}}, True, False),
        # models and training are siblings: neither imports the other
        ({"ffnlp.models.lm": {("ffnlp.training.trainer", False)}}, True, False),
        # a drawing module is below the tasks: a run may draw its plots
        ({"ffnlp.tasks.run": {("ffnlp.report.plots", False)}}, False, False),
        # two modules of one package importing each other, one of them inside a function
        (
            {
                "ffnlp.report.group": {("ffnlp.report.html", False)},
                "ffnlp.report.html": {("ffnlp.report.group", False)},
            },
            False,
            True,
        ),
        # ... unless one of the two imports is for the type checker only
        (
            {
                "ffnlp.training.trainer": {("ffnlp.training.callbacks", False)},
                "ffnlp.training.callbacks": {("ffnlp.training.trainer", True)},
            },
            False,
            False,
        ),
    ],
)
def test_the_checks_see_what_they_are_for(edges, up, cycle) -> None:
    assert bool(wrong_way(edges)) is up
    assert bool(cycles(edges)) is cycle


def test_imports_inside_functions_and_relative_imports_are_read(tmp_path) -> None:
    modules = {"ffnlp.a": tmp_path / "a.py", "ffnlp.b": tmp_path / "b.py", "ffnlp.c": tmp_path}
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ffnlp.c import X\n"
        "def f():\n    from . import b\n    return b\n",
        encoding="utf-8",
    )
    assert imports_of("ffnlp.a", tmp_path / "a.py", modules) == {
        ("ffnlp.b", False),
        ("ffnlp.c", True),
    }
