"""``train_classifier``: files -> features -> model -> Trainer -> run directory.

The recipe reads the splits, fits the featurizer on the training one, builds the configured model
type through the registry (no branch on the type here: each model reads its own config), then
hands everything to the run steps of :mod:`ffnlp.tasks.run`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp.errors import ConfigError, DataError
from ffnlp.models.heads import ClassifierInputs, balanced_class_weight
from ffnlp.models.init import initialize
from ffnlp.runtime import seed_everything
from ffnlp.tasks.classify.config import (
    ClassifyConfig,
    check_features,
    classifier_spec,
    model_config,
    resolve_config,
)
from ffnlp.tasks.classify.data import (
    Featurizer,
    check_known_labels,
    make_featurizer,
    read_split,
)
from ffnlp.tasks.classify.evaluate import make_evaluator
from ffnlp.tasks.classify.pretrained import load_pretrained
from ffnlp.tasks.classify.result import Classifier
from ffnlp.tasks.run import Summary, finish_run, fit, run_recipe, start_run, training_summary
from ffnlp.text.readers import LabeledData
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab
from ffnlp.training import Callback
from ffnlp.training.data import BatchSource

Split = str | Path | LabeledData


@run_recipe
def train_classifier(
    train: Split,
    dev: Split | None = None,
    test: Split | None = None,
    config: ClassifyConfig | str | Path | dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    out: str | Path | None = None,
    seed: int | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    force: bool = False,
    **settings: Any,
) -> Classifier:
    """Train a text classifier and write its run directory.

    An existing run in ``out`` is refused unless ``resume`` (continue it) or ``force`` (replace
    it once the new one is complete); the run is written as a transaction (see
    :func:`ffnlp.tasks.run.run_recipe`).

    >>> clf = train_classifier("train.txt", dev="dev.txt", out="runs/sst2",
    ...                        overrides=["train.epochs=5"])            # doctest: +SKIP
    >>> clf.predict("a gripping , funny film", k=1)                      # doctest: +SKIP
    [('1', 0.93)]
    """
    run_dir, cfg = start_run(
        "classify",
        resolve_config,
        config,
        overrides,
        settings,
        out,
        resume,
        seed,
        check=check_features,
        force=force,
        inputs={"--train": train, "--dev": dev, "--test": test},
    )
    started = time.perf_counter()
    data = read_splits(cfg, train, dev, test)
    prepared = prepare(cfg, data)
    prep_seconds = time.perf_counter() - started

    model, args, embeddings = fresh_model(cfg, prepared)
    trainer = fit(
        model,
        cfg.train,
        prepared.train,
        prepared.dev,
        make_evaluator(prepared.labels.labels),
        callbacks,
        run_dir,
        resume,
    )

    clf = Classifier(
        cfg, prepared.labels, prepared.featurizer, trainer.model.cpu().eval(), args, run_dir
    )
    clf.save(run_dir)
    summary = training_summary("classify", trainer, prep_seconds)
    add_results(summary, clf, data, embeddings)
    finish_run(run_dir, summary, trainer.history.records, cfg.train.monitor.split(".", 1)[1])
    clf.summary = dict(summary)
    plot_confusion(summary, prepared.labels, run_dir)
    return clf


# ----------------------------------------------------------------------------------- the steps


@dataclass
class Splits:
    """The data of a run, read with [data]'s options."""

    train: LabeledData
    dev: LabeledData | None
    test: LabeledData | None


@dataclass
class Prepared:
    """What training needs from the data: labels, the fitted featurizer, batch sources."""

    labels: LabelVocab
    featurizer: Featurizer
    train: BatchSource
    dev: BatchSource | None
    y_train: torch.Tensor  # (N,) label ids of the training split


def read_splits(cfg: ClassifyConfig, train: Split, dev: Split | None, test: Split | None) -> Splits:
    return Splits(
        read_split(train, cfg),
        read_split(dev, cfg) if dev is not None else None,
        read_split(test, cfg) if test is not None else None,
    )


def prepare(cfg: ClassifyConfig, data: Splits) -> Prepared:
    """The label set, the featurizer fitted on the training split, and batch sources."""
    labels = LabelVocab.build(data.train.labels)
    if len(labels) < 2:
        raise DataError(
            f"{data.train.path}: every training example has the label {labels.labels[0]!r}; a "
            "classifier needs at least two classes"
        )
    for split in (data.dev, data.test):
        if split is not None:
            check_known_labels(split, labels, f"the training data {data.train.path}")
    tokenizer = Tokenizer(cfg.data.tokenizer, lowercase=cfg.data.lowercase)
    featurizer = make_featurizer(cfg)
    train_tokens = tokenizer.tokenize_all(data.train.texts)
    featurizer.fit(train_tokens, data.train.texts)

    def source(split: LabeledData, tokens: list[list[str]] | None = None) -> BatchSource:
        y = torch.tensor(labels.encode(split.labels), dtype=torch.long)
        toks = tokens if tokens is not None else tokenizer.tokenize_all(split.texts)
        return featurizer.source(toks, split.texts, y)

    return Prepared(
        labels,
        featurizer,
        source(data.train, train_tokens),
        source(data.dev) if data.dev is not None else None,
        torch.tensor(labels.encode(data.train.labels), dtype=torch.long),
    )


def build_model(cfg: ClassifyConfig, prepared: Prepared) -> tuple[nn.Module, dict[str, Any]]:
    """The configured model type, built from its own config and the data's sizes; then
    [model.init]. Returns the model and its constructor arguments (model.json's ``args``)."""
    inputs = ClassifierInputs(
        input_size=prepared.featurizer.input_size,
        num_classes=len(prepared.labels),
        label_smoothing=cfg.loss.label_smoothing,
        class_weight=class_weight(cfg, prepared.y_train, prepared.labels),
        sparse=cfg.train.sparse,
    )
    model, args = classifier_spec(cfg.model.type).build(model_config(cfg.model), inputs)
    initialize(model, cfg.model.init)
    return model, args


def fresh_model(
    cfg: ClassifyConfig, prepared: Prepared
) -> tuple[nn.Module, dict[str, Any], dict[str, Any] | None]:
    """The model training starts from: seeded by train.seed, built by :func:`build_model`, with
    pretrained vectors loaded when [model.pooled] names them. Returns it, its constructor
    arguments and what :func:`load_pretrained` reports (None without vectors)."""
    seed_everything(cfg.train.seed)
    model, args = build_model(cfg, prepared)
    embeddings = load_pretrained(model, cfg, prepared.featurizer)
    return model, args, embeddings


def class_weight(cfg: ClassifyConfig, y: torch.Tensor, labels: LabelVocab) -> list[float] | None:
    """loss.class_weight as one weight per label (None: every example weighs the same)."""
    spec = cfg.loss.class_weight.strip()
    if spec == "none":
        return None
    if spec == "balanced":
        return balanced_class_weight(y, len(labels))
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) != len(labels) or any(v <= 0 for v in values):
        raise ConfigError(
            f"loss.class_weight must be 'none', 'balanced' or {len(labels)} positive numbers "
            f"separated by commas (one per label, in the order {labels.labels}); got {spec!r}"
        )
    return values


def add_results(
    summary: Summary, clf: Classifier, data: Splits, embeddings: dict[str, Any] | None
) -> None:
    """The classifier's own summary keys: model, labels, sizes, skipped lines, dev/test metrics."""
    summary["model"] = clf.config.model.type
    summary["labels"] = clf.labels.labels
    summary["train_examples"] = len(data.train)
    splits = (("train", data.train), ("dev", data.dev), ("test", data.test))
    skipped = {name: split.skipped for name, split in splits if split is not None and split.skipped}
    if skipped:  # lines left out under data.skip_invalid, per split: nothing dropped unseen
        summary["skipped_lines"] = skipped
    if embeddings is not None:
        summary["embeddings"] = embeddings
    if data.dev is not None:
        summary["dev"] = clf.evaluate(data.dev)
    if data.test is not None:
        summary["test"] = clf.evaluate(data.test)


def plot_confusion(summary: Summary, labels: LabelVocab, run_dir: Path) -> None:
    """plots/confusion.png of the test split (or the dev split without one)."""
    from ffnlp.report.confusion import plot_confusion as plot

    for split, metrics in (("test", summary.get("test")), ("dev", summary.get("dev"))):
        if metrics is not None:
            plot(
                metrics["confusion"],
                labels.labels,
                run_dir / "plots" / "confusion.png",
                title=f"confusion matrix ({split})",
            )
            return
