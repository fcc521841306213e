"""What train.diagnostics costs: the SST-2 MLP trained with diagnostics off, on, and by a build of
ffnlp without the feature, in one run.

    python bench/diagnostics.py [--data ../shared/data] [--epochs 2] [--rounds 3] [--threads 1]
                                [--baseline-rev REV]

The MLP is configs/sst2_ffnn.toml (tf-idf uni+bigrams, 64 ReLUs, SparseAdam, two evaluations an
epoch) for --epochs epochs without early stopping. The build without the feature is the source
tree at --baseline-rev (default: the last commit before src/ffnlp/training/diagnostics.py
existed), extracted with `git archive`. Every training runs in its own process (same threads),
the three variants taking turns, --rounds times; the figure of a variant is the median of its
training CPU seconds (summary.json train_cpu_seconds: the fit alone, reading and featurising
excluded; CPU time, because wall time on a shared machine mostly measures the neighbours), wall
seconds beside it. Absolute seconds are noise; the ratios off / baseline (diagnostics off
installs nothing, so it should be 1 within noise) and on / off are the figures. The dev accuracy
printed for every run shows that diagnostics change no number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRAIN = """
import json, sys
from ffnlp.tasks.classify import train_classifier
data, out, epochs, threads, diagnostics = sys.argv[1:6]
overrides = [f"train.epochs={epochs}", "train.early_stopping=false", f"train.threads={threads}",
             "train.checkpoint=false"]
if diagnostics != "absent":
    overrides.append(f"train.diagnostics={diagnostics}")
clf = train_classifier(f"{data}/sst2/stsa.binary.train", dev=f"{data}/sst2/stsa.binary.dev",
                       config="configs/sst2_ffnn.toml", overrides=overrides, out=out)
print(json.dumps({"train_seconds": clf.summary["train_seconds"],
                  "train_cpu_seconds": clf.summary["train_cpu_seconds"],
                  "accuracy": clf.summary["dev"]["accuracy"]}))
"""


def baseline_source(rev: str | None, into: Path) -> tuple[str, Path]:
    """Extract src/ of ``rev`` (default: the parent of the commit that added the feature)."""
    if rev is None:
        added = subprocess.run(
            [
                "git",
                "log",
                "--diff-filter=A",
                "--format=%H",
                "--",
                "src/ffnlp/training/diagnostics.py",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if not added:
            sys.exit(
                "cannot find the commit that added training/diagnostics.py; pass --baseline-rev"
            )
        rev = added[-1] + "^"
    archive = subprocess.run(
        ["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return rev, into / "src"


def train_once(src: Path, data: str, epochs: int, threads: int, diagnostics: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", TRAIN, data, out, str(epochs), str(threads), diagnostics],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        sys.exit(f"training with diagnostics={diagnostics} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline-rev", default=None)
    args = parser.parse_args()
    if not (Path(args.data) / "sst2" / "stsa.binary.train").is_file():
        sys.exit(f"SST-2 not found under {args.data}/sst2 (use --data)")
    with tempfile.TemporaryDirectory() as tmp:
        rev, old_src = baseline_source(args.baseline_rev, Path(tmp))
        variants = {
            "baseline": (old_src, "absent"),  # a build without the feature
            "off": (ROOT / "src", "false"),
            "on": (ROOT / "src", "true"),
        }
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        for r in range(args.rounds):
            for name, (src, flag) in variants.items():
                result = train_once(src, args.data, args.epochs, args.threads, flag)
                runs[name].append(result)
                print(
                    f"round {r + 1} {name:8s} cpu {result['train_cpu_seconds']:7.2f} s  "
                    f"wall {result['train_seconds']:7.2f} s  "
                    f"dev accuracy {result['accuracy']:.4f}",
                    flush=True,
                )
    cpu = {n: statistics.median(r["train_cpu_seconds"] for r in rs) for n, rs in runs.items()}
    wall = {n: statistics.median(r["train_seconds"] for r in rs) for n, rs in runs.items()}
    print(
        f"\nSST-2 MLP, {args.epochs} epochs, {args.threads} thread(s), median of {args.rounds} "
        f"rounds; baseline = {rev}"
    )
    for name in variants:
        print(f"  {name:8s} cpu {cpu[name]:7.2f} s  wall {wall[name]:7.2f} s")
    for a, b in (("off", "baseline"), ("on", "off")):
        print(f"  {a} / {b}: cpu {cpu[a] / cpu[b]:.3f}, wall {wall[a] / wall[b]:.3f}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "diagnostics.json").write_text(
        json.dumps(
            {
                "baseline_rev": rev,
                "epochs": args.epochs,
                "threads": args.threads,
                "runs": runs,
                "median_cpu_seconds": cpu,
                "median_seconds": wall,
            },
            indent=2,
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
