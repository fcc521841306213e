"""What every report page shares: the style sheet, number formatting, embedded images, and
reading a folder's own files (never through a symbolic link out of it)."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from ffnlp.errors import ModelFileError

STYLE = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}img{max-width:100%}
.muted{color:#777}.note{background:#fff8e1;border-left:3px solid #f0b400;padding:.4em .8em}
"""


def fmt(v: Any) -> str:
    """A table cell: floats to 4 decimals, anything else as escaped text."""
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def document(title: str, body: str) -> str:
    """A whole page around ``body`` (already HTML)."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8">\n<title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>"
    )


def note(text: str) -> str:
    """A highlighted paragraph that says why something is missing or what to do."""
    return f"<p class='note'>{html.escape(text)}</p>"


def img(png: bytes, alt: str) -> str:
    """An <img> holding ``png`` as a data URI: the page needs no other file."""
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def link(target: Path, page: Path, text: str) -> str:
    """An <a> to ``target`` relative to the folder of ``page`` (so the folder can move)."""
    href = os.path.relpath(target.resolve(), page.resolve().parent)
    href = Path(href).as_posix()
    return f"<a href='{html.escape(href)}'>{html.escape(text)}</a>"


def own_file(folder: Path, path: Path) -> bool:
    """Whether ``path`` is a regular file of ``folder`` itself: a symbolic link (which may
    point anywhere) is never read into a report."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:  # a folder on the way is a link out of the run
        return False
    return True


def own_text(folder: Path, path: Path) -> str:
    """The text of one of ``folder``'s own files ("" when it has none)."""
    if not own_file(folder, path):
        return ""
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror or exc})") from None
