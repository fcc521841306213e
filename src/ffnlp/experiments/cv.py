"""k-fold cross-validation of a text classifier, for data that comes without a split (e.g. MR).

Folds are stratified and deterministic: the examples of each class are shuffled by ``seed`` and
dealt to the folds in turn, so every fold holds each class in (nearly) the data's proportion and
the same seed always gives the same folds.  Fold k is the test set of round k; the other folds
train, minus a stratified ``dev_fraction`` held out for early stopping (0 = no dev set: train
for the configured epochs and keep the last weights).

Multi-label data is stratified on one label per example, its rarest (the one with the fewest
examples in the whole file; ties by name): the rare labels, which random folds would most often
leave out of a training or test fold, are spread over the folds first-hand, and the frequent
ones follow along in about their share. It is a simpler stand-in for iterative stratification
(Sechidis et al. 2011), which balances every label at once.

    result = cross_validate("rt-polarity.all", folds=10, config="mr_ffnn", out="runs/mr_cv")
    result["cv"]["accuracy"]        # {"mean": ..., "sd": ..., "values": [...one per fold...]}

``DIR/summary.json`` holds that result; ``DIR/fold_K/`` each round's run directory (the model
weights are deleted after evaluation unless ``keep_models``, as ten copies of a large embedding
table are rarely wanted).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ffnlp import config as cfgmod
from ffnlp.config import to_dict
from ffnlp.errors import ConfigError, DataError
from ffnlp.experiments.stats import describe, is_figure
from ffnlp.folders.folder import write_summary
from ffnlp.folders.groups import group_folder
from ffnlp.folders.layout import CHECKPOINT_DIR, WEIGHTS
from ffnlp.text.readers import LabeledData

if TYPE_CHECKING:
    from ffnlp.training.callbacks import Callback


def stratified_folds(labels: Sequence[str], folds: int, seed: int = 13) -> list[np.ndarray]:
    """Indices of each of ``folds`` test folds; every index in exactly one, classes stratified."""
    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds; got {folds}")
    if len(labels) < folds:
        raise DataError(f"cannot make {folds} folds from {len(labels)} examples; use fewer folds")
    rng = np.random.default_rng(seed)
    buckets: list[list[int]] = [[] for _ in range(folds)]
    position = 0  # continue dealing where the previous class stopped: fold sizes stay balanced
    for label in sorted(set(labels)):
        idx = np.flatnonzero(np.asarray(labels, dtype=object) == label)
        rng.shuffle(idx)
        for i in idx:
            buckets[position % folds].append(int(i))
            position += 1
    return [np.sort(np.asarray(b, dtype=np.int64)) for b in buckets]


def split_off(
    labels: Sequence[str], indices: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``indices`` into (rest, held_out) with about ``fraction`` held out."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in sorted({labels[i] for i in indices}):
        idx = np.asarray([i for i in indices if labels[i] == label], dtype=np.int64)
        rng.shuffle(idx)
        held.extend(idx[: int(round(fraction * len(idx)))].tolist())
    held_set = set(held)
    rest = np.asarray([i for i in indices if i not in held_set], dtype=np.int64)
    return rest, np.sort(np.asarray(held, dtype=np.int64))


def subset(data: LabeledData, indices: np.ndarray) -> LabeledData:
    sets = data.label_sets
    return LabeledData(
        texts=[data.texts[i] for i in indices],
        labels=[data.labels[i] for i in indices],
        path=data.path,
        label_sets=[sets[i] for i in indices] if sets is not None else None,
    )


def strata(data: LabeledData) -> list[str]:
    """The label each example is stratified on: its label, or (multi-label) its rarest one."""
    if data.label_sets is None:
        return data.labels
    counts: dict[str, int] = {}
    for labels in data.label_sets:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    return [min(labels, key=lambda x: (counts[x], x)) for labels in data.label_sets]


def summarize(values: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """mean, sd (sample, n-1) and the values of every metric."""
    out: dict[str, dict[str, Any]] = {}
    for name, vals in values.items():
        d = describe(vals)
        out[name] = {"mean": d["mean"], "sd": d["sd"], "values": vals}
    return out


def cross_validate(
    data: str | Path | LabeledData,
    folds: int = 10,
    config: Any = None,
    overrides: cfgmod.Settings | Iterable[str] = (),
    out: str | Path | None = None,
    seed: int | None = None,
    dev_fraction: float = 0.1,
    keep_models: bool = False,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
    callbacks: Sequence[Callback] = (),
    tensorboard: str | Path | None = None,
    init_from: str | Path | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Train and test ``folds`` times; return (and write to DIR/summary.json) mean ± sd of every metric.

    ``overrides`` are settings over ``config`` ({"train.epochs": 5}, or the
    ``["train.epochs=5"]`` text of --set), then keyword ``settings``.

    ``on_fold(k, scores)`` is called after each round; ``callbacks`` are handed to every round's
    trainer (e.g. a progress display); ``tensorboard``: a folder where each round writes its
    TensorBoard scalars, into ``fold_K`` (TensorBoard shows them as separate runs);
    ``init_from``: a finished classify run that every round continues (its configuration is the
    base of ``config``, see :mod:`ffnlp.tasks.continued`).
    """
    from ffnlp.tasks.classify import read_split, resolve_config, train_classifier
    from ffnlp.tasks.continued import start_from

    _, config = start_from(init_from, "classify", False, config)

    if not 0.0 <= dev_fraction < 0.5:
        raise ConfigError(f"dev_fraction must be in [0, 0.5); got {dev_fraction}")
    sets = cfgmod.settings_of(overrides, "overrides", "cross_validate")
    cfg = resolve_config(config, sets, **settings)
    fold_seed = cfg.train.seed if seed is None else seed
    examples = read_split(data, cfg)
    if len({label for labels in examples.label_lists() for label in labels}) < 2:
        raise DataError(
            f"{examples.path}: every example has the label {examples.labels[0]!r}; "
            "a classifier needs at least two classes"
        )
    keys = strata(examples)
    smallest = min(keys.count(label) for label in set(keys))
    if smallest < folds and not examples.multilabel:  # multi-label: rare labels are the rule
        raise DataError(
            f"{examples.path}: a class has only {smallest} example(s), fewer than the {folds} folds; "
            f"use at most {smallest} folds"
        )
    with group_folder(out, "classify-cv") as run_dir:
        test_folds = stratified_folds(keys, folds, fold_seed)
        everything = np.arange(len(examples))
        metrics: dict[str, list[float]] = {}
        rounds = []
        for k, test_idx in enumerate(test_folds):
            train_idx = np.setdiff1d(everything, test_idx)
            dev = None
            if dev_fraction > 0:
                train_idx, dev_idx = split_off(keys, train_idx, dev_fraction, fold_seed + k)
                dev = subset(examples, dev_idx)
            fold_dir = run_dir / f"fold_{k + 1}"
            clf = train_classifier(
                subset(examples, train_idx),
                dev=dev,
                test=subset(examples, test_idx),
                config=cfg,
                overrides=cfgmod.tensorboard_settings(tensorboard, f"fold_{k + 1}"),
                out=fold_dir,
                seed=seed,
                callbacks=callbacks,
                init_from=init_from,
            )
            summary = clf.summary
            scores = {
                name: float(v)
                for name, v in summary["test"].items()
                if is_figure(v) and name != "examples"
            }
            scores["train_seconds"] = float(summary["train_seconds"])
            for name, value in scores.items():
                metrics.setdefault(name, []).append(value)
            rounds.append(
                {
                    "fold": k + 1,
                    "train": len(train_idx),
                    "dev": 0 if dev is None else len(dev),
                    "test": len(test_idx),
                    "best_epoch": summary.get("best_epoch"),
                    **scores,
                }
            )
            if not keep_models:
                (fold_dir / WEIGHTS).unlink(missing_ok=True)
                shutil.rmtree(fold_dir / CHECKPOINT_DIR, ignore_errors=True)
            if on_fold is not None:
                on_fold(k + 1, scores)
        result = {
            "task": "classify-cv",
            "data": str(examples.path),
            "examples": len(examples),
            "folds": folds,
            "fold_seed": fold_seed,
            "dev_fraction": dev_fraction,
            **({"init_from": str(init_from)} if init_from is not None else {}),
            "cv": summarize(metrics),
            "rounds": rounds,
            "config": to_dict(cfg),
        }
        write_summary(run_dir, result)
    result["run_dir"] = str(run_dir)
    return result
