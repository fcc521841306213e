"""Several processes of one run (torchrun): the process group, each rank's share of the batches,
and the gradient exchange that makes N ranks one process.

``train.batch_size`` is the global batch: under N ranks each rank takes a batch of
``batch_size / N`` examples, every rank draws the same seeded order and takes every N-th of
those batches, so that the N batches of one step are together the batch one process would have
taken. The gradients are then combined across ranks the way the model's loss combines examples:
averaged for a mean loss, summed for a loss whose gradient is the sum's (word2vec's, see
``distributed_reduction`` on the model). Same global batch, same update: N ranks end with the
weights of one process, to float rounding.

The process group is started from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) by :func:`session`, which every ``train_*`` recipe enters; a
collective that fails because another rank is gone (killed, its machine lost) or does not answer
within ``FFNLP_DIST_TIMEOUT`` seconds becomes :class:`~ffnlp.errors.RankLost`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ffnlp.errors import ConfigError, DataError, RankLost
from ffnlp.training.data import BatchSource, batch_size_of

log = logging.getLogger(__name__)

# what torchrun sets for every worker; all of them, or none (one process)
ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT_VARIABLE = "FFNLP_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds a collective waits for the other ranks before giving up


def is_distributed() -> bool:
    """Whether a process group is running (torchrun, or ``init_process_group`` by hand)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


# --------------------------------------------------------------------------- the process group


def environment() -> dict[str, str] | None:
    """torchrun's variables when this process is one of several, None when it runs alone.
    Some of them without the others is a ConfigError naming the missing ones."""
    present = {k: os.environ[k] for k in ENVIRONMENT if os.environ.get(k, "") != ""}
    if not present:
        return None
    missing = [k for k in ENVIRONMENT if k not in present]
    if missing:
        raise ConfigError(
            f"the environment names this process as one of several ({', '.join(present)} set) "
            f"but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: start "
            "the processes with torchrun (it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and "
            "MASTER_PORT), or unset " + ", ".join(present) + " to run one process"
        )
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        if not present[key].isdigit():
            raise ConfigError(
                f"environment variable {key} must be a whole number; got {present[key]!r}"
            )
    if int(present["RANK"]) >= int(present["WORLD_SIZE"]):
        raise ConfigError(
            f"environment variable RANK ({present['RANK']}) must be below WORLD_SIZE "
            f"({present['WORLD_SIZE']})"
        )
    return present


def timeout_seconds() -> float:
    """How long a collective waits for the other ranks: FFNLP_DIST_TIMEOUT (seconds), default
    300."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if text == "":
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(
            f"environment variable {TIMEOUT_VARIABLE} must be a number of seconds > 0; got {text!r}"
        )
    return value


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Start the process group from torchrun's environment for the duration of a run (nothing
    when the process runs alone, or when a group is already running) and end it afterwards."""
    env = environment()
    if env is None or int(env["WORLD_SIZE"]) == 1 or is_distributed():
        yield
        return
    if not torch.distributed.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed: run one process")
    # gloo for CPU tensors, NCCL for CUDA ones when there is a GPU
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(env["LOCAL_RANK"]) % torch.cuda.device_count())
    timeout = timeout_seconds()
    try:
        store = attempt_store(env, timeout)
        if store is None:
            torch.distributed.init_process_group(
                backend, timeout=datetime.timedelta(seconds=timeout)
            )
        else:
            torch.distributed.init_process_group(
                backend,
                store=store,
                rank=int(env["RANK"]),
                world_size=int(env["WORLD_SIZE"]),
                timeout=datetime.timedelta(seconds=timeout),
            )
    except (RuntimeError, ValueError, OSError) as exc:
        raise RankLost(
            f"the {env['WORLD_SIZE']} processes did not meet at {env['MASTER_ADDR']}:"
            f"{env['MASTER_PORT']} ({first_line(exc)})"
        ) from None
    log.info("rank %s of %s (%s)", env["RANK"], env["WORLD_SIZE"], backend)
    failed = False
    try:
        yield
    except RankLost:
        failed = True
        raise
    finally:
        # after a lost rank the group is broken: leave it to the end of the process
        if not failed:
            torch.distributed.destroy_process_group()


def attempt_store(env: dict[str, str], timeout: float) -> Any:
    """Under torchrun's agent, the rendezvous store with the keys of this attempt only.

    torchrun hands its workers the store of its own rendezvous, which outlives a restart
    (``--max-restarts``): the workers of a second attempt would read the addresses that the
    first attempt's processes published there and fail to connect to them (PyTorch issue
    135712). A prefix per attempt (TORCHELASTIC_RESTART_COUNT) keeps the attempts apart.
    None outside torchrun's agent (the environment's store as it is)."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "")
    if not attempt.isdigit():
        return None
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "") == "True"
    base = torch.distributed.TCPStore(
        env["MASTER_ADDR"],
        int(env["MASTER_PORT"]),
        int(env["WORLD_SIZE"]),
        # the agent hosts the store it shares; otherwise rank 0 hosts one, as env:// does
        is_master=not agent_store and env["RANK"] == "0",
        timeout=datetime.timedelta(seconds=timeout),
        multi_tenant=not agent_store,
    )
    return torch.distributed.PrefixStore(f"ffnlp/attempt-{attempt}/", base)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def lost(exc: BaseException, what: str) -> RankLost:
    return RankLost(
        f"another process of this run stopped or stopped answering during {what} "
        f"({first_line(exc)}; collectives wait {timeout_seconds():g} s, {TIMEOUT_VARIABLE})"
    )


# -------------------------------------------------------------------------------- the batches


def rank_batch_size(batch_size: int) -> int:
    """Each rank's share of the global ``batch_size``; a size the ranks cannot share evenly is a
    ConfigError."""
    world = world_size()
    if batch_size % world:
        raise ConfigError(
            f"train.batch_size ({batch_size}) is the global batch and must be a multiple of the "
            f"number of processes ({world}); use e.g. {batch_size - batch_size % world or world}"
        )
    return batch_size // world


class RankShare:
    """This process's share of an epoch's batches (all of them when it is the only one), as an
    iterator.

    Every rank draws the same batches (each ``batch_size / N`` examples) in the same order and
    takes every N-th of them: the N consecutive batches of a step are the global batch one
    process would take. ``scale`` is the factor of the last yielded batch's gradient that makes
    the ranks' mean the global batch's mean when the N batches differ in size (the end of an
    epoch): N * (its examples) / (the step's examples), 1 for equal batches. When the last step
    of an epoch has fewer batches than there are ranks, a rank without one gets a stand-in (the
    step's last batch) with ``phantom`` True and ``scale`` 0: it takes part in the exchange with
    a zero gradient of the right shapes, so every rank takes the same steps as one process.
    """

    def __init__(self, batches: Iterator[dict[str, Any]], rank_batches: list[int] | None = None):
        self.scale, self.phantom = 1.0, False
        self._batches = batches
        if not is_distributed():
            self._inner = batches
        elif rank_batches is not None:
            self._inner = self._own(rank_batches)
        else:
            self._inner = self._every_nth()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._inner

    def _every_nth(self) -> Iterator[dict[str, Any]]:
        world, me = torch.distributed.get_world_size(), torch.distributed.get_rank()
        group: list[dict[str, Any]] = []
        for batch in self._batches:
            group.append(batch)
            if len(group) == world:
                yield self._take(group, world, me)
                group = []
        if group:
            yield self._take(group, world, me)

    def _own(self, rank_batches: list[int]) -> Iterator[dict[str, Any]]:
        """Sharded input: every batch of this rank's own data, then (when another rank has more
        batches this epoch) stand-ins until every rank has taken as many steps. A real batch's
        factor makes the step's gradient the mean of the batches of the ranks that still have
        data (N / their number)."""
        world = len(rank_batches)
        last: dict[str, Any] | None = None
        for i, batch in enumerate(self._batches):
            live = sum(1 for n in rank_batches if n > i)
            self.scale, self.phantom = world / max(live, 1), False
            last = batch
            yield batch
        assert last is not None  # every rank has a batch (see plan_steps)
        mine = rank_batches[torch.distributed.get_rank()]
        for _ in range(mine, max(rank_batches)):
            self.scale, self.phantom = 0.0, True
            yield last

    def gradient_scale(self, reduction: str) -> float:
        """The factor of the last yielded batch's gradient for a loss that combines examples by
        ``reduction``: ``scale`` for a mean; for a sum every rank's whole gradient, none from a
        stand-in."""
        if reduction == "mean":
            return self.scale
        return 0.0 if self.phantom else 1.0

    def _take(self, group: list[dict[str, Any]], world: int, me: int) -> dict[str, Any]:
        sizes = [batch_size_of(b) for b in group]
        if me >= len(group):
            self.scale, self.phantom = 0.0, True
            return group[-1]
        self.scale, self.phantom = world * sizes[me] / max(sum(sizes), 1), False
        return group[me]


def rank_share(
    batches: Iterator[dict[str, Any]], rank_batches: list[int] | None = None
) -> RankShare:
    """This process's share of ``batches`` (each of the rank's size): see :class:`RankShare`.
    ``rank_batches``: with sharded input, every rank's number of batches this epoch (each rank's
    ``batches`` are then its own data, all taken)."""
    return RankShare(batches, rank_batches)


def rank_steps(source: BatchSource, batch_size: int) -> int:
    """Steps of an epoch of ``source`` in batches of ``batch_size`` (each rank's)."""
    return -(-source.num_batches(batch_size) // world_size())


def shard_batches(source: BatchSource, batch_size: int) -> list[int]:
    """Sharded input: every rank's number of batches of its own ``source`` (an epoch then takes
    as many steps as the rank with the most)."""
    return [int(n) for n in gather_objects(source.num_batches(batch_size), "the shard sizes")]


def plan_steps(source: BatchSource, batch_size: int, sharded: bool) -> tuple[list[int] | None, int]:
    """Every rank's number of batches per epoch (``sharded``: each rank's ``source`` is its own
    shards, taken whole; None otherwise) and the steps of an epoch. A rank whose shards hold no
    example is a DataError."""
    if not (sharded and is_distributed()):
        return None, max(1, rank_steps(source, batch_size))
    rank_batches = shard_batches(source, batch_size)
    empty = [r for r, n in enumerate(rank_batches) if n == 0]
    if empty:
        raise DataError(
            f"the training shards of process {empty[0]} hold no example; every process "
            "needs data: remove empty shards or run fewer processes"
        )
    return rank_batches, max(rank_batches)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The shuffling seed of one rank's own shards in one epoch: independent across ranks and
    epochs, and the same again when the run resumes (nothing to save in a checkpoint)."""
    return (seed * 1_000_003 + epoch * 8191 + rank * 131_071 + 1) % 2**63


@contextlib.contextmanager
def step_random_stream(seed: int, step: int) -> Iterator[None]:
    """Each rank's random draws (dropout) in one step from its own stream, seeded by (seed, step,
    rank): independent across ranks, and the same again when a lost run resumes at any step. A
    step lost with a rank (RankLost) leaves the stream as before it."""
    torch.manual_seed((seed * 1_000_003 + step * world_size() + rank()) % 2**63)
    rng = torch.get_rng_state()
    try:
        yield
    except RankLost:
        torch.set_rng_state(rng)  # as before the step that did not happen (dropout draws)
        raise


# ------------------------------------------------------------------------ the gradient exchange


@dataclass
class ExchangeStats:
    """What the gradient exchange cost this process: bytes it sent (a ring all-reduce sends
    2(N-1)/N of the buffer; an all-gather (N-1) times its share) and seconds spent waiting in
    collectives, over ``steps`` steps."""

    steps: int = 0
    bytes_sent: float = 0.0
    seconds: float = 0.0
    sparse_tables: int = 0  # tables sent as rows
    dense_tables: int = 0  # sparse-gradient tables sent dense (their rows were the larger)

    def as_dict(self) -> dict[str, float]:
        n = max(self.steps, 1)
        return {
            "steps": self.steps,
            "bytes_per_step": self.bytes_sent / n,
            "seconds_per_step": self.seconds / n,
            "sparse_exchanges": self.sparse_tables,
            "dense_exchanges_of_sparse_tables": self.dense_tables,
        }


STATS = ExchangeStats()


def exchange_gradients(params: list[torch.Tensor], reduction: str = "mean") -> None:
    """Combine every gradient across the ranks: their mean (``reduction = "mean"``) or sum.

    Dense gradients travel in one flat all-reduce. A sparse gradient (an embedding table's,
    ``train.sparse``) travels as the rows this step touched (an all-gather of row numbers and
    rows) when that is fewer bytes than the dense table's all-reduce, and stays sparse, so that
    SparseAdam and sparse SGD move only the touched rows, as one process would.
    """
    world = torch.distributed.get_world_size()
    started = time.perf_counter()
    try:
        dense = [p for p in params if p.grad is not None and not p.grad.is_sparse]
        sparse = [p for p in params if p.grad is not None and p.grad.is_sparse]
        _reduce_dense(dense, world)
        for p in sparse:
            _exchange_sparse(p, world)
    except RankLost:
        raise
    except RuntimeError as exc:  # gloo / NCCL: a peer closed the connection or timed out
        raise lost(exc, "the gradient exchange") from None
    if reduction == "mean":
        for p in params:
            if p.grad is not None:
                if p.grad.is_sparse:
                    p.grad = torch.sparse_coo_tensor(
                        p.grad._indices(),
                        p.grad._values() / world,
                        p.grad.shape,
                        check_invariants=False,
                    )._coalesced_(True)
                else:
                    p.grad.div_(world)
    STATS.steps += 1
    STATS.seconds += time.perf_counter() - started


def _reduce_dense(params: list[torch.Tensor], world: int) -> None:
    by_kind: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        assert p.grad is not None
        by_kind.setdefault((p.grad.dtype, p.grad.device), []).append(p)
    for group in by_kind.values():
        grads = [p.grad for p in group if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        STATS.bytes_sent += ring_bytes(flat.numel() * flat.element_size(), world)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n


def ring_bytes(size: float, world: int) -> float:
    """Bytes one rank sends in a ring all-reduce of ``size`` bytes."""
    return 2.0 * (world - 1) / world * size


def _exchange_sparse(p: torch.Tensor, world: int) -> None:
    """All-gather the touched rows of a sparse (rows x dim) gradient, or all-reduce it dense
    when that is smaller; the result is sparse with the union of the ranks' rows."""
    grad = p.grad
    assert grad is not None
    grad = grad.coalesce()
    rows, values = grad.indices()[0], grad.values()  # (R,), (R, dim...)
    width = math.prod(values.shape[1:])  # 1 for a vector's entries
    row_bytes = width * values.element_size() + 8  # a row and its number
    counts = torch.zeros(world, dtype=torch.int64)
    counts[torch.distributed.get_rank()] = rows.numel()
    torch.distributed.all_reduce(counts)
    most = int(counts.max())
    sparse_bytes = (world - 1) * most * row_bytes
    dense_bytes = ring_bytes(grad.shape[0] * (width + 1) * values.element_size(), world)
    if sparse_bytes <= dense_bytes:
        padded_rows = torch.full((most,), -1, dtype=torch.int64, device=rows.device)
        padded_rows[: rows.numel()] = rows
        padded_values = values.new_zeros((most, *values.shape[1:]))
        padded_values[: rows.numel()] = values
        all_rows = [torch.empty_like(padded_rows) for _ in range(world)]
        all_values = [torch.empty_like(padded_values) for _ in range(world)]
        torch.distributed.all_gather(all_rows, padded_rows)
        torch.distributed.all_gather(all_values, padded_values)
        STATS.bytes_sent += sparse_bytes
        STATS.sparse_tables += 1
        keep = [r >= 0 for r in all_rows]
        indices = torch.cat([r[k] for r, k in zip(all_rows, keep, strict=True)]).unsqueeze(0)
        rows_values = torch.cat([v[k] for v, k in zip(all_values, keep, strict=True)])
    else:
        # dense, with one more column that marks the touched rows, so that the result keeps
        # exactly the rows some rank touched
        table = values.new_zeros((grad.shape[0], width + 1))
        table[rows, :-1] = values.reshape(rows.numel(), width)
        table[rows, -1] = 1
        torch.distributed.all_reduce(table)
        STATS.bytes_sent += ring_bytes(table.numel() * table.element_size(), world)
        STATS.dense_tables += 1
        touched = (table[:, -1] > 0).nonzero().squeeze(1)
        indices = touched.unsqueeze(0)
        rows_values = table[touched, :-1].reshape(touched.numel(), *values.shape[1:])
    p.grad = torch.sparse_coo_tensor(
        indices, rows_values, grad.shape, check_invariants=False
    ).coalesce()


def reduce_sums(values: list[float], what: str) -> list[float]:
    """``values`` summed over the ranks (as they are with one process)."""
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    try:
        torch.distributed.all_reduce(t)
    except RuntimeError as exc:
        raise lost(exc, what) from None
    return [float(v) for v in t]


def gather_objects(obj: Any, what: str) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` with one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    try:
        torch.distributed.all_gather_object(out, obj)
    except RuntimeError as exc:
        raise lost(exc, what) from None
    return out


def broadcast_object(obj: Any, what: str) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself with one process)."""
    if not is_distributed():
        return obj
    box = [obj]
    try:
        torch.distributed.broadcast_object_list(box, src=0)
    except RuntimeError as exc:
        raise lost(exc, what) from None
    return box[0]


# ------------------------------------------------------------------------ shared evaluation

_SHARED_EVALUATION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ffnlp_shared_evaluation", default=False
)
V = TypeVar("V")


@contextlib.contextmanager
def shared_evaluation() -> Iterator[None]:
    """Within it, the evaluators that support it (the default mean loss, the classifier's, the
    LM's) share their batches among the ranks: every rank must then evaluate the same data at
    the same time (the Trainer's dev evaluation). Nothing changes with one process."""
    token = _SHARED_EVALUATION.set(is_distributed())
    try:
        yield
    finally:
        _SHARED_EVALUATION.reset(token)


def evaluation_batches(batches: Iterable[V]) -> Iterator[tuple[int, V]]:
    """This rank's batches of a shared evaluation, with their numbers: batch i is rank
    i mod N's. Every batch alone, or outside :func:`shared_evaluation`."""
    if not _SHARED_EVALUATION.get():
        yield from enumerate(batches)
        return
    world, me = world_size(), rank()
    for i, batch in enumerate(batches):
        if i % world == me:
            yield i, batch


def evaluation_results(parts: dict[int, V]) -> list[V]:
    """Every rank's per-batch results of a shared evaluation (batch number -> result), in batch
    order, on every rank: what one process computes, batch by batch, so that the sums over them
    are one process's to the last bit."""
    if not _SHARED_EVALUATION.get():
        return [parts[i] for i in sorted(parts)]
    merged: dict[int, V] = {}
    for rank_parts in gather_objects(parts, "the evaluation"):
        merged.update(rank_parts)
    return [merged[i] for i in sorted(merged)]


def barrier(what: str) -> None:
    """Wait for every rank (nothing with one process)."""
    if not is_distributed():
        return
    try:
        torch.distributed.barrier()
    except RuntimeError as exc:
        raise lost(exc, what) from None


def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace every gradient by its mean over the ranks (kept for callers of the old name)."""
    exchange_gradients(params, "mean")
