"""The feed-forward LM's training speed against a plain torch.mm, and its memory on 10x PTB.

    python bench/lm.py [--data ../shared/data/ptb] [--config configs/ptb_lm.toml] [--threads 2]
                       [--rounds 8] [--steps 10] [--repeat 10] [--skip-memory] [--profile]
                       [--precision auto|fp32|bf16] [--compare-precisions]

1. Throughput: the Trainer's training steps on the configured model (batches from the real PTB
   stream; the configured batch size, optimiser, schedule, weight averaging and precision: the
   step `ffnlp lm train` takes) -> tokens/s and achieved GFLOP/s, counting the
   model's matrix products (forward + both backward products: 3 x 2 x multiply-adds per token).
   In the same process, a plain ``torch.mm`` of the output layer's shape (B x D by D x V) in
   bf16 and in fp32 gives the machine's GFLOP/s in each; the figures are the ratios: to the
   best dtype's product (the faster of the two: bf16 on CPUs with AVX512-BF16 or AMX, what
   ``precision = "auto"`` trains in there) and, beside it, to fp32's.  Rounds of model steps and
   of products alternate, and each keeps its best round (the least disturbed by other jobs).
   ``--profile`` adds where a step's time goes (torch profiler, one extra round of steps):
   the products, the softmax and loss, the optimiser, the weight average, casts, the other
   element-wise work, and what no operator accounts for (Python, the autograd engine).
2. Memory: ``ffnlp.tasks.lm.train_lm`` (vocabulary, encoding, a few training steps) in a fresh
   process on PTB and on PTB repeated ``--repeat`` times; the ratio of peak resident memory.

Absolute numbers on a shared machine are noise; the ratios are the figures.  When other jobs
load the machine, ``--threads 1 --clock cpu`` times this process's own CPU seconds instead.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def model_macs_per_token(model) -> int:
    """Multiply-adds of one forward pass per token (embedding lookups are not products)."""
    cfg = model.config
    C, D, V = cfg.context_size, cfg.embedding_dim, model.vocab_size
    macs, width = 0, C * D
    for size in cfg.hidden_sizes:
        macs += width * size
        width = size
    if model.projection is not None:
        macs += width * D
        width = D
    if model.adaptive is not None:  # head only: tail clusters are a small fraction of tokens
        macs += width * (model.adaptive.shortlist_size + model.adaptive.n_clusters)
    else:
        macs += width * V
    if model.direct is not None:
        macs += C * D * V
    return macs


def throughput(args) -> dict:
    import torch

    from ffnlp import config as cfgmod
    from ffnlp.models.lm import FeedForwardLM
    from ffnlp.precision import choose_precision
    from ffnlp.runtime import prepare_process
    from ffnlp.tasks.lm import resolve_config
    from ffnlp.text.corpus import EOS, LMBatches, build_vocab, encode_corpus
    from ffnlp.training.trainer import Trainer

    cfg = resolve_config(
        args.config, [f"model.precision={args.precision}"] if args.precision else []
    )
    # resolved as `ffnlp lm train` resolves it ("auto": bf16 where the hardware has it)
    precision = choose_precision(cfg.model.precision, "cpu")
    train = args.data / "ptb.train.txt.gz"
    vocab = build_vocab(train, cfg.data)
    corpus = encode_corpus(train, vocab, cfg.data)
    model = FeedForwardLM(len(vocab), cfgmod.replace(cfg.model, precision=precision.used))
    source = LMBatches(
        corpus.ids, cfg.model.context_size, vocab.stoi(EOS), cfg.data.cross_sentences
    )
    # the Trainer's own step (loss, backward, optimiser, schedule) and its weight average (the
    # callbacks' on_batch_end), with the threads and allocator set as `ffnlp lm train` sets them
    prepare_process(args.threads)
    trainer = Trainer(model, cfgmod.replace(cfg.train, threads=args.threads), source)
    B = cfg.train.batch_size
    batches = source.batches(B, torch.Generator().manual_seed(0))

    def step() -> None:
        trainer.train_step(next(batches))
        trainer.step += 1
        for callback in trainer.callbacks:
            callback.on_batch_end(trainer, None)

    dtype = torch.bfloat16 if precision.used == "bf16" else torch.float32
    width = (
        cfg.model.embedding_dim
        if model.projection is not None or cfg.model.tie_weights
        else (
            cfg.model.hidden_sizes[-1]
            if cfg.model.hidden_sizes
            else cfg.model.context_size * cfg.model.embedding_dim
        )
    )
    # the output layer's product in both dtypes: the machine's best one and fp32
    operands = {
        name: (torch.randn(B, width, dtype=dt), torch.randn(width, len(vocab), dtype=dt))
        for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32))
    }
    for _ in range(5):
        step()
        for a, b in operands.values():
            a @ b
    # alternate rounds of model steps and of plain products; keep each one's best round, the one
    # least disturbed by other jobs on a shared machine
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    step_seconds = math.inf
    mm_seconds = dict.fromkeys(operands, math.inf)
    for _ in range(args.rounds):
        t0 = clock()
        for _ in range(args.steps):
            step()
        step_seconds = min(step_seconds, (clock() - t0) / args.steps)
        for name, (a, b) in operands.items():
            t0 = clock()
            for _ in range(3 * args.steps):
                a @ b
            mm_seconds[name] = min(mm_seconds[name], (clock() - t0) / (3 * args.steps))
    macs = model_macs_per_token(model)
    achieved = 6 * macs * B / step_seconds / 1e9
    mm_gflops = {name: 2 * B * width * len(vocab) / s / 1e9 for name, s in mm_seconds.items()}
    best = max(mm_gflops, key=mm_gflops.__getitem__)
    result = {
        "config": str(args.config),
        "threads": args.threads,
        "clock": args.clock,
        "batch_size": B,
        "precision": precision.as_dict(),
        "step_ms": step_seconds * 1e3,
        "tokens_per_second": B / step_seconds,
        "macs_per_token": macs,
        "achieved_gflops": achieved,
        "mm_shape": [B, width, len(vocab)],
        "mm_gflops": mm_gflops,
        "best_dtype": best,
        "fraction_of_best": achieved / mm_gflops[best],
        "fraction_of_fp32": achieved / mm_gflops["fp32"],
        "fraction_of_same_dtype": achieved
        / mm_gflops["bf16" if dtype == torch.bfloat16 else "fp32"],
    }
    if args.profile:
        result["profile"] = profile_steps(step, args.steps)
    return result


# where a step's time goes: operator names (self time) -> phase
PHASES = (
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
    (
        "softmax and loss",
        (
            "aten::_softmax",
            "aten::_log_softmax",
            "aten::nll_loss",
            "aten::gather",
            "aten::index_put_",
            "aten::_index_put_impl_",
            "aten::log",
            "aten::clamp_min_",
            "aten::_softmax_backward_data",
            "aten::_log_softmax_backward_data",
        ),
    ),
    ("optimiser", ("aten::_fused_adam_", "aten::_fused_adamw_")),
    ("weight average", ("aten::lerp_", "aten::_foreach_lerp_")),
    ("casts between dtypes", ("aten::copy_", "aten::_to_copy")),
)


def profile_steps(step, steps: int) -> dict:
    """ms a step per phase (operators' self time under torch.profiler), and the rest: the
    step's time that no operator accounts for (Python, autograd's engine, the profiler).  Wall
    clock whatever ``--clock`` says (the profiler times operators by the wall clock): on a
    loaded machine every figure stretches, the shares less."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - t0) / steps * 1e3
    phases = {name: 0.0 for name, _ in PHASES}
    phases["other element-wise and indexing"] = 0.0
    ops: dict[str, float] = {}
    for event in prof.key_averages():
        ms = event.self_cpu_time_total / 1e3 / steps
        if not event.key.startswith("aten::"):  # autograd nodes, Optimizer.step: Python's share
            continue
        ops[event.key] = ms
        phase = next((n for n, keys in PHASES if event.key in keys), None)
        phases[phase or "other element-wise and indexing"] += ms
    phases["Python, autograd engine, profiler"] = max(total - sum(phases.values()), 0.0)
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:12]
    return {"step_ms": total, "phases_ms": phases, "top_operators_ms": dict(top)}


MEMORY_CHILD = """
import json, resource, sys, time
from ffnlp.tasks.lm import train_lm
train, config, out, threads = sys.argv[1:5]
t0 = time.perf_counter()
lm = train_lm(train, config=config, out=out, overrides=[
    "train.max_steps=20", "train.epochs=1", "samples=0", "train.checkpoint=false",
    f"train.threads={threads}"])
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "train_tokens": lm.summary["train_tokens"], "seconds": time.perf_counter() - t0}))
"""


def memory(args, workdir: Path) -> dict:
    train = args.data / "ptb.train.txt.gz"
    big = workdir / f"ptb.train.x{args.repeat}.txt"
    with gzip.open(train, "rb") as fh:
        text = fh.read()
    with big.open("wb") as fh:
        for _ in range(args.repeat):
            fh.write(text)
    results = {}
    for name, path in (("ptb", train), (f"ptb_x{args.repeat}", big)):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                MEMORY_CHILD,
                str(path),
                str(args.config),
                str(workdir / name),
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["ratio"] = results[f"ptb_x{args.repeat}"]["peak_rss_mb"] / results["ptb"]["peak_rss_mb"]
    return results


def compare_precisions(args) -> int:
    """auto vs bf16 vs fp32 in one run: rounds alternate between the three (one timed round of
    --steps steps each), so that the load of a shared machine falls on all alike."""
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for precision in ("auto", "bf16", "fp32"):
            one = argparse.Namespace(**{**vars(args), "precision": precision, "rounds": 1})
            t = throughput(one)
            if (
                precision not in best
                or t["tokens_per_second"] > best[precision]["tokens_per_second"]
            ):
                best[precision] = t
    for precision, t in best.items():
        print(
            f"{precision:>5} (used {t['precision']['used']}): {t['tokens_per_second']:.0f} tokens/s"
        )
    auto, faster = (
        best["auto"]["tokens_per_second"],
        max(best["bf16"]["tokens_per_second"], best["fp32"]["tokens_per_second"]),
    )
    print(
        f"auto / faster of bf16 and fp32: {auto / faster:.3f} ({best['auto']['precision']['reason']})"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lm_precisions.json").write_text(json.dumps(best, indent=2), encoding="utf-8")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/ptb")
    ap.add_argument("--config", type=Path, default=ROOT / "configs/ptb_lm.toml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="training steps per timed round")
    ap.add_argument("--rounds", type=int, default=8, help="timed rounds (the best one counts)")
    ap.add_argument("--repeat", type=int, default=10, help="PTB copies in the big corpus")
    ap.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="wall",
        help="time with the wall clock, or with this process's CPU time (use with --threads 1 on "
        "a machine shared with other jobs: their load then does not enter the figures)",
    )
    ap.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default=None,
        help="model.precision for the throughput (default: the config's)",
    )
    ap.add_argument(
        "--compare-precisions",
        action="store_true",
        help="time auto, bf16 and fp32 in the same run (alternating, --rounds times each, the "
        "best of each kept) and print whether auto is at least the faster of the other two",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after the timed rounds, one round under torch.profiler: ms a step per phase "
        "(products, softmax and loss, optimiser, weight average, casts, other, Python)",
    )
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out")
    args = ap.parse_args()
    import ffnlp  # noqa: F401  (before torch: the OpenMP settings ffnlp makes at import)

    if args.compare_precisions:
        return compare_precisions(args)
    result = {"throughput": throughput(args)}
    t = result["throughput"]
    mm = t["mm_gflops"]
    print(
        f"{args.threads} thread(s), {args.clock} clock, {t['precision']['used']} step; "
        f"training: {t['tokens_per_second']:.0f} tokens/s, {t['achieved_gflops']:.1f} GFLOP/s "
        f"(model products); torch.mm {t['mm_shape']}: bf16 {mm['bf16']:.1f}, "
        f"fp32 {mm['fp32']:.1f} GFLOP/s; fraction of the best-dtype ({t['best_dtype']}) product "
        f"{t['fraction_of_best']:.2f}, of fp32's {t['fraction_of_fp32']:.2f}"
    )
    if "profile" in t:
        prof = t["profile"]
        print(f"where a step's {prof['step_ms']:.1f} ms go (profiled round):")
        for name, ms in prof["phases_ms"].items():
            print(f"  {name:36s} {ms:7.2f} ms  {ms / prof['step_ms']:6.1%}")
    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as tmp:
            result["memory"] = memory(args, Path(tmp))
        m = result["memory"]
        big = f"ptb_x{args.repeat}"
        print(
            f"peak memory: PTB {m['ptb']['peak_rss_mb']:.0f} MB, PTB x{args.repeat} "
            f"{m[big]['peak_rss_mb']:.0f} MB ({m[big]['train_tokens']} tokens); ratio {m['ratio']:.2f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lm.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
