"""Output paths checked before any work is done: a directory where a file is wanted (or the
reverse), a parent that is a file, a symbolic link where a file is to be written, a folder this
user may not write to (or on a read-only file system). Each is a :class:`ConfigError` naming the
option and the path, raised before a long training or export starts rather than as an
``OSError`` at its end. The writing itself goes through :mod:`ffnlp.fileio`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ffnlp.errors import ConfigError


def output_path(path: object, option: str) -> Path:
    """``path`` as a Path; a ConfigError naming ``option`` when it is not a str or PathLike."""
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise ConfigError(f"{option} must be a path (str or pathlib.Path); got {path!r}")


def check_output_dir(path: object, option: str = "--out", links: bool = True) -> Path:
    """A directory ffnlp may create or write into: not an existing file, not below a file,
    and writable (its nearest existing ancestor, when it does not exist yet). ``links=False``:
    not a symbolic link either (a folder the command owns, whose files it replaces)."""
    p = output_path(path, option)
    if not links and p.is_symlink():
        raise ConfigError(
            f"{option} {p} is a symbolic link; ffnlp does not write through links (it could "
            f"overwrite files elsewhere): give the folder itself, or another {option}"
        )
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {p} is a file, not a directory; choose another {option}")
    _check_parents(p, option)
    _check_writable(p, p, option)
    return p


def check_output_file(path: object, option: str) -> Path:
    """A file ffnlp may (over)write: not a directory, not below a file, in a writable folder
    (its parent folders are made when missing)."""
    p = output_path(path, option)
    if p.is_symlink():
        raise ConfigError(
            f"{option} {p} is a symbolic link; ffnlp does not write through links (it could "
            f"overwrite a file elsewhere): remove the link, or choose another {option}"
        )
    if p.is_dir():
        raise ConfigError(f"{option} {p} is a directory; give a file name (e.g. {p / 'out.txt'})")
    if p.exists() and not p.is_file():
        raise ConfigError(
            f"{option} {p} is not a regular file (a device, a pipe or a socket); the file is "
            f"replaced when it is written, so give the name of a regular file"
        )
    _check_parents(p, option)
    if p.exists() and not os.access(p, os.W_OK):
        why = "it is on a read-only file system" if _read_only(p.parent) else "permission denied"
        raise ConfigError(f"{option} {p} cannot be written ({why})")
    _check_writable(p, p.parent, option)
    return p


def _check_parents(p: Path, option: str) -> None:
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"{option} {p} is below {parent}, which is a file; choose another {option}"
                )
            return


def _check_writable(p: Path, folder: Path, option: str) -> None:
    """``folder`` (where ``p`` goes), or its nearest existing ancestor, is writable."""
    existing = next((q for q in (folder, *folder.parents) if q.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        why = "it is on a read-only file system" if _read_only(existing) else "permission denied"
        raise ConfigError(f"{option} {p}: the folder {existing} cannot be written ({why})")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False
