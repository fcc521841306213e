"""Reading a report page back: its images, its links."""

from __future__ import annotations

import base64
import struct
from html.parser import HTMLParser
from pathlib import Path

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
