"""``train_classifier``: files -> features -> model -> Trainer -> run directory.

The recipe reads the splits, settles whether the task is multi-label ([task] multilabel, or the
data under "auto"), fits the featurizer on the training split, builds the configured model type
through the registry (no branch on the type here: each model reads its own config, and its head
follows ``ClassifierInputs.multilabel``), then hands everything to the run steps of
:mod:`ffnlp.tasks.run`.

With ``init_from`` (a finished classify run) the run continues that run's model on the new
data (see :mod:`ffnlp.tasks.continued`): its featurizer grows instead of being fitted, its
labels are extended with the new data's, and its weights are copied into the new model row by
row.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, DataError
from ffnlp.folders.layout import CONFUSION_PLOT, LABEL_F1_PLOT, PLOTS
from ffnlp.models.ensemble import EnsembleClassifier, member_seed
from ffnlp.models.heads import ClassifierInputs, balanced_class_weight, output_size
from ffnlp.models.init import initialize
from ffnlp.runtime import seed_everything
from ffnlp.tasks import continued
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
    multi_hot,
    read_split,
)
from ffnlp.tasks.classify.evaluate import make_evaluator
from ffnlp.tasks.classify.fused import fused_step
from ffnlp.tasks.classify.metrics import tune_thresholds
from ffnlp.tasks.classify.predictions import write_predictions
from ffnlp.tasks.classify.pretrained import load_pretrained
from ffnlp.tasks.classify.result import Classifier
from ffnlp.tasks.request import RunKeywords, Unpack
from ffnlp.tasks.run import Run, Summary, finish_run, fit, start_run, training_summary
from ffnlp.text import shards
from ffnlp.text.readers import LabeledData
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab
from ffnlp.training import distributed
from ffnlp.training.data import BatchSource

log = logging.getLogger(__name__)

Split = str | Path | LabeledData


def train_classifier(
    train: Split,
    dev: Split | None = None,
    test: Split | None = None,
    config: ClassifyConfig | str | Path | dict[str, Any] | None = None,
    **keywords: Unpack[RunKeywords],
) -> Classifier:
    """Train a text classifier and write its run directory.

    ``keywords``: ``overrides``, ``out``, ``seed``, ``callbacks``, ``resume``, ``force`` and
    ``init_from``, as :class:`~ffnlp.tasks.request.RunKeywords` says; a keyword not among them is
    a setting (``**{"train.lr": 0.1}``), applied last.

    ``init_from`` (a finished classify run) continues that run's model on this data, as gensim's
    ``build_vocab(update=True)`` + ``train``: its configuration is the base (``config`` and
    ``overrides`` apply over it), new words, n-grams and labels get fresh rows, the known ones
    keep their trained values, and summary.json records the run under ``init_from``. It cannot
    be combined with ``resume`` (resuming a continued run needs no ``init_from``: the run
    remembers it).

    >>> clf = train_classifier("train.txt", dev="dev.txt", out="runs/sst2",
    ...                        overrides=["train.epochs=5"])            # doctest: +SKIP
    >>> clf.predict("a gripping , funny film", k=1)                      # doctest: +SKIP
    [('1', 0.93)]
    """
    splits = {"--train": train, "--dev": dev, "--test": test}
    continues = bool(keywords.get("resume") or keywords.get("init_from"))

    def check(cfg: ClassifyConfig) -> None:
        check_features(cfg)
        if continues and cfg.model.ensemble > 1:
            raise ConfigError(
                f"model.ensemble = {cfg.model.ensemble} trains its members one after the other "
                "without checkpoints: an ensemble run can be neither resumed nor continued "
                "(init_from); train it again from the start (or set model.ensemble = 1)"
            )

    with start_run("classify", resolve_config, config, keywords, check=check, inputs=splits) as run:
        return _train(run, train, dev, test)


def _train(run: Run, train: Split, dev: Split | None, test: Split | None) -> Classifier:
    """The recipe inside its run: read, featurise, build, fit, score, save."""
    cfg: ClassifyConfig = run.config
    start = open_start(run.base, cfg) if run.base is not None else None
    started = time.perf_counter()
    data = read_splits(cfg, train, dev, test)
    cfg = settle_task(cfg, data)
    prepared = prepare(cfg, data, start)
    prep_seconds = time.perf_counter() - started

    evaluate = make_evaluator(
        prepared.labels.labels, multilabel=prepared.multilabel, threshold=cfg.task.threshold
    )
    size = cfg.model.ensemble
    members: list[dict[str, Any]] = []  # an ensemble's members, for summary.json
    models: list[nn.Module] = []
    trainers = []
    for member in range(size):
        member_cfg = cfg
        if size > 1:  # each member from its own seed; no checkpoint (one file, K members)
            seed = member_seed(cfg.train.seed, member)
            member_cfg = cfgmod.replace(
                cfg, train=cfgmod.to_dict(cfgmod.replace(cfg.train, seed=seed, checkpoint=False))
            )
            log.info("model.ensemble: member %d of %d, seed %d", member + 1, size, seed)
        if member == 0:
            model, args, embeddings = run.seeded(fresh_model, member_cfg, prepared)
        else:
            seed_everything(member_cfg.train.seed)
            model, args, _ = fresh_model(member_cfg, prepared)
        if start is not None:
            record = continue_model(start, model, prepared)
            continued.write_lineage(run.dir, record)
        # the model's compiled step where it makes the configured update (None: autograd); it
        # updates the weights itself, so under torchrun (gradients averaged across ranks) autograd
        step = None if distributed.is_distributed() else fused_step(model, member_cfg.train)
        trainer = fit(
            model,
            member_cfg.train,
            prepared.train,
            prepared.dev,
            evaluate,
            run.callbacks,
            run.dir,
            run.resume,
            step,
            sharded=data.own is not None,
        )
        models.append(trainer.model.cpu().eval())
        trainers.append(trainer)
        if size > 1:
            members.append(member_record(member_cfg, trainer, evaluate, prepared))

    if size > 1:
        model, args = EnsembleClassifier.of(models, cfg.model.type, args)
    else:
        model = models[0]
    thresholds = label_thresholds(cfg, model, prepared)
    clf = Classifier(
        cfg, prepared.labels, prepared.featurizer, model, args, run.final_dir, thresholds=thresholds
    )
    clf.write(run.dir)
    summary = training_summary("classify", trainer, prep_seconds)
    if size > 1:
        ensemble_summary(summary, trainers, members)
    if start is not None:
        summary["init_from"] = record
    add_results(summary, clf, data, embeddings)
    if data.test is not None:  # each test example's answer, for paired comparisons of runs
        write_predictions(clf, data.test, run.dir)
    finish_run(run.dir, summary, trainer.history.records, cfg.train.monitor.split(".", 1)[1])
    clf.summary = dict(summary)
    plot_results(summary, prepared.labels, run.dir)
    return clf


# ----------------------------------------------------------------------------------- the steps


@dataclass
class Splits:
    """The data of a run, read with [data]'s options."""

    train: LabeledData  # all of the training data (every shard's, gathered, when sharded)
    dev: LabeledData | None
    test: LabeledData | None
    # torchrun with sharded input: the training examples of this rank's own shards, which it
    # alone trains on (None: every rank shares ``train`` by batches)
    own: LabeledData | None = None


@dataclass
class Prepared:
    """What training needs from the data: labels, the fitted featurizer, batch sources."""

    labels: LabelVocab
    featurizer: Featurizer
    train: BatchSource
    dev: BatchSource | None
    y_train: torch.Tensor  # (N,) label ids of the training split; multi-label: (N, K) 0/1
    multilabel: bool = False
    rows: continued.RowMap | None = None  # continued run: where the earlier run's input rows went


def read_splits(cfg: ClassifyConfig, train: Split, dev: Split | None, test: Split | None) -> Splits:
    whole, own = read_train(cfg, train)
    return Splits(
        whole,
        read_split(dev, cfg) if dev is not None else None,
        read_split(test, cfg) if test is not None else None,
        own,
    )


def read_train(cfg: ClassifyConfig, train: Split) -> tuple[LabeledData, LabeledData | None]:
    """The training split, and this rank's own part of it when it is sharded under torchrun.

    Several files (a glob pattern or a folder, :mod:`ffnlp.text.shards`) are read as one split in
    shard order by one process. Under torchrun each rank reads only its own shards; the label
    set and the featurizer must be the same on every rank and equal to one process's, so the
    examples read are gathered (in shard order) to settle them, and each rank then trains on its
    own examples only."""
    if isinstance(train, LabeledData) or not shards.names_shards(train, columnar_ok=True):
        return read_split(train, cfg), None
    positions, parts = shards.read_shards(train, "--train", lambda p: read_split(p, cfg))
    own = joined(parts, Path(train))
    if distributed.world_size() == 1:
        return own, None
    everything = shards.in_shard_order(dict(zip(positions, parts, strict=True)), "the shards")
    return joined(everything, Path(train)), own


def joined(parts: list[LabeledData], path: Path) -> LabeledData:
    """The examples of ``parts`` (shards) as one split named ``path``."""
    multilabel = any(p.multilabel for p in parts)
    return LabeledData(
        texts=[t for p in parts for t in p.texts],
        labels=[label for p in parts for label in p.labels],
        path=path,
        skipped=sum(p.skipped for p in parts),
        format=parts[0].format,
        problems=[m for p in parts for m in p.problems][:5],
        label_sets=[s for p in parts for s in p.label_lists()] if multilabel else None,
    )


def settle_task(cfg: ClassifyConfig, data: Splits) -> ClassifyConfig:
    """The configuration with [task] multilabel decided: ``auto`` becomes true when a split has
    a line with several labels or a label list. A multi-label run's configuration says so
    (``multilabel = true``) and monitors ``dev.precision_at_1`` where it would monitor
    ``dev.accuracy``, which multi-label data does not have. Single-label runs are left as
    configured."""
    splits = [s for s in (data.train, data.dev, data.test) if s is not None]
    found = [s for s in splits if s.multilabel]
    setting = cfg.task.multilabel
    if setting is False and found:
        raise DataError(
            f"{found[0].path}: examples with several labels (or labels written as a list), but "
            "task.multilabel = false; set task.multilabel = true (or 'auto') to train one sigmoid "
            "per label"
        )
    multilabel = bool(found) if setting == "auto" else bool(setting)
    if not multilabel:
        if cfg.task.tune_thresholds:
            raise ConfigError(
                "task.tune_thresholds = true tunes the thresholds of multi-label runs, and this "
                "data has one label per example; set task.multilabel = true or leave "
                "task.tune_thresholds = false"
            )
        return cfg
    if cfg.task.tune_thresholds and data.dev is None:
        raise ConfigError(
            "task.tune_thresholds = true tunes each label's threshold on the dev data; pass --dev "
            "(or leave task.tune_thresholds = false)"
        )
    label_sets = data.train.label_lists()
    log.info(
        "%s: multi-label data (task.multilabel = %s): %.2f labels per example; one sigmoid per "
        "label with binary cross-entropy",
        data.train.path,
        "auto" if setting == "auto" else "true",
        sum(map(len, label_sets)) / max(len(label_sets), 1),
    )
    train = cfg.train
    if train.monitor == "dev.accuracy":
        log.info("multi-label: train.monitor = dev.precision_at_1 (there is no dev.accuracy)")
        train = cfgmod.replace(train, monitor="dev.precision_at_1")
    return cfgmod.replace(
        cfg,
        task=cfgmod.to_dict(cfgmod.replace(cfg.task, multilabel=True)),
        train=cfgmod.to_dict(train),
    )


def is_multilabel(cfg: ClassifyConfig) -> bool:
    """Whether the settled configuration (:func:`settle_task`) is multi-label."""
    return cfg.task.multilabel is True


def prepare(cfg: ClassifyConfig, data: Splits, start: Start | None = None) -> Prepared:
    """The label set, the featurizer fitted on the training split, and batch sources; for a
    continued run (``start``) the earlier run's labels and featurizer, grown with this data."""
    multilabel = is_multilabel(cfg)
    if start is not None and start.classifier.multilabel != multilabel:
        kinds = ("single-label", "multi-label")
        raise DataError(
            f"{data.train.path}: {kinds[multilabel]} data, but {start.base.where} is a "
            f"{kinds[start.classifier.multilabel]} classifier; continue it on "
            f"{kinds[start.classifier.multilabel]} data (or set task.multilabel to match)"
        )
    if multilabel:
        names = [name for names in data.train.label_lists() for name in names]
    else:
        names = list(data.train.labels)
    labels = LabelVocab.build(names) if start is None else start.classifier.labels.extended(names)
    if len(labels) < 2:
        raise DataError(
            f"{data.train.path}: every training example has the label {labels.labels[0]!r}; a "
            "classifier needs at least two classes"
        )
    for split in (data.dev, data.test):
        # multi-label: labels the training data lacks are left out of the targets (see below)
        if split is not None and not multilabel:
            check_known_labels(split, labels, f"the training data {data.train.path}")
    tokenizer = Tokenizer(cfg.data.tokenizer, lowercase=cfg.data.lowercase)
    train_tokens = tokenizer.tokenize_all(data.train.texts)

    def targets(split: LabeledData) -> torch.Tensor:
        if not multilabel:
            return torch.tensor(labels.encode(split.labels), dtype=torch.long)  # (N,)
        y, unseen = multi_hot(split.label_lists(), labels)  # (N, K)
        if unseen:
            log.warning(
                "%s: %d label(s) that the training data does not have are left out of the "
                "targets (as fastText leaves them out)",
                split.path,
                unseen,
            )
        return y

    y_train = targets(data.train)
    rows = None
    if start is None:  # fitted on the training split only (nbsvm: with its labels)
        featurizer = make_featurizer(cfg)
        featurizer.fit(train_tokens, data.train.texts, y_train)
    else:  # the earlier run's state, with this run's settings (min_count...), then grown
        featurizer = make_featurizer(cfg, start.classifier.featurizer.to_dict(), start.base.run_dir)
        rows = featurizer.grow(train_tokens, data.train.texts)
    if data.own is None:
        train = featurizer.source(train_tokens, data.train.texts, y_train)
    else:  # sharded under torchrun: this rank trains on its own shards' examples
        own_tokens = tokenizer.tokenize_all(data.own.texts)
        train = featurizer.source(own_tokens, data.own.texts, targets(data.own))
    dev = None
    if data.dev is not None:
        dev_tokens = tokenizer.tokenize_all(data.dev.texts)
        dev = featurizer.source(dev_tokens, data.dev.texts, targets(data.dev))
    return Prepared(labels, featurizer, train, dev, y_train, multilabel, rows)


def build_model(cfg: ClassifyConfig, prepared: Prepared) -> tuple[nn.Module, dict[str, Any]]:
    """The configured model type, built from its own config and the data's sizes; then
    [model.init]. Returns the model and its constructor arguments (model.json's ``args``)."""
    inputs = ClassifierInputs(
        input_size=prepared.featurizer.input_size,
        num_classes=len(prepared.labels),
        label_smoothing=cfg.loss.label_smoothing,
        class_weight=class_weight(cfg, prepared.y_train, prepared.labels),
        sparse=cfg.train.sparse,
        multilabel=prepared.multilabel,
    )
    model, args = classifier_spec(cfg.model.type).build(model_config(cfg.model), inputs)
    if getattr(getattr(model, "head", None), "multilabel", False) != prepared.multilabel:
        raise ConfigError(
            f"model.type = {cfg.model.type!r} does not build a multi-label head: its "
            "arguments(config, inputs) must pass inputs.multilabel on to "
            "ffnlp.models.heads.make_head (the built-in types logreg, mlp and pooled do)"
        )
    initialize(model, cfg.model.init)
    return model, args


def fresh_model(
    cfg: ClassifyConfig, prepared: Prepared
) -> tuple[nn.Module, dict[str, Any], dict[str, Any] | None]:
    """The model training starts from, built by :func:`build_model` (called through
    ``run.seeded``: its initial weights are the first draws of train.seed), with pretrained
    vectors loaded when [model.pooled] names them. Returns it, its constructor arguments and
    what :func:`load_pretrained` reports (None without vectors)."""
    model, args = build_model(cfg, prepared)
    embeddings = load_pretrained(model, cfg, prepared.featurizer)
    return model, args, embeddings


# ------------------------------------------------------------------------------ ensembles


def member_record(
    cfg: ClassifyConfig, trainer: Any, evaluate: Any, prepared: Prepared
) -> dict[str, Any]:
    """What summary.json says of one member of an ensemble: its seed, its training, and its
    own dev figures (beside the ensemble's, they show what averaging gained)."""
    record: dict[str, Any] = {
        "seed": cfg.train.seed,
        "epochs": trainer.epoch,
        "best_epoch": trainer.history.best_epoch,
        "train_seconds": trainer.train_seconds,
    }
    if prepared.dev is not None:
        figures = evaluate(trainer.model, prepared.dev)
        record["dev"] = {k: v for k, v in figures.items() if isinstance(v, (int, float))}
    return record


def ensemble_summary(summary: Summary, trainers: list[Any], members: list[dict[str, Any]]) -> None:
    """An ensemble's training in summary.json: the fit time, CPU time and steps of all its
    members together (the time the model took to train), each member's record under
    ``ensemble``."""
    summary["train_seconds"] = sum(t.train_seconds for t in trainers)
    summary["train_cpu_seconds"] = sum(t.cpu_seconds for t in trainers)
    summary["steps"] = sum(t.step for t in trainers)
    summary["epochs"] = sum(t.epoch for t in trainers)
    summary["ensemble"] = {"size": len(members), "members": members}


# ------------------------------------------------------------------------ continued training

# the settings that lay out a classifier's input rows: a continued run keeps the earlier run's
KEPT_SETTINGS = (
    "features.kind",
    "features.ngram_range",
    "features.char_ngram_range",
    "features.contrast_words",
    "features.weighting",
    "features.sublinear_tf",
    "features.norm",
    "features.buckets",
    "features.minn",
    "features.maxn",
    "features.lexicon.names",
    "features.lexicon.standardize",
    "model.type",
)


@dataclass
class Start:
    """What a continued run starts from: the earlier run and its trained classifier."""

    base: continued.Base
    classifier: Classifier


def open_start(base: continued.Base, cfg: ClassifyConfig) -> Start:
    """The earlier run's classifier, checked against this run's configuration before any data
    is read: the settings of :data:`KEPT_SETTINGS` unchanged, and the configured model, built at
    the earlier run's sizes, shaped as its weights."""
    classifier = Classifier.load(base.run_dir)
    old_cfg = classifier.config
    if isinstance(classifier.model, EnsembleClassifier):
        raise ConfigError(
            f"{base.where} is an ensemble of {len(classifier.model.members)} models "
            "(model.ensemble): a run continues one model; continue a run of model.ensemble = 1"
        )
    continued.check_kept(base, old_cfg, cfg, KEPT_SETTINGS)
    inputs = ClassifierInputs(
        input_size=classifier.featurizer.input_size,
        num_classes=len(classifier.labels),
        sparse=cfg.train.sparse,
        multilabel=classifier.multilabel,
    )
    same_sizes, _ = classifier_spec(cfg.model.type).build(model_config(cfg.model), inputs)
    continued.check_architecture(
        base, classifier.model, same_sizes, old_cfg.model, cfg.model, "model"
    )
    return Start(base, classifier)


def continue_model(start: Start, model: nn.Module, prepared: Prepared) -> dict[str, Any]:
    """Copy the earlier run's weights into ``model`` (built for the grown sizes): the input rows
    through ``prepared.rows``, the classes through the grown label set (old labels keep their
    ids); return the lineage that summary.json records."""
    old_labels = start.classifier.labels
    old_k, new_k, multilabel = len(old_labels), len(prepared.labels), prepared.multilabel
    classes = continued.RowMap(
        output_size(old_k, multilabel),
        output_size(new_k, multilabel),
        torch.arange(old_k),
        binary=output_size(old_k, multilabel) == 1 and new_k > 2,
    )
    assert prepared.rows is not None
    continued.transfer(
        start.base, start.classifier.model.state_dict(), model, [prepared.rows, classes]
    )
    added = prepared.labels.labels[old_k:]
    log.info(
        "%s: %d of %d input rows are new; %d new label(s)%s",
        start.base.where,
        prepared.rows.new_size - prepared.rows.old_size,
        prepared.rows.new_size,
        len(added),
        f" ({', '.join(added[:10])})" if added else "",
    )
    return continued.lineage(
        start.base,
        model=start.base.model_type,
        input_rows={"before": prepared.rows.old_size, "after": prepared.rows.new_size},
        labels_added=added,
    )


def class_weight(cfg: ClassifyConfig, y: torch.Tensor, labels: LabelVocab) -> list[float] | None:
    """loss.class_weight as one weight per label (None: every example weighs the same)."""
    spec = cfg.loss.class_weight.strip()
    if spec == "none":
        return None
    if is_multilabel(cfg):
        raise ConfigError(
            "loss.class_weight weighs the examples of each class of single-label data; "
            "multi-label data has no single class per example: set loss.class_weight = 'none'"
        )
    if spec == "balanced":
        return balanced_class_weight(y, len(labels))
    try:
        values = [float(v) for v in spec.split(",")]
    except ValueError:
        values = []
    if len(values) != len(labels) or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(
            f"loss.class_weight must be 'none', 'balanced' or {len(labels)} positive numbers "
            f"separated by commas (one per label, in the order {labels.labels}); got {spec!r}"
        )
    return values


def label_thresholds(
    cfg: ClassifyConfig, model: nn.Module, prepared: Prepared
) -> list[float] | None:
    """task.tune_thresholds: per label, the threshold that maximises its F1 on the dev data."""
    if not (prepared.multilabel and cfg.task.tune_thresholds and prepared.dev is not None):
        return None
    from ffnlp.models.protocols import as_classifier, head_of

    classifier = as_classifier(model)
    head = head_of(classifier)
    golds, probs = [], []
    with torch.no_grad():
        for batch in prepared.dev.batches(2048, None):
            probs.append(head.probabilities(classifier.logits(batch)))  # (B, K)
            golds.append(batch["y"])
    tuned = tune_thresholds(torch.cat(golds), torch.cat(probs), cfg.task.threshold)
    log.info(
        "task.tune_thresholds: per-label thresholds from the dev data (median %.3f)",
        float(tuned.median()),
    )
    return [float(t) for t in tuned]


def add_results(
    summary: Summary, clf: Classifier, data: Splits, embeddings: dict[str, Any] | None
) -> None:
    """The classifier's own summary keys: model, labels, sizes, skipped lines, dev/test metrics."""
    summary["model"] = clf.config.model.type
    summary["labels"] = clf.labels.labels
    summary["train_examples"] = len(data.train)
    if clf.multilabel:
        label_sets = data.train.label_lists()
        summary["multilabel"] = True
        summary["labels_per_example"] = sum(map(len, label_sets)) / max(len(label_sets), 1)
        summary["threshold"] = clf.config.task.threshold
        summary["tuned_thresholds"] = clf.thresholds is not None
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


def plot_results(summary: Summary, labels: LabelVocab, run_dir: Path) -> None:
    """plots/confusion.png of the test split (or the dev split without one); multi-label runs,
    which have no confusion matrix, get plots/label_f1.png, the F1 of the most frequent labels."""
    from ffnlp.report.confusion import plot_confusion, plot_label_f1

    for split, metrics in (("test", summary.get("test")), ("dev", summary.get("dev"))):
        if metrics is None:
            continue
        if summary.get("multilabel"):
            plot_label_f1(
                metrics["per_class"],
                run_dir / PLOTS / LABEL_F1_PLOT,
                title=f"F1 per label at the threshold ({split})",
            )
        else:
            plot_confusion(
                metrics["confusion"],
                labels.labels,
                run_dir / PLOTS / CONFUSION_PLOT,
                title=f"confusion matrix ({split})",
            )
        return
