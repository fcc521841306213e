"""Evaluation shared among the ranks (distributed.shared_evaluation, which the Trainer's dev
evaluation enters): each of 2 processes (gloo) evaluates every other batch, and both end with
the figures of one process evaluating everything, to the last bit; outside it every rank
evaluates the whole data, as before."""

from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ffnlp.training import distributed as D
from ffnlp.training.metrics import mean_loss
from tests.training.test_distributed import free_port
from tests.training.test_optim import Linear, toy

pytestmark = pytest.mark.skipif(
    not dist.is_available(), reason="torch.distributed is not available in this build"
)


class Counting(Linear):
    """Counts the examples it computes a loss for."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.seen += int(batch["y"].shape[0])
        return super().loss(batch)


def model() -> Counting:
    torch.manual_seed(0)
    return Counting()


def worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        shared, whole = model(), model()
        with D.shared_evaluation():
            result = mean_loss(shared, toy(1000), batch_size=64)  # 16 batches, the last of 40
        alone = mean_loss(whole, toy(1000), batch_size=64)
        with open(f"{out}-{rank}.json", "w", encoding="utf-8") as fh:
            json.dump({"result": result, "alone": alone, "seen": [shared.seen, whole.seen]}, fh)
    finally:
        dist.destroy_process_group()


def test_two_ranks_share_an_evaluation_and_get_one_process_figures(tmp_path) -> None:
    mp.spawn(worker, args=(free_port(), str(tmp_path / "e")), nprocs=2)
    one = mean_loss(model(), toy(1000), batch_size=64)
    ranks = [json.loads((tmp_path / f"e-{r}.json").read_text(encoding="utf-8")) for r in (0, 1)]
    for r in ranks:
        assert r["result"] == one  # the same float, not merely close
        assert r["alone"] == one
    # rank 0: batches 0, 2, ..., 14 (8 x 64); rank 1: 1, 3, ..., 15 (7 x 64 + 40)
    assert [r["seen"][0] for r in ranks] == [512, 488]
    assert [r["seen"][1] for r in ranks] == [1000, 1000]  # outside it: everything, each


def test_one_process_evaluates_everything_inside_it_too() -> None:
    counting = model()
    with D.shared_evaluation():
        result = mean_loss(counting, toy(1000), batch_size=64)
    assert counting.seen == 1000
    assert result == mean_loss(model(), toy(1000), batch_size=64)
