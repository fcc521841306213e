"""The torchrun slot of the loop: whether this process is one of several, its share of the batches,
and the gradient averaging that makes N ranks of batch size B one process of batch size N*B."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from ffnlp.training.data import BatchSource


def is_distributed() -> bool:
    """Whether a process group is running (torchrun, or ``init_process_group`` by hand)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


def rank_share(
    batches: Iterator[dict[str, Any]], source: BatchSource, batch_size: int
) -> Iterator[dict[str, Any]]:
    """This process's share of an epoch's ``batches`` (all of them when it is the only one).

    Every rank draws the same batches in the same order and takes every world_size-th of them.
    The last ``total % world_size`` are left out, so that every rank takes the same number of
    steps and none waits for a gradient that never comes.
    """
    if not is_distributed():
        return batches
    return _every_nth(batches, source.num_batches(batch_size))


def _every_nth(batches: Iterator[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    usable = total - total % world
    for i, batch in enumerate(batches):
        if i >= usable:
            break
        if i % world == rank:
            yield batch


def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace every gradient by its mean over the ranks (sparse ones are made dense first)."""
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            if p.grad.is_sparse:
                p.grad = p.grad.to_dense()
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(world)
