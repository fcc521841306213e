"""ONNX Runtime against ffnlp on an exported classifier, in one run: agreement and throughput.

    python bench/export.py [--data ../shared/data] [--only sst2_pooled,cooking] [--threads 1]
                           [--batch 1000]

Each preset (configs/sst2_logreg.toml, sst2_ffnn.toml, sst2_pooled.toml on SST-2;
cooking_multilabel.toml on Cooking) is trained, exported with ``ffnlp export --onnx``, and its
test texts (SST-2 test, cooking.valid) go through both, --batch texts at a time:

- ffnlp: ``Classifier.predict_proba`` (tokenising and featurising included);
- ONNX Runtime, end to end: :func:`ffnlp.export.featurize.featurize` (the reference
  featurisation, plain Python, written to be read rather than fast) then ``session.run``;
- ONNX Runtime, network alone: ``session.run`` on inputs featurised beforehand, what a consumer
  with its own fast featurisation would get.

Printed: the largest probability difference and whether every text gets the same labels (the
top one; multi-label: those reaching the run's thresholds, what predict returns), and texts per
second of each (best of three passes) with ONNX Runtime's ratio to ffnlp. ONNX Runtime and
PyTorch both get --threads intra-op threads. Results go to bench/out/export.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def rate(fn, batches: list) -> float:
    """Texts per second of ``fn`` over every batch, the best of three passes."""
    n = sum(len(b) if isinstance(b, list) else len(next(iter(b.values()))) for b in batches)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - started)
    return n / best


def same_labels(clf, ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Whether both give every text the same labels: the top one (single-label), or those that
    reach the run's thresholds (multi-label: what predict returns)."""
    if clf.multilabel:
        cut = clf.decision_thresholds()
        return bool(((ours >= cut) == (theirs >= cut)).all())
    return bool((ours.argmax(1) == theirs.argmax(1)).all())


def bench_one(name: str, data: Path, threads: int, batch: int, folder: Path) -> dict:
    import onnxruntime as ort

    from ffnlp.export.exporter import export_run
    from ffnlp.export.featurize import featurize
    from ffnlp.tasks.classify import train_classifier
    from ffnlp.tasks.classify.data import read_split

    preset, train, dev, test = DATASETS[name]
    clf = train_classifier(
        data / train,
        dev=data / dev if dev else None,
        config=ROOT / "configs" / f"{preset}.toml",
        out=folder / name,
        overrides=["train.checkpoint=false", f"train.threads={threads}"],
        seed=0,
    )
    written = export_run(folder / name, onnx=folder / f"{name}.onnx")
    spec = json.loads(written["features"].read_text(encoding="utf-8"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(written["onnx"]), options, providers=["CPUExecutionProvider"]
    )
    texts = read_split(data / test, clf.config).texts
    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    ours = clf.predict_proba(texts)
    theirs = np.concatenate([session.run(["probabilities"], featurize(spec, c))[0] for c in chunks])
    inputs = [featurize(spec, c) for c in chunks]
    return {
        "texts": len(texts),
        "max_abs_difference": float(np.abs(ours - theirs).max()),
        "same_labels": bool(same_labels(clf, ours, theirs)),
        "ffnlp_texts_per_second": rate(clf.predict_proba, chunks),
        "onnxruntime_end_to_end_texts_per_second": rate(
            lambda c: session.run(["probabilities"], featurize(spec, c)), chunks
        ),
        "onnxruntime_network_texts_per_second": rate(
            lambda x: session.run(["probabilities"], x), inputs
        ),
        "onnx_bytes": written["onnx"].stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--only", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS)
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000, help="texts per call")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown --only {unknown[0]!r}; choose from {', '.join(DATASETS)}")
    results: dict = {"threads": args.threads, "batch": args.batch, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="ffnlp-bench-export-") as tmp:
        for name in names:
            results["rows"][name] = bench_one(name, args.data, args.threads, args.batch, Path(tmp))
            print(f"done: {name}", file=sys.stderr)
    header = (
        f"{'run':<13} {'max |dp|':>9} {'labels':>7} {'ffnlp/s':>9} {'ORT e2e/s':>10} {'ratio':>6}"
        f" {'ORT net/s':>10} {'ratio':>6}"
    )
    print(f"threads {args.threads}, batches of {args.batch} texts; texts per second, best of 3")
    print(header)
    print("-" * len(header))
    for name, r in results["rows"].items():
        ours = r["ffnlp_texts_per_second"]
        e2e, net = (
            r["onnxruntime_end_to_end_texts_per_second"],
            r["onnxruntime_network_texts_per_second"],
        )
        print(
            f"{name:<13} {r['max_abs_difference']:9.1e} {'same' if r['same_labels'] else 'DIFFER':>7}"
            f" {ours:9.0f} {e2e:10.0f} {e2e / ours:6.2f} {net:10.0f} {net / ours:6.2f}"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "export.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
