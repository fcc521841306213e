"""Helper threads that share one batch between cores, for the word2vec kernels.

Each torch operation releases the GIL, so Python threads that each take a slice of a batch run at
the same time: gensim's worker threads, without the fine-grained barriers of torch's intra-op
parallelism, which stall on a loaded machine. The threads write disjoint slices (or disjoint rows),
so the result does not depend on timing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

MIN_SLICE = 256  # rows; below this a thread hand-off costs more than it saves


class SharedPool:
    """The process's helper threads for the fused steps: made on first use, grown on demand (the
    smaller pool it replaces is shut down), joined by the interpreter at exit."""

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self.size = 0

    def get(self, size: int) -> ThreadPoolExecutor:
        if self.executor is None or self.size < size:
            if self.executor is not None:
                self.executor.shutdown(wait=False)  # its threads end once idle
            self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ffnlp-w2v")
            self.size = size
        return self.executor


_POOL = SharedPool()  # holds no thread until the first parallel job


def in_slices(
    fn: Callable[[int, int], None], n: int, workers: int, min_slice: int = MIN_SLICE
) -> None:
    """Run ``fn(lo, hi)`` over ``workers`` contiguous slices of range(n), at the same time."""
    workers = max(1, min(workers, n // min_slice))
    bounds = [n * i // workers for i in range(workers + 1)]
    jobs = [functools.partial(fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    in_parallel(jobs, workers)


def in_parallel(jobs: Sequence[Callable[[], Any]], workers: int) -> None:
    """Run independent jobs on up to ``workers`` threads, thread i taking jobs i, i + workers, ..."""

    def run(share: Sequence[Callable[[], Any]]) -> None:
        with torch.no_grad():  # grad mode is per thread
            for job in share:
                job()

    shares = [jobs[i::workers] for i in range(min(max(workers, 1), len(jobs)))]
    if len(shares) == 1:
        run(shares[0])
        return
    pool = _POOL.get(len(shares) - 1)
    futures = [pool.submit(run, share) for share in shares[1:]]
    run(shares[0])
    for f in futures:
        f.result()
