"""docs/architecture.md says how ffnlp is built: its layer list is the one tests/test_layers.py
enforces, every module path it names exists, every TaskSpec field is in its table, and the toy
task it shows step by step is the code of tests/tasks/toy_regression."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.conftest import ROOT
from tests.test_layers import LAYERS

DOC = ROOT / "docs" / "architecture.md"
SRC = ROOT / "src" / "ffnlp"


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def blocks(language: str, after: str = "") -> list[str]:
    """The fenced ``language`` blocks of the doc (after the heading ``after``), dedented."""
    body = text()
    if after:
        body = body[body.index(after) :]
    found = []
    for match in re.finditer(r"^( *)```" + language + r"\n(.*?)^\1```", body, re.M | re.S):
        indent = len(match.group(1))
        found.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return found


def entry(path: str) -> str:
    """A path of the layer list as an entry of LAYERS: ``report/plots.py`` -> ``report.plots``,
    ``cli/`` -> ``cli``, ``__init__.py`` (the package itself) -> ``""``."""
    if path == "__init__.py":
        return ""
    return path.removesuffix("/").removesuffix(".py").replace("/", ".")


def documented_layers() -> list[tuple[str, ...]]:
    """The layer list of the doc (its first ``text`` block), top to bottom: each line names the
    entries of one layer, then two spaces and what they hold."""
    layers = []
    for line in blocks("text")[0].splitlines():
        if not line.strip() or line.startswith(" "):
            continue
        names = re.split(r"\s{2,}", line, maxsplit=1)[0]
        layers.append(tuple(entry(path) for path in names.split(" ")))
    return layers


def test_the_doc_lists_the_layers_that_test_layers_enforces() -> None:
    assert documented_layers() == list(reversed(LAYERS))


def test_each_entry_of_the_layer_list_is_a_module_or_a_package() -> None:
    for layer in documented_layers():
        for name in layer:
            path = SRC / name.replace(".", "/")
            assert name == "" or path.is_dir() or path.with_suffix(".py").is_file(), name


def named_paths() -> set[str]:
    """Every path the doc names: link targets, and `code` that is a path under a folder (a
    bare ``config.py`` is a task's room, ``plots/`` a folder of a run)."""
    doc = text()
    links = re.findall(r"\]\((\.\./[^)#]+)\)", doc)
    code = re.findall(r"`([\w.<>-]+/[\w./<>-]+(?:\.py|/))`", doc)
    return {*links, *code}


def test_every_path_the_doc_names_exists() -> None:
    missing = []
    for path in named_paths():
        if "<" in path:  # a pattern: tasks/<name>/spec.py
            continue
        places = (DOC.parent / path,) if path.startswith("..") else (SRC / path, ROOT / path)
        if not any(place.exists() for place in places):
            missing.append(path)
    assert missing == []
    assert "tasks/request.py" in named_paths()  # the check reads the paths it should


def test_every_field_of_a_task_spec_is_in_the_table() -> None:
    from ffnlp.tasks.registry import TaskSpec

    table = text().split("| field | what it says | who asks |")[1].split("\n\n")[0]
    for spec_field in dataclasses.fields(TaskSpec):
        assert f"`{spec_field.name}`" in table, spec_field.name


def appears_in_order(snippet: str, source: str) -> bool:
    """Whether ``snippet``'s lines stand in ``source`` as written (indentation aside, blank
    lines aside); a line ``...`` stands for lines left out."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    start = 0
    for part in re.split(r"^\s*\.\.\.\s*$", snippet, flags=re.M):
        wanted = [line.strip() for line in part.splitlines() if line.strip()]
        if not wanted:
            continue
        for i in range(start, len(lines) - len(wanted) + 1):
            if lines[i : i + len(wanted)] == wanted:
                start = i + len(wanted)
                break
        else:
            return False
    return True


TOY_CODE = "\n".join(
    path.read_text(encoding="utf-8")
    for path in (
        ROOT / "tests" / "tasks" / "toy_regression" / "task.py",
        ROOT / "tests" / "tasks" / "toy_regression" / "__init__.py",
        ROOT / "tests" / "tasks" / "test_registry.py",
    )
)


@pytest.mark.parametrize("number", range(6))
def test_the_toy_task_the_doc_shows_is_the_tested_code(number: int) -> None:
    shown = blocks("python", after="## Adding a task, step by step")
    assert len(shown) == 6
    assert appears_in_order(shown[number], TOY_CODE), shown[number]


def test_the_comparison_sees_a_changed_line() -> None:
    shown = blocks("python", after="## Adding a task, step by step")[2]
    assert not appears_in_order(shown.replace("run.callbacks", "callbacks"), TOY_CODE)
    assert not appears_in_order("def train_toy(\n...\nclass ToyConfig:", TOY_CODE)  # order
