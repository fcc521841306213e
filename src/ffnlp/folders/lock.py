"""A lock file that one process at a time holds: ``fcntl.flock``, so the kernel releases it
when its holder dies, however it dies.

The run lock (``.OUT.lock``, :class:`ffnlp.folders.transaction.RunLock`) and the study's
set-up lock (``DIR/.tune.lock``, :class:`ffnlp.tune.study.StudyLock`) are both this: the file
is opened (created, never through a symbolic link) and locked; its holder removes it while
still holding it when it lets go, so that no lock file is left behind; and a process that
locked a file removed meanwhile locks the one now at the path instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from ffnlp.fileio import new_file_mode, output_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; nothing is locked
    fcntl = None  # type: ignore[assignment]


class Busy(Exception):
    """Another process holds the lock (:func:`hold` without waiting)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder  # what the holder wrote into the file (its pid), or ""


def hold(path: Path, wait: bool = True, remake: Callable[[], bool] | None = None) -> int | None:
    """Lock ``path``; its open descriptor (None where the platform has no ``flock``).

    ``wait``: block until the holder lets go; otherwise :class:`Busy` says who holds it. A
    folder missing from under ``path`` is an :class:`~ffnlp.errors.OutputError` naming it,
    unless ``remake()`` makes the folder again and returns True (then the lock is tried again).
    """
    if fcntl is None:  # pragma: no cover
        return None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, new_file_mode())
        except FileNotFoundError as exc:
            if remake is not None and remake():
                continue
            raise output_error(exc, path) from None
        except OSError as exc:
            raise output_error(exc, path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise Busy(holder) from None
        # the holder before us may have removed the file after we opened it: lock the file
        # that is at the path now, or a third process could lock a new one beside us
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def let_go(path: Path, fd: int) -> None:
    """Remove the lock file ``path`` (while still holding it: see :func:`hold`) and unlock it."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)
