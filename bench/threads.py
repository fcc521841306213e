"""When do two intra-op threads beat one? The measurement behind ``train.threads = "auto"``.

    python bench/threads.py [--threads 2] [--rounds 7] [--background-load N]

For a grid of layer sizes, one training step of a ``torch.nn.Linear`` (forward, backward, and an
SGD update: the work a feed-forward model's step is made of) is timed with 1 thread and with
``--threads`` threads, alternating rounds; each setting keeps its best round (the least disturbed
by other jobs). Printed per size: the multiply-adds of the forward product (B x D_in x D_out, the
figure ``ffnlp.threads.multiply_adds_per_step`` counts) and the speed-up of the threads over one.
``ffnlp.threads.MIN_WORK_PER_THREAD`` comes from where the speed-up crosses 1. ``ffnlp`` is
imported before torch, so OpenMP starts with the wait policy ffnlp sets (``OMP_WAIT_POLICY``
unless given; ``--wait-policy`` sets it for this run). Results go to bench/out/threads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SIZES = [  # (B, D_in, D_out)
    (32, 64, 1),
    (32, 64, 64),
    (64, 64, 64),
    (32, 256, 256),
    (64, 256, 256),
    (128, 256, 256),
    (64, 512, 512),
    (256, 256, 512),
    (512, 256, 512),
    (512, 512, 512),
    (512, 1792, 512),
    (512, 256, 10000),
]


def time_step(layer, x, threads: int, steps: int) -> float:
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    for _ in range(steps):
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(p.grad, alpha=-1e-3)
    return (time.perf_counter() - t0) / steps


def measure(threads: int, rounds: int) -> list[dict]:
    import torch

    rows = []
    for b, d_in, d_out in SIZES:
        layer = torch.nn.Linear(d_in, d_out)
        x = torch.randn(b, d_in)
        macs = b * d_in * d_out
        steps = max(3, min(2000, int(2e8 // (3 * macs))))  # ~0.1 s a round at 6 GFLOP/s
        time_step(layer, x, 1, steps)
        time_step(layer, x, threads, steps)
        best = {1: float("inf"), threads: float("inf")}
        for _ in range(rounds):
            for n in (1, threads):
                best[n] = min(best[n], time_step(layer, x, n, steps))
        rows.append(
            {
                "shape": [b, d_in, d_out],
                "multiply_adds": macs,
                "seconds_1": best[1],
                f"seconds_{threads}": best[threads],
                "speedup": best[1] / best[threads],
            }
        )
        print(
            f"B {b:4d} x {d_in:5d} x {d_out:6d}  {macs:12,d} multiply-adds  "
            f"1 thread {best[1] * 1e6:10.1f} us  {threads} threads {best[threads] * 1e6:10.1f} us  "
            f"speed-up {best[1] / best[threads]:.2f}",
            flush=True,
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--background-load",
        type=int,
        default=0,
        metavar="N",
        help="run N busy processes (while True: pass) during the measurement",
    )
    ap.add_argument("--wait-policy", choices=("PASSIVE", "ACTIVE"), default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out")
    args = ap.parse_args()
    if args.wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.wait_policy
    from background import background_load

    import ffnlp  # noqa: F401  (before torch: its OpenMP wait policy)

    with background_load(args.background_load):
        rows = measure(args.threads, args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "threads": args.threads,
        "background_load": args.background_load,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "rows": rows,
    }
    (args.out / "threads.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
