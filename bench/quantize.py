"""Side by side: ffnlp quantize vs fastText's quantize, in one run, on SST-2 and Cooking.

    python bench/quantize.py [--data ../shared/data] [--only sst2_pooled,cooking] [--threads 1]

For each dataset both tools train, then shrink their model the way their users do:

- ffnlp: the preset (configs/sst2_logreg.toml, sst2_ffnn.toml, sst2_pooled.toml,
  cooking_multilabel.toml) trained with its own settings, then ``ffnlp quantize --method pq
  --cutoff N --retrain`` (N in CUTOFFS; retrained on the training data with the preset's [train]
  settings, early stopping on dev where the dataset has one);
- fastText (fasttext-wheel): SST-2 with bench/classify.py's settings (wordNgrams 2, dim 100,
  epoch 10, lr 0.5), Cooking with its tutorial's (lr 1.0, epoch 25, wordNgrams 2), both with
  200,000 hash buckets as ffnlp's presets (fastText's default, 2 million, makes a model file of
  800 MB), then ``quantize(input=train, qnorm=True, retrain=True, cutoff=100000)`` as the
  tutorial runs it (``-qnorm -retrain -cutoff 100000``).

Figures: the size of the files a prediction reads (ffnlp: config.toml, vocab.json, model.json,
model.safetensors; fastText: the .bin / .ftz file), the test score (SST-2: accuracy on its test
split; Cooking: P@1 on cooking.valid) and predict's texts per second over the test texts (ffnlp:
``Classifier.predict_proba`` of the whole list, featurisation included; fastText: its Python
``predict`` of the whole list), best of three passes, on --threads threads. Absolute times on a
shared machine are noise; the ratios in one run are the figures. Results go to
bench/out/quantize.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATASETS = {  # name -> (preset, train, dev, test) under --data
    "sst2_logreg": (
        "sst2_logreg",
        "sst2/stsa.binary.train",
        "sst2/stsa.binary.dev",
        "sst2/stsa.binary.test",
    ),
    "sst2_ffnn": (
        "sst2_ffnn",
        "sst2/stsa.binary.train",
        "sst2/stsa.binary.dev",
        "sst2/stsa.binary.test",
    ),
    "sst2_pooled": (
        "sst2_pooled",
        "sst2/stsa.binary.train",
        "sst2/stsa.binary.dev",
        "sst2/stsa.binary.test",
    ),
    "cooking": ("cooking_multilabel", "cooking/cooking.train", None, "cooking/cooking.valid"),
}
CUTOFFS = {"sst2_logreg": 10_000, "sst2_ffnn": 20_000, "sst2_pooled": 50_000, "cooking": 100_000}
FASTTEXT = {  # which fastText model stands beside each dataset's ffnlp run
    "sst2": {"wordNgrams": 2, "dim": 100, "epoch": 10, "lr": 0.5, "bucket": 200_000},
    "cooking": {"lr": 1.0, "epoch": 25, "wordNgrams": 2, "bucket": 200_000},
}


def best_rate(predict, texts: list[str]) -> float:
    """Texts per second of ``predict(texts)``, the best of three passes."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        predict(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def fasttext_score(model, path: Path, multilabel: bool) -> float:
    """Accuracy (one label a line) or P@1, as ``fasttext test`` counts them."""
    _, precision, _ = model.test(str(path), k=1)
    return float(precision)


def bench_fasttext(kind: str, train: Path, test: Path, threads: int, folder: Path) -> dict:
    import fasttext

    from ffnlp.text.readers import read_labeled

    options = FASTTEXT[kind]
    if kind == "sst2":  # LABEL text lines -> fastText's __label__ format
        for path in (train, test):
            data = read_labeled(path)
            lines = [f"__label__{y} {t}\n" for t, y in zip(data.texts, data.labels, strict=True)]
            (folder / path.name).write_text("".join(lines), encoding="utf-8")
        train, test = folder / train.name, folder / test.name
    texts = [line.split(" ", 1)[1] if " " in line else "" for line in _label_stripped(test)]
    model = fasttext.train_supervised(str(train), thread=threads, seed=0, verbose=0, **options)
    out: dict = {}
    model.save_model(str(folder / "model.bin"))
    out["original"] = {
        "model_bytes": (folder / "model.bin").stat().st_size,
        "score": fasttext_score(model, test, kind == "cooking"),
        "texts_per_second": best_rate(model.predict, texts),
    }
    model.quantize(input=str(train), qnorm=True, retrain=True, cutoff=100_000, thread=threads)
    model.save_model(str(folder / "model.ftz"))
    out["quantized"] = {
        "model_bytes": (folder / "model.ftz").stat().st_size,
        "score": fasttext_score(model, test, kind == "cooking"),
        "texts_per_second": best_rate(model.predict, texts),
    }
    return out


def _label_stripped(path: Path) -> list[str]:
    """Each line of a fastText file with its __label__ tags moved out: "x text" for the split."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [w for w in line.split() if not w.startswith("__label__")]
        lines.append("x " + " ".join(words))
    return lines


def bench_ffnlp(name: str, data: Path, threads: int, folder: Path) -> dict:
    from ffnlp.export.quantize import quantize_run
    from ffnlp.tasks.classify import train_classifier

    preset, train, dev, test = DATASETS[name]
    train_path, test_path = data / train, data / test
    dev_path = data / dev if dev else None
    run = folder / name
    train_classifier(
        train_path,
        dev=dev_path,
        test=test_path,
        config=ROOT / "configs" / f"{preset}.toml",
        out=run,
        overrides=["train.checkpoint=false", f"train.threads={threads}"],
        seed=0,
    )
    report = quantize_run(
        run,
        folder / f"{name}_q",
        method="pq",
        cutoff=CUTOFFS[name],
        retrain=True,
        train=train_path,
        dev=dev_path,
        test=test_path,
    )
    metric = "precision_at_1" if name == "cooking" else "accuracy"
    out = {"cutoff": CUTOFFS[name], "rows": report["rows"], "metric": metric}
    for side in ("original", "quantized"):
        r = report[side]
        out[side] = {
            "model_bytes": r["model_bytes"],
            "folder_bytes": r["bytes"],
            "score": r["test"][metric],
            "texts_per_second": r["texts_per_second"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--only", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS)
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown --only {unknown[0]!r}; choose from {', '.join(DATASETS)}")
    results: dict = {"threads": args.threads, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="ffnlp-bench-quantize-") as tmp:
        folder = Path(tmp)
        for name in names:
            results["rows"][f"ffnlp {name}"] = bench_ffnlp(name, args.data, args.threads, folder)
            print(f"done: ffnlp {name}", file=sys.stderr)
        for kind in sorted({"cooking" if n == "cooking" else "sst2" for n in names}):
            _, train, _, test = DATASETS["cooking" if kind == "cooking" else "sst2_pooled"]
            sub = folder / f"fasttext_{kind}"
            sub.mkdir()
            results["rows"][f"fastText {kind}"] = bench_fasttext(
                kind, args.data / train, args.data / test, args.threads, sub
            )
            print(f"done: fastText {kind}", file=sys.stderr)
    print_table(results)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "quantize.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


def print_table(results: dict) -> None:
    header = (
        f"{'model':<20} {'size':>11} {'quantised':>10} {'smaller':>8} {'score':>7} {'quantised':>9}"
        f" {'change':>8} {'texts/s':>8} {'quantised':>9}"
    )
    print(f"threads {results['threads']}; score: SST-2 accuracy, Cooking P@1 (cooking.valid)")
    print(header)
    print("-" * len(header))
    for name, row in results["rows"].items():
        a, b = row["original"], row["quantized"]
        print(
            f"{name:<20} {a['model_bytes'] / 1e6:9.2f}MB {b['model_bytes'] / 1e6:8.2f}MB"
            f" {a['model_bytes'] / b['model_bytes']:7.1f}x {a['score']:7.4f} {b['score']:9.4f}"
            f" {100 * (b['score'] - a['score']):+7.2f}p {a['texts_per_second']:8.0f}"
            f" {b['texts_per_second']:9.0f}"
        )


if __name__ == "__main__":
    main()
