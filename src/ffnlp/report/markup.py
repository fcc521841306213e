"""The HTML of the report pages, escaped by construction.

Every value a page shows comes from a run or study folder (summary.json, metrics.jsonl,
tune.json, rescore.json, trials.csv, config.toml, file names): a user may have edited it, copied
it from elsewhere or crafted it. So the pages are not built from strings: they are built from
:class:`Html` values, which only the functions of this module make.

- :func:`el` makes an element of a fixed set of tags (``TAGS``) with attributes of a fixed set of
  names (``ATTRIBUTES``); each attribute value is escaped (quotes included).
- Every child of an element that is not already :class:`Html` (a string, a number, ``None``, a
  list from a JSON file...) goes through :func:`text`: formatted (floats to 4 decimals) and
  escaped. There is no other way in: a number read from a file is escaped like a label.
- :func:`document` makes the whole page around the body.

An :class:`Html` cannot be made from a string outside this module (the constructor needs a key
this module keeps), and the other report modules hold no markup of their own (a test reads their
source and fails on any string literal with a tag in it). So whatever a file holds, the page holds
no element or attribute that came from it.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

_KEY = object()

TAGS = frozenset(
    {
        "a", "code", "h1", "h2", "h3", "img", "li", "ol", "p", "pre", "span", "table", "td",
        "th", "tr", "ul",
    }
)  # fmt: skip
VOID_TAGS = frozenset({"img"})
ATTRIBUTES = frozenset({"alt", "class", "href", "id", "src"})
# every tag and attribute a page can hold: the above and what document() writes
PAGE_TAGS = TAGS | {"html", "head", "meta", "title", "style", "body"}
PAGE_ATTRIBUTES = ATTRIBUTES | {"charset"}

STYLE = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}img{max-width:100%}
.muted{color:#777}.note{background:#fff8e1;border-left:3px solid #f0b400;padding:.4em .8em}
"""


class Html:
    """A piece of HTML made by this module's functions: the only value a page inserts as it is."""

    __slots__ = ("_markup",)

    def __init__(self, markup: str, key: object) -> None:
        if key is not _KEY:
            raise TypeError("Html is made by the functions of ffnlp.report.markup only")
        self._markup = markup

    def __str__(self) -> str:
        return self._markup

    def __repr__(self) -> str:
        return f"Html({self._markup!r})"

    def __add__(self, other: object) -> Html:
        if not isinstance(other, Html):
            return NotImplemented
        return Html(self._markup + other._markup, _KEY)

    def __bool__(self) -> bool:
        return bool(self._markup)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Html) and other._markup == self._markup

    def __hash__(self) -> int:
        return hash(self._markup)


EMPTY = Html("", _KEY)


def shown(value: object) -> str:
    """A value as a page shows it (before escaping): floats to 4 decimals, the rest as str(),
    a lone surrogate (JSON may hold one: ``"\\ud800"``) as U+FFFD, since a page is UTF-8."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return _utf8(str(value))


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def text(value: object) -> Html:
    """``value`` as text: :class:`Html` as it is, anything else shown (see :func:`shown`) and
    escaped."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(shown(value), quote=True), _KEY)


def number(value: object, spec: str) -> Html:
    """A real number with the format ``spec`` (``".3g"``); anything else as :func:`text`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return text(format(value, spec))
    return text(value)


def cat(*parts: object) -> Html:
    """The parts one after the other, each as :func:`text`."""
    return Html("".join(str(text(p)) for p in parts), _KEY)


def join(parts: Iterable[object], separator: object = ", ") -> Html:
    """The parts with ``separator`` between them, each as :func:`text`."""
    sep = str(text(separator))
    return Html(sep.join(str(text(p)) for p in parts), _KEY)


def el(tag: str, *children: object, **attributes: object) -> Html:
    """``<tag attributes>children</tag>``. ``tag`` is one of TAGS and each attribute name one
    of ATTRIBUTES (``class_`` for class); values are escaped, ``None`` leaves one out."""
    if tag not in TAGS:
        raise ValueError(f"no <{tag}> in a report page")
    attrs = []
    for name, value in attributes.items():
        name = name.rstrip("_")
        if name not in ATTRIBUTES:
            raise ValueError(f"no {name}= attribute in a report page")
        if value is not None:
            attrs.append(f" {name}='{html.escape(shown(value), quote=True)}'")
    start = f"<{tag}{''.join(attrs)}>"
    if tag in VOID_TAGS:
        if children:
            raise ValueError(f"<{tag}> has no content")
        return Html(start, _KEY)
    return Html(start + str(cat(*children)) + f"</{tag}>", _KEY)


def row(*cells: object, head: bool = False) -> Html:
    """A table row of ``cells`` (``<th>`` when ``head``)."""
    return el("tr", *(el("th" if head else "td", c) for c in cells))


def table(head: Iterable[object] | None, rows: Iterable[Iterable[object]]) -> Html:
    """A table: one heading row (or none) and rows of cells."""
    parts = [row(*head, head=True)] if head is not None else []
    parts.extend(row(*cells) for cells in rows)
    return el("table", *parts)


def note(message: object) -> Html:
    """A highlighted paragraph that says why something is missing or what to do."""
    return el("p", message, class_="note")


def muted(*children: object) -> Html:
    """A paragraph in grey: how to re-run, what else there is."""
    return el("p", *children, class_="muted")


def img(png: bytes, alt: object) -> Html:
    """An ``<img>`` holding ``png`` as a data URI: the page needs no other file."""
    data = base64.b64encode(png).decode("ascii")
    return el("img", alt=shown(alt), src=f"data:image/png;base64,{data}")


def link(target: Path, page: Path, label: object) -> Html:
    """An ``<a>`` to ``target`` relative to the folder of ``page`` (so the folder can move).

    The reference is percent-encoded and always a relative path (``./x`` or ``../x``): a folder
    named ``javascript:...`` or ``x?y#z`` is still a file name, never a URL scheme or query."""
    relative = Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()
    if not relative.startswith("../"):
        relative = f"./{relative}"
    return el("a", label, href=quote(relative, safe="/"))


def fraction_or_dash(value: object, spec: str) -> Html:
    """A finite number with ``spec``, else a dash (a missing or non-finite value)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return text(format(value, spec))
    return text("—")


def document(title: object, *body: object) -> str:
    """The whole page: ``title`` (escaped) and the body (each part as :func:`text`)."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8">\n<title>{text(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{cat(*body)}\n</body></html>"
    )
