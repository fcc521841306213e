"""The folder of a group of runs (``ffnlp repeat``, ``classify cv``): one run folder per seed or
fold, and the group's own summary.json beside them."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ffnlp.errors import FfnlpError, Interrupted
from ffnlp.fileio import make_folders, output_error, remove_made
from ffnlp.folders.transaction import default_run_path
from ffnlp.outputs import check_output_dir


@contextlib.contextmanager
def group_folder(out: str | Path | None, task: str, root: str | Path = "runs") -> Iterator[Path]:
    """The folder of a group of runs (``ffnlp repeat``, ``classify cv``): ``out``, or a new
    dated folder under ``root``, made with its parents. When the command fails (an ffnlp error
    other than an interruption, or an OSError), what it made goes again: the folder when it was
    new (with the parents made for it), else the entries it added; an interrupted group keeps
    its runs."""
    path = check_output_dir(out, "--out") if out is not None else default_run_path(task, root)
    made = make_folders(path)
    try:
        before = set(os.listdir(path))
    except OSError as exc:
        remove_made(made)
        raise output_error(exc, path) from None
    try:
        yield path
    except Interrupted:
        raise
    except (FfnlpError, OSError):
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
            remove_made(made[:-1])
        else:
            for name in set(os.listdir(path)) - before:
                entry = path / name
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        raise
