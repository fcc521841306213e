"""Predict speed, one thread: ffnlp's classifiers vs fastText's Python ``predict``, in one run.

    python bench/predict.py [--data ../shared/data] [--mlp runs/sst2_ffnn]
                            [--pooled runs/sst2_pooled] [--best runs/sst2_best] [--skip-best]
                            [--repeat 50] [--cli-repeat 500] [--rounds 2] [--skip-cli]

The runs: ``sst2_ffnn`` (mlp), ``sst2_pooled`` (pooled) and ``sst2_best`` (best: character
n-grams and the clause after "but", so the reference featuriser; five members).
The texts: SST-2 test (1,821 sentences) repeated ``--repeat`` times (50: 91,050 lines) for the
library figures, ``--cli-repeat`` times (500: 910,500 lines) for the command's.
A run folder that does not exist is trained first with its preset on SST-2 (--data), and so is
an n-gram run an earlier version trained (without vocab.safetensors, which the command's start-up
reads);
fastText is trained here on SST-2 train (wordNgrams 2, dim 100, epoch 10, lr 0.5, one thread,
as bench/classify.py and bench/serve.py).

Figures (texts/s; each ffnlp figure beside fastText's measured in this process, and the
ratio):

1. library: ``Classifier.predict(list)`` after ``ffnlp.load(run)`` (the first call: whatever it
   sets up on first use is counted), against fastText's ``model.predict(list)`` on the same
   lines (its C++ loop over a list; faster than calling it line by line, which is also shown).
   The PyTorch reference path (``FFNLP_FAST_PREDICT=0``) is timed beside, for the breakdown;
2. command: ``ffnlp classify predict RUN --input FILE > /dev/null`` over the ``--cli-repeat``
   file, start-up included (a subprocess, ``OMP_NUM_THREADS=1``), against fastText's
   ``predict(list)`` texts/s on the same lines in this process (its start-up not counted);
3. start-up: ``ffnlp classify predict RUN --input ONE_LINE`` wall time (the best of three) and
   the CPU time it used (user + system: what the machine's other load does not inflate), also
   with ``FFNLP_FAST_PREDICT=0``. ffnlp's modules are byte-compiled first (``compileall``), as
   an installed package's are: with ``PYTHONDONTWRITEBYTECODE`` set, Python would otherwise
   compile them again at every start (about 0.08 s).

``--rounds`` repeats 1 and 2 and reports each round's ratio (the machine may be shared: the
ratios inside one round are the figures; ``/proc/loadavg`` is printed beside them). Results go
to bench/out/predict.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PRESETS = {
    "mlp": "configs/sst2_ffnn.toml",
    "pooled": "configs/sst2_pooled.toml",
    "best": "configs/sst2_best.toml",
}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return f"{os.getloadavg()[0]:.2f}"


def read_texts(path: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def train_run(config: str, run: Path, sst2: Path) -> None:
    print(f"training {run} with {config}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "ffnlp", "classify", "train", "--config", str(ROOT / config),
         "--train", str(sst2 / "stsa.binary.train"), "--dev", str(sst2 / "stsa.binary.dev"),
         "--out", str(run), "--quiet", *(["--force"] if run.exists() else [])],
        check=True,
    )  # fmt: skip


def trained_before_arrays(run: Path) -> bool:
    """An n-gram run of an earlier version: no vocab.safetensors, so predict's start-up reads
    the names in vocab.json (what this bench no longer measures)."""
    import tomllib

    config = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
    features = config.get("features", {})
    # character n-grams and contrast words never have the arrays (the reference featuriser)
    reference = list(features.get("char_ngram_range", [0, 0])) != [0, 0] or bool(
        features.get("contrast_words")
    )
    kind = features.get("kind", "ngrams")
    return kind == "ngrams" and not reference and not (run / "vocab.safetensors").is_file()


def train_fasttext(sst2: Path, folder: Path) -> Any:
    import fasttext

    lines = sst2.joinpath("stsa.binary.train").read_text(encoding="utf-8").splitlines()
    train = folder / "sst2.train.ft"
    train.write_text(
        "".join(f"__label__{ln.split(' ', 1)[0]} {ln.split(' ', 1)[1]}\n" for ln in lines),
        encoding="utf-8",
    )
    return fasttext.train_supervised(
        str(train), wordNgrams=2, dim=100, epoch=10, lr=0.5, thread=1, seed=0, verbose=0
    )


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def time_fasttext(model: Any, texts: list[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    model.predict(texts)
    as_list = time.perf_counter() - t0
    sample = texts[: max(len(texts) // 10, 1)]
    t0 = time.perf_counter()
    predict_line = model.f.predict  # what predict(str) calls (its own wrapper fails on NumPy 2)
    for text in sample:
        predict_line(text + "\n", 1, 0.0, "strict")
    by_line = time.perf_counter() - t0
    return {"list": rate(len(texts), as_list), "line_by_line": rate(len(sample), by_line)}


def time_library(run: Path, texts: list[str]) -> dict[str, float]:
    import torch

    import ffnlp
    from ffnlp.tasks import fastpredict

    torch.set_num_threads(1)
    clf: Any = ffnlp.load(run)
    t0 = time.perf_counter()
    fast = clf.predict(texts)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    clf.predict(texts)
    second = time.perf_counter() - t0
    os.environ[fastpredict.ENV] = "0"
    try:
        t0 = time.perf_counter()
        reference = clf.predict(texts)
        ref_seconds = time.perf_counter() - t0
    finally:
        del os.environ[fastpredict.ENV]
    same = sum(a[0][0] == b[0][0] for a, b in zip(fast, reference, strict=True))
    return {
        "first_call": rate(len(texts), first),
        "second_call": rate(len(texts), second),
        "reference_path": rate(len(texts), ref_seconds),
        "same_labels": same / len(texts),
    }


def time_command(run: Path, path: Path, reference: bool = False) -> tuple[float, float]:
    """Wall seconds of the command, and the CPU seconds (user + system) it used."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    if reference:
        env["FFNLP_FAST_PREDICT"] = "0"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ffnlp", "classify", "predict", str(run), "--input", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--mlp", type=Path, default=ROOT / "runs" / "sst2_ffnn")
    ap.add_argument("--pooled", type=Path, default=ROOT / "runs" / "sst2_pooled")
    ap.add_argument("--best", type=Path, default=ROOT / "runs" / "sst2_best")
    ap.add_argument("--skip-best", action="store_true", help="leave out the sst2_best run")
    ap.add_argument("--repeat", type=int, default=50, help="SST-2 test copies for the library")
    ap.add_argument("--cli-repeat", type=int, default=500, help="copies for the command")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-cli", action="store_true", help="only the library figures")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "predict.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sst2 = args.data / "sst2"
    runs = {"mlp": args.mlp, "pooled": args.pooled}
    if not args.skip_best:
        runs["best"] = args.best
    for name, run in runs.items():
        if not run.exists() or trained_before_arrays(run):
            train_run(PRESETS[name], run, sst2)
    # as an installed package is: no compiling at each start (PYTHONDONTWRITEBYTECODE)
    compileall.compile_dir(ROOT / "src" / "ffnlp", quiet=1)
    test = read_texts(sst2 / "stsa.binary.test")
    texts = test * args.repeat
    results: dict[str, Any] = {"lines": len(texts), "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = train_fasttext(sst2, folder)
        big = folder / "big.txt"
        big.write_text("".join(t + "\n" for t in test * args.cli_repeat), encoding="utf-8")
        one = folder / "one.txt"
        one.write_text(test[0] + "\n", encoding="utf-8")
        big_lines = len(test) * args.cli_repeat
        print(f"{len(texts):,} lines (library), {big_lines:,} lines (command); one thread")
        for r in range(args.rounds):
            row: dict[str, Any] = {"loadavg_before": loadavg()}
            ft = time_fasttext(model, texts)
            row["fasttext"] = ft
            print(
                f"\nround {r + 1}  load {row['loadavg_before']}\n  fastText predict(list) "
                f"{ft['list']:9,.0f} texts/s  (line by line {ft['line_by_line']:,.0f})"
            )
            for name, run in runs.items():
                lib = time_library(run, texts)
                row[f"library_{name}"] = lib
                print(
                    f"  ffnlp {name:6s} Classifier.predict {lib['first_call']:9,.0f} texts/s  "
                    f"(2nd call {lib['second_call']:,.0f}; PyTorch path "
                    f"{lib['reference_path']:,.0f})  ratio {lib['first_call'] / ft['list']:.2f}x"
                    f"  labels same as PyTorch path: {lib['same_labels']:.4f}"
                )
            if not args.skip_cli:
                ft_big = time_fasttext(model, test * args.cli_repeat)["list"]
                row["fasttext_big"] = ft_big
                print(f"  fastText predict(list) over {big_lines:,} lines {ft_big:9,.0f} texts/s")
                for name, run in runs.items():
                    seconds, _ = time_command(run, big)
                    row[f"command_{name}"] = rate(big_lines, seconds)
                    print(
                        f"  ffnlp {name:6s} classify predict --input ({big_lines:,} lines) "
                        f"{rate(big_lines, seconds):9,.0f} texts/s ({seconds:.2f} s, start-up "
                        f"included)  ratio {rate(big_lines, seconds) / ft_big:.2f}x"
                    )
                for name, run in runs.items():
                    fast_wall, fast_cpu = min(time_command(run, one) for _ in range(3))
                    ref_wall, ref_cpu = min(
                        time_command(run, one, reference=True) for _ in range(2)
                    )
                    row[f"startup_{name}"] = {
                        "fast": fast_wall,
                        "fast_cpu": fast_cpu,
                        "reference": ref_wall,
                        "reference_cpu": ref_cpu,
                    }
                    print(
                        f"  ffnlp {name:6s} start-up, one line: {fast_wall:.2f} s wall, "
                        f"{fast_cpu:.2f} s CPU (PyTorch path {ref_wall:.2f} s wall, "
                        f"{ref_cpu:.2f} s CPU; target < 0.5 s)"
                    )
            row["loadavg_after"] = loadavg()
            print(f"  load after {row['loadavg_after']}")
            results["rounds"].append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
