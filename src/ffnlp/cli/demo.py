"""`ffnlp demo`: the tour on a small generated sample, in well under a minute on 2 cores."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ffnlp.cli.common import out_console, progress_callbacks, setup_logging


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for the sample data and the runs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The tour: write a small sample, train and evaluate a classifier, predict, show the run.

    Example:

        ffnlp demo --out runs/demo
    """
    from ffnlp.tasks.classify import train_classifier
    from ffnlp.tasks.sample import write_sample

    setup_logging(quiet)
    started = time.perf_counter()
    paths = write_sample(out / "data")
    out_console.rule("[bold]ffnlp demo")
    out_console.print(
        f"1. Wrote a generated sample of movie-review-like sentences to {out / 'data'} "
        "(2000 train / 300 dev / 300 test; label 1 = positive, 0 = negative; 'not' flips polarity)."
    )
    out_console.print("2. Logistic regression over tf-idf word uni+bigrams, Adam, early stopping on dev accuracy:")
    clf = train_classifier(
        paths["train"], dev=paths["dev"], test=paths["test"], out=out / "classify",
        overrides=["train.epochs=8", "train.lr=0.05", "train.batch_size=64"],
        callbacks=progress_callbacks(quiet),
    )
    s = clf.summary
    out_console.print(
        f"   dev accuracy {s['dev']['accuracy']:.3f}, test accuracy {s['test']['accuracy']:.3f}, "
        f"macro-F1 {s['test']['macro_f1']:.3f} ({s['epochs']} epochs, {s['train_seconds']:.1f} s)"
    )
    out_console.print("3. Predictions of the trained model:")
    for text in ["the acting is truly delightful .", "the plot is not clever .", "what a tedious film ."]:
        label, prob = clf.predict(text)[0]  # type: ignore[misc]
        out_console.print(f"   {label}  p={prob:.3f}  {text}")
    out_console.print(
        f"4. The run directory {clf.run_dir}: config.toml, vocab.json, model.safetensors, "
        "model.json, metrics.jsonl, summary.json, checkpoint/, plots/loss.png"
    )
    out_console.print(f"Done in {time.perf_counter() - started:.1f} s. Next: ffnlp classify train --help")
