"""Reading a report page back: its images, its links."""

from __future__ import annotations

import base64
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        elif tag == "a":
            self.links.append(found.get("href") or "")


def parse(page: str) -> _Collect:
    collect = _Collect()
    collect.feed(page)
    return collect


def png_sizes(page: str) -> list[tuple[int, int]]:
    """(width, height) of every <img>; each must be a PNG data URI (AssertionError otherwise)."""
    sizes = []
    for src in parse(page).images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:60]
        data = base64.b64decode(src[len(prefix) :], validate=True)
        assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 0 and height > 0
        assert data.endswith(b"IEND\xaeB`\x82")  # the whole file, not a truncated one
        sizes.append((width, height))
    return sizes


def linked_files(page_path: Path) -> list[Path]:
    """The files the page's links point to, resolved from the page's folder."""
    page = page_path.read_text(encoding="utf-8")
    return [(page_path.parent / href).resolve() for href in parse(page).links]


# ---------------------------------------------------------------------------------------------
# markup that came from the input


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, tuple[str, ...]]] = []
        self.attrs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, tuple(name for name, _ in attrs)))
        self.attrs.extend((tag, name, value or "") for name, value in attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag, ()))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", "", ()))

    def handle_pi(self, data: str) -> None:
        self.events.append(("pi", "", ()))

    def unknown_decl(self, data: str) -> None:
        self.events.append(("decl", data, ()))


def structure(page: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The page's elements in order (start and end tags with their attribute names), after
    checking each is one the report builder makes: a known tag, a known attribute, a link that
    is a relative path, an image that is an embedded PNG."""
    from ffnlp.report.markup import PAGE_ATTRIBUTES, PAGE_TAGS

    parser = _Structure()
    parser.feed(page)
    parser.close()
    for kind, tag, names in parser.events:
        assert kind in ("start", "end"), (kind, tag)
        assert tag in PAGE_TAGS, tag
        assert set(names) <= PAGE_ATTRIBUTES, (tag, names)
    for tag, name, value in parser.attrs:
        if name == "href":
            assert value.startswith(("./", "../")) and ":" not in value.split("/")[0], value
        if name == "src":
            assert tag == "img" and value.startswith("data:image/png;base64,"), value[:60]
    return parser.events


# each character that means something in HTML, and a harmless one (outside the fuzzing
# alphabets) that takes its place: a page built from defanged files must have the same elements
DEFANG = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\u214b", '"': "\u201c", "'": "\u2018", "=": "\u2261", "/": "\u2215"})  # fmt: skip


def defanged(value: Any) -> Any:
    """``value`` (a JSON value) with every string's HTML characters replaced (see DEFANG)."""
    if isinstance(value, str):
        return value.translate(DEFANG)
    if isinstance(value, list):
        return [defanged(v) for v in value]
    if isinstance(value, dict):
        return {defanged(k): defanged(v) for k, v in value.items()}
    return value
