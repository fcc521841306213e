"""`ffnlp demo`: the tour on a small generated sample, in well under a minute on 2 cores."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ffnlp.cli.common import out_console, progress_callbacks, setup_logging

# The demo's models are tiny: a step is too little work to share between threads, and a second
# thread only adds synchronisation (and stalls badly when the machine is busy).
SMALL = {"train.threads": 1}


def demo(
    out: Path = typer.Option(
        Path("runs/demo"), "--out", "-o", help="Folder for the sample data and the runs."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The tour: write a small sample; train a classifier, a language model and word vectors.

    Example:

        ffnlp demo --out runs/demo
    """
    from ffnlp.outputs import check_output_dir
    from ffnlp.tasks.classify import train_classifier
    from ffnlp.tasks.lm import train_lm
    from ffnlp.tasks.sample import write_sample
    from ffnlp.tasks.w2v import train_word2vec

    check_output_dir(out, "--out")  # before the work: a file, below a file, read-only
    setup_logging(quiet)
    started = time.perf_counter()
    bars = progress_callbacks(quiet)
    paths = write_sample(out / "data")
    say = out_console.print
    out_console.rule("[bold]ffnlp demo")
    say(
        f"Sample: movie-review-like sentences generated from word lists and templates, in {out / 'data'}\n"
        "(2000 train / 300 dev / 300 test; label 1 = positive, 0 = negative; 'not' flips polarity)."
    )

    out_console.rule("1. Text classification")
    say("Logistic regression over tf-idf word uni+bigrams; Adam; early stopping on dev accuracy.")
    clf = train_classifier(
        paths["train"],
        dev=paths["dev"],
        test=paths["test"],
        out=out / "classify",
        force=True,
        overrides={"train.epochs": 8, "train.lr": 0.05, "train.batch_size": 64, **SMALL},
        callbacks=bars,
    )
    s = clf.summary
    say(
        f"  dev accuracy {s['dev']['accuracy']:.3f}, test accuracy {s['test']['accuracy']:.3f} "
        f"({s['epochs']} epochs, {s['train_seconds']:.1f} s)"
    )
    say("A feed-forward network over pooled word + bigram embeddings (the fastText/DAN family):")
    ffnn = train_classifier(
        paths["train"],
        dev=paths["dev"],
        test=paths["test"],
        out=out / "classify_ffnn",
        force=True,
        overrides={
            "model.type": "pooled",
            "features.kind": "ids",
            "features.buckets": 20000,
            "model.pooled.dim": 50,
            "train.sparse": True,
            "train.epochs": 8,
            "train.lr": 0.01,
            "train.batch_size": 32,
            **SMALL,
        },
        callbacks=bars,
    )
    s = ffnn.summary
    say(
        f"  dev accuracy {s['dev']['accuracy']:.3f}, test accuracy {s['test']['accuracy']:.3f} "
        f"({s['epochs']} epochs, {s['train_seconds']:.1f} s)"
    )
    for text in [
        "the acting is truly delightful .",
        "the plot is not clever .",
        "what a tedious film .",
    ]:
        label, prob = ffnn.predict(text)[0]
        say(f"  predict: {label}  p={prob:.3f}  {text}")

    out_console.rule("2. Language models")
    sets = {
        "data.min_count": 1,
        "train.epochs": 4,
        "model.embedding_dim": 32,
        "model.hidden_sizes": [64],
        "model.context_size": 3,
        "train.batch_size": 128,
        "train.lr": 0.005,
        **SMALL,
    }
    lm = train_lm(
        paths["train"],
        dev=paths["dev"],
        test=paths["test"],
        out=out / "lm",
        overrides=sets,
        callbacks=bars,
        force=True,
    )
    kn = train_lm(
        paths["train"],
        dev=paths["dev"],
        test=paths["test"],
        out=out / "kn",
        overrides={"kind": "kneser_ney", "kneser_ney.order": 3, "data.min_count": 1},
        force=True,
    )
    say(
        f"  test perplexity: feed-forward LM {lm.summary['test']['perplexity']:.2f}, "
        f"Kneser-Ney 3-gram {kn.summary['test']['perplexity']:.2f}"
    )
    sample = lm.generate("the plot", max_tokens=12, temperature=0.8, seed=1)
    say(f"  generate('the plot'): {sample.text}")

    out_console.rule("3. Word vectors (skip-gram, negative sampling)")
    w2v = train_word2vec(
        paths["corpus"],
        out=out / "w2v",
        force=True,
        overrides={
            "model.dim": 32,
            "model.min_count": 2,
            "model.window": 3,
            "train.epochs": 5,
            "model.workers": 1,
            **SMALL,
        },
        callbacks=bars,
    )
    for word in ("good", "boring"):
        near = ", ".join(w for w, _ in w2v.most_similar(word, 5))
        say(f"  nearest to {word!r}: {near}")

    out_console.rule("Runs")
    say(
        f"Each of {out}/classify, classify_ffnn, lm, kn, w2v holds config.toml, model files, "
        "metrics.jsonl, summary.json and plots/ (loss.png); `ffnlp report DIR` writes report.html."
    )
    say(f"Done in {time.perf_counter() - started:.1f} s. Next: ffnlp classify train --help")
