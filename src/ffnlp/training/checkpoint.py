"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then rename.

A process killed at any moment leaves either the previous checkpoint or the new one, never a torn
file: ``os.replace`` is atomic on POSIX and Windows.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ffnlp.errors import ModelFileError

CHECKPOINT_FILE = "state.pt"


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint" / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelFileError(
            f"no checkpoint at {path}; --resume needs a run directory that was trained with "
            "train.checkpoint = true"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file
        raise ModelFileError(f"checkpoint {path} cannot be read ({exc}); it may be corrupted") from None
