"""How many threads a training run gets, and setting them: the one module of thread choice.

The bounds of every thread setting (:func:`max_threads`, :func:`thread_problem`), the cores a
process may use (:func:`available_cores`, :func:`physical_cores`), torch's intra-op threads
(:func:`set_threads`), and the rule behind ``train.threads = "auto"``.

torch splits each matrix product of a step between its OpenMP threads, and every product ends at
a barrier where the threads wait for the slowest. A small product is over before the hand-off
pays for itself; and on a machine shared with other work, a thread that the system puts aside
holds every other one at the barrier (the SST-2 MLP preset took 19 times fastText's time on a
busy 2-core machine with every core in use, against about 2 times with one thread). So the rule
looks at the work of one step, counted from the model:

- a step that runs its work in its own worker threads (``Step.own_threads``, e.g. word2vec's
  fused update with ``model.workers``) gets 1 intra-op thread: more would compete with them;
- otherwise one thread per :data:`MIN_WORK_PER_THREAD` multiply-adds of a step, at least 1, at
  most the physical cores the process may use (its CPU affinity, hyper-threads counted once);
- except that a small step on a machine whose cores are all taken by other runnable threads
  (``/proc/loadavg``, sampled when training starts) gets 2: the scheduler shares a busy CPU per
  thread, and with ``OMP_WAIT_POLICY=PASSIVE`` the second thread sleeps instead of spinning
  when it waits. On a quiet machine that thread would only add hand-offs.

The threshold comes from ``bench/threads.py`` (when two threads beat one on a layer's
forward + backward + update); the measurements are in docs/training.md.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ffnlp.errors import ConfigError

log = logging.getLogger(__name__)

MIN_WORK_PER_THREAD = 50_000_000
"""Multiply-adds of a step's products below which a second thread costs more than it saves."""


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


@dataclass(frozen=True)
class ThreadChoice:
    count: int  # intra-op threads
    reason: str


def parse_cpu_list(text: str) -> frozenset[int]:
    """A Linux CPU list such as ``0-3,8,10-11`` as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(cpus)


def read_siblings(cpu: int) -> frozenset[int] | None:
    """The logical CPUs that share ``cpu``'s physical core (Linux sysfs), or None if unknown."""
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    try:
        return parse_cpu_list(path.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def usable_cpus() -> frozenset[int]:
    """The logical CPUs this process may run on (its affinity; every CPU where that is unknown)."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return frozenset(range(os.cpu_count() or 1))


def physical_cores(
    cpus: Iterable[int] | None = None,
    siblings: Callable[[int], frozenset[int] | None] = read_siblings,
) -> int:
    """Physical cores among ``cpus`` (default: :func:`usable_cpus`): hyper-threads of one core
    count once; a CPU whose siblings are unknown counts as a core of its own."""
    allowed = frozenset(usable_cpus() if cpus is None else cpus)
    cores = {((siblings(cpu) or frozenset()) & allowed) | {cpu} for cpu in allowed}
    return max(1, len(cores))


def multiply_adds_per_step(model: nn.Module, batch_size: int) -> int:
    """A rough count of the multiply-adds in one forward pass over a batch: every ``nn.Linear``
    (in x out per example) and one row per example of every embedding table (a look-up moves
    rows rather than multiplying: it barely gains from threads however large the table)."""
    work = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            work += module.in_features * module.out_features * batch_size
        elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            work += module.embedding_dim * batch_size
    return work


def other_runnable_threads(samples: int = 5, interval: float = 0.01) -> int | None:
    """Threads of other processes ready to run right now (Linux: the 4th field of
    /proc/loadavg counts runnable threads, this one included), the median of a few samples;
    None where that is unknown."""
    counts = []
    for i in range(samples):
        try:
            field = Path("/proc/loadavg").read_text(encoding="ascii").split()[3]
            counts.append(max(0, int(field.split("/")[0]) - 1))
        except (OSError, ValueError, IndexError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return sorted(counts)[len(counts) // 2]


def choose_threads(
    setting: int | str,
    model: nn.Module,
    batch_size: int,
    own_threads: bool = False,
    cores: int | None = None,
    busy: Callable[[], int | None] | None = None,
) -> ThreadChoice:
    """The intra-op thread count for training ``model`` with batches of ``batch_size``:
    ``setting`` N > 0 as given, 0 every usable core, "auto" by the rule above (``cores``: the
    physical cores to use at most, default :func:`physical_cores`). Logs the choice."""
    if setting != "auto":
        n = int(setting)
        if n > 0:
            choice = ThreadChoice(n, f"train.threads = {n}")
        else:
            choice = ThreadChoice(available_cores(), "train.threads = 0: every available core")
    elif own_threads:
        choice = ThreadChoice(1, "auto: the step runs its work in its own worker threads")
    else:
        limit = cores if cores is not None else physical_cores()
        work = multiply_adds_per_step(model, batch_size)
        n = max(1, min(limit, work // MIN_WORK_PER_THREAD))
        size = f"a step is about {work:.2g} multiply-adds"
        probe = busy or other_runnable_threads  # how busy the machine is (tests pass their own)
        others = probe() if n == 1 and limit >= 2 else None
        if others is not None and others >= limit:
            # the cores are taken by other work: the scheduler shares them per thread, and a
            # second (passively waiting) thread gets this run its share (measured under
            # bench/classify.py --background-load 2: 2 threads 1.9-2.5x faster than 1)
            n = 2
            why = (
                f"{size}, small, but {others} other threads are ready to run on {limit} "
                "cores: a second thread keeps this run's share of a busy machine"
            )
        elif n == 1:
            why = f"{size}, too little to share (< {2 * MIN_WORK_PER_THREAD:.0g} for 2 threads)"
        elif n == limit:
            why = f"{size}: every physical core the process may use ({limit})"
        else:
            why = f"{size}: one thread per {MIN_WORK_PER_THREAD:.0g} ({limit} cores usable)"
        choice = ThreadChoice(n, f"auto: {why}")
    log.info("threads: %d (%s)", choice.count, choice.reason)
    return choice


def set_threads_for(
    setting: int | str, model: nn.Module, batch_size: int, own_threads: bool = False
) -> ThreadChoice:
    """:func:`choose_threads`, then make torch use that many intra-op threads."""
    choice = choose_threads(setting, model, batch_size, own_threads)
    set_threads(choice.count)
    return choice
