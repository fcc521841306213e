"""Reading a folder's own files for a report (never through a symbolic link out of it); the
pages' HTML is made by :mod:`ffnlp.report.markup`."""

from __future__ import annotations

from pathlib import Path

from ffnlp.errors import ModelFileError


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
