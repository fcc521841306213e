"""ffnlp.report.markup: the one way HTML gets into a report page."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest

import ffnlp.report
from ffnlp.report import markup
from ffnlp.report.markup import Html, cat, document, el, img, join, link, number, table, text
from tests.report.pages import structure

REPORT = Path(ffnlp.report.__file__).parent
TAG = re.compile(r"<\s*/?\s*[A-Za-z!]")


def test_text_escapes_every_value_numbers_and_containers_included() -> None:
    assert str(text("<b>&'\"")) == "&lt;b&gt;&amp;&#x27;&quot;"
    assert str(text(0.5)) == "0.5000" and str(text(3)) == "3" and str(text(True)) == "True"
    assert str(text(math.nan)) == "nan" and str(text(None)) == "None"
    assert str(text(["<x>", 1])) == "[&#x27;&lt;x&gt;&#x27;, 1]"
    assert str(text({"<k>": "<v>"})) == "{&#x27;&lt;k&gt;&#x27;: &#x27;&lt;v&gt;&#x27;}"


def test_only_builder_made_html_passes_unescaped() -> None:
    cell = el("td", "<i>", el("code", "x<y"))
    assert str(cell) == "<td>&lt;i&gt;<code>x&lt;y</code></td>"
    with pytest.raises(TypeError, match="made by the functions of ffnlp.report.markup only"):
        Html("<script>", object())
    assert str(cat("<", el("p", ">"))) == "&lt;<p>&gt;</p>"
    assert str(join(["<a>", el("code", "b")], " & ")) == "&lt;a&gt; &amp; <code>b</code>"


def test_elements_and_attributes_come_from_fixed_sets() -> None:
    with pytest.raises(ValueError, match="no <script> in a report page"):
        el("script", "alert(1)")
    with pytest.raises(ValueError, match="no onerror= attribute"):
        el("img", onerror="alert(1)")
    with pytest.raises(ValueError, match="<img> has no content"):
        el("img", "x", alt="a")
    assert str(el("p", "x", class_="a' onclick='b")) == "<p class='a&#x27; onclick=&#x27;b'>x</p>"
    assert el("p", id=None) == el("p")


def test_numbers_are_formatted_only_when_they_are_numbers() -> None:
    assert str(number(0.000123456, ".3g")) == "0.000123"
    assert str(number("<b>", ".3g")) == "&lt;b&gt;"
    assert str(number(True, ".3g")) == "True"


def test_a_link_is_a_relative_path_never_a_url(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    odd = tmp_path / "javascript:alert(1)#x?y"
    odd.mkdir()
    assert str(link(odd, page, "run")) == "<a href='./javascript%3Aalert%281%29%23x%3Fy'>run</a>"
    (tmp_path / "sub").mkdir()
    assert str(link(tmp_path / "a b", tmp_path / "sub" / "p.html", "<x>")) == (
        "<a href='../a%20b'>&lt;x&gt;</a>"
    )


def test_a_whole_page_holds_only_known_elements() -> None:
    page = document(
        "<title>",
        el("h1", "</title><script>"),
        table(["<th>", 1.5], [["<td>", 2], [el("code", "x"), None]]),
        img(b"\x89PNG", "alt' onerror='x"),
    )
    events = structure(page)
    assert [tag for kind, tag, _ in events if kind == "start"].count("td") == 4
    assert "<script>" not in page and "<title>&lt;title&gt;</title>" in page


def test_no_report_module_but_markup_writes_a_tag() -> None:
    """The page builders cannot bypass the escaping: no string in their source holds a tag
    (an f-string's literal parts are string constants too), and none imports html.escape."""
    modules = sorted(p for p in REPORT.glob("*.py") if p.name != "markup.py")
    assert {p.name for p in modules} >= {"html.py", "group.py", "study.py", "page.py"}
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                assert not TAG.search(node.value), f"{path.name}:{node.lineno}: {node.value!r}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None)
                assert "html" not in names and module != "html", f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "Html", f"{path.name}:{node.lineno}: Html() outside markup"
    assert markup.TAGS.isdisjoint({"script", "iframe", "object", "embed", "style", "form"})
