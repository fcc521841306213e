"""The tour of `ffnlp demo`: a small generated sample, then a classifier, language models and
word vectors trained on it, each a run folder, in well under a minute on 2 cores.

The library does not print: what the tour has to say goes to ``say`` (a line) and ``section``
(a heading), which the command prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ffnlp.tasks.classify import train_classifier
from ffnlp.tasks.lm import train_lm
from ffnlp.tasks.sample import write_sample
from ffnlp.tasks.w2v import train_word2vec
from ffnlp.training.callbacks import Callback

# The demo's models are tiny: a step is too little work to share between threads, and a second
# thread only adds synchronisation (and stalls badly when the machine is busy).
SMALL: dict[str, Any] = {"train.threads": 1}
LOGREG: dict[str, Any] = {"train.epochs": 8, "train.lr": 0.05, "train.batch_size": 64, **SMALL}
POOLED: dict[str, Any] = {
    "model.type": "pooled",
    "features.kind": "ids",
    "features.buckets": 20000,
    "model.pooled.dim": 50,
    "train.sparse": True,
    "train.epochs": 8,
    "train.lr": 0.01,
    "train.batch_size": 32,
    **SMALL,
}
LM: dict[str, Any] = {
    "data.min_count": 1,
    "train.epochs": 4,
    "model.embedding_dim": 32,
    "model.hidden_sizes": [64],
    "model.context_size": 3,
    "train.batch_size": 128,
    "train.lr": 0.005,
    **SMALL,
}
KNESER_NEY: dict[str, Any] = {"kind": "kneser_ney", "kneser_ney.order": 3, "data.min_count": 1}
W2V: dict[str, Any] = {
    "model.dim": 32,
    "model.min_count": 2,
    "model.window": 3,
    "train.epochs": 5,
    "model.workers": 1,
    **SMALL,
}
EXAMPLES = ["the acting is truly delightful .", "the plot is not clever .", "what a tedious film ."]


def tour(
    out: Path,
    say: Callable[[str], None],
    section: Callable[[str], None],
    callbacks: Sequence[Callback] = (),
) -> None:
    """Write the sample under ``out``/data and train the tour's five runs beside it."""
    started = time.perf_counter()
    paths = write_sample(out / "data")
    say(
        f"Sample: movie-review-like sentences generated from word lists and templates, in {out / 'data'}\n"
        "(2000 train / 300 dev / 300 test; label 1 = positive, 0 = negative; 'not' flips polarity)."
    )
    splits: dict[str, Any] = {
        "dev": paths["dev"],
        "test": paths["test"],
        "force": True,
        "callbacks": callbacks,
    }

    section("1. Text classification")
    say("Logistic regression over tf-idf word uni+bigrams; Adam; early stopping on dev accuracy.")
    clf = train_classifier(paths["train"], out=out / "classify", overrides=LOGREG, **splits)
    say(_accuracies(clf.summary))
    say("A feed-forward network over pooled word + bigram embeddings (the fastText/DAN family):")
    ffnn = train_classifier(paths["train"], out=out / "classify_ffnn", overrides=POOLED, **splits)
    say(_accuracies(ffnn.summary))
    for text in EXAMPLES:
        label, prob = ffnn.predict(text)[0]
        say(f"  predict: {label}  p={prob:.3f}  {text}")

    section("2. Language models")
    lm = train_lm(paths["train"], out=out / "lm", overrides=LM, **splits)
    kn = train_lm(
        paths["train"], out=out / "kn", overrides=KNESER_NEY, **{**splits, "callbacks": ()}
    )
    say(
        f"  test perplexity: feed-forward LM {lm.summary['test']['perplexity']:.2f}, "
        f"Kneser-Ney 3-gram {kn.summary['test']['perplexity']:.2f}"
    )
    sample = lm.generate("the plot", max_tokens=12, temperature=0.8, seed=1)
    say(f"  generate('the plot'): {sample.text}")

    section("3. Word vectors (skip-gram, negative sampling)")
    w2v = train_word2vec(
        paths["corpus"], out=out / "w2v", force=True, overrides=W2V, callbacks=callbacks
    )
    for word in ("good", "boring"):
        near = ", ".join(w for w, _ in w2v.most_similar(word, 5))
        say(f"  nearest to {word!r}: {near}")

    section("Runs")
    say(
        f"Each of {out}/classify, classify_ffnn, lm, kn, w2v holds config.toml, model files, "
        "metrics.jsonl, summary.json and plots/ (loss.png); `ffnlp report DIR` writes report.html."
    )
    say(f"Done in {time.perf_counter() - started:.1f} s. Next: ffnlp classify train --help")


def _accuracies(summary: dict) -> str:
    return (
        f"  dev accuracy {summary['dev']['accuracy']:.3f}, test accuracy "
        f"{summary['test']['accuracy']:.3f} ({summary['epochs']} epochs, "
        f"{summary['train_seconds']:.1f} s)"
    )
