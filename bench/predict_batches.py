"""The cost of one predict call on a server's micro-batch: ffnlp (compiled loops, and the NumPy
path they stand in for) against fastText's ``predict(list)``, in CPU time, in one run.

    python bench/predict_batches.py [--data ../shared/data] [--mlp runs/sst2_ffnn]
                                    [--pooled runs/sst2_pooled] [--sizes 1 8 30 64]

``ffnlp serve`` gathers the texts of concurrent requests into one ``Classifier.predict`` call:
1 to 64 texts at a time under the load of ``bench/serve.py`` (about 30 with 32 clients). For each
size, consecutive SST-2 test texts are cut into batches of that size and each batch predicted,
over and over; the figure is this thread's CPU time per call (``time.thread_time``, the best of
seven rounds: other processes on a shared machine inflate it less than wall time, though they
still do through the caches). Contenders, each in a process of its own:

- ffnlp compiled: ``Classifier.predict`` after ``ffnlp.load`` (its compiled loops: Numba);
- ffnlp NumPy: the same with ``FFNLP_JIT=0`` (the array operations the loops replace);
- fastText: ``model.predict(list)`` of a model trained here on SST-2 train (wordNgrams 2, dim
  100, epoch 10, lr 0.5, one thread, as bench/serve.py), in this process.

A run folder that does not exist is trained first with its preset. Prints microseconds per call
and the ratios; results go to bench/out/predict_batches.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from predict import PRESETS, loadavg, read_texts, train_fasttext, train_run  # noqa: E402

ROUNDS = 7
CALLS = 600  # calls per round and size (batches of consecutive texts, taken in turn)


def cpu_per_call(predict: Callable[[list[str]], Any], texts: list[str], size: int) -> float:
    """Microseconds of this thread's CPU time per call on ``size`` texts, the best round."""
    batches = [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]
    calls = [batches[i % len(batches)] for i in range(max(CALLS // max(size // 8, 1), 60))]
    for batch in batches[:5]:
        predict(batch)  # first-use work (the fast path, compiled code) out of the timing
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.thread_time()
        for batch in calls:
            predict(batch)
        best = min(best, (time.thread_time() - start) / len(calls))
    return best * 1e6


def measure_ffnlp(run: Path, texts_path: Path, sizes: list[int]) -> dict[int, float]:
    """This script in a child process: ffnlp's figures for one run, under this environment."""
    import ffnlp

    texts = read_texts(texts_path)
    clf = ffnlp.load(run)
    return {size: cpu_per_call(clf.predict, texts, size) for size in sizes}


def child(run: Path, texts_path: Path, sizes: list[int], jit: bool) -> dict[int, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FFNLP_JIT": "1" if jit else "0"}
    code = (
        "import json; from pathlib import Path; from predict_batches import measure_ffnlp; "
        f"print(json.dumps(measure_ffnlp(Path({str(run)!r}), Path({str(texts_path)!r}), "
        f"{sizes!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "bench",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--mlp", type=Path, default=ROOT / "runs" / "sst2_ffnn")
    ap.add_argument("--pooled", type=Path, default=ROOT / "runs" / "sst2_pooled")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 30, 64])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "predict_batches.json")
    args = ap.parse_args()
    sst2 = args.data / "sst2"
    runs = {"mlp": args.mlp, "pooled": args.pooled}
    for name, run in runs.items():
        if not run.exists():
            train_run(PRESETS[name], run, sst2)
    test = sst2 / "stsa.binary.test"
    print(f"load average at start {loadavg()} on {os.cpu_count()} CPUs", flush=True)
    rows: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = train_fasttext(sst2, Path(tmp))
        texts = read_texts(test)
        rows["fastText"] = {s: cpu_per_call(model.predict, texts, s) for s in args.sizes}
    for name, run in runs.items():
        rows[f"ffnlp {name} NumPy"] = child(run.resolve(), test, args.sizes, jit=False)
        rows[f"ffnlp {name} compiled"] = child(run.resolve(), test, args.sizes, jit=True)
    print(f"\nCPU microseconds per predict call ({', '.join(map(str, args.sizes))} texts):")
    for name, row in rows.items():
        print(f"  {name:22s} " + "  ".join(f"{row[s]:8.0f}" for s in args.sizes))
    print("\nratios (per size):")
    for name in runs:
        numpy_, compiled = rows[f"ffnlp {name} NumPy"], rows[f"ffnlp {name} compiled"]
        faster = "  ".join(f"{numpy_[s] / compiled[s]:.2f}x" for s in args.sizes)
        versus = "  ".join(f"{compiled[s] / rows['fastText'][s]:.2f}x" for s in args.sizes)
        print(f"  {name}: NumPy / compiled {faster}   compiled / fastText {versus}")
    print(f"load average at end {loadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"us_per_call": rows, "sizes": args.sizes}, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
