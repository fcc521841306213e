"""Side-by-side: ffnlp's skip-gram vs gensim's Word2Vec(sg=1) on PTB train, in one run.

    python bench/w2v.py [--corpus ../shared/data/ptb/ptb.train.txt.gz] [--threads 2] [--rounds 3]
    python bench/w2v.py --memory      # streaming: peak memory on 10x PTB vs PTB

Same hyper-parameters (configs/ptb_w2v.toml: dim 100, window 5, negative 5, min_count 5, sample
1e-3, 5 epochs, alpha 0.025 -> 0.0001) and the same cores: gensim ``workers=threads``; ffnlp
``model.workers=threads - 1`` threads sharing each batch (intra-op threads 1) plus its
batch-preparing thread (with 1 thread: no separate preparing thread). Rounds alternate
gensim and ffnlp (different seeds each round), so that the load of a shared machine hits both
alike. words/s = corpus tokens x epochs / training seconds for both (vocabulary building excluded
for both). Both sets of vectors are scored by the same code (ffnlp.features.wordvec_eval, which
the tests check against gensim's evaluate_word_pairs / evaluate_word_analogies).
"""

from __future__ import annotations

import argparse
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


def evaluate(words, vectors) -> dict:
    from ffnlp.features.wordvec_eval import WordVectors
    from ffnlp.tasks.w2v import evaluate_vectors

    res = evaluate_vectors(WordVectors(words, vectors), SIMILARITY, ANALOGIES, restrict=30000)
    return {
        "wordsim353": res["similarity"]["wordsim353.tsv"]["spearman"],
        "simlex999": res["similarity"]["simlex999.txt"]["spearman"],
        "analogy_3cosadd": res["analogy"]["3cosadd"],
        "analogy_3cosmul": res["analogy"]["3cosmul"],
    }


def run_gensim(corpus: Path, threads: int, seed: int) -> dict:
    from gensim.models import Word2Vec

    with (
        gzip.open(corpus, "rt", encoding="utf-8") if corpus.suffix == ".gz" else corpus.open() as fh
    ):
        sentences = [line.split() for line in fh if line.strip()]
    tokens = sum(len(s) for s in sentences)
    s = SETTINGS
    model = Word2Vec(
        vector_size=s["dim"],
        window=s["window"],
        negative=s["negative"],
        hs=0,
        min_count=s["min_count"],
        sample=s["sample"],
        sg=1,
        workers=threads,
        seed=seed,
        alpha=0.025,
        min_alpha=0.0001,
    )
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
    out.update(evaluate(model.wv.index_to_key, model.wv.vectors))
    return out


def run_ffnlp(corpus: Path, threads: int, seed: int, out: Path, extra: list[str]) -> dict:
    from ffnlp.tasks.w2v import train_word2vec

    sets = [
        "train.threads=1",
        f"model.workers={max(1, threads - 1)}",
        f"corpus.prefetch={'true' if threads > 1 else 'false'}",
        "evaluation.similarity=[]",
        'evaluation.analogies=""',
        "train.checkpoint=false",
        *extra,
    ]
    run = train_word2vec(
        corpus, config=ROOT / "configs/ptb_w2v.toml", overrides=sets, out=out, seed=seed
    )
    s = run.summary
    res = {
        "train_seconds": s["train_seconds"],
        "words_per_second": s["words_per_second"],
        "cpu_seconds": s["train_cpu_seconds"],
        "words_per_cpu_second": s["corpus_tokens"] * s["epochs"] / s["train_cpu_seconds"],
        "vocab_size": s["vocab_size"],
    }
    res.update(evaluate(run.wv.words, run.wv.vectors))
    return res


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


def speed_and_quality(args: argparse.Namespace) -> dict:
    import torch

    rows: dict[str, list[dict]] = {"gensim": [], "ffnlp": []}
    variants = {"ffnlp": args.set}
    if args.shared:
        variants[f"ffnlp-shared{args.shared}"] = [
            *args.set,
            f"model.shared_negatives={args.shared}",
        ]
        rows[f"ffnlp-shared{args.shared}"] = []
    for r in range(args.rounds):
        seed = 1 + r
        rows["gensim"].append(run_gensim(args.corpus, args.threads, seed))
        for name, sets in variants.items():
            rows[name].append(
                run_ffnlp(args.corpus, args.threads, seed, args.out / f"{name}-{r}", sets)
            )
        print(
            f"round {r + 1}: "
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
    mean = {k: {m: statistics.mean(x[m] for x in v) for m in v[0]} for k, v in rows.items()}
    pairs = pairs_per_epoch(args.corpus)
    flops_per_pair = (
        (1 + SETTINGS["negative"]) * SETTINGS["dim"] * 8
    )  # dots, 2 backward products, 2 updates
    ffnlp_seconds = statistics.median(x["train_seconds"] for x in rows["ffnlp"])  # per-pair noise
    achieved = pairs * SETTINGS["epochs"] * flops_per_pair / ffnlp_seconds / 1e9
    return {
        "threads": args.threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "runs": rows,
        "mean": mean,
        "judged": main_variant,
        "speed_ratio_by_variant": all_ratios,
        "speed_ratio_per_round": ratios,
        "speed_ratio_median": statistics.median(ratios),
        "cpu_efficiency_ratio_median": statistics.median(cpu_ratios),
        "spearman_diff": {
            m: mean[main_variant][m] - mean["gensim"][m] for m in ("wordsim353", "simlex999")
        },
        "pairs_per_epoch": pairs,
        "ffnlp_gflops": achieved,
        "torch_mm_gflops": mm_gflops(max(1, args.threads - 1)),
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
    ap.add_argument("--threads", type=int, default=2)
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
    res = speed_and_quality(args)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            f"PTB train, {args.threads} threads, {args.rounds} rounds (means; speed ratio: median of rounds)"
        )
        print(
            f"{'':16s} {'words/s':>10s} {'train s':>8s} {'WS353':>7s} {'SL999':>7s} {'3CosAdd':>8s} {'3CosMul':>8s}"
        )
        for name, m in res["mean"].items():
            print(
                f"{name:16s} {m['words_per_second']:>10,.0f} {m['train_seconds']:>8.2f} {m['wordsim353']:>7.3f} "
                f"{m['simlex999']:>7.3f} {m['analogy_3cosadd']:>8.3f} {m['analogy_3cosmul']:>8.3f}"
            )
        d = res["spearman_diff"]
        print(
            "speed ratios (median of rounds): "
            + ", ".join(f"{k} {v:.2f}" for k, v in res["speed_ratio_by_variant"].items())
        )
        print(f"judged: {res['judged']}")
        print(
            f"speed ratio {res['judged']}/gensim {res['speed_ratio_median']:.2f} (target >= 0.5; rounds: "
            + ", ".join(f"{r:.2f}" for r in res["speed_ratio_per_round"])
            + ")"
        )
        print(
            f"words per CPU-second ratio {res['judged']}/gensim {res['cpu_efficiency_ratio_median']:.2f} "
            "(all threads' CPU time: the figure that a loaded machine disturbs least)"
        )
        print(
            f"Spearman {res['judged']} - gensim: WordSim-353 {d['wordsim353']:+.3f}, SimLex-999 {d['simlex999']:+.3f} (target |.| <= 0.03)"
        )
        print(
            f"ffnlp achieved {res['ffnlp_gflops']:.2f} GFLOP/s over {res['pairs_per_epoch']:,} pairs/epoch; "
            f"plain torch.mm of the batch size {res['torch_mm_gflops']:.1f} GFLOP/s"
        )
    ok = res["speed_ratio_median"] >= 0.5 and all(
        abs(v) <= 0.03 for v in res["spearman_diff"].values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
