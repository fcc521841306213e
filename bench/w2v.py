"""Side-by-side: ffnlp's skip-gram vs gensim's Word2Vec(sg=1) on PTB train, in one run.

    python bench/w2v.py [--corpus ../shared/data/ptb/ptb.train.txt.gz] [--rounds 3]
        # both models (word2vec vs gensim Word2Vec, fasttext vs gensim FastText), 1 and 2 threads
    python bench/w2v.py --model word2vec --threads 2   # one model, one thread count
    python bench/w2v.py --reference   # also ffnlp's PyTorch step (FFNLP_JIT=0): before / after
    python bench/w2v.py --memory      # streaming: peak memory on 10x PTB vs PTB

Same hyper-parameters (configs/ptb_w2v.toml: dim 100, window 5, negative 5, min_count 5, sample
1e-3, 5 epochs, alpha 0.025 -> 0.0001) and the same cores: gensim ``workers=threads``; ffnlp's
compiled Hogwild step (the default where Numba runs) ``model.workers=threads`` threads sharing
each batch; its PyTorch step (``FFNLP_JIT=0``, ``--reference``) ``model.workers=threads - 1``
plus its batch-preparing thread (with 1 thread: no separate preparing thread). Rounds alternate
gensim and ffnlp (different seeds each round), so that the load of a shared machine hits both
alike. words/s = corpus tokens x epochs / training seconds for both (vocabulary building excluded
for both). Both sets of vectors are scored by the same code (ffnlp.features.wordvec_eval, which
the tests check against gensim's evaluate_word_pairs / evaluate_word_analogies).

``--model fasttext``: configs/ptb_fasttext.toml (the same settings plus character 3- to 6-grams
hashed into its ``model.buckets`` rows) against gensim's ``FastText(sg=1, min_n=3, max_n=6,
bucket=the same)``. Similarity is reported twice: over the pairs whose words are both in the
vocabulary ("in-vocab", the word2vec figure) and over every pair, unseen words getting the mean of
their n-gram vectors ("with OOV"; gensim's n-gram rows are read into the same SubwordVectors, whose
bucket numbers are tested equal to gensim's), with the share of pairs each covers.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SIMILARITY = [DATA / "word_similarity/wordsim353.tsv", DATA / "word_similarity/simlex999.txt"]
ANALOGIES = DATA / "word_analogy/questions-words.txt"
SETTINGS = {"dim": 100, "window": 5, "negative": 5, "min_count": 5, "sample": 1e-3, "epochs": 5}
CONFIGS = {
    "word2vec": ROOT / "configs/ptb_w2v.toml",
    "fasttext": ROOT / "configs/ptb_fasttext.toml",
}
SIM_NAMES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
SPEARMAN_LABELS = {
    "wordsim353": "WordSim-353",
    "simlex999": "SimLex-999",
    "wordsim353_oov": "WordSim-353 with OOV",
    "simlex999_oov": "SimLex-999 with OOV",
}


def subword_settings() -> tuple[int, int, int]:
    """minn, maxn, buckets of the fastText preset (gensim gets the same)."""
    from ffnlp.tasks.w2v import resolve_config

    m = resolve_config(CONFIGS["fasttext"]).model
    return m.minn, m.maxn, m.buckets


def evaluate(wv) -> dict:
    from ffnlp.tasks.w2v import evaluate_vectors

    res = evaluate_vectors(wv, SIMILARITY, ANALOGIES, restrict=30000)
    out = {}
    for key, name in SIM_NAMES.items():
        sim = res["similarity"][name]
        out[key] = sim["spearman"]
        out[f"{key}_coverage"] = sim["coverage"]
        if "oov_from_subwords" in sim:
            out[f"{key}_oov"] = sim["oov_from_subwords"]["spearman"]
            out[f"{key}_oov_coverage"] = sim["oov_from_subwords"]["coverage"]
    out["analogy_3cosadd"] = res["analogy"]["3cosadd"]
    out["analogy_3cosmul"] = res["analogy"]["3cosmul"]
    return out


def gensim_vectors(model):
    """gensim's trained vectors as ffnlp's WordVectors (SubwordVectors for FastText)."""
    from ffnlp.features.subwords import SubwordVectors
    from ffnlp.features.wordvec_eval import WordVectors

    kv = model.wv
    if hasattr(kv, "vectors_ngrams"):
        return SubwordVectors(kv.index_to_key, kv.vectors, kv.vectors_ngrams, kv.min_n, kv.max_n)
    return WordVectors(kv.index_to_key, kv.vectors)


def run_gensim(corpus: Path, threads: int, seed: int, kind: str = "word2vec") -> dict:
    from gensim.models import FastText, Word2Vec

    with (
        gzip.open(corpus, "rt", encoding="utf-8") if corpus.suffix == ".gz" else corpus.open() as fh
    ):
        sentences = [line.split() for line in fh if line.strip()]
    tokens = sum(len(s) for s in sentences)
    s = SETTINGS
    common = {
        "vector_size": s["dim"],
        "window": s["window"],
        "negative": s["negative"],
        "hs": 0,
        "min_count": s["min_count"],
        "sample": s["sample"],
        "sg": 1,
        "workers": threads,
        "seed": seed,
        "alpha": 0.025,
        "min_alpha": 0.0001,
    }
    if kind == "fasttext":
        minn, maxn, buckets = subword_settings()
        model = FastText(**common, min_n=minn, max_n=maxn, bucket=buckets)
    else:
        model = Word2Vec(**common)
    model.build_vocab(sentences)
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(sentences, total_examples=len(sentences), epochs=s["epochs"])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "train_seconds": seconds,
        "words_per_second": tokens * s["epochs"] / seconds,
        "cpu_seconds": cpu,
        "words_per_cpu_second": tokens * s["epochs"] / cpu,
        "vocab_size": len(model.wv),
    }
    out.update(evaluate(gensim_vectors(model)))
    return out


def run_ffnlp(
    corpus: Path,
    threads: int,
    seed: int,
    out: Path,
    extra: list[str],
    kind: str = "word2vec",
    compiled: bool = True,
) -> dict:
    """One ffnlp run; ``compiled`` False: the PyTorch step (as FFNLP_JIT=0 makes it)."""
    import os

    from ffnlp import jit
    from ffnlp.tasks.w2v import train_word2vec

    os.environ[jit.ENV] = "1" if compiled else "0"
    jit.reset()
    hogwild = jit.enabled()  # the compiled step's batches need no preparing thread
    sets = [
        "train.threads=1",
        f"model.workers={threads if hogwild else max(1, threads - 1)}",
        f"corpus.prefetch={'true' if threads > 1 and not hogwild else 'false'}",
        "evaluation.similarity=[]",
        'evaluation.analogies=""',
        "train.checkpoint=false",
        *extra,
    ]
    run = train_word2vec(corpus, config=CONFIGS[kind], overrides=sets, out=out, seed=seed)
    s = run.summary
    os.environ.pop(jit.ENV)
    jit.reset()
    res = {
        "step": s["step"],
        "train_seconds": s["train_seconds"],
        "words_per_second": s["words_per_second"],
        "cpu_seconds": s["train_cpu_seconds"],
        "words_per_cpu_second": s["corpus_tokens"] * s["epochs"] / s["train_cpu_seconds"],
        "vocab_size": s["vocab_size"],
    }
    res.update(evaluate(run.wv))
    return res


@functools.cache
def pairs_per_epoch(corpus: Path) -> int:
    """Skip-gram pairs in one epoch (for the achieved GFLOP/s)."""
    import torch

    from ffnlp.tasks.w2v import EncodedCorpus, PairBatches, resolve_config

    cfg = resolve_config(ROOT / "configs/ptb_w2v.toml")
    enc = EncodedCorpus.read(corpus, cfg.corpus, cfg.model.min_count)
    src = PairBatches(enc, cfg.model, prefetch=False)
    return sum(
        len(b["center"])
        for b in src.batches(cfg.train.batch_size, torch.Generator().manual_seed(0))
    )


def mm_gflops(threads: int) -> float:
    """A plain torch.mm of the batch's size: (3800 x 100) @ (100 x 3800), the same threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(3800, 100), torch.randn(100, 3800)
    best = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * 3800 * 100 * 3800 / best / 1e9


def speed_and_quality(args: argparse.Namespace, model: str, threads: int) -> dict:
    import torch

    rows: dict[str, list[dict]] = {"gensim": [], "ffnlp": []}
    variants: dict[str, tuple[list[str], bool]] = {"ffnlp": (args.set, True)}
    if args.shared:
        variants[f"ffnlp-shared{args.shared}"] = (
            [*args.set, f"model.shared_negatives={args.shared}"],
            True,
        )
        rows[f"ffnlp-shared{args.shared}"] = []
    if args.reference:  # the PyTorch step, as before the compiled one (FFNLP_JIT=0)
        variants["ffnlp-pytorch"] = (args.set, False)
        rows["ffnlp-pytorch"] = []
    for r in range(args.rounds):
        seed = 1 + r
        rows["gensim"].append(run_gensim(args.corpus, threads, seed, model))
        for name, (sets, compiled) in variants.items():
            folder = args.out / f"{model}-{threads}-{name}-{r}"
            rows[name].append(run_ffnlp(args.corpus, threads, seed, folder, sets, model, compiled))
        print(
            f"{model}, {threads} thread(s), round {r + 1}: "
            + ", ".join(f"{k} {v[-1]['words_per_second']:,.0f} words/s" for k, v in rows.items()),
            file=sys.stderr,
        )
    main_variant = f"ffnlp-shared{args.shared}" if args.shared and args.judge_shared else "ffnlp"
    ratios = [
        f["words_per_second"] / g["words_per_second"]
        for f, g in zip(rows[main_variant], rows["gensim"], strict=True)
    ]
    cpu_ratios = [
        f["words_per_cpu_second"] / g["words_per_cpu_second"]
        for f, g in zip(rows[main_variant], rows["gensim"], strict=True)
    ]
    all_ratios = {
        k: statistics.median(
            f["words_per_second"] / g["words_per_second"]
            for f, g in zip(v, rows["gensim"], strict=True)
        )
        for k, v in rows.items()
        if k != "gensim"
    }
    mean = {
        k: {m: statistics.mean(x[m] for x in v) for m in v[0] if m != "step"}
        for k, v in rows.items()
    }
    compared = [m for m in mean["gensim"] if m.startswith(tuple(SIM_NAMES)) and "coverage" not in m]
    pairs = pairs_per_epoch(args.corpus)
    flops_per_pair = (
        (1 + SETTINGS["negative"]) * SETTINGS["dim"] * 8
    )  # dots, 2 backward products, 2 updates
    ffnlp_seconds = statistics.median(x["train_seconds"] for x in rows["ffnlp"])  # per-pair noise
    achieved = pairs * SETTINGS["epochs"] * flops_per_pair / ffnlp_seconds / 1e9
    return {
        "model": model,
        "threads": threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "runs": rows,
        "mean": mean,
        "judged": main_variant,
        "speed_ratio_by_variant": all_ratios,
        "speed_ratio_per_round": ratios,
        "speed_ratio_median": statistics.median(ratios),
        "cpu_efficiency_ratio_median": statistics.median(cpu_ratios),
        "spearman_diff": {m: mean[main_variant][m] - mean["gensim"][m] for m in compared},
        "pairs_per_epoch": pairs,
        "ffnlp_gflops": achieved,
        "torch_mm_gflops": mm_gflops(threads),
    }


def memory(args: argparse.Namespace) -> dict:
    """Peak RSS of `ffnlp w2v train` (1 epoch) on PTB and on PTB repeated 10 times, each in a fresh process."""
    code = (
        "import resource, sys, json\n"
        "from ffnlp.tasks.w2v import train_word2vec\n"
        "run = train_word2vec(sys.argv[1], out=sys.argv[2], overrides=['train.epochs=1', "
        "'train.checkpoint=false', 'evaluation.similarity=[]', 'evaluation.analogies=\"\"'] + sys.argv[3:], "
        f"config={str(ROOT / 'configs/ptb_w2v.toml')!r})\n"
        "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "'tokens': run.summary['corpus_tokens'], 'words_per_second': run.summary['words_per_second']}))\n"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "ptb10.txt.gz"
        with gzip.open(args.corpus, "rb") as fh:
            text = fh.read()
        with gzip.open(big, "wb", compresslevel=1) as fh:
            for _ in range(10):
                fh.write(text)
        for name, path in (("ptb", args.corpus), ("ptb_x10", big)):
            proc = subprocess.run(
                [sys.executable, "-c", code, str(path), str(Path(tmp) / name), *args.set],
                check=True,
                capture_output=True,
                text=True,
            )
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["ratio"] = results["ptb_x10"]["peak_rss_mb"] / results["ptb"]["peak_rss_mb"]
    return results


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=DATA / "ptb/ptb.train.txt.gz")
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare"
    )
    ap.add_argument(
        "--model",
        choices=sorted(CONFIGS),
        nargs="+",
        default=["word2vec", "fasttext"],
        help="word2vec (vs gensim Word2Vec) and/or fasttext (subwords, vs gensim FastText)",
    )
    ap.add_argument(
        "--reference",
        action="store_true",
        help="also run ffnlp's PyTorch step (FFNLP_JIT=0): the figures before the compiled step",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/w2v")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="extra ffnlp override, e.g. train.batch_size=2048",
    )
    ap.add_argument(
        "--shared",
        type=int,
        default=0,
        help="also run ffnlp with model.shared_negatives=M (noise words shared per centre)",
    )
    ap.add_argument(
        "--judge-shared", action="store_true", help="judge the targets on the --shared variant"
    )
    ap.add_argument("--memory", action="store_true", help="run the streaming memory check instead")
    ap.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = ap.parse_args()
    if args.memory:
        res = memory(args)
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            print(
                f"peak RSS  PTB {res['ptb']['peak_rss_mb']:.0f} MB ({res['ptb']['tokens']:,} tokens)  "
                f"10x PTB {res['ptb_x10']['peak_rss_mb']:.0f} MB ({res['ptb_x10']['tokens']:,} tokens)  "
                f"ratio {res['ratio']:.2f} (target <= 1.5)"
            )
        return 0 if res["ratio"] <= 1.5 else 1
    results = [
        speed_and_quality(args, model, threads) for model in args.model for threads in args.threads
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for res in results:
            report(res)
            print()
        print(
            "ffnlp / gensim words/s of training (median of rounds; target >= 1.0), Spearman diff:"
        )
        for res in results:
            d = res["spearman_diff"]
            print(
                f"  {res['model']:9s} {res['threads']} thread(s): "
                + ", ".join(f"{k} {v:.2f}" for k, v in res["speed_ratio_by_variant"].items())
                + "; "
                + ", ".join(f"{SPEARMAN_LABELS[k]} {v:+.3f}" for k, v in d.items())
            )
    ok = all(
        res["speed_ratio_median"] >= 1.0
        and all(abs(v) <= 0.02 for v in res["spearman_diff"].values())
        for res in results
    )
    return 0 if ok else 1


def report(res: dict) -> None:
    """The table of one model and thread count."""
    print(
        f"PTB train, {res['model']}, {res['threads']} thread(s), {res['rounds']} rounds (means; "
        "speed ratio: median of rounds)"
    )
    subwords = res["model"] == "fasttext"
    extra = f" {'WS+OOV':>7s} {'SL+OOV':>7s} {'cover':>11s}" if subwords else ""
    print(
        f"{'':16s} {'words/s':>10s} {'train s':>8s} {'WS353':>7s} {'SL999':>7s}{extra} "
        f"{'3CosAdd':>8s} {'3CosMul':>8s}"
    )
    for name, m in res["mean"].items():
        cells = ""
        if subwords:  # Spearman over every pair, then the share of pairs in-vocab / with OOV
            cells = (
                f" {m['wordsim353_oov']:>7.3f} {m['simlex999_oov']:>7.3f} "
                f"{m['wordsim353_coverage']:>5.0%}/{m['wordsim353_oov_coverage']:<5.0%}"
            )
        print(
            f"{name:16s} {m['words_per_second']:>10,.0f} {m['train_seconds']:>8.2f} "
            f"{m['wordsim353']:>7.3f} {m['simlex999']:>7.3f}{cells} "
            f"{m['analogy_3cosadd']:>8.3f} {m['analogy_3cosmul']:>8.3f}"
        )
    if subwords:
        g, f = res["mean"]["gensim"], res["mean"][res["judged"]]
        print(
            "coverage (share of pairs scored), in-vocab / with OOV: "
            f"WordSim-353 {g['wordsim353_coverage']:.1%} / gensim {g['wordsim353_oov_coverage']:.1%}"
            f", ffnlp {f['wordsim353_oov_coverage']:.1%}; SimLex-999 "
            f"{g['simlex999_coverage']:.1%} / gensim {g['simlex999_oov_coverage']:.1%}, "
            f"ffnlp {f['simlex999_oov_coverage']:.1%}"
        )
    d = res["spearman_diff"]
    print(
        "speed ratios (median of rounds): "
        + ", ".join(f"{k} {v:.2f}" for k, v in res["speed_ratio_by_variant"].items())
    )
    print(f"judged: {res['judged']}")
    print(
        f"speed ratio {res['judged']}/gensim {res['speed_ratio_median']:.2f} (target >= 1.0; rounds: "
        + ", ".join(f"{r:.2f}" for r in res["speed_ratio_per_round"])
        + ")"
    )
    print(
        f"words per CPU-second ratio {res['judged']}/gensim {res['cpu_efficiency_ratio_median']:.2f} "
        "(all threads' CPU time: the figure that a loaded machine disturbs least)"
    )
    print(
        f"Spearman {res['judged']} - gensim: "
        + ", ".join(f"{SPEARMAN_LABELS[k]} {v:+.3f}" for k, v in d.items())
        + " (target |.| <= 0.02)"
    )
    if not subwords:  # the flop count assumes one input row per centre
        print(
            f"ffnlp achieved {res['ffnlp_gflops']:.2f} GFLOP/s over {res['pairs_per_epoch']:,} pairs/epoch; "
            f"plain torch.mm of the batch size {res['torch_mm_gflops']:.1f} GFLOP/s"
        )


if __name__ == "__main__":
    sys.exit(main())
