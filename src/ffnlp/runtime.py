"""Seeds, device and thread selection, run directories."""

from __future__ import annotations

import datetime as _dt
import os
import random
from pathlib import Path

import numpy as np
import torch

from ffnlp.errors import ConfigError


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def available_cores() -> int:
    """Cores this process may use (respects CPU affinity and cgroup-limited containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int = 0) -> int:
    """Use ``threads`` intra-op threads (0 = every available core); return the number set."""
    n = threads if threads > 0 else available_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def select_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu' or 'cuda[:N]'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device is {name!r} but no CUDA device is available; use 'auto' or 'cpu'"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"train.device must be 'auto', 'cpu' or 'cuda[:N]'; got {name!r}")


def rank() -> int:
    """This process's rank under torchrun (0 when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def make_run_dir(out: str | Path | None, task: str, root: str | Path = "runs") -> Path:
    """The run directory: ``out`` if given, else ``runs/<task>-<date>-<time>`` (made unique)."""
    if out is not None:
        path = Path(out)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{task}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path(root) / f"{task}-{stamp}-{n}"
    path.mkdir(parents=True, exist_ok=True)
    return path
