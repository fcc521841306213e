"""The same Trainer under torch.distributed (gloo, 2 processes on this machine): no second loop."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ffnlp import config as C
from ffnlp.training import TrainConfig, Trainer
from tests.training.test_optim import Linear, toy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(rank: int, world: int, port: int, run_dir: str, out: str, batch_size: int) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(0)
        cfg = C.build(
            TrainConfig,
            {"epochs": 2, "batch_size": batch_size, "optimizer": "sgd", "lr": 0.3, "threads": 1},
        )
        trainer = Trainer(
            Linear(), cfg, toy(), run_dir=run_dir if rank == 0 else f"{run_dir}-{rank}"
        )
        trainer.fit()
        torch.save(trainer.model.state_dict(), f"{out}-{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(
    not dist.is_available(), reason="torch.distributed is not available in this build"
)
def test_two_ranks_match_one_process_with_twice_the_batch(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run-1").mkdir()
    mp.spawn(
        worker, args=(2, free_port(), str(tmp_path / "run"), str(tmp_path / "w"), 20), nprocs=2
    )
    rank0 = torch.load(tmp_path / "w-0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "w-1.pt", weights_only=True)
    torch.manual_seed(0)
    cfg = C.build(
        TrainConfig,
        {
            "epochs": 2,
            "batch_size": 40,
            "optimizer": "sgd",
            "lr": 0.3,
            "threads": 1,
            "checkpoint": False,
        },
    )
    single = Trainer(Linear(), cfg, toy())
    single.fit()
    for name, tensor in single.model.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.allclose(rank0[name], tensor, atol=1e-5), name
    assert (tmp_path / "run" / "metrics.jsonl").is_file()  # rank 0 logs
    assert not (tmp_path / "run-1" / "metrics.jsonl").exists()  # other ranks stay quiet


def test_an_odd_number_of_batches_does_not_hang(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run-1").mkdir()
    # 400 rows / 27 = 15 batches: each rank takes 7, the 15th is left out so that none waits
    mp.spawn(
        worker, args=(2, free_port(), str(tmp_path / "run"), str(tmp_path / "w"), 27), nprocs=2
    )
    rank0 = torch.load(tmp_path / "w-0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "w-1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
