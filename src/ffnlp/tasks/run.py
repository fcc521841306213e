"""The run steps every task shares, written once.

A task's ``train_*`` function is a recipe: read and featurise the data, build the model, then
hand both to these steps, which are the same for every task::

    def train_classifier(train, dev=None, test=None, config=None, **keywords):
        with start_run("classify", resolve_config, config, keywords, check=check_features,
                       inputs={"--train": train, "--dev": dev, "--test": test}) as run:
            cfg = run.config
            ...read the data...
            model = run.seeded(build_model, cfg, ...)   # the first draws of train.seed
            trainer = fit(model, cfg.train, train_source, dev_source, evaluate, run.callbacks,
                          run.dir, run.resume)
            summary = training_summary("classify", trainer, prep_seconds)
            ...the task's own figures (dev/test metrics)...
            finish_run(run.dir, summary, trainer.history.records, metric="accuracy")
            return Classifier(..., run.final_dir)

``keywords`` are the recipe's :class:`~ffnlp.tasks.request.RunKeywords` (``overrides``,
``out``, ``seed``, ``callbacks``, ``resume``, ``force``, ``init_from``) and keyword settings.
``start_run`` is the whole run, explicit: on entering it checks them, resolves the configuration
(defaults -> file -> overrides -> keyword settings), opens the run folder as a transaction (see
:mod:`ffnlp.folders.transaction`; an existing run is refused unless ``resume`` or ``force``),
writes ``config.toml`` and prepares the process (the allocator, and the threads when they are
given as a number); ``run.seeded`` seeds Python, NumPy and torch once, right before the model's
initial weights are drawn. When the block ends the run is put in place (``run.final_dir``);
when it fails what it wrote is removed and an existing run is left as it was; when it is
interrupted (Ctrl-C, SIGTERM) a partial run that has a checkpoint is kept, resumable.

``fit`` sets the threads for the model ("auto"), turns off what needs dev data when there is
none and runs the Trainer, raising :class:`~ffnlp.errors.Interrupted` after Ctrl-C / SIGTERM
(the checkpoint written, nothing evaluated); ``finish_run`` writes ``summary.json`` and the
plots.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, DataError, FfnlpError, Interrupted, ModelFileError, RankLost
from ffnlp.fileio import as_named, is_disk_full, output_error, write_atomic
from ffnlp.folders.folder import has_summary, write_config, write_summary
from ffnlp.folders.layout import CHECKPOINT, CONFIG, MARKER, METRICS
from ffnlp.folders.restarts import (
    left_by_earlier_attempt,
    note_job,
    restart_count,
    torchrun_job,
    write_marker,
)
from ffnlp.folders.transaction import RunTransaction
from ffnlp.runtime import is_main_process, prepare_process, seed_everything
from ffnlp.tasks.continued import Base, resumed_base
from ffnlp.tasks.request import Request, request
from ffnlp.tasks.runfolder import expect_run_of
from ffnlp.text import shards
from ffnlp.text.readers import input_problems
from ffnlp.threads import set_threads_for
from ffnlp.training import Callback, TrainConfig, Trainer, distributed
from ffnlp.training.checkpoint import checkpoint_path
from ffnlp.training.data import BatchSource
from ffnlp.training.signals import interrupts_as_exceptions
from ffnlp.training.steps import Step
from ffnlp.training.tensorboard import check_tensorboard
from ffnlp.training.trainer import Evaluate

log = logging.getLogger(__name__)

C = TypeVar("C", bound="HasTrain")
T = TypeVar("T")


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
    threads: int  # intra-op threads of the training steps (train.threads; "auto": the rule's pick)
    world_size: int  # processes that trained together (torchrun), 1 alone
    ranks: list[dict[str, Any]]  # torchrun: each rank's batch, examples/s and gradient exchange
    restarts: int  # torchrun --max-restarts: the attempt that completed the run (absent: first)
    warnings: list[str]  # train.diagnostics: the advice given during training (absent if none)
    init_from: dict[str, Any]  # a continued run: the run it started from and what grew
    ensemble: dict[str, Any]  # classify, model.ensemble > 1: size, each member's seed and figures
    dev: dict[str, Any]  # the dev split's metrics with the final weights
    test: dict[str, Any]  # the test split's metrics
    # classify
    model: str  # model.type
    labels: list[str]
    train_examples: int
    skipped_lines: dict[str, int]  # lines left out under data.skip_invalid, per split
    embeddings: dict[str, Any]  # pretrained vectors: file, coverage
    multilabel: bool  # several labels per example (absent for single-label runs)
    labels_per_example: float  # multi-label: mean number of labels of a training example
    threshold: float  # multi-label: task.threshold, behind micro/macro F1 and predict
    tuned_thresholds: bool  # multi-label: per-label thresholds tuned on dev (task.tune_thresholds)
    # lm
    kind: str  # "ffnn" or "kneser_ney"
    vocab_size: int
    train_tokens: int
    tokens_per_second: float
    parameters: int
    precision: dict[str, str]  # training's products: {"setting", "used": fp32|bf16, "reason"}
    ngrams: list[int]  # Kneser-Ney: n-grams kept per order
    discounts: list[list[float]]  # Kneser-Ney: D1, D2, D3+ per order
    interpolated: dict[str, Any]  # mixture with another LM: weight, dev/test perplexity
    cache: dict[str, Any]  # lm, cache.size > 0: size, the share fitted on dev, dev/test perplexity
    samples: list[str]
    # w2v
    model_type: str  # "word2vec" or "fasttext" (model.type)
    architecture: str  # "skipgram" or "cbow"
    corpus_tokens: int
    corpus_words_in_vocab: int
    words_per_second: float  # corpus tokens x epochs / training seconds, as gensim counts
    workers: int
    prefetch_thread: bool
    step: str  # "compiled-hogwild" (the Numba kernel) or "pytorch" (the batch step)
    final_train_loss: float | None
    evaluation: dict[str, Any]  # similarity / analogy results of the final vectors


@dataclass
class Run:
    """One training run, as its recipe sees it inside :func:`start_run`."""

    task: str
    config: Any  # the resolved configuration (a task's frozen dataclass with a [train] section)
    dir: Path  # where the run is written until the command is over (a hidden sibling of OUT)
    final_dir: Path  # the run folder as the user named it, where the run is once complete
    resume: bool  # continues a checkpoint: --resume, or a torchrun restart of this job
    callbacks: list[Callback] = field(default_factory=list)  # the recipe's ``callbacks``, checked
    # the finished run this one continues: init_from, or for --resume the run an interrupted
    # continued run started from (its init_from.json); None for a run from scratch
    base: Base | None = None
    _seeded: bool = field(default=False, repr=False)

    def seeded(self, build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``build(*args, **kwargs)`` after seeding Python, NumPy and torch with train.seed:
        the model's initial weights are the run's first random draws, whatever reading the data
        (or loading another run's model) drew before. Once per run."""
        if self._seeded:
            raise RuntimeError("a run is seeded once: call run.seeded for the model only")
        self._seeded = True
        seed_everything(self.config.train.seed)
        return build(*args, **kwargs)


@contextlib.contextmanager
def start_run(
    task: str,
    resolve: Callable[..., C],
    config: Any,
    keywords: Mapping[str, Any],
    check: Callable[[C], None] | None = None,
    inputs: Mapping[str, object] | None = None,
    not_inherited: Iterable[str] = (),
    continues: bool = True,
) -> Iterator[Run]:
    """A training run of ``task``, from its configuration to its complete folder.

    Entering resolves the configuration, opens the run folder, saves ``config.toml`` and
    prepares the process (see the module's docstring); leaving puts the run in place, or, when
    the block raised, removes what it wrote (an interrupted run with a checkpoint is kept,
    resumable, and :class:`~ffnlp.errors.Interrupted` says where). Under torchrun the process
    group lives as long as the block; the ranks but the first write into a private copy.

    ``keywords`` are the recipe's :class:`~ffnlp.tasks.request.RunKeywords` and keyword
    settings (checked by :func:`~ffnlp.tasks.request.request`; ``not_inherited`` and
    ``continues`` go with them there); ``check`` validates the resolved configuration before
    anything is written (a refused configuration leaves the disk as it was). Without ``force``
    or ``resume`` an existing run in ``out`` is refused. ``inputs`` (option -> data file, e.g.
    {"--train": path}) are checked at the same time as the configuration: a missing file and a
    configuration problem are reported together, in one error.
    """
    shards.READ.clear()  # this run's shards, not an earlier run's of the same process
    opened: list[RunTransaction] = []
    try:
        with distributed.session(), interrupts_as_exceptions():
            asked = request(task, config, keywords, None, not_inherited, continues)
            cfg, again = resolve_run(asked, resolve, check, inputs)
            transaction, resume = _open(asked.out, task, asked.resume, asked.force)
            opened.append(transaction)
            base = asked.base
            if resume:  # the configuration the run was trained with, and the overrides
                cfg = again(transaction.work / CONFIG)
            write_config(transaction.work, cfg, unchanged_ok=resume)
            prepare_process(cfg.train.threads)
            if resume:  # or a torchrun restart continuing its earlier attempt
                base = resumed_base(transaction.work, task)
            work, final = transaction.work, transaction.final
            yield Run(task, cfg, work, final, resume, asked.callbacks, base)
            transaction.commit()
    except BaseException as exc:
        if not opened or opened[0].done:
            raise
        raise _closed_on_failure(opened[0], exc) from None


@contextlib.contextmanager
def dry_run(
    asked: Request, resolve: Callable[..., C], check: Callable[[C], None] | None = None
) -> Iterator[Run]:
    """A run that writes nothing (the learning-rate range test): the configuration of
    ``asked`` resolved and checked as :func:`start_run` does, the process prepared,
    ``run.seeded`` for the model; no folder (``run.dir`` is a placeholder never written), no
    transaction."""
    cfg, _ = resolve_run(asked, resolve, check, None)
    prepare_process(cfg.train.threads)
    nowhere = Path(os.devnull)
    yield Run(asked.task, cfg, nowhere, nowhere, False)


def resolve_run(
    asked: Request,
    resolve: Callable[..., C],
    check: Callable[[C], None] | None,
    inputs: Mapping[str, object] | None,
) -> tuple[C, Callable[[Path], C]]:
    """The configuration of the run ``asked`` resolved and checked, with its input files,
    before anything is written: (the configuration, how to resolve a saved config.toml with the
    same overrides and settings)."""
    if asked.resume and isinstance(asked.out, (str, os.PathLike)):
        expect_run_of(Path(asked.out), asked.task)
    problems = input_problems(inputs or {})
    try:
        cfg = resolve(asked.config, asked.overrides, **asked.settings)
        if check is not None:
            check(cfg)
        if cfg.train.tensorboard:  # before the data is read, not when the Trainer starts
            check_tensorboard(cfg.train.tensorboard)
    except ConfigError as exc:
        if not problems:
            raise
        everything = problems + exc.problems
        message = cfgmod.join_problems(everything, "in the configuration and inputs")
        raise ConfigError(message, problems=everything) from None
    cfgmod.raise_problems(problems, "with the input files", error=DataError)

    def again(saved: Path) -> C:
        return resolve(saved, asked.overrides, **asked.settings)

    return cfg, again


def _open(
    out: str | Path | None, task: str, resume: bool, force: bool
) -> tuple[RunTransaction, bool]:
    """The run folder's transaction, and whether the run continues a checkpoint: ``resume``,
    or, when torchrun started the workers again after a rank died (--max-restarts), the run an
    earlier attempt of this job left (continued as --resume would)."""
    restarted = restart_count() > 0 and torchrun_job() is not None and not (resume or force)
    if not is_main_process():  # torchrun: the run is rank 0's
        if restarted:
            resume = bool(distributed.broadcast_object(None, "the restart"))
        return RunTransaction.private(out, task, resume), resume
    if restarted and left_by_earlier_attempt(out) is not None:
        log.warning(
            "torchrun restart %d: continuing the run that the earlier attempt left in %s",
            restart_count(),
            out,
        )
        resume = True
    transaction = RunTransaction.open(out, task, resume, force)
    note_job(transaction.work)
    if restarted:  # the run is in place: the other ranks may copy it to resume
        distributed.broadcast_object(resume, "the restart")
    return transaction, resume


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
    sharded: bool = False,
) -> Trainer:
    """Train ``model`` with the one Trainer; return it (weights, history, timings).

    ``sharded``: ``train`` holds this rank's own shards of the input (:mod:`ffnlp.text.shards`),
    not the whole data.

    The intra-op threads are set here (:func:`ffnlp.threads.choose_threads`: ``train.threads``,
    or for "auto" a count that fits the model's work per step). Without dev data there is
    nothing to monitor: early stopping and best-weights restoring are turned off, and the run
    ends with its last weights. ``step`` is the update strategy (default: autograd + the
    configured optimiser).
    """
    if dev is None and train_config.monitor.startswith("dev."):
        train_config = cfgmod.replace(train_config, early_stopping=False, restore_best=False)
    # the intra-op threads, now that the model's work per step is known ("auto")
    own_threads = bool(getattr(step, "own_threads", False))
    set_threads_for(train_config.threads, model, train_config.batch_size, own_threads)
    trainer = Trainer(
        model,
        train_config,
        train,
        dev=dev,
        evaluate=evaluate,
        callbacks=list(callbacks),
        run_dir=run_dir,
        step=step,
        sharded=sharded,
    )
    if resume and not checkpoint_path(run_dir).is_file():
        if has_summary(run_dir):
            raise ModelFileError(
                f"no checkpoint at {as_named(checkpoint_path(run_dir))}; --resume needs a run directory "
                "that was trained with train.checkpoint = true"
            )
        # stopped before its first checkpoint: from the start is where it stopped, as far as the
        # results go (same seed, same data)
        log.warning(
            "%s has no checkpoint yet: training starts from the beginning", as_named(run_dir)
        )
        resume = False
        write_atomic(run_dir / METRICS, "", within=run_dir)
    cpu_started = time.process_time()
    trainer.fit(resume=resume)
    trainer.cpu_seconds = time.process_time() - cpu_started
    if trainer.rank_lost is not None:  # torchrun: another rank is gone; rank 0 has the checkpoint
        lost_at = {"reason": trainer.rank_lost.reason, "step": trainer.step}
        write_marker(
            run_dir, {**lost_at, "epoch": trainer.epoch + 1, "checkpoint": str(CHECKPOINT)}
        )
        raise RankLost(trainer.rank_lost.reason, run_dir, trainer.step, trainer.epoch + 1)
    if trainer.interrupted:  # the checkpoint is written; no evaluation, no model files
        signum = trainer.interrupt_signal or signal.SIGINT
        write_marker(
            run_dir,
            {
                "signal": signal.Signals(signum).name,
                "step": trainer.step,
                "epoch": trainer.epoch + 1,
                "checkpoint": str(CHECKPOINT),
            },
        )
        raise Interrupted(signum, run_dir, trainer.step, trainer.epoch + 1)
    return trainer


def training_summary(task: str, trainer: Trainer, prep_seconds: float) -> Summary:
    """The keys every task's summary.json starts with (and the diagnostics' warnings, if any)."""
    summary = Summary(
        task=task,
        train_seconds=trainer.train_seconds,
        train_cpu_seconds=trainer.cpu_seconds,
        prep_seconds=prep_seconds,
        epochs=trainer.epoch,
        steps=trainer.step,
        best_epoch=trainer.history.best_epoch,
        stop_reason=trainer.stop_reason,
        threads=torch.get_num_threads(),
        world_size=distributed.world_size(),
    )
    if trainer.distributed:
        # every rank's share: its batch, its speed, and what the gradient exchange cost it
        mine = {
            "rank": distributed.rank(),
            "host": socket.gethostname(),
            "batch_size": trainer.batch_size,
            "examples_per_second": trainer.history.epochs[-1]["examples_per_second"]
            if trainer.history.epochs
            else None,
            "exchange": distributed.STATS.as_dict(),
        }
        if shards.READ:  # the training shards this rank read (no other)
            mine["shards"] = list(shards.READ)
        summary["ranks"] = distributed.gather_objects(mine, "the summary")
    if restart_count() > 0:  # torchrun started the workers again before the run completed
        summary["restarts"] = restart_count()
    warnings = [
        w for r in trainer.history.records for w in r.get("diagnostics", {}).get("warnings", [])
    ]
    if warnings:
        summary["warnings"] = warnings
    return summary


def finish_run(
    run_dir: Path,
    summary: Summary,
    records: list[dict[str, Any]] | None = None,
    metric: str | None = None,
) -> Summary:
    """Write ``summary.json`` and, when there is a training history, ``plots/loss.png`` (and the
    monitored dev metric's plot)."""
    write_summary(run_dir, summary)
    if records:
        from ffnlp.report.plots import plot_history

        plot_history(records, run_dir, metric=metric)
    (run_dir / MARKER).unlink(missing_ok=True)  # complete now
    return summary


# ------------------------------------------------------------------------------- failures


def _closed_on_failure(transaction: RunTransaction, exc: BaseException) -> BaseException:
    """Close ``transaction`` after ``exc``; return the exception to raise instead."""
    if isinstance(exc, RankLost):
        kept = transaction.keep_interrupted()  # rank 0's run, resumable when it has a checkpoint
        return RankLost(
            exc.reason, None if transaction.mode == "private" else kept, exc.step, exc.epoch
        )
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        if isinstance(exc, Interrupted):
            signum, step, epoch = exc.signal, exc.step, exc.epoch
        else:
            signum, step, epoch = getattr(exc, "signum", signal.SIGINT), None, None
            if (transaction.work / CHECKPOINT).is_file():
                with contextlib.suppress(FfnlpError, OSError):
                    write_marker(transaction.work, {"signal": signal.Signals(signum).name})
        kept = transaction.keep_interrupted()
        return Interrupted(signum, kept, step, epoch)
    if isinstance(exc, OSError) or is_disk_full(exc):
        # named while the transaction still shows its hidden folder as the user's
        exc = output_error(exc, getattr(exc, "filename", None) or transaction.work)
    transaction.abort()
    return exc
