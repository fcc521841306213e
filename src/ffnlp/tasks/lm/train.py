"""The lm recipe: corpus -> model (feed-forward or Kneser-Ney) -> run directory.

Both kinds share the vocabulary, the id stream and the perplexity convention of
:mod:`ffnlp.text.corpus`.  A neural run can be interpolated with a Kneser-Ney run (or the other
way round), the mixture weight fitted on the dev text by EM.

A feed-forward run can continue an earlier one (``init_from``, see :mod:`ffnlp.tasks.continued`):
the earlier vocabulary grows with the new corpus's words (appended, so the known words keep their
rows of the embedding and output tables) and the earlier weights are copied in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.fileio import write_atomic
from ffnlp.folders.layout import CACHE_DIR, INTERPOLATION, VOCAB
from ffnlp.models import registry
from ffnlp.models.io import save_model, save_ngram
from ffnlp.models.kneser_ney import KneserNey
from ffnlp.models.lm import FeedForwardLM
from ffnlp.precision import choose_precision
from ffnlp.runtime import select_device
from ffnlp.tasks import continued
from ffnlp.tasks.lm.config import LMConfig, resolve_config
from ffnlp.tasks.lm.evaluate import fit_mixture_weight, make_evaluator, mix_log_probs, perplexity_of
from ffnlp.tasks.lm.result import LanguageModel, load
from ffnlp.tasks.request import RunKeywords, Unpack
from ffnlp.tasks.run import Run, Summary, finish_run, fit, start_run, training_summary
from ffnlp.text.corpus import (
    EOS,
    Corpus,
    LMBatches,
    build_vocab,
    encode_corpus,
    encode_training_corpus,
)
from ffnlp.text.vocab import Vocab
from ffnlp.training.distributed import reduce_sums


def train_lm(
    train: str | Path,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    config: LMConfig | str | Path | dict[str, Any] | None = None,
    interpolate_with: str | Path | None = None,
    **keywords: Unpack[RunKeywords],
) -> LanguageModel:
    """Train a feed-forward LM or fit a Kneser-Ney model; write the run directory.

    ``interpolate_with`` names another LM run: the mixture weight is fitted on ``dev`` and the
    mixture's perplexities are reported beside this model's own. The other keywords are every
    recipe's (:class:`~ffnlp.tasks.request.RunKeywords`) and settings (``**{"train.lr": 0.1}``).

    ``init_from`` (a finished feed-forward LM run) continues that model on this corpus: its
    configuration is the base (``config`` and ``overrides`` apply over it, its
    ``interpolate_with`` is not inherited), new words get fresh rows, known ones keep theirs,
    and summary.json records the run under ``init_from``. Not with ``resume``.

    >>> lm = train_lm("ptb.train.txt", dev="ptb.valid.txt", config="ptb_lm",
    ...               out="runs/ptb_lm", seed=1)                               # doctest: +SKIP
    >>> lm.perplexity("ptb.test.txt")                                          # doctest: +SKIP
    """
    settings: dict[str, Any] = dict(keywords)
    if interpolate_with is not None:  # a setting of the configuration (interpolate_with)
        settings["interpolate_with"] = str(interpolate_with)
    splits = {"--train": train, "--dev": dev, "--test": test}
    with start_run(
        "lm", resolve_config, config, settings, inputs=splits, not_inherited=("interpolate_with",)
    ) as run:
        return _train(run, train, dev, test)


def _train(
    run: Run, train: str | Path, dev: str | Path | None, test: str | Path | None
) -> LanguageModel:
    """The recipe inside its run: vocabulary, id streams, then the network or the counts."""
    cfg: LMConfig = run.config
    start = open_start(run.base, cfg) if run.base is not None else None
    partner = load(cfg.interpolate_with, standalone=True) if cfg.interpolate_with else None

    started = time.perf_counter()
    vocab = vocabulary(cfg, train, partner, start)
    vocab.save(run.dir / VOCAB)
    train_corpus, sharded = encode_training_corpus(
        train, vocab, cfg.data, cache_dir=run.dir / CACHE_DIR
    )
    dev_corpus = encode_corpus(dev, vocab, cfg.data) if dev is not None else None
    test_corpus = encode_corpus(test, vocab, cfg.data) if test is not None else None
    prep_seconds = time.perf_counter() - started

    records: list[dict[str, Any]] = []
    if cfg.kind == "kneser_ney":
        if sharded:
            raise ConfigError(
                'kind = "kneser_ney" counts the whole corpus in one process; with several '
                "processes and --train as several files, each process reads only its own "
                "shards: fit it as one process (leave out --nproc / torchrun)"
            )
        lm, summary = _fit_kneser_ney(run, vocab, train_corpus, prep_seconds)
    else:
        lm, summary, records = _train_network(
            run,
            vocab,
            train_corpus,
            dev_corpus,
            prep_seconds,
            start,
            sharded,
        )
    summary["kind"] = cfg.kind
    summary["vocab_size"] = len(vocab)
    # every rank's tokens, when each trained on its own shards
    summary["train_tokens"] = (
        int(reduce_sums([float(train_corpus.targets)], "the token count")[0])
        if sharded
        else train_corpus.targets
    )
    _add_figures(summary, lm, cfg, partner, dev_corpus, test_corpus, run.dir)
    lm.summary = dict(finish_run(run.dir, summary, records, metric="perplexity"))
    return lm


def _add_figures(
    summary: Summary,
    lm: LanguageModel,
    cfg: LMConfig,
    partner: LanguageModel | None,
    dev_corpus: Corpus | None,
    test_corpus: Corpus | None,
    run_dir: Path,
) -> None:
    """The trained model's dev/test perplexities, with its cache, its mixture with
    ``partner``, and samples (each split scored by the model once, for all of them)."""
    own = {
        name: (corpus, lm.own_log_probs(corpus))
        for name, corpus in (("dev", dev_corpus), ("test", test_corpus))
        if corpus is not None
    }
    if "dev" in own:
        summary["dev"] = _split_figures(*own["dev"])
    if "test" in own:
        summary["test"] = _split_figures(*own["test"])
    # the caches' probabilities depend on the text alone: made once, for the model and mixture
    caches = {}
    if cfg.cache.size > 0:
        caches = {name: lm.cache_of(corpus) for name, (corpus, _) in own.items()}
        summary["cache"] = _cache_figures(lm, own, caches)
    if partner is not None:
        summary["interpolated"] = _interpolate(lm, partner, own, caches, run_dir)
    if cfg.samples:
        summary["samples"] = [
            lm.generate("", max_tokens=40, seed=i).text for i in range(cfg.samples)
        ]


# ----------------------------------------------------------------------------------- the steps


def vocabulary(
    cfg: LMConfig, train: str | Path, partner: LanguageModel | None, start: Start | None = None
) -> Vocab:
    """The run's vocabulary: the partner's when interpolating with another LM (the two must
    score the same words), the earlier run's grown with the corpus's words when continuing one,
    else the training corpus's."""
    if partner is not None:
        return partner.vocab
    if start is None:
        return build_vocab(train, cfg.data)
    counted = build_vocab(train, cfgmod.replace(cfg.data, min_count=1, max_size=0))
    return start.lm.vocab.extended(counted, cfg.data.min_count, cfg.data.max_size or None)


# --------------------------------------------------------------------- continued training

# what lays out a feed-forward LM's rows: a continued run keeps the earlier run's
KEPT_SETTINGS = ("kind",)


@dataclass
class Start:
    """What a continued run starts from: the earlier run and its trained LM."""

    base: continued.Base
    lm: LanguageModel


def open_start(base: continued.Base, cfg: LMConfig) -> Start:
    """The earlier run's LM, checked against this configuration before any data is read."""
    if cfg.kind != "ffnn":
        raise ConfigError(
            f"{base.where}: kind = {cfg.kind!r} is counted, not trained, and cannot start from "
            "the run's weights; leave kind = \"ffnn\" (the run's)"
        )
    if cfg.interpolate_with:
        raise ConfigError(
            f"{base.where} grows the vocabulary, and interpolate_with needs the partner's "
            "vocabulary; interpolate the continued run afterwards (ffnlp lm eval "
            "--interpolate-with)"
        )
    lm = load(base.run_dir, standalone=True)
    continued.check_kept(base, lm.config, cfg, KEPT_SETTINGS)
    assert lm.network is not None  # a run with weights is a feed-forward one (open_base)
    same_size = FeedForwardLM(len(lm.vocab), cfg.model)
    continued.check_architecture(base, lm.network, same_size, lm.config.model, cfg.model, "model")
    return Start(base, lm)


def continue_network(start: Start, model: FeedForwardLM, vocab: Vocab) -> dict[str, Any]:
    """Copy the earlier run's weights into ``model``: the known words' rows (of the embedding,
    output and direct tables) in place, the new words' rows as initialised; the lineage."""
    old_size, new_size = len(start.lm.vocab), len(vocab)
    maps = [continued.RowMap.appended(old_size, new_size)]
    if model.adaptive is not None:  # new words join the last cluster, after the known ones
        last = model.adaptive.cutoffs[-2]
        maps.append(continued.RowMap.appended(old_size - last, new_size - last))
    assert start.lm.network is not None
    continued.transfer(start.base, start.lm.network.state_dict(), model, maps)
    return continued.lineage(start.base, vocab={"before": old_size, "after": new_size})


def fresh_network(cfg: LMConfig, vocab: Vocab, precision: str | None = None) -> FeedForwardLM:
    """The feed-forward LM training starts from (called through ``run.seeded``: its initial
    weights are the first draws of train.seed). ``precision``: the resolved model.precision to
    train in (fp32 or bf16); None leaves "auto" to the model, which resolves it at its first
    training step."""
    model_cfg = cfg.model if precision is None else cfgmod.replace(cfg.model, precision=precision)
    registry.spec("ffnn_lm").check_fits_memory({"vocab_size": len(vocab), "config": model_cfg})
    return FeedForwardLM(len(vocab), model_cfg)


def batch_source(cfg: LMConfig, vocab: Vocab, corpus: Corpus) -> LMBatches:
    """(context, target) windows over ``corpus``'s id stream, as the Trainer reads them."""
    eos, C = vocab.stoi(EOS), cfg.model.context_size
    return LMBatches(corpus.ids, C, eos, cfg.data.cross_sentences)


def _train_network(
    run: Run,
    vocab: Vocab,
    train_corpus: Corpus,
    dev_corpus: Corpus | None,
    prep_seconds: float,
    start: Start | None = None,
    sharded: bool = False,
) -> tuple[LanguageModel, Summary, list[dict[str, Any]]]:
    """Train the feed-forward LM with the Trainer (from the earlier run's weights when
    continuing one); save it; its summary and training history."""
    # "auto" resolved once for the run (bf16 where the hardware has it), logged and reported;
    # model.json keeps the setting itself, so that the model resolves it again where it trains
    cfg: LMConfig = run.config
    precision = choose_precision(cfg.model.precision, select_device(cfg.train.device))
    model = run.seeded(fresh_network, cfg, vocab, precision.used)
    record = None
    if start is not None:
        record = continue_network(start, model, vocab)
        continued.write_lineage(run.dir, record)
    train_source = batch_source(cfg, vocab, train_corpus)
    dev_source = batch_source(cfg, vocab, dev_corpus) if dev_corpus else None
    trainer = fit(
        model,
        cfg.train,
        train_source,
        dev_source,
        make_evaluator(cfg.eval_batch_size),
        run.callbacks,
        run.dir,
        run.resume,
        sharded=sharded,
    )
    network = trainer.model.cpu().eval()
    assert isinstance(network, FeedForwardLM)
    save_model(
        network, run.dir, "lm", {"vocab_size": len(vocab), "config": cfgmod.to_dict(cfg.model)}
    )
    summary = training_summary("lm", trainer, prep_seconds)
    if record is not None:
        summary["init_from"] = record
    summary["tokens_per_second"] = (
        train_corpus.targets * trainer.epoch / max(trainer.train_seconds, 1e-9)
    )
    summary["parameters"] = sum(p.numel() for p in network.parameters())
    summary["precision"] = precision.as_dict()
    lm = LanguageModel(cfg, vocab, run.final_dir, network=network)
    return lm, summary, trainer.history.records


def _fit_kneser_ney(
    run: Run, vocab: Vocab, corpus: Corpus, prep_seconds: float
) -> tuple[LanguageModel, Summary]:
    """Count and discount: a Kneser-Ney model is fitted in one pass, with no Trainer."""
    cfg: LMConfig = run.config
    t0, cpu0 = time.perf_counter(), time.process_time()
    ngram = KneserNey.fit(corpus.ids.numpy(), cfg.kneser_ney.order, len(vocab), vocab.stoi(EOS))
    seconds = time.perf_counter() - t0
    save_ngram(ngram, run.dir, "lm")
    summary = Summary(
        task="lm",
        train_seconds=seconds,
        train_cpu_seconds=time.process_time() - cpu0,
        prep_seconds=prep_seconds,
        epochs=1,
        steps=0,
        best_epoch=None,
        stop_reason="",
        tokens_per_second=corpus.targets / max(seconds, 1e-9),
        ngrams=ngram.ngram_counts,
        discounts=[list(d) for d in ngram.discount_table],
    )
    return LanguageModel(cfg, vocab, run.final_dir, ngram=ngram), summary


Scored = dict[str, tuple[Corpus, np.ndarray]]  # "dev" / "test" -> the split, the model's log p


def _split_figures(corpus: Corpus, lp: np.ndarray) -> dict[str, Any]:
    return {
        "perplexity": perplexity_of(lp),
        "loss": -float(np.mean(lp)),
        "tokens": corpus.targets,
        "oov_rate": corpus.unknown / max(corpus.words, 1),
    }


def _cache_figures(lm: LanguageModel, own: Scored, caches: dict[str, np.ndarray]) -> dict[str, Any]:
    """The cache's share, fitted on dev (else cache.weight), and the dev/test perplexities with
    the cache (``dev`` and ``test`` of the summary are the model's alone); ``caches``: each
    split's :meth:`~LanguageModel.cache_of`."""
    out: dict[str, Any] = {"size": lm.cache_size, "decay": lm.cache_decay, "skip": lm.cache_skip}
    if "dev" in own:
        lm.fit_cache(*own["dev"], caches["dev"])
    out["weight"] = lm.cache_weight
    if lm.cache_order > 1:
        out.update(order=lm.cache_order, weights=list(lm.cache_weights))
    out["weight_fitted_on"] = "dev" if "dev" in own else "cache.weight"
    for name, (corpus, lp) in own.items():
        out[name] = {"perplexity": perplexity_of(lm.add_cache(corpus, lp, caches[name]))}
    return out


def _interpolate(
    lm: LanguageModel,
    partner: LanguageModel,
    own: Scored,
    caches: dict[str, np.ndarray],
    run_dir: Path,
) -> dict[str, Any]:
    """Fit the mixture weight on dev; report λ (the feed-forward model's share, ``weight_of``
    names its run) and the mixture's dev/test perplexity (also written to ``interpolation.json``,
    which :func:`load` reads back), and with the cache, when there is one, over the mixture
    (``cache``: its shares fitted on the mixture's dev, the ones a mixed run's LM takes)."""
    if "dev" not in own:
        raise ConfigError("interpolate_with needs --dev: the mixture weight is fitted on dev data")
    dev, own_dev = own["dev"]
    other_dev = partner.own_log_probs(dev)
    share = fit_mixture_weight(own_dev, other_dev)  # this model's share
    lm.mix_with(partner, share)
    mixed: Scored = {"dev": (dev, mix_log_probs(own_dev, other_dev, share))}
    out: dict[str, Any] = {
        "with": str(partner.run_dir),
        "weight": lm.weight,  # λ: the feed-forward model's share (see LanguageModel.weight)
        "weight_of": str(lm.weighted_model.run_dir),
        "dev": {"perplexity": perplexity_of(mixed["dev"][1])},
    }
    if "test" in own:
        test, own_test = own["test"]
        mixed["test"] = (test, mix_log_probs(own_test, partner.own_log_probs(test), share))
        out["test"] = {"perplexity": perplexity_of(mixed["test"][1])}
    if lm.cache_size > 0:  # the cache over the mixture: its shares fitted on the mixture's dev
        out["cache"] = _cache_figures(lm, mixed, caches)
    write_atomic(run_dir / INTERPOLATION, json.dumps(out, indent=2), within=run_dir)
    return out
