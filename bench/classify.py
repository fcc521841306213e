"""Side-by-side: ffnlp's logistic regression vs scikit-learn's on SST-2, in one run.

    python bench/classify.py [--data ../shared/data/sst2] [--threads 2] [--repeats 3]

Both see the same tokens (SST-2 is pre-tokenised: whitespace split) and tf-idf over word uni- and
bigrams with sublinear tf.  Prints accuracy and the fit-time ratio ours / scikit-learn's (fit only,
features excluded, and end to end), measured here, in this process.  Absolute seconds on shared
machines are noise; the ratios are the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sklearn_logreg(train, dev, test, threads: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vec = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False,
                          ngram_range=(1, 2), sublinear_tf=True)
    x_train = vec.fit_transform(train.texts)
    x_test = vec.transform(test.texts)
    t1 = time.perf_counter()
    clf = LogisticRegression(C=10.0, max_iter=1000, n_jobs=threads)
    clf.fit(x_train, train.labels)
    t2 = time.perf_counter()
    acc = float((clf.predict(x_test) == test.labels).mean())
    return {"accuracy": acc, "fit_seconds": t2 - t1, "total_seconds": t2 - t0}


def ffnlp_logreg(paths, threads: int, seed: int, out: Path) -> dict:
    from ffnlp.tasks.classify import train_classifier

    t0 = time.perf_counter()
    clf = train_classifier(
        paths["train"], dev=paths["dev"], test=paths["test"], config=ROOT / "configs/sst2_logreg.toml",
        overrides=["train.checkpoint=false"], seed=seed, out=out,  # the preset's threads (1)
    )
    total = time.perf_counter() - t0
    s = clf.summary
    return {"accuracy": s["test"]["accuracy"], "fit_seconds": s["train_seconds"],
            "total_seconds": total, "epochs": s["epochs"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/sst2")
    ap.add_argument("--threads", type=int, default=1, help="scikit-learn's n_jobs (ffnlp: the preset's)")
    ap.add_argument("--repeats", type=int, default=3, help="seeds for ffnlp, repeats for scikit-learn")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out")
    args = ap.parse_args()

    import numpy as np
    import torch

    from ffnlp.text.readers import read_labeled

    paths = {s: args.data / f"stsa.binary.{s}" for s in ("train", "dev", "test")}
    if not all(p.exists() for p in paths.values()):
        print(f"SST-2 not found under {args.data}", file=sys.stderr)
        return 1
    data = {s: read_labeled(p) for s, p in paths.items()}
    for d in data.values():
        d.labels = np.array(d.labels)  # type: ignore[assignment]

    sk = [sklearn_logreg(data["train"], data["dev"], data["test"], args.threads) for _ in range(args.repeats)]
    ours = [ffnlp_logreg(paths, args.threads, seed, args.out / f"logreg-{seed}") for seed in range(args.repeats)]

    def summary(rows: list[dict], key: str) -> tuple[float, float]:
        vals = [r[key] for r in rows]
        return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

    print(f"SST-2 logistic regression, tf-idf(1,2) sublinear, {args.threads} threads, {args.repeats} runs each")
    print(f"{'':28s}{'test acc':>16s}{'fit s':>10s}{'total s':>10s}")
    for name, rows in (("scikit-learn LogisticRegression", sk), ("ffnlp logreg (Adam, early stop)", ours)):
        acc = summary(rows, "accuracy")
        print(f"{name:28s}{acc[0]:>9.4f} ± {acc[1]:.4f}{summary(rows, 'fit_seconds')[0]:>10.2f}"
              f"{summary(rows, 'total_seconds')[0]:>10.2f}")
    fit_ratio = summary(ours, "fit_seconds")[0] / summary(sk, "fit_seconds")[0]
    total_ratio = summary(ours, "total_seconds")[0] / summary(sk, "total_seconds")[0]
    print(f"ratio ffnlp / scikit-learn: fit time {fit_ratio:.2f}x, end-to-end {total_ratio:.2f}x")
    result = {"sklearn": sk, "ffnlp": ours, "fit_ratio": fit_ratio, "total_ratio": total_ratio}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classify_logreg.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
