"""The same Trainer under torch.distributed (gloo, 2 processes on this machine): no second loop.

``train.batch_size`` is the global batch: 2 ranks of batch B/2 each end with the weights of one
process of batch B, for a mean loss (averaged gradients), a sum loss (summed), sparse embedding
tables (rows exchanged, SparseAdam) and batches of unequal sizes, or fewer batches than ranks,
at the end of an epoch."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ffnlp import config as C
from ffnlp.errors import ConfigError
from ffnlp.training import TrainConfig, Trainer
from ffnlp.training import distributed as D
from ffnlp.training.data import TensorBatches
from tests.training.test_optim import Linear, toy

pytestmark = pytest.mark.skipif(
    not dist.is_available(), reason="torch.distributed is not available in this build"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bag(nn.Module):
    """Pooled embeddings over ids, a sparse-gradient table (train.sparse: SparseAdam)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(500, 8, mode="mean", sparse=True)
        self.out = nn.Linear(8, 2)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(self.out(self.emb(batch["ids"])), batch["y"])


class SumLoss(Linear):
    """A loss whose gradient is the sum over examples (as word2vec's): ranks sum gradients."""

    distributed_reduction = "sum"

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch["x"]), batch["y"], reduction="sum") / 50


def bags(n: int = 400) -> TensorBatches:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 500, (n, 5), generator=g)
    return TensorBatches({"ids": ids, "y": (ids[:, 0] < 250).long()})


MODELS: dict[str, Any] = {
    "linear": (Linear, toy, {"optimizer": "sgd", "lr": 0.3}),
    "sum": (SumLoss, toy, {"optimizer": "sgd", "lr": 0.3}),
    "sparse": (Bag, bags, {"optimizer": "adam", "lr": 0.05, "sparse": True}),
}


def train(kind: str, batch_size: int, run_dir: str | None = None) -> Trainer:
    make_model, make_data, settings = MODELS[kind]
    torch.manual_seed(0)
    cfg = C.build(
        TrainConfig,
        {"epochs": 2, "batch_size": batch_size, "threads": 1, **settings},
    )
    trainer = Trainer(make_model(), cfg, make_data(), run_dir=run_dir)
    trainer.fit()
    return trainer


def worker(rank: int, world: int, port: int, kind: str, batch_size: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        trainer = train(kind, batch_size, run_dir=f"{out}-run{rank}")
        torch.save(trainer.model.state_dict(), f"{out}-{rank}.pt")
        torch.save({"steps": trainer.step, **D.STATS.as_dict()}, f"{out}-stats{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_two(tmp_path, kind: str, batch_size: int) -> tuple[dict, dict]:
    for r in (0, 1):
        (tmp_path / f"w-run{r}").mkdir()
    mp.spawn(worker, args=(2, free_port(), kind, batch_size, str(tmp_path / "w")), nprocs=2)
    return (
        torch.load(tmp_path / "w-0.pt", weights_only=True),
        torch.load(tmp_path / "w-1.pt", weights_only=True),
    )


@pytest.mark.parametrize(
    ("kind", "batch_size"),
    [
        ("linear", 40),  # 10 steps of 2 x 20 examples
        ("linear", 60),  # the last step: 30 + 10 examples, weighted as one batch of 40
        ("sum", 40),
        ("sum", 54),  # a last step of one batch: the other rank's stand-in adds nothing
        ("sparse", 40),
    ],
)
def test_two_ranks_match_one_process_with_the_same_global_batch(
    tmp_path, kind: str, batch_size: int
) -> None:
    rank0, rank1 = run_two(tmp_path, kind, batch_size)
    single = train(kind, batch_size)
    for name, tensor in single.model.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.allclose(rank0[name], tensor, atol=1e-5), name
    stats = torch.load(tmp_path / "w-stats0.pt", weights_only=True)
    assert stats["steps"] == single.step
    if kind == "sparse":  # the table's gradient travelled as rows, the rest dense
        assert stats["sparse_exchanges"] == single.step
    assert (tmp_path / "w-run0" / "metrics.jsonl").is_file()  # rank 0 logs
    assert not (tmp_path / "w-run1" / "metrics.jsonl").exists()  # other ranks stay quiet


def test_a_last_step_with_fewer_batches_than_ranks_matches_one_process(tmp_path) -> None:
    # 400 rows / 27 per rank = 15 batches: the 8th step of an epoch has one batch; rank 1 takes
    # part with a zero gradient (no hang), and the steps are one process's with a batch of 54
    rank0, rank1 = run_two(tmp_path, "linear", 54)
    single = train("linear", 54)
    assert torch.load(tmp_path / "w-stats0.pt", weights_only=True)["steps"] == single.step == 16
    for name, tensor in single.model.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.allclose(rank0[name], tensor, atol=1e-5), name


def exchange_worker(rank: int, port: int, rows: list[list[int]], out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        table = nn.Parameter(torch.zeros(6, 3))
        mine = torch.tensor(rows[rank])
        values = torch.arange(len(rows[rank]) * 3, dtype=torch.float32).view(-1, 3) + 10 * rank
        table.grad = torch.sparse_coo_tensor(
            mine.unsqueeze(0), values, (6, 3), check_invariants=False
        )
        D.exchange_gradients([table], "sum")
        assert table.grad is not None
        torch.save(
            {"grad": table.grad.to_dense(), "rows": table.grad.coalesce().indices()[0]},
            f"{out}-{rank}.pt",
        )
        torch.save(D.STATS.as_dict(), f"{out}-stats{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("rows", "sparse_path"),
    [
        ([[0, 2], [2, 5]], True),  # 2 rows each of a 6-row table: fewer bytes as rows
        ([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]], False),  # nearly every row: dense is smaller
    ],
)
def test_sparse_gradients_travel_as_rows_or_dense_whichever_is_smaller(
    tmp_path, rows: list[list[int]], sparse_path: bool
) -> None:
    mp.spawn(exchange_worker, args=(free_port(), rows, str(tmp_path / "x")), nprocs=2)
    expected = torch.zeros(6, 3)
    for r, ids in enumerate(rows):
        v = torch.arange(len(ids) * 3, dtype=torch.float32).view(-1, 3) + 10 * r
        expected.index_add_(0, torch.tensor(ids), v)
    for r in (0, 1):
        got = torch.load(tmp_path / f"x-{r}.pt", weights_only=True)
        assert torch.equal(got["grad"], expected)
        # the union of the touched rows, and no other: SparseAdam moves only these
        assert got["rows"].tolist() == sorted(set(rows[0]) | set(rows[1]))
        stats = torch.load(tmp_path / f"x-stats{r}.pt", weights_only=True)
        assert stats["sparse_exchanges"] == (1 if sparse_path else 0)
        assert stats["dense_exchanges_of_sparse_tables"] == (0 if sparse_path else 1)


# ------------------------------------------------------------------------------ the environment


def test_half_a_torchrun_environment_is_refused(monkeypatch) -> None:
    for key in D.ENVIRONMENT:
        monkeypatch.delenv(key, raising=False)
    assert D.environment() is None
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError) as err:
        D.environment()
    message = str(err.value)
    assert "LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set" in message
    assert "torchrun" in message


def test_a_rank_beyond_the_world_is_refused(monkeypatch) -> None:
    for key, value in zip(D.ENVIRONMENT, ("2", "2", "0", "127.0.0.1", "29500"), strict=True):
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=r"RANK \(2\) must be below WORLD_SIZE \(2\)"):
        D.environment()


def test_the_timeout_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(D.TIMEOUT_VARIABLE, raising=False)
    assert D.timeout_seconds() == D.DEFAULT_TIMEOUT
    monkeypatch.setenv(D.TIMEOUT_VARIABLE, "12.5")
    assert D.timeout_seconds() == 12.5
    monkeypatch.setenv(D.TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ConfigError, match="FFNLP_DIST_TIMEOUT must be a number of seconds"):
        D.timeout_seconds()


def size_worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        D.rank_batch_size(33)
    except ConfigError as exc:
        with open(f"{out}-{rank}.txt", "w", encoding="utf-8") as f:
            f.write(str(exc))
    finally:
        dist.destroy_process_group()


def test_a_global_batch_the_ranks_cannot_share_is_refused(tmp_path) -> None:
    mp.spawn(size_worker, args=(free_port(), str(tmp_path / "e")), nprocs=2)
    message = (tmp_path / "e-0.txt").read_text(encoding="utf-8")
    assert (
        "train.batch_size (33)" in message and "multiple of the number of processes (2)" in message
    )
