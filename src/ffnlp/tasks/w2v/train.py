"""The recipe: read the corpus once, stream its pairs through SkipGram with the shared Trainer,
write the run directory (see :mod:`ffnlp.tasks.w2v.result`) and its summary.

With ``init_from`` the run continues an earlier one on a new corpus (see
:mod:`ffnlp.tasks.continued`), as gensim's ``build_vocab(update=True)`` + ``train``: the earlier
vocabulary grows with the corpus's words (each known word's count grows by its count here, which
the subsampling and the noise distribution read), and the earlier vectors are copied in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ffnlp import config as cfgmod
from ffnlp import jit
from ffnlp.errors import ConfigError, TrainingError
from ffnlp.features.subwords import SubwordTable
from ffnlp.fileio import resolved
from ffnlp.models import registry
from ffnlp.models.kernels import sgns_hogwild
from ffnlp.models.skipgram import SkipGram
from ffnlp.models.subword_skipgram import SubwordSkipGram
from ffnlp.runtime import select_device
from ffnlp.tasks import continued
from ffnlp.tasks.request import RunKeywords, Unpack
from ffnlp.tasks.run import Run, Summary, finish_run, fit, start_run, training_summary
from ffnlp.tasks.w2v.batches import PairBatches
from ffnlp.tasks.w2v.config import W2VConfig, resolve_config
from ffnlp.tasks.w2v.corpus import EncodedCorpus
from ffnlp.tasks.w2v.evaluate import similarity_evaluator
from ffnlp.tasks.w2v.result import Word2VecRun, load
from ffnlp.text.shards import names_shards
from ffnlp.text.vocab import Vocab
from ffnlp.threads import available_cores
from ffnlp.training import Trainer, distributed, update_step_if_allowed
from ffnlp.training.distributed import reduce_sums, world_size


def train_word2vec(
    corpus: str | Path,
    config: W2VConfig | str | Path | dict[str, Any] | None = None,
    **keywords: Unpack[RunKeywords],
) -> Word2VecRun:
    """Train word vectors on a plain-text corpus (one sentence a line) and write the run directory.

    Keywords: those of :class:`~ffnlp.tasks.request.RunKeywords` (where the run goes, its seed,
    callbacks, resuming, replacing, continuing) and settings such as ``**{"train.lr": 0.1}``.

    ``init_from`` (a finished w2v run) continues its vectors on this corpus: its configuration is
    the base (``config`` and ``overrides`` apply over it), new words get fresh vectors, known
    words start from theirs, and summary.json records the run under ``init_from``. Not with
    ``resume``.

    >>> run = train_word2vec("ptb.train.txt.gz", config="ptb_w2v", out="runs/w2v")  # doctest: +SKIP
    >>> run.most_similar("stock", k=3)                                                          # doctest: +SKIP
    """
    check = _check_evaluation_files
    with start_run(
        "w2v", resolve_config, config, keywords, check=check, inputs={"--corpus": corpus}
    ) as run:
        return _train(run, corpus)


def _train(run: Run, corpus: str | Path) -> Word2VecRun:
    """The recipe inside its run: the corpus encoded, the pairs, the vectors trained."""
    cfg: W2VConfig = run.config
    start = open_start(run.base, cfg) if run.base is not None else None
    started = time.perf_counter()
    encoded = EncodedCorpus.read(
        corpus,
        cfg.corpus,
        cfg.model.min_count,
        cfg.model.max_vocab,
        workdir=run.dir,
        known=start.run.vocab if start is not None else None,
    )
    record = None
    try:
        table = _subword_table(encoded.vocab, cfg)
        source = _pair_batches(encoded, cfg, table)
        if source.hogwild:  # compiled (or loaded from the disk cache) before the clock starts
            sgns_hogwild.warm_up()
        prep_seconds = time.perf_counter() - started
        model = run.seeded(_skipgram, len(encoded.vocab), cfg, table)
        if start is not None:
            record = continue_vectors(start, model, len(encoded.vocab))
            continued.write_lineage(run.dir, record)
        trainer = _fit(model, cfg, encoded.vocab, source, run, corpus)
    finally:
        encoded.close()

    result = Word2VecRun(cfg, encoded.vocab, model.cpu().eval(), run.final_dir)  # = trainer.model
    result.write(run.dir)
    summary = _summary(cfg, trainer, encoded, model, prep_seconds)
    if record is not None:
        summary["init_from"] = record
    summary["evaluation"] = result.evaluate(
        cfg.evaluation.similarity, cfg.evaluation.analogies or None, cfg.evaluation.restrict
    )
    result.summary = dict(finish_run(run.dir, summary, trainer.history.records))
    return result


# what lays out the vectors' rows, and their width: a continued run keeps the earlier run's
KEPT_SETTINGS = (
    "model.type",
    "model.dim",
    "model.minn",
    "model.maxn",
    "model.buckets",
)


@dataclass
class Start:
    """What a continued run starts from: the earlier run and its vectors."""

    base: continued.Base
    run: Word2VecRun


def open_start(base: continued.Base, cfg: W2VConfig) -> Start:
    """The earlier run, checked against this configuration before the corpus is read (the
    tables' shapes follow from the vocabulary and :data:`KEPT_SETTINGS` alone)."""
    run = load(base.run_dir)
    continued.check_kept(base, run.config, cfg, KEPT_SETTINGS)
    return Start(base, run)


def continue_vectors(start: Start, model: SkipGram, vocab_size: int) -> dict[str, Any]:
    """Copy the earlier vectors into ``model``: known words' rows of both tables in place, new
    words' as initialised (fastText: the n-gram buckets, after the words, keep theirs)."""
    old_size = len(start.run.vocab)
    maps = [continued.RowMap.appended(old_size, vocab_size)]
    buckets = getattr(model, "buckets", 0)
    if buckets:
        index = torch.cat([torch.arange(old_size), vocab_size + torch.arange(buckets)])
        maps.append(continued.RowMap(old_size + buckets, vocab_size + buckets, index))
    continued.transfer(start.base, start.run.model.state_dict(), model, maps)
    return continued.lineage(start.base, vocab={"before": old_size, "after": vocab_size})


def _check_evaluation_files(cfg: W2VConfig) -> None:
    for p in [
        *cfg.evaluation.similarity,
        *([cfg.evaluation.analogies] if cfg.evaluation.analogies else []),
    ]:
        if not Path(p).is_file():
            raise ConfigError(
                f"evaluation file {resolved(p)} does not exist (--similarity / --analogies, "
                "evaluation.similarity / analogies)"
            )


def _subword_table(vocab: Vocab, cfg: W2VConfig) -> SubwordTable | None:
    """fasttext: each word's rows (its own and its n-grams' buckets); None for word2vec."""
    m = cfg.model
    if m.type != "fasttext":
        return None
    return SubwordTable(vocab.itos, m.minn, m.maxn, m.buckets)


def hogwild_possible(cfg: W2VConfig) -> bool:
    """Whether the compiled Hogwild step (:mod:`ffnlp.models.kernels.sgns_hogwild`) trains this
    run: skip-gram with noise words drawn per pair (``model.shared_negatives = 0``), plain SGD
    that a hand-made update may make (``train.fused_step``), on the CPU, compiled kernels on
    (``FFNLP_JIT``, Numba importable), and one process: under torchrun the batches keep to the
    PyTorch step (each rank's step, then its changes exchanged)."""
    m = cfg.model
    return (
        m.architecture == "skipgram"
        and not m.shared_negatives
        and cfg.train.fused_sgd
        and select_device(cfg.train.device).type == "cpu"
        and not distributed.is_distributed()
        and jit.enabled()
    )


def _pair_batches(
    encoded: EncodedCorpus, cfg: W2VConfig, table: SubwordTable | None
) -> PairBatches:
    # the fused step's index layout is made ahead only for the model it serves: a CPU one
    # (on a GPU the Trainer takes the autograd path)
    on_cpu = select_device(cfg.train.device).type == "cpu"
    return PairBatches(
        encoded,
        cfg.model,
        prefetch=cfg.corpus.prefetch,
        step_layout=cfg.train.fused_sgd and on_cpu,
        subwords=table,
        hogwild=hogwild_possible(cfg),
    )


def _skipgram(vocab_size: int, cfg: W2VConfig, table: SubwordTable | None = None) -> SkipGram:
    """word2vec's SkipGram, or with a subword table fastText's SubwordSkipGram."""
    # by default every core works on the step, but the one the prefetch thread keeps busy (the
    # compiled step's batches need no such thread)
    prefetch = cfg.corpus.prefetch and not hogwild_possible(cfg)
    workers = cfg.model.workers or max(1, available_cores() - (1 if prefetch else 0))
    args: dict[str, Any] = {
        "vocab_size": vocab_size,
        "dim": cfg.model.dim,
        "cbow": cfg.model.architecture == "cbow",
        "sparse": cfg.train.sparse,
        "workers": workers,
    }
    if table is None:
        registry.spec("skipgram").check_fits_memory(args)
        return SkipGram(**args)
    args.update(SubwordSkipGram.table_arguments(table))
    registry.spec("fasttext").check_fits_memory(args)
    model = SubwordSkipGram(**args)
    model.set_subwords(table)
    return model


def _fit(
    model: SkipGram,
    cfg: W2VConfig,
    vocab: Vocab,
    source: PairBatches,
    run: Run,
    cfg_corpus: str | Path = "",
) -> Trainer:
    """The Trainer's run (``cfg_corpus``: the corpus as given, which may be several files). With similarity files the vectors are evaluated after every epoch, and
    the first file's Spearman is what ``train.monitor`` watches unless it was set."""
    train_cfg = cfg.train
    files = list(cfg.evaluation.similarity)
    evaluate = similarity_evaluator(files, vocab) if files else None
    if files and train_cfg.monitor == "dev.loss":
        train_cfg = cfgmod.replace(train_cfg, monitor=f"dev.spearman_{Path(files[0]).stem}")
    dev = source if files else None  # turns the evaluation on; it reads the model, not batches
    # plain SGD: the model's own sparse update replaces autograd + optimiser (same numbers); it
    # shares a batch between the model's worker threads, so the intra-op threads stay at 1
    step = update_step_if_allowed(model.sgd_step, model, train_cfg, own_threads=True)
    try:
        # torchrun with the corpus in several files: each rank trains on its own shards
        sharded = names_shards(cfg_corpus) and world_size() > 1
        return fit(
            model,
            train_cfg,
            source,
            dev,
            evaluate,
            run.callbacks,
            run.dir,
            run.resume,
            step,
            sharded=sharded,
        )
    except TrainingError as exc:
        raise TrainingError(
            f"{str(exc).rstrip('.')}. For word2vec the usual cause is a batch that is too large "
            f"for the vocabulary: a batch sums the updates of all its pairs, so with {len(vocab)} "
            f"words each one gets many at once; lower train.batch_size (now {train_cfg.batch_size})"
        ) from None


def _summary(
    cfg: W2VConfig,
    trainer: Trainer,
    encoded: EncodedCorpus,
    model: SkipGram,
    prep_seconds: float,
) -> Summary:
    """summary.json's keys but ``evaluation``: the common ones, then sizes, speed, final loss."""
    history, seconds = trainer.history, trainer.train_seconds
    summary = training_summary("w2v", trainer, prep_seconds)
    summary["model_type"] = cfg.model.type
    summary["architecture"] = cfg.model.architecture
    summary["vocab_size"] = len(encoded.vocab)
    tokens, in_vocab = float(encoded.raw_tokens), float(encoded.words)
    if trainer.rank_batches is not None:  # each rank read its own shards: the whole corpus's
        tokens, in_vocab = reduce_sums([tokens, in_vocab], "the corpus size")
    summary["corpus_tokens"] = int(tokens)
    summary["corpus_words_in_vocab"] = int(in_vocab)
    # counted as gensim counts: corpus tokens x epochs / training seconds
    summary["words_per_second"] = tokens * trainer.epoch / seconds if seconds > 0 else math.nan
    summary["workers"] = model.workers
    hogwild = hogwild_possible(cfg)
    summary["prefetch_thread"] = cfg.corpus.prefetch and not hogwild
    # which step trained: the compiled Hogwild kernel, or the PyTorch batch step
    summary["step"] = "compiled-hogwild" if hogwild else "pytorch"
    summary["final_train_loss"] = history.epochs[-1]["train"]["loss"] if history.epochs else None
    if history.epochs and history.epochs[-1].get("dev"):
        summary["dev"] = history.epochs[-1]["dev"]
    return summary
