"""Side-by-side: ffnlp's classifiers vs fastText and scikit-learn, in one run.

    python bench/classify.py [--data ../shared/data] [--threads 2] [--seeds 5] [--only sst2,mr]
                             [--ffnlp-threads N] [--background-load N]
    python bench/classify.py --only cooking [--seeds 3]

Datasets: SST-2 (its train/dev/test split) and MR (no split: for seed s the test set is fold s of a
stratified 10-fold split, and 10% of the rest is held out as dev for ffnlp's early stopping;
fastText and scikit-learn train on the same examples as ffnlp, dev excluded).

Cooking (multi-label: Stack Exchange questions and their tags, the fastText tutorial's data; train
on cooking.train, test on cooking.valid): fastText supervised as its tutorial runs it (-lr 1.0
-epoch 25 -wordNgrams 2, softmax) and with one-vs-all sigmoids (-loss ova -lr 0.5 -dim 50) against
ffnlp's preset configs/cooking_multilabel.toml. Figures: P@1, R@1, P@5, R@5 as ``fasttext test``
prints them, precision / recall of every label at probability >= 0.5 (``fasttext test FILE -1
0.5``; ffnlp: micro precision / recall at task.threshold = 0.5), fit seconds and the ratio to each
fastText run's.

Contenders:
- fastText (fasttext-wheel) supervised, wordNgrams=2, dim 100, epoch 10, lr 0.5 (its defaults,
  epoch 5 / lr 0.1, reach only 0.665 on SST-2; these are the best of a small grid on SST-2 dev),
  fitted with each thread count of --fasttext-threads (default 1 and --threads); its fastest
  mean is the reference of the ratios ("fastText" in the table);
- scikit-learn tf-idf over word uni+bigrams (sublinear tf) + LogisticRegression(C=10);
- ffnlp logreg: logistic regression over tf-idf n-grams (configs/sst2_logreg.toml; SST-2 only);
- ffnlp mlp: the MLP over tf-idf n-grams (configs/sst2_ffnn.toml, configs/mr_ffnn.toml);
- ffnlp best: the same with character 2..5-grams, the n-grams of the clause after "but" marked
  apart, NBSVM's log-count-ratio features and a seed ensemble of 5, one model
  (configs/sst2_best.toml, configs/mr_best.toml); its fit time is the 5 members' together;
- ffnlp pooled: the pooled-embedding network (configs/sst2_pooled.toml, configs/mr_pooled.toml);
- SST-2 only, character n-gram subwords: ffnlp pooled+subwords (configs/sst2_pooled_subwords.toml)
  and "fastText subwords", fastText as above plus the preset's -minn / -maxn (read from its
  file), fitted with --threads threads (also when the preset comes in with --extra);
- optionally other ffnlp configs given with --extra NAME=CONFIG.

scikit-learn gets --threads; ffnlp its own default (train.threads = "auto") unless
--ffnlp-threads N sets train.threads = N. --background-load N runs N busy processes
(``python -c "while True: pass"``) for the whole bench and stops them at its end (also on an
error or Ctrl-C): a machine shared with other work.

Fit time = reading + tokenising + featurising + training (for ffnlp: summary prep_seconds +
train_seconds; final evaluation, saving and plots excluded; for fastText: train_supervised on its
input file; for scikit-learn: TfidfVectorizer.fit_transform + LogisticRegression.fit).  One-time
import costs are excluded for all (every contender first fits a 40-line sample, untimed).
Absolute seconds on shared machines are noise; the ratios ours / fastText and ours /
scikit-learn, measured in this process, are the figures.  Results go to bench/out/classify.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def fasttext_fit(
    train_texts, train_labels, test_texts, test_labels, threads: int, seed: int, **options
) -> dict:
    """fastText supervised with the bench's settings; ``options`` add to them (minn, maxn)."""
    import fasttext

    # fastText reads its file in order and does not shuffle: MR's examples come sorted by label,
    # so they are shuffled (seeded) first, as every other contender shuffles each epoch
    order = np.random.default_rng(seed).permutation(len(train_texts))
    train_texts = [train_texts[i] for i in order]
    train_labels = [train_labels[i] for i in order]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text(
            "".join(f"__label__{y} {t}\n" for t, y in zip(train_texts, train_labels, strict=True)),
            encoding="utf-8",
        )
        t0 = time.perf_counter()
        model = fasttext.train_supervised(
            str(path),
            wordNgrams=2,
            dim=100,
            epoch=10,
            lr=0.5,
            thread=threads,
            seed=seed,
            verbose=0,
            **options,
        )
        seconds = time.perf_counter() - t0
    pred, _ = model.predict([t.replace("\n", " ") for t in test_texts])
    acc = float(np.mean([p[0] == f"__label__{y}" for p, y in zip(pred, test_labels, strict=True)]))
    return {"accuracy": acc, "fit_seconds": seconds}


def sklearn_fit(
    train_texts, train_labels, test_texts, test_labels, threads: int, seed: int
) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vec = TfidfVectorizer(
        tokenizer=str.split,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        sublinear_tf=True,
    )
    x = vec.fit_transform(train_texts)
    clf = LogisticRegression(C=10.0, max_iter=1000, random_state=seed).fit(x, train_labels)
    seconds = time.perf_counter() - t0
    acc = float((clf.predict(vec.transform(test_texts)) == np.asarray(test_labels)).mean())
    return {"accuracy": acc, "fit_seconds": seconds}


def ffnlp_fit(config: Path, train, dev, test, threads: int | None, seed: int, out: Path) -> dict:
    from ffnlp import config as cfgmod
    from ffnlp.tasks.classify import train_classifier

    overrides = ["train.checkpoint=false"]
    if threads is not None:
        overrides.append(f"train.threads={threads}")
    lexicon = {}  # presets name no data: the lexicon of the lexicon-feature presets is given here
    if "lexicon" in str(cfgmod.load_toml(config).get("features", {}).get("kind", "")):
        lexicon["features.lexicon.path"] = str(ROOT.parent / "shared/data/opinion_lexicon")
    clf = train_classifier(
        train, dev=dev, test=test, config=config, seed=seed, out=out, overrides=overrides, **lexicon
    )
    s = clf.summary
    return {
        "accuracy": s["test"]["accuracy"],
        "fit_seconds": s["prep_seconds"] + s["train_seconds"],
        "train_seconds": s["train_seconds"],
        "train_cpu_seconds": s["train_cpu_seconds"],
        "epochs": s["epochs"],
        "best_epoch": s["best_epoch"],
        "threads": s.get("threads"),
    }


SUBWORD_PRESETS = {"sst2": ROOT / "configs/sst2_pooled_subwords.toml"}  # dataset -> preset


def subword_options(preset: Path) -> dict:
    """The preset's character n-gram settings as fastText's train_supervised arguments."""
    from ffnlp.tasks.classify import resolve_config

    features = resolve_config(preset).features
    return {"minn": features.minn, "maxn": features.maxn}


COOKING_PRESET = ROOT / "configs/cooking_multilabel.toml"
FASTTEXT_COOKING = {  # contender -> train_supervised arguments
    "fastText softmax": {"lr": 1.0, "epoch": 25, "wordNgrams": 2},
    "fastText ova": {"loss": "ova", "lr": 0.5, "dim": 50},
}


def fasttext_cooking(train: Path, test: Path, threads: int, seed: int, **options) -> dict:
    import fasttext

    t0 = time.perf_counter()
    model = fasttext.train_supervised(str(train), thread=threads, seed=seed, verbose=0, **options)
    seconds = time.perf_counter() - t0
    out = {"fit_seconds": seconds}
    for k in (1, 5):
        _, out[f"precision_at_{k}"], out[f"recall_at_{k}"] = model.test(str(test), k=k)
    _, out["precision_at_0.5"], out["recall_at_0.5"] = model.test(str(test), k=-1, threshold=0.5)
    return out


def ffnlp_cooking(train, test, threads: int | None, seed: int, out: Path) -> dict:
    """The preset as a user runs it: its own thread setting unless --ffnlp-threads says one."""
    from ffnlp.tasks.classify import train_classifier

    overrides = ["train.checkpoint=false"]
    if threads is not None:
        overrides.append(f"train.threads={threads}")
    clf = train_classifier(
        train, test=test, config=COOKING_PRESET, seed=seed, out=out, overrides=overrides
    )
    s = clf.summary
    t = s["test"]
    return {
        **{f"{m}_at_{k}": t[f"{m}_at_{k}"] for m in ("precision", "recall") for k in (1, 5)},
        "precision_at_0.5": t["micro_precision"],
        "recall_at_0.5": t["micro_recall"],
        "fit_seconds": s["prep_seconds"] + s["train_seconds"],
        "train_seconds": s["train_seconds"],
    }


def bench_cooking(
    data_root: Path, threads: int, seeds: int, ffnlp_threads: int | None = None
) -> dict:
    """fastText (both settings) and ffnlp's preset on the cooking split, ``seeds`` times."""
    train, test = data_root / "cooking/cooking.train", data_root / "cooking/cooking.valid"
    with tempfile.TemporaryDirectory() as tmp:  # one-time costs out of the timings
        sample = Path(tmp) / "sample.txt"
        lines = train.read_text(encoding="utf-8").splitlines()[:200]
        sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for options in FASTTEXT_COOKING.values():
            fasttext_cooking(sample, sample, threads, 0, **options)
        ffnlp_cooking(sample, sample, ffnlp_threads, 0, Path(tmp) / "run")
    rows: dict[str, list[dict]] = {k: [] for k in (*FASTTEXT_COOKING, "ffnlp preset")}
    for seed in range(seeds):
        for label, options in FASTTEXT_COOKING.items():
            rows[label].append(fasttext_cooking(train, test, threads, seed, **options))
        with tempfile.TemporaryDirectory() as tmp:
            rows["ffnlp preset"].append(
                ffnlp_cooking(train, test, ffnlp_threads, seed, Path(tmp) / "r")
            )
        print(
            f"[cooking seed {seed}] "
            + "  ".join(
                f"{k} P@1 {v[-1]['precision_at_1']:.3f} R@5 {v[-1]['recall_at_5']:.3f}/"
                f"{v[-1]['fit_seconds']:.2f}s"
                for k, v in rows.items()
            ),
            flush=True,
        )
    names = (
        "precision_at_1",
        "recall_at_1",
        "precision_at_5",
        "recall_at_5",
        "precision_at_0.5",
        "recall_at_0.5",
        "fit_seconds",
    )
    table = {
        label: {**{n: statistics.fmean(r[n] for r in rs) for n in names}, "runs": rs}
        for label, rs in rows.items()
    }
    for label in table:
        for peer in FASTTEXT_COOKING:
            key = "time_ratio_vs_" + peer.replace(" ", "_").lower()
            table[label][key] = table[label]["fit_seconds"] / table[peer]["fit_seconds"]
    who = "its default threads" if ffnlp_threads is None else f"{ffnlp_threads} threads"
    print(
        f"\ncooking (multi-label): cooking.valid, mean of {seeds} seeds; fastText {threads} "
        f"threads, ffnlp {who}"
    )
    print(
        f"{'':18s} {'P@1':>6s} {'R@1':>6s} {'P@5':>6s} {'R@5':>6s} {'P@.5':>6s} {'R@.5':>6s} "
        f"{'fit s':>7s} {'/ft softmax':>12s} {'/ft ova':>8s}"
    )
    for label, t in table.items():
        print(
            f"{label:18s} "
            + " ".join(f"{t[n]:6.3f}" for n in names[:6])
            + f" {t['fit_seconds']:7.2f} {t['time_ratio_vs_fasttext_softmax']:12.2f}"
            f" {t['time_ratio_vs_fasttext_ova']:8.2f}"
        )
    print(flush=True)
    return table


def warm_up(presets: dict, threads: int, ffnlp_threads: int | None) -> None:
    from ffnlp.tasks.sample import write_sample

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_sample(tmp, sizes=(40, 10, 10))
        lines = paths["train"].read_text(encoding="utf-8").splitlines()
        texts, labels = [x.split(" ", 1)[1] for x in lines], [x.split(" ", 1)[0] for x in lines]
        fasttext_fit(texts, labels, texts, labels, threads, 0)
        sklearn_fit(texts, labels, texts, labels, threads, 0)
        for configs in presets.values():
            for cfg in configs.values():
                with tempfile.TemporaryDirectory() as out:
                    ffnlp_fit(
                        cfg,
                        paths["train"],
                        paths["dev"],
                        paths["test"],
                        ffnlp_threads,
                        0,
                        Path(out),
                    )


def splits(name: str, data_root: Path, seed: int):
    """(train, dev, test) as LabeledData for one seed."""
    from ffnlp.experiments.cv import split_off, stratified_folds, subset
    from ffnlp.text.readers import read_labeled

    if name == "sst2":
        return tuple(
            read_labeled(data_root / f"sst2/stsa.binary.{s}") for s in ("train", "dev", "test")
        )
    data = read_labeled(data_root / "mr/rt-polarity.all", encoding="latin-1")
    folds = stratified_folds(data.labels, 10, seed=13)
    test_idx = folds[seed % 10]
    rest = np.setdiff1d(np.arange(len(data)), test_idx)
    train_idx, dev_idx = split_off(data.labels, rest, 0.1, seed)
    return subset(data, train_idx), subset(data, dev_idx), subset(data, test_idx)


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--threads", type=int, default=2, help="scikit-learn's and fastText's threads")
    ap.add_argument(
        "--fasttext-threads",
        default=None,
        help="comma-separated thread counts to fit fastText with (default: 1 and --threads); the "
        "fastest is the reference",
    )
    ap.add_argument(
        "--ffnlp-threads",
        type=int,
        default=None,
        help="train.threads for ffnlp (default: its own default, auto)",
    )
    ap.add_argument(
        "--background-load",
        type=int,
        default=0,
        metavar="N",
        help="run N busy processes (while True: pass) during the bench, stopped at its end",
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default="sst2,mr", help="comma-separated datasets: sst2, mr, cooking")
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        help="NAME=CONFIG: another ffnlp config ({data} in CONFIG becomes sst2 or mr)",
    )
    ap.add_argument("--no-presets", action="store_true", help="only the --extra ffnlp configs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out")
    args = ap.parse_args()
    ft_threads = sorted(
        {int(t) for t in args.fasttext_threads.split(",")}
        if args.fasttext_threads
        else {1, args.threads}
    )

    from background import background_load

    import ffnlp  # noqa: F401  (before torch: the OpenMP settings ffnlp makes at import)

    with background_load(args.background_load) as load:
        if load:
            print(f"{len(load)} busy background processes running", flush=True)
        return run(args, ft_threads)


def run(args: argparse.Namespace, ft_threads: list[int]) -> int:
    presets = {  # dataset -> contender -> config
        "sst2": {
            "ffnlp logreg": ROOT / "configs/sst2_logreg.toml",
            "ffnlp mlp": ROOT / "configs/sst2_ffnn.toml",
            "ffnlp best": ROOT / "configs/sst2_best.toml",
            "ffnlp pooled": ROOT / "configs/sst2_pooled.toml",
            "ffnlp pooled+subwords": SUBWORD_PRESETS["sst2"],
        },
        "mr": {
            "ffnlp mlp": ROOT / "configs/mr_ffnn.toml",
            "ffnlp best": ROOT / "configs/mr_best.toml",
            "ffnlp pooled": ROOT / "configs/mr_pooled.toml",
        },
    }
    only = args.only.split(",")
    results: dict = {
        "threads": args.threads,
        "fasttext_threads": ft_threads,
        "ffnlp_threads": args.ffnlp_threads if args.ffnlp_threads is not None else "default",
        "background_load": args.background_load,
        "seeds": args.seeds,
        "datasets": {},
    }
    if "cooking" in only:  # multi-label: its own contenders and figures
        only.remove("cooking")
        results["datasets"]["cooking"] = bench_cooking(
            args.data, args.threads, args.seeds, args.ffnlp_threads
        )
    # one-time costs (imports, first SparseAdam: ~3 s, regex compilation) stay out of the timings:
    # every contender first fits a 40-line sample once, untimed
    if only:
        warm_up(presets, args.threads, args.ffnlp_threads)
    for name in only:
        contenders = dict(presets[name]) if not args.no_presets else {}
        for item in args.extra:
            label, cfg = item.split("=", 1)
            contenders[f"ffnlp {label}"] = Path(cfg.replace("{data}", name))
        ft_names = {f"fastText {t} thread{'s' if t > 1 else ''}": t for t in ft_threads}
        # fastText with the subword preset's -minn / -maxn, beside ffnlp's subword preset
        chosen = {Path(c).resolve() for c in contenders.values()}
        ft_subwords = (
            subword_options(SUBWORD_PRESETS[name])
            if name in SUBWORD_PRESETS and SUBWORD_PRESETS[name].resolve() in chosen
            else None
        )
        peers = [*ft_names, *(["fastText subwords"] if ft_subwords else []), "scikit-learn"]
        rows: dict[str, list[dict]] = {k: [] for k in (*peers, *contenders)}
        for seed in range(args.seeds):
            train, dev, test = splits(name, args.data, seed)
            for label, t in ft_names.items():
                rows[label].append(
                    fasttext_fit(train.texts, train.labels, test.texts, test.labels, t, seed)
                )
            if ft_subwords:
                rows["fastText subwords"].append(
                    fasttext_fit(
                        train.texts,
                        train.labels,
                        test.texts,
                        test.labels,
                        args.threads,
                        seed,
                        **ft_subwords,
                    )
                )
            rows["scikit-learn"].append(
                sklearn_fit(train.texts, train.labels, test.texts, test.labels, args.threads, seed)
            )
            for label, cfg in contenders.items():
                with tempfile.TemporaryDirectory() as tmp:
                    rows[label].append(
                        ffnlp_fit(cfg, train, dev, test, args.ffnlp_threads, seed, Path(tmp))
                    )
            print(
                f"[{name} seed {seed}] "
                + "  ".join(
                    f"{k} {v[-1]['accuracy']:.4f}/{v[-1]['fit_seconds']:.2f}s"
                    for k, v in rows.items()
                ),
                flush=True,
            )
        # the reference: fastText at its best thread count (the others shown in brackets)
        ft_times = {k: statistics.fmean(r["fit_seconds"] for r in rows[k]) for k in ft_names}
        ft_best = min(ft_times, key=ft_times.__getitem__)
        rows = {
            "fastText": rows[ft_best],
            **{f"({k})": rows[k] for k in ft_names if k != ft_best},
            **{k: v for k, v in rows.items() if k not in ft_names},
        }
        ft_time = ft_times[ft_best]
        sk_time = statistics.fmean(r["fit_seconds"] for r in rows["scikit-learn"])
        table = {}
        for label, rs in rows.items():
            acc_m, acc_sd = mean_sd([r["accuracy"] for r in rs])
            secs = statistics.fmean(r["fit_seconds"] for r in rs)
            table[label] = {
                "accuracy_mean": acc_m,
                "accuracy_sd": acc_sd,
                "fit_seconds": secs,
                "time_ratio_vs_fasttext": secs / ft_time,
                "time_ratio_vs_sklearn": secs / sk_time,
                "runs": rs,
            }
        table["fastText"]["threads"] = ft_names[ft_best]
        results["datasets"][name] = table
        used = sorted({r.get("threads") for k in contenders for r in rows[k]} - {None})
        print(
            f"\n{name}: test accuracy over {args.seeds} seeds; threads: fastText {ft_names[ft_best]}"
            f" (its fastest of {ft_threads}), scikit-learn {args.threads}, ffnlp "
            f"{args.ffnlp_threads if args.ffnlp_threads is not None else 'default'} (used: "
            f"{used or '?'}); background load: {args.background_load} busy processes"
        )
        print(
            f"{'':22s} {'accuracy (mean ± sd)':>20s} {'fit s':>8s} {'ratio/fastText':>15s} "
            f"{'ratio/sklearn':>14s}"
        )
        for label, t in table.items():
            print(
                f"{label:22s}    {t['accuracy_mean']:.4f} ± {t['accuracy_sd']:.4f} {t['fit_seconds']:8.2f} "
                f"{t['time_ratio_vs_fasttext']:15.2f} {t['time_ratio_vs_sklearn']:14.2f}"
            )
        print(flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classify.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
