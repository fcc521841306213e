"""Continued training (--init-from) measured: does a model continued on new data beat the same
model trained on that data alone, and the earlier model as it was?

    python bench/continue.py classify [--config configs/sst2_ffnn.toml] [--folds 10]
    python bench/continue.py w2v [--config configs/ptb_w2v.toml] [--corpus2 lee_background.cor]

``classify``: a classifier is trained on SST-2 (train, dev for early stopping) with the config;
then, on MR's 10 stratified folds (those of ``ffnlp classify cv``: each round trains on nine
folds, 10 % of them held out as dev, and tests on the tenth), three models are scored on each
test fold: the SST-2 model as it was, the same configuration trained on the round's training
part from scratch, and the SST-2 model continued on it (``init_from``). Printed: each one's mean
accuracy ± sd over the folds, and in how many folds the continued model beats each of the
others. MR is Latin-1 (``data.encoding``).

SST-2 and MR are cut from the same Rotten Tomatoes snippets: over half of MR's sentences are
in SST-2's train or dev split (compared with case, spaces and punctuation removed). The SST-2
model has trained on those, so the three models are scored a second time on each test fold's
"unseen" part, the sentences that are in neither.

``w2v``: word2vec is trained on PTB with the config (its WordSim-353 / SimLex-999 Spearman and
analogy accuracy from the run's own evaluation), then continued on a second corpus (the Lee
background corpus by default), read as PTB is written: lowercased, words and numbers split from
the punctuation (the regular expression of ``simple_tokens``, as gensim's simple_preprocess
keeps its tokens), written to a temporary file. Printed: the vocabulary before and after, a few of the new words
with their nearest neighbours, how many old words' vectors moved, and the continued vectors'
Spearman as a share of the earlier ones' (the goal: at least 95 % of WordSim-353).

Each part runs its models in one process on the same threads; the figures are accuracies and
correlations, not timings.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SST2 = DATA / "sst2"
MR = DATA / "mr" / "rt-polarity.all"
PTB = DATA / "ptb" / "ptb.train.txt.gz"
LEE = DATA / "lee_corpus" / "lee_background.cor"
LATIN1 = 'data.encoding="latin-1"'


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def bench_classify(args: argparse.Namespace, work: Path) -> dict[str, object]:
    from ffnlp.experiments.cv import cross_validate, strata, stratified_folds, subset
    from ffnlp.tasks.classify import load, read_split, resolve_config, train_classifier

    t0 = time.perf_counter()
    sets = [f"train.seed={args.seed}"]
    base = train_classifier(
        SST2 / "stsa.binary.train",
        dev=SST2 / "stsa.binary.dev",
        test=SST2 / "stsa.binary.test",
        config=args.config,
        overrides=sets,
        out=work / "sst2",
    )
    print(
        f"SST-2 model ({args.config}): test accuracy {base.summary['test']['accuracy']:.4f} "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    mr_sets = [*sets, LATIN1]
    # the SST-2 model as it was, on each round's test fold (the folds of cross_validate)
    cfg = resolve_config(args.config, mr_sets)
    examples = read_split(MR, cfg)
    folds = stratified_folds(strata(examples), args.folds, cfg.train.seed)
    as_it_was = [base.evaluate(subset(examples, idx))["accuracy"] for idx in folds]
    print(f"SST-2 model as it was, on MR's test folds: {mean_sd(as_it_was)}", flush=True)
    seen = {
        same_text(line.split(" ", 1)[1])
        for split in ("train", "dev")
        for line in (SST2 / f"stsa.binary.{split}").read_text(encoding="utf-8").splitlines()
    }
    fresh = np.array([same_text(t) not in seen for t in examples.texts])
    print(
        f"MR sentences also in SST-2 train/dev: {int((~fresh).sum())} of {len(fresh)}; "
        f"{int(fresh.sum())} unseen",
        flush=True,
    )
    unseen_folds = [idx[fresh[idx]] for idx in folds]

    def fold_line(name: str):  # noqa: ANN202 - the on_fold hook
        return lambda k, scores: print(f"  {name} fold {k}: {scores['accuracy']:.4f}", flush=True)

    t0 = time.perf_counter()
    scratch = cross_validate(
        MR,
        folds=args.folds,
        config=args.config,
        overrides=mr_sets,
        out=work / "mr_scratch",
        on_fold=fold_line("from scratch"),
        keep_models=True,
    )
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    t0 = time.perf_counter()
    continued = cross_validate(
        MR,
        folds=args.folds,
        overrides=mr_sets,
        out=work / "mr_continued",
        init_from=work / "sst2",
        on_fold=fold_line("continued"),
        keep_models=True,
    )
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    scratch_acc = scratch["cv"]["accuracy"]["values"]
    continued_acc = continued["cv"]["accuracy"]["values"]

    def unseen_scores(model_of_fold) -> list[float]:  # noqa: ANN001 - fold -> classifier
        return [
            model_of_fold(k).evaluate(subset(examples, idx))["accuracy"]
            for k, idx in enumerate(unseen_folds)
        ]

    unseen = {
        "as_it_was": unseen_scores(lambda k: base),
        "scratch": unseen_scores(lambda k: load(work / "mr_scratch" / f"fold_{k + 1}")),
        "continued": unseen_scores(lambda k: load(work / "mr_continued" / f"fold_{k + 1}")),
    }
    figures = {"all": (as_it_was, scratch_acc, continued_acc), "unseen": tuple(unseen.values())}
    for part, (was, alone, cont) in figures.items():
        what = "whole test folds" if part == "all" else "test sentences not in SST-2 train/dev"
        print(f"\nMR {args.folds}-fold accuracy ({what}), config {args.config}")
        for name, values in (
            ("SST-2 model as it was", was),
            ("MR folds from scratch", alone),
            ("SST-2 model continued on MR folds", cont),
        ):
            print(f"  {name:36s} {mean_sd(values)}")
        wins_alone = sum(c > s for c, s in zip(cont, alone, strict=True))
        wins_was = sum(c > s for c, s in zip(cont, was, strict=True))
        print(
            f"  continued beats scratch in {wins_alone}/{args.folds} folds "
            f"(mean gain {statistics.mean(cont) - statistics.mean(alone):+.4f}), "
            f"the SST-2 model as it was in {wins_was}/{args.folds} "
            f"(mean gain {statistics.mean(cont) - statistics.mean(was):+.4f})"
        )
    return {
        "config": str(args.config),
        "folds": args.folds,
        "sst2_test_accuracy": base.summary["test"]["accuracy"],
        "mr_sentences_in_sst2": int((~fresh).sum()),
        "as_it_was": as_it_was,
        "scratch": scratch_acc,
        "continued": continued_acc,
        "unseen": unseen,
    }


def simple_tokens(text: str) -> list[str]:
    """Lowercased words and numbers (with an apostrophe's ending), punctuation left out."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def same_text(text: str) -> str:
    """A sentence with case, spaces and punctuation removed (SST-2 and MR tokenise alike but
    not identically)."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def bench_w2v(args: argparse.Namespace, work: Path) -> dict[str, object]:
    from ffnlp.tasks.w2v import train_word2vec

    sets = [f"train.seed={args.seed}"]
    t0 = time.perf_counter()
    evaluation = {  # presets name no data: the evaluation files are given here (and inherited)
        "evaluation.similarity": [
            str(DATA / "word_similarity/wordsim353.tsv"),
            str(DATA / "word_similarity/simlex999.txt"),
        ],
        "evaluation.analogies": str(DATA / "word_analogy/questions-words.txt"),
    }
    base = train_word2vec(
        args.corpus, config=args.config, overrides=sets, out=work / "ptb", **evaluation
    )
    print(f"word2vec on {args.corpus.name} ({time.perf_counter() - t0:.0f} s)", flush=True)
    t0 = time.perf_counter()
    second = work / "second.txt"
    lines = args.corpus2.read_text(encoding="utf-8").splitlines()
    second.write_text("".join(" ".join(simple_tokens(t)) + "\n" for t in lines), encoding="utf-8")
    continued = train_word2vec(
        second, overrides=sets, out=work / "continued", init_from=work / "ptb"
    )
    print(f"continued on {args.corpus2.name} ({time.perf_counter() - t0:.0f} s)", flush=True)
    old_vocab, new_vocab = base.vocab, continued.vocab
    added = new_vocab.itos[len(old_vocab) :]
    print(f"\nvocabulary: {len(old_vocab)} words -> {len(new_vocab)} ({len(added)} new)")
    for word in added[:5]:
        near = ", ".join(w for w, _ in continued.most_similar(word, k=5))
        print(f"  new word {word!r}: nearest {near}")
    old_vectors = base.wv.vectors
    moved = np.linalg.norm(continued.wv.vectors[: len(old_vocab)] - old_vectors, axis=1)
    scale = float(np.linalg.norm(old_vectors, axis=1).mean())
    still = moved == 0
    print(
        f"old words' vectors: {int(still.sum())} of {len(old_vocab)} unchanged (not in the new "
        f"corpus); the others moved by {np.median(moved[~still]) / scale:.3f} of the mean "
        "vector norm (median)"
    )
    before = base.summary["evaluation"]
    after = continued.summary["evaluation"]
    out: dict[str, object] = {"vocab_before": len(old_vocab), "vocab_after": len(new_vocab)}
    print(f"\n{'evaluation':32s} {'before':>8s} {'after':>8s} {'kept':>7s}")
    for name, figures in before.get("similarity", {}).items():
        a, b = figures["spearman"], after["similarity"][name]["spearman"]
        print(f"  {name + ' Spearman':30s} {a:8.4f} {b:8.4f} {b / a:7.1%}")
        out[name] = {"before": a, "after": b, "kept": b / a}
    if "analogy" in before:
        a, b = before["analogy"]["accuracy"], after["analogy"]["accuracy"]
        print(f"  {'analogy accuracy':30s} {a:8.4f} {b:8.4f} {b / a:7.1%}")
        out["analogy"] = {"before": a, "after": b, "kept": b / a}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("classify", "w2v"))
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=PTB)
    parser.add_argument("--corpus2", type=Path, default=LEE)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.config is None:
        name = "sst2_ffnn.toml" if args.part == "classify" else "ptb_w2v.toml"
        args.config = ROOT / "configs" / name
    if not DATA.is_dir():
        sys.exit(f"needs the benchmark data in {DATA}")
    with tempfile.TemporaryDirectory(prefix="ffnlp-continue-") as tmp:
        work = Path(tmp)
        figures = bench_classify(args, work) if args.part == "classify" else bench_w2v(args, work)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
