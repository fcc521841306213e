"""Batch sources: how the trainer walks a dataset that was tensorised once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import torch

Batch = dict[str, Any]


@runtime_checkable
class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def num_batches(self, batch_size: int) -> int: ...

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[Batch]: ...


def order(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """A shuffled permutation drawn from ``generator``, or 0..n-1 when there is none."""
    if generator is None:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)


class TensorBatches:
    """Rows of equal-length tensors, batched by indexing: the dataset is tensorised once."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        sizes = {k: int(v.shape[0]) for k, v in tensors.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"tensors must have the same number of rows; got {sizes}")
        self.tensors = dict(tensors)
        self.size = next(iter(sizes.values()), 0)

    def __len__(self) -> int:
        return self.size

    def num_batches(self, batch_size: int) -> int:
        return -(-self.size // batch_size)

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[Batch]:
        idx = order(self.size, generator)
        for start in range(0, self.size, batch_size):
            rows = idx[start : start + batch_size]
            yield {k: v[rows] for k, v in self.tensors.items()}


class SparseRowBatches:
    """Rows of a sparse CSR matrix (bag-of-n-grams features) plus dense per-row tensors.

    A batch holds the selected rows flattened as ``ids`` (column of each non-zero), ``weights``
    (its value) and ``offsets`` (where each row starts): the input of an ``EmbeddingBag`` in sum
    mode, which computes the sparse-dense product without densifying the feature dimension.
    """

    def __init__(self, x: torch.Tensor, **dense: torch.Tensor):
        x = x.to_sparse_csr() if x.layout != torch.sparse_csr else x
        self.crow = x.crow_indices().long()
        self.col = x.col_indices().long()
        self.val = x.values().float()
        self.n_rows, self.n_cols = int(x.shape[0]), int(x.shape[1])
        self.dense = dense
        self.row_nnz = self.crow[1:] - self.crow[:-1]  # (N,)

    def __len__(self) -> int:
        return self.n_rows

    def num_batches(self, batch_size: int) -> int:
        return -(-self.n_rows // batch_size)

    def rows(self, rows: torch.Tensor) -> Batch:
        nnz = self.row_nnz[rows]  # (B,)
        offsets = torch.zeros(len(rows), dtype=torch.int64)
        offsets[1:] = torch.cumsum(nnz, 0)[:-1]
        total = int(nnz.sum())
        # positions of every selected non-zero, without a Python loop over rows
        within = torch.arange(total) - torch.repeat_interleave(offsets, nnz)
        pos = torch.repeat_interleave(self.crow[rows], nnz) + within  # (nnz,)
        batch: Batch = {"ids": self.col[pos], "weights": self.val[pos], "offsets": offsets}
        batch.update({k: v[rows] for k, v in self.dense.items()})
        return batch

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[Batch]:
        """The epoch's rows are gathered once, in its order (one selection, not one a batch);
        a batch is then a slice of them."""
        if generator is None:  # in order (evaluation): the matrix as it is, nothing gathered
            epoch: Batch = {"ids": self.col, "weights": self.val, "offsets": self.crow[:-1]}
            epoch.update(self.dense)
        else:
            epoch = self.rows(order(self.n_rows, generator))
        starts = epoch["offsets"].tolist() + [epoch["ids"].numel()]
        per_row = {k: v for k, v in epoch.items() if k not in ("ids", "weights", "offsets")}
        for start in range(0, self.n_rows, batch_size):
            end = min(start + batch_size, self.n_rows)
            lo, hi = starts[start], starts[end]
            batch: Batch = {
                "ids": epoch["ids"][lo:hi],
                "weights": epoch["weights"][lo:hi],
                "offsets": epoch["offsets"][start:end] - lo,
            }
            batch.update({k: v[start:end] for k, v in per_row.items()})
            yield batch


def move_to(batch: Batch, device: torch.device) -> Batch:
    if device.type == "cpu":
        return batch
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def batch_size_of(batch: Batch) -> int:
    """Examples in a batch: the rows of its first tensor."""
    for key in ("y", "offsets", "targets"):
        if key in batch:
            return int(batch[key].shape[0])
    for v in batch.values():
        if torch.is_tensor(v):
            return int(v.shape[0])
    return 0
