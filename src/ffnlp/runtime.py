"""Seeds, device and thread selection, run directories."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ffnlp.errors import ConfigError, FfnlpError, Interrupted
from ffnlp.fileio import make_folders, output_error, remove_made
from ffnlp.outputs import check_output_dir
from ffnlp.rundir import default_run_path


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


THREADS_PER_CORE = 4
"""The most threads per available core any setting may ask for (``train.threads``,
``model.workers``): more only wait on each other, and OpenMP or the system gives out before
a million (``train.threads = 1000000`` ended the process with a segmentation fault)."""


def max_threads() -> int:
    """The most threads a setting may ask for: :data:`THREADS_PER_CORE` per available core."""
    return THREADS_PER_CORE * available_cores()


def thread_problem(key: str, value: object) -> str | None:
    """Why ``value`` is too many threads for the option ``key`` (a message naming the bound),
    or None when it is within it (or not a number: the option's own type check says so)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= max_threads():
        return None
    return (
        f"{key} must be at most {max_threads()} ({THREADS_PER_CORE} per available core, "
        f"{available_cores()} here); got {value}"
    )


def set_threads(threads: int = 0) -> int:
    """Use ``threads`` intra-op threads (0 = every available core); return the number set.
    More than :func:`max_threads` is a ConfigError."""
    problem = thread_problem("threads", threads)
    if problem:
        raise ConfigError(problem)
    n = threads if threads > 0 else available_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


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
    see :func:`set_threads`; "auto" leaves them to :func:`ffnlp.threads.choose_threads`, which
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


@contextlib.contextmanager
def group_folder(out: str | Path | None, task: str, root: str | Path = "runs") -> Iterator[Path]:
    """The folder of a group of runs (``ffnlp repeat``, ``classify cv``), made as
    :func:`make_run_dir` makes it. When the command fails (an ffnlp error other than an
    interruption, or an OSError), what it made goes again: the folder when it was new (with the
    parents made for it), else the entries it added; an interrupted group keeps its runs."""
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


def make_run_dir(out: str | Path | None, task: str, root: str | Path = "runs") -> Path:
    """Make and return a folder for results: ``out`` if given, else ``runs/<task>-<date>-<time>``
    (made unique). Training runs open theirs through :func:`ffnlp.tasks.run.start_run` instead,
    which writes them as a whole (see :mod:`ffnlp.rundir`)."""
    path = check_output_dir(out, "--out") if out is not None else default_run_path(task, root)
    path.mkdir(parents=True, exist_ok=True)
    return path
