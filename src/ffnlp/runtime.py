"""What a training process sets up once: seeds, the allocator, the threads (chosen by
:mod:`ffnlp.threads`), the device; and which rank of a torchrun job it is."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ffnlp.errors import ConfigError
from ffnlp.threads import set_threads


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


_ALLOCATOR_TUNED = [False]


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 32 MB for reuse instead of giving them
    back to the system at once.

    A training step allocates the same large tensors every time (a (batch, vocabulary) score
    matrix, gradients of the embedding table...). By default glibc hands blocks of this size
    back to the kernel when they are freed, so the next step pays a page fault for every 4 kB of
    them again: a quarter of a feed-forward LM step on this project's machine. Keeping them makes
    the resident memory stay at its peak (which it reaches anyway). Once per process; set
    ``FFNLP_MALLOC_TUNING=0`` to leave malloc alone. Returns whether the settings were applied
    (only with glibc, i.e. on Linux).
    """
    if _ALLOCATOR_TUNED[0]:
        return True
    if os.environ.get("FFNLP_MALLOC_TUNING", "1") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1  # glibc's largest
        ok = libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024) == 1 and ok
    except (OSError, AttributeError):  # not glibc
        return False
    _ALLOCATOR_TUNED[0] = ok
    return ok


def prepare_process(threads: int | str = 0) -> int:
    """The process-wide settings a training run wants, made once by whoever starts it (the
    Trainer leaves the process alone): ``threads`` intra-op threads (0 = every available core,
    see :func:`ffnlp.threads.set_threads`; "auto" leaves them to :func:`ffnlp.threads.choose_threads`, which
    needs the model) and malloc keeping freed memory for reuse (:func:`keep_freed_memory`).
    Returns the number of threads in use."""
    n = set_threads(threads) if isinstance(threads, int) else torch.get_num_threads()
    keep_freed_memory()
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
