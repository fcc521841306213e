"""The run steps every task shares, written once.

A task's ``train_*`` function is a recipe: read and featurise the data, build the model, then
hand both to these steps, which are the same for every task::

    run_dir, cfg = start_run("classify", resolve_config, config, overrides, settings, out, resume)
    ...read the data, build the model...
    trainer = fit(model, cfg.train, train_source, dev_source, evaluate, callbacks, run_dir, resume)
    summary = training_summary("classify", trainer, prep_seconds)
    ...the task's own figures (dev/test metrics)...
    finish_run(run_dir, summary, trainer.history.records, metric="accuracy")

``start_run`` resolves the configuration (defaults -> file -> overrides -> keyword settings),
opens the run directory (or the interrupted one, on resume), writes ``config.toml`` and makes the
process settings (threads, allocator); ``fit`` turns off what needs dev data when there is none
and runs the Trainer; ``finish_run`` writes ``summary.json`` and the plots.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, DataError
from ffnlp.runtime import open_run_dir, prepare_process
from ffnlp.tasks.runfolder import expect_run_of
from ffnlp.text.readers import input_problems
from ffnlp.training import Callback, TrainConfig, Trainer
from ffnlp.training.data import BatchSource
from ffnlp.training.steps import Step
from ffnlp.training.trainer import Evaluate

C = TypeVar("C", bound="HasTrain")


class HasTrain(Protocol):
    """A task configuration: any frozen dataclass with a ``[train]`` section."""

    @property
    def train(self) -> TrainConfig: ...


class Summary(TypedDict, total=False):
    """summary.json: the keys every task writes, then each task's own (``dev``/``test`` metrics,
    sizes, speed). Written by :func:`finish_run`; read back by ``eval``, ``report``, ``compare``."""

    task: str  # "classify", "lm" or "w2v"
    train_seconds: float  # wall time of Trainer.fit (resumed runs: all sessions together)
    train_cpu_seconds: float  # CPU time of every thread of the process during fit (this session)
    prep_seconds: float  # reading, tokenising, featurising before training
    epochs: int  # epochs completed
    steps: int  # optimiser steps taken
    best_epoch: int | None  # epoch of the best evaluation (None without dev data)
    stop_reason: str  # why training stopped early ("" when it ran every epoch)
    interrupted: bool  # Ctrl-C / SIGTERM: a checkpoint was saved; --resume continues
    dev: dict[str, Any]  # the dev split's metrics with the final weights
    test: dict[str, Any]  # the test split's metrics
    # classify
    model: str  # model.type
    labels: list[str]
    train_examples: int
    skipped_lines: dict[str, int]  # lines left out under data.skip_invalid, per split
    embeddings: dict[str, Any]  # pretrained vectors: file, coverage
    # lm
    kind: str  # "ffnn" or "kneser_ney"
    vocab_size: int
    train_tokens: int
    tokens_per_second: float
    parameters: int
    ngrams: list[int]  # Kneser-Ney: n-grams kept per order
    discounts: list[list[float]]  # Kneser-Ney: D1, D2, D3+ per order
    interpolated: dict[str, Any]  # mixture with another LM: weight, dev/test perplexity
    samples: list[str]
    # w2v
    architecture: str  # "skipgram" or "cbow"
    corpus_tokens: int
    corpus_words_in_vocab: int
    words_per_second: float  # corpus tokens x epochs / training seconds, as gensim counts
    threads: int
    workers: int
    prefetch_thread: bool
    final_train_loss: float | None
    evaluation: dict[str, Any]  # similarity / analogy results of the final vectors


def start_run(
    task: str,
    resolve: Callable[..., C],
    config: Any,
    overrides: Iterable[str],
    settings: Mapping[str, Any],
    out: str | Path | None,
    resume: bool,
    seed: int | None = None,
    check: Callable[[C], None] | None = None,
    inputs: Mapping[str, object] | None = None,
) -> tuple[Path, C]:
    """Resolve the configuration, open the run directory, save ``config.toml``, set the process.

    ``seed`` is a shortcut for ``train.seed``; ``check`` validates the resolved configuration
    before anything is written (a refused configuration leaves the disk as it was). ``inputs``
    (option -> data file, e.g. {"--train": path}) are checked at the same time: a missing file
    and a configuration problem are reported together, in one error.
    """
    settings = dict(settings)
    if seed is not None:
        settings["train.seed"] = seed
    overrides = list(overrides)
    if resume and out is not None:
        expect_run_of(Path(out), task)
    problems = input_problems(inputs or {})
    try:
        cfg = resolve(config, overrides, **settings)
        if check is not None:
            check(cfg)
    except ConfigError as exc:
        if not problems:
            raise
        everything = problems + exc.problems
        message = cfgmod.join_problems(everything, "in the configuration and inputs")
        raise ConfigError(message, problems=everything) from None
    cfgmod.raise_problems(problems, "with the input files", error=DataError)
    run_dir, cfg = open_run_dir(
        out, task, resume, cfg, lambda saved: resolve(saved, overrides, **settings)
    )
    cfgmod.save_toml(cfg, run_dir / "config.toml")
    prepare_process(cfg.train.threads)
    return run_dir, cfg


def fit(
    model: nn.Module,
    train_config: TrainConfig,
    train: BatchSource,
    dev: BatchSource | None,
    evaluate: Evaluate | None,
    callbacks: Sequence[Callback],
    run_dir: Path,
    resume: bool,
    step: Step | None = None,
) -> Trainer:
    """Train ``model`` with the one Trainer; return it (weights, history, timings).

    Without dev data there is nothing to monitor: early stopping and best-weights restoring are
    turned off, and the run ends with its last weights. ``step`` is the update strategy
    (default: autograd + the configured optimiser).
    """
    if dev is None and train_config.monitor.startswith("dev."):
        train_config = cfgmod.replace(train_config, early_stopping=False, restore_best=False)
    trainer = Trainer(
        model,
        train_config,
        train,
        dev=dev,
        evaluate=evaluate,
        callbacks=list(callbacks),
        run_dir=run_dir,
        step=step,
    )
    cpu_started = time.process_time()
    trainer.fit(resume=resume)
    trainer.cpu_seconds = time.process_time() - cpu_started
    return trainer


def training_summary(task: str, trainer: Trainer, prep_seconds: float) -> Summary:
    """The keys every task's summary.json starts with."""
    return Summary(
        task=task,
        train_seconds=trainer.train_seconds,
        train_cpu_seconds=trainer.cpu_seconds,
        prep_seconds=prep_seconds,
        epochs=trainer.epoch,
        steps=trainer.step,
        best_epoch=trainer.history.best_epoch,
        stop_reason=trainer.stop_reason,
        interrupted=trainer.interrupted,
    )


def finish_run(
    run_dir: Path,
    summary: Summary,
    records: list[dict[str, Any]] | None = None,
    metric: str | None = None,
) -> Summary:
    """Write ``summary.json`` and, when there is a training history, ``plots/loss.png`` (and the
    monitored dev metric's plot)."""
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if records:
        from ffnlp.report.plots import plot_history

        plot_history(records, run_dir, metric=metric)
    return summary
