"""The training step's cost of the LM's history options, as a ratio to the ptb_lm preset's step.

    python bench/lm_history.py [--threads 1] [--rounds 3] [--steps 10]

Builds the model of configs/ptb_lm.toml (V = 10,000, the preset's batch of 512), of
configs/ptb_lm_best.toml (its FOFE history) and of the latter with one residual block, and times their training steps (forward, backward, Adam) on random batches: rounds of
each alternate in one process, so that other jobs disturb them alike; the figures are each
model's time a step divided by ptb_lm's. Absolute times on a shared machine are noise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ffnlp.models.lm import FeedForwardLM
from ffnlp.tasks.lm import resolve_config

ROOT = Path(__file__).resolve().parents[1]
V = 10_000

MODELS = {
    "ptb_lm": ("configs/ptb_lm.toml", []),
    "ptb_lm_best": ("configs/ptb_lm_best.toml", []),
    "ptb_lm_best + a residual block": (
        "configs/ptb_lm_best.toml",
        ["model.residual_blocks=1", "model.residual_inner=1024"],
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps a round (after 2 warm)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    built = {}
    for name, (path, overrides) in MODELS.items():
        cfg = resolve_config(ROOT / path, [*overrides, 'model.precision="fp32"'])
        model = FeedForwardLM(V, cfg.model).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        built[name] = (model, optimizer, cfg.model.context_size, cfg.train.batch_size)
    seconds = dict.fromkeys(MODELS, 0.0)
    for _ in range(args.rounds):
        for name, (model, optimizer, C, B) in built.items():
            batch = {
                "context": torch.randint(0, V, (B, C), generator=generator),  # (B, C)
                "target": torch.randint(0, V, (B,), generator=generator),  # (B,)
            }
            for step in range(args.steps + 2):
                if step == 2:
                    start = time.perf_counter()
                optimizer.zero_grad()
                model.loss(batch).backward()
                optimizer.step()
            seconds[name] += time.perf_counter() - start
    base = seconds["ptb_lm"]
    steps = args.rounds * args.steps
    for name, total in seconds.items():
        print(f"{name:40s} {1000 * total / steps:7.0f} ms/step   x{total / base:.2f} ptb_lm's")


if __name__ == "__main__":
    main()
