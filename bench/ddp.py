"""What one step costs under torchrun: compute, bytes exchanged (dense vs sparse) and exchange
time, for 1 and 2 processes on this machine (gloo), and a projection to more nodes.

    python bench/ddp.py [--steps 10] [--json out.json]

For each task the model of its preset, built by ffnlp (sizes as on the benchmark data: SST-2's
16k words + 200k bigram buckets for the pooled classifier, PTB's 10k words for the LM and
word2vec), gets batches of Zipf-distributed ids (the touched rows of a table are what decides
the sparse exchange's size, and natural text is Zipfian):

- compute: forward + backward of one step, ms (1 process: the global batch; 2 processes: half
  each, both running at once);
- exchange: ``ffnlp.training.distributed.exchange_gradients`` between 2 processes, ms, and the
  bytes one rank sends, with sparse tables sent as rows (what ffnlp does when that is smaller)
  and sent dense (every row, as a plain all-reduce of the dense gradient would);
- projection: the step time on N nodes (1/N of the global batch each) at 10 and 100 Gb/s,
  from the measured compute and the bytes a ring all-reduce (dense) or an all-gather (rows)
  sends on N nodes; efficiency = T(1) / (N * T(N)).

The machine is shared (2 cores, other jobs running): absolute times are noisy, the bytes are
exact, and the projection is a model (stated in docs/scale.md), not a measurement.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ffnlp.models.lm import FeedForwardLM  # noqa: E402
from ffnlp.models.pooled import PooledEmbeddingClassifier  # noqa: E402
from ffnlp.models.skipgram import SkipGram  # noqa: E402
from ffnlp.training import distributed as D  # noqa: E402

# task -> global batch of its preset
TASKS = {
    "classify (sst2_pooled)": 32,
    "lm (ptb_lm)": 512,
    "w2v (ptb_w2v)": 1024,
}
LINKS = {"10 Gb/s": 10e9 / 8, "100 Gb/s": 100e9 / 8}
LATENCY = 50e-6  # seconds per message hop (TCP between machines)
NODES = (1, 2, 4, 8, 16)


def zipf(n: int, vocab: int, g: torch.Generator) -> torch.Tensor:
    """``n`` ids of a Zipf(1) law over ``vocab`` (id 0 the most frequent)."""
    ranks = torch.arange(1, vocab + 1, dtype=torch.float64)
    return torch.multinomial(1.0 / ranks, n, replacement=True, generator=g)


def make(task: str, batch: int, g: torch.Generator) -> tuple[torch.nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    if task.startswith("classify"):
        vocab = 16_000 + 200_000
        model: torch.nn.Module = PooledEmbeddingClassifier(vocab, 2, dim=64, sparse=True)
        lengths = torch.full((batch,), 38)  # words + bigrams of an SST-2 sentence
        ids = zipf(int(lengths.sum()), vocab, g)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        return model, {"ids": ids, "offsets": offsets, "y": torch.randint(0, 2, (batch,))}
    if task.startswith("lm"):
        cfg = {"context_size": 7, "embedding_dim": 256, "hidden_sizes": [512]}
        model = FeedForwardLM(10_000, {**cfg, "precision": "fp32", "dropout": 0.0})
        context = zipf(batch * 7, 10_000, g).view(batch, 7)
        return model, {"context": context, "target": zipf(batch, 10_000, g)}
    model = SkipGram(10_000, 100, sparse=True)
    pairs = batch * 37 // 10  # about 3.7 pairs per corpus word on PTB (window 5, subsampling)
    return model, {
        "center": zipf(pairs, 10_000, g),
        "context": zipf(pairs, 10_000, g),
        "negatives": zipf(pairs * 5, 10_000, g).view(pairs, 5),
    }


def compute_ms(model: torch.nn.Module, batch: dict[str, Any], steps: int) -> float:
    times = []
    for _ in range(steps + 1):
        model.zero_grad(set_to_none=True)
        t = time.perf_counter()
        model.loss(batch).backward()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times[1:])


def exchange(model: torch.nn.Module, batch: dict[str, Any], steps: int, dense: bool) -> tuple:
    """(ms, bytes sent) of one exchange, sparse tables as rows (``dense`` False) or dense."""
    params = [p for p in model.parameters() if p.requires_grad]
    times, sent = [], []
    for _ in range(steps + 1):
        model.zero_grad(set_to_none=True)
        model.loss(batch).backward()  # type: ignore[operator]
        if dense:
            for p in params:
                if p.grad is not None and p.grad.is_sparse:
                    p.grad = p.grad.to_dense()
        before = D.STATS.bytes_sent
        dist.barrier()
        t = time.perf_counter()
        D.exchange_gradients(params, getattr(model, "distributed_reduction", "mean"))
        times.append(time.perf_counter() - t)
        sent.append(D.STATS.bytes_sent - before)
    return 1000 * statistics.median(times[1:]), statistics.median(sent[1:])


def worker(rank: int, port: int, steps: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    results = {}
    try:
        for task, batch in TASKS.items():
            g = torch.Generator().manual_seed(1 + rank)
            model, half = make(task, batch // 2, g)
            dist.barrier()
            ms = compute_ms(model, half, steps)
            sparse_ms, sparse_bytes = exchange(model, half, steps, dense=False)
            dense_ms, dense_bytes = exchange(model, half, steps, dense=True)
            rows = sum(
                int(p.grad.coalesce().indices().shape[1])
                for p in model.parameters()
                if p.grad is not None and p.grad.is_sparse
            )
            results[task] = {
                "compute_ms_2": ms,
                "sparse_ms": sparse_ms,
                "sparse_bytes": sparse_bytes,
                "dense_ms": dense_ms,
                "dense_bytes": dense_bytes,
                "params": sum(p.numel() for p in model.parameters()),
                "rows_after_exchange": rows,
            }
        if rank == 0:
            Path(out).write_text(json.dumps(results), encoding="utf-8")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project(compute_1: float, dense_bytes_full: float, row_bytes_half: float, sparse: bool):
    """Efficiency at N nodes for each link: compute scales as 1/N; the exchange sends a ring
    all-reduce of the dense buffer, or (sparse tables) an all-gather of each rank's rows, which
    are assumed to shrink as 1/N of the global batch's (an upper bound on the saving)."""
    out: dict[str, list[float]] = {}
    for link, bw in LINKS.items():
        row = []
        for n in NODES:
            t_compute = compute_1 / 1000 / n
            if n == 1:
                row.append(1.0)
                continue
            if sparse:
                # rows of one rank at 1/N of the batch: the 2-process share x 2/N
                t_comm = (n - 1) * row_bytes_half * 2 / n / bw + LATENCY * (n - 1)
            else:
                t_comm = 2 * (n - 1) / n * dense_bytes_full / bw + LATENCY * 2 * (n - 1)
            row.append(t_compute / (t_compute + t_comm))
        out[link] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    one: dict[str, float] = {}
    for task, batch in TASKS.items():
        model, full = make(task, batch, torch.Generator().manual_seed(1))
        one[task] = compute_ms(model, full, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "r.json")
        mp.spawn(worker, args=(free_port(), args.steps, out), nprocs=2)
        two = json.loads(Path(out).read_text(encoding="utf-8"))
    print("Measured on this machine (gloo over loopback, 1 intra-op thread per process, shared")
    print("and loaded: times are indicative, bytes exact).\n")
    head = (
        f"{'task':24} {'batch':>5} {'1 proc ms':>9} {'2 proc ms':>9} "
        f"{'dense MB':>9} {'dense ms':>9} {'sparse MB':>9} {'sparse ms':>9}"
    )
    print(head)
    print("-" * len(head))
    table = {}
    for task, batch in TASKS.items():
        r = two[task]
        has_sparse = r["sparse_bytes"] < r["dense_bytes"]
        sparse_mb = f"{r['sparse_bytes'] / 1e6:9.3f}" if has_sparse else f"{'-':>9}"
        sparse_ms = f"{r['sparse_ms']:9.2f}" if has_sparse else f"{'-':>9}"
        print(
            f"{task:24} {batch:5d} {one[task]:9.2f} {r['compute_ms_2']:9.2f} "
            f"{r['dense_bytes'] / 1e6:9.3f} {r['dense_ms']:9.2f} {sparse_mb} {sparse_ms}"
        )
        # the dense all-reduce on 2 ranks sends the buffer once: its size
        proj = project(one[task], r["dense_bytes"], r["sparse_bytes"], has_sparse)
        table[task] = {"one_ms": one[task], **r, "projection": proj}
    print("\nProjected scaling efficiency T(1) / (N x T(N)), compute from the 1-process step,")
    print(f"exchange from the bytes above, {LATENCY * 1e6:.0f} us per message hop:\n")
    print(f"{'task':24} {'link':>9} " + " ".join(f"{f'N={n}':>6}" for n in NODES))
    for task in TASKS:
        for link, row in table[task]["projection"].items():
            print(f"{task:24} {link:>9} " + " ".join(f"{e:6.2f}" for e in row))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
