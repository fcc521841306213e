"""The trained language model behind one run directory (or one ARPA file), whatever its kind:
scoring, perplexity, sampling, the mixture with a partner model, ARPA export, and :func:`load`."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.folders.folder import read_arch, read_json, read_summary, run_path
from ffnlp.folders.layout import CONFIG, INTERPOLATION, VOCAB
from ffnlp.models.arpa import BackoffNgram, read_arpa, write_arpa
from ffnlp.models.io import NGRAM_TYPE, load_model, load_ngram
from ffnlp.models.kneser_ney import KneserNey
from ffnlp.models.lm import FeedForwardLM
from ffnlp.params import check_bool, check_int, check_number, check_path, check_str
from ffnlp.tasks.lm.config import MAX_CACHE_ORDER, LMConfig, resolve_config
from ffnlp.tasks.lm.evaluate import (
    cache_probs,
    chunk_log_probs_nn,
    fit_cache_weight,
    fit_mixture_weight,
    mix_log_probs,
    perplexity_of,
    token_log_probs_nn,
    with_cache,
)
from ffnlp.tasks.runfolder import expect_task, read_config
from ffnlp.text.corpus import (
    EOS,
    Corpus,
    CorpusCounts,
    LMBatches,
    encode_corpus,
    mask_before_sentence_start,
    stream_ids,
    target_chunks,
    tokenizer_for,
)
from ffnlp.text.vocab import Vocab
from ffnlp.training.config import MAX_SEED

MAX_GENERATED_TOKENS = 100_000  # the most tokens one generate() call samples (one at a time)
EVAL_CHUNK = 1 << 16  # targets scored at a time by evaluate(): its memory is that of one chunk
MAX_EVAL_CHUNK = 1 << 20  # a chunk no larger than this, whatever the batch sizes


class LanguageModel:
    """A trained LM with its vocabulary: scoring, perplexity and sampling.

    ``run_dir`` is where it was loaded from: a run directory, or the ARPA file of an n-gram model
    read with :func:`load_arpa`.
    """

    def __init__(
        self,
        config: LMConfig,
        vocab: Vocab,
        run_dir: Path | None,
        network: FeedForwardLM | None = None,
        ngram: KneserNey | BackoffNgram | None = None,
        partner: LanguageModel | None = None,
        weight: float = 1.0,
        summary: dict[str, Any] | None = None,
    ):
        self.config = config
        self.vocab = vocab
        self.run_dir = run_dir
        self.network = network
        self.ngram = ngram
        self.partner = partner  # the interpolated partner, if any
        # λ, the mixture weight: the feed-forward model's share, whichever of the two this is
        # (this model's share when both or neither are feed-forward); see weighted_model
        self.weight = weight
        self.summary = summary or {}
        self.eos_id = vocab.stoi(EOS)
        # the cache mixed into every probability given (cache.size words; 0 = none), of orders
        # 1..cache.order, and their shares: the ones fitted at training when there are, else
        # the configured share split evenly
        self.cache_size = int(config.cache.size)
        self.cache_order = int(config.cache.order)
        self.cache_weights = _split_share(float(config.cache.weight), self.cache_order)
        self.cache_decay = float(config.cache.decay)
        self.cache_skip = int(config.cache.skip)

    @property
    def cache_weight(self) -> float:
        """The caches' share in all (the sum of ``cache_weights``, one per order)."""
        return float(sum(self.cache_weights))

    def set_cache(
        self,
        size: int,
        weight: float | Sequence[float] | None = None,
        decay: float | None = None,
        skip: int | None = None,
        order: int | None = None,
    ) -> None:
        """Mix a cache of the last ``size`` words (0: none) into every probability given, with
        ``decay``, ``skip`` and ``order`` as ``[cache]`` says, and share ``weight``: one number
        (split evenly over the orders) or one per order (each default: the one held; a new
        order without a weight splits the share held evenly)."""
        owner = "LanguageModel.set_cache"
        self.cache_size = check_int(size, "size", owner, ge=0, le=100_000)
        if order is not None:
            self.cache_order = check_int(order, "order", owner, ge=1, le=MAX_CACHE_ORDER)
            if weight is None and len(self.cache_weights) != self.cache_order:
                self.cache_weights = _split_share(self.cache_weight, self.cache_order)
        if weight is not None:
            self.cache_weights = _check_shares(weight, self.cache_order, owner)
        if decay is not None:
            self.cache_decay = check_number(decay, "decay", owner, gt=0, le=1)
        if skip is not None:
            self.cache_skip = check_int(skip, "skip", owner, ge=0)

    def _cache_skipped(self) -> np.ndarray | None:
        """(V,) bool: ``</s>`` and the ``cache_skip`` most frequent words (ties: the first
        ids), or None when none is skipped."""
        if self.cache_skip == 0:
            return None
        counts = np.asarray(self.vocab.counts, dtype=np.int64)
        order = np.argsort(-counts, kind="stable")[: self.cache_skip]
        skipped = np.zeros(len(counts), dtype=bool)
        skipped[order] = True
        skipped[self.eos_id] = True
        return skipped

    def _cache_probs(self, ids: np.ndarray, first: int, real_from: int) -> np.ndarray:
        """(cache_order, n): each order's :func:`cache_probs` of the targets ``ids[first:]``."""
        skipped = self._cache_skipped()
        return np.vstack(
            [
                cache_probs(
                    ids, first, self.cache_size, real_from, self.cache_decay, skipped, order
                )
                for order in range(1, self.cache_order + 1)
            ]
        )

    def fit_cache(
        self,
        corpus: Corpus,
        log_probs: np.ndarray | None = None,
        caches: np.ndarray | None = None,
    ) -> float:
        """Fit the cache's share on ``corpus``; returns it. ``log_probs``: the probabilities
        the cache is mixed into, when already computed (default: ``log_probs(corpus,
        cache=False)``, the model's, mixed with the partner's when there is one); ``caches``:
        :meth:`cache_of` the corpus, when already computed."""
        base = self.log_probs(corpus, cache=False) if log_probs is None else log_probs
        made = self.cache_of(corpus) if caches is None else caches
        self.cache_weights = fit_cache_weight(base, made)
        return self.cache_weight

    def add_cache(
        self, corpus: Corpus, log_probs: np.ndarray, caches: np.ndarray | None = None
    ) -> np.ndarray:
        """``log_probs`` of the targets of ``corpus`` with the cache mixed in (as they are
        without a cache); ``caches``: :meth:`cache_of` the corpus, when already computed."""
        if self.cache_size == 0:
            return log_probs
        made = self.cache_of(corpus) if caches is None else caches
        return with_cache(log_probs, made, self.cache_weights)

    def cache_of(self, corpus: Corpus) -> np.ndarray:
        """(cache.order, targets): each order's :func:`cache_probs` of every target of a whole
        corpus (nothing before its first). They depend on the text and the cache's settings
        alone, not on the model's probabilities or the shares."""
        pad = self._cache_history()
        targets = corpus.ids[1:].numpy()
        ids = np.concatenate([np.full(pad, -1, dtype=np.int64), targets])
        return self._cache_probs(ids, pad, real_from=pad)

    def _cache_history(self) -> int:
        """The ids before a target that the cache reads (0 without one)."""
        return self.cache_size + self.cache_order - 1 if self.cache_size > 0 else 0

    def set_weight(self, weight: float) -> None:
        """λ, the feed-forward model's weight in the mixture with the partner (this model's
        when both or neither are feed-forward), in [0, 1]."""
        self.weight = check_number(weight, "weight", "LanguageModel.set_weight", ge=0, le=1)

    @property
    def weighted_model(self) -> LanguageModel:
        """The model whose share λ (``weight``) is: the feed-forward one of the pair, or this
        one when both or neither are feed-forward."""
        if self.partner is not None and self.kind != "ffnn" and self.partner.kind == "ffnn":
            return self.partner
        return self

    def own_share(self) -> float:
        """This model's share of the mixture (λ or 1 - λ)."""
        return self.weight if self.weighted_model is self else 1.0 - self.weight

    def mix_with(self, partner: LanguageModel, own_share: float) -> None:
        """Mix with ``partner``, this model taking ``own_share`` of the mixture (as
        :func:`~ffnlp.tasks.lm.evaluate.fit_mixture_weight` of this model's and the partner's
        log-probabilities returns it); ``weight`` becomes λ."""
        self.partner = partner
        self.weight = own_share if self.weighted_model is self else 1.0 - own_share

    @property
    def kind(self) -> str:
        """``ffnn``, ``kneser_ney``, or ``arpa`` (a back-off model read from an ARPA file)."""
        if self.network is not None:
            return "ffnn"
        return "kneser_ney" if isinstance(self.ngram, KneserNey) else "arpa"

    def export_arpa(self, path: str | Path) -> list[int]:
        """Write this n-gram model as an ARPA file (``.gz``: compressed); return the n-gram
        counts per order. The file gives the same probabilities as the model (see
        :mod:`ffnlp.models.arpa` for how ``<s>``, ``</s>`` and ``<unk>`` are written)."""
        if self.ngram is None:
            raise ConfigError(
                f"{self.run_dir} is a feed-forward LM; only n-gram models (kind = "
                '"kneser_ney") can be written as ARPA files'
            )
        backoff = (
            BackoffNgram.from_kneser_ney(self.ngram)
            if isinstance(self.ngram, KneserNey)
            else self.ngram
        )
        return write_arpa(backoff, self.vocab.itos, path)

    # -- scoring ------------------------------------------------------------------------------
    def own_log_probs(self, corpus: Corpus) -> np.ndarray:
        """log p of every target of the corpus under this model alone (no interpolation)."""
        if self.network is not None:
            cfg = self.network.config
            source = LMBatches(
                corpus.ids, cfg.context_size, self.eos_id, self.config.data.cross_sentences
            )
            return token_log_probs_nn(self.network, source, self.config.eval_batch_size)
        assert self.ngram is not None
        return self.ngram.log_probs(corpus.ids.numpy())

    def log_probs(self, corpus: Corpus, cache: bool = True) -> np.ndarray:
        """log p of every target, mixed with the partner model when there is one, and with the
        cache when there is one (and ``cache``)."""
        lp = self.own_log_probs(corpus)
        if self.partner is not None:
            lp = mix_log_probs(lp, self.partner.own_log_probs(corpus), self.own_share())
        return self.add_cache(corpus, lp) if cache else lp

    def score(self, texts: str | Sequence[str]) -> list[dict[str, Any]]:
        """Each text scored as one sentence on its own: ``log_prob`` (natural log of
        p(words, ``</s>``) after a sentence start), ``perplexity`` (``</s>`` counted), ``tokens``
        (words + 1) and ``unknown`` (its words outside the vocabulary, read as ``<unk>``).

        Texts are tokenised as the training corpus was (whitespace; lowercased when
        data.lowercase is on). No text's context reaches into another's: each is read from a
        sentence start, as the first sentence of a corpus is."""
        if isinstance(texts, str):
            texts = [texts]
        tokenize = tokenizer_for(self.config.data)
        out = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ConfigError(f"texts[{i}] must be a string; got {type(text).__name__}")
            words = tokenize(text)
            ids = [self.eos_id, *self.vocab.encode(words), self.eos_id]
            corpus = Corpus(torch.tensor(ids, dtype=torch.int32), Path("<text>"), 1, len(words), 0)
            lp = self.log_probs(corpus)
            total = float(np.sum(lp))
            out.append(
                {
                    "log_prob": total,
                    "perplexity": perplexity_of(lp),
                    "tokens": len(lp),
                    "unknown": [w for w in words if w not in self.vocab],
                }
            )
        return out

    def encode(self, path: str | Path) -> Corpus:
        return encode_corpus(path, self.vocab, self.config.data)

    def perplexity(self, path: str | Path) -> float:
        """Perplexity of a text file (one sentence a line), ``</s>`` counted."""
        check_path(path, "path", "LanguageModel.perplexity")
        return float(self.evaluate(path)["perplexity"])

    def evaluate(self, path: str | Path) -> dict[str, Any]:
        """Perplexity, mean loss, tokens, sentences and OOV rate of a text file, streamed: the
        file is read, encoded and scored a chunk of :data:`EVAL_CHUNK` targets at a time (the
        memory used does not grow with the file), each model's windows run through it in
        batches of its ``eval_batch_size`` as :meth:`log_probs` runs them, so the figures are
        those of the whole text scored at once."""
        check_path(path, "path", "LanguageModel.evaluate")
        counts = CorpusCounts()
        history = max(*(m._history() for m in self._models()), self._cache_history())
        size = self._chunk_size()
        pieces = stream_ids(path, self.vocab, self.config.data, counts, size)
        sums, targets = [], 0
        with self._evaluating():
            for chunk in target_chunks(pieces, self.eos_id, history, size):
                lp = self._chunk_log_probs(chunk, history)
                if self.cache_size > 0:  # the ids before the text's first target are padding
                    real_from = history - min(history, targets)
                    cache = self._cache_probs(chunk, history, real_from)
                    lp = with_cache(lp, cache, self.cache_weights)
                sums.append(float(np.sum(lp)))
                targets += len(lp)
        loss = -math.fsum(sums) / targets
        out: dict[str, Any] = {
            "perplexity": math.exp(loss),
            "loss": loss,
            "tokens": counts.targets,
            "sentences": counts.sentences,
            "oov_rate": counts.unknown / max(counts.words, 1),
        }
        if self.partner is not None:
            out["weight"] = self.weight  # λ
            out["weight_of"] = str(self.weighted_model.run_dir)
        if self.cache_size > 0:
            out["cache"] = {"size": self.cache_size, "weight": self.cache_weight}
            if (self.cache_decay, self.cache_skip) != (1.0, 0):
                out["cache"].update(decay=self.cache_decay, skip=self.cache_skip)
            if self.cache_order > 1:
                out["cache"].update(order=self.cache_order, weights=list(self.cache_weights))
        return out

    # -- streamed scoring (evaluate) ----------------------------------------------------------
    def _models(self) -> list[LanguageModel]:
        return [self] if self.partner is None else [self, self.partner]

    def _history(self) -> int:
        """The ids before a target that this model's log-probability of it reads."""
        if self.network is not None:
            return int(self.network.config.context_size)
        assert self.ngram is not None
        return max(int(self.ngram.order) - 1, 0)

    def _chunk_size(self) -> int:
        """Targets per chunk: at least :data:`EVAL_CHUNK`, a multiple of each neural model's
        ``eval_batch_size`` (its batches are then those of the whole text, to the last bit),
        unless that multiple would be over :data:`MAX_EVAL_CHUNK`."""
        step = 1
        for model in self._models():
            if model.network is not None:
                step = math.lcm(step, model.config.eval_batch_size)
        if step > MAX_EVAL_CHUNK:
            step = self.config.eval_batch_size if self.network is not None else 1
        return step * max(-(-EVAL_CHUNK // step), 1)

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """The neural models in eval mode (dropout off) for the block, as they were after."""
        networks = [m.network for m in self._models() if m.network is not None]
        modes = [n.training for n in networks]
        for network in networks:
            network.eval()
        try:
            yield
        finally:
            for network, mode in zip(networks, modes, strict=True):
                network.train(mode)

    def _own_chunk_log_probs(self, chunk: np.ndarray, history: int) -> np.ndarray:
        """log p of a chunk's targets (:func:`~ffnlp.text.corpus.target_chunks`, ``history``
        ids first) under this model alone: what :meth:`own_log_probs` gives for them."""
        if self.network is not None:
            return chunk_log_probs_nn(
                self.network,
                chunk,
                history,
                self._history(),
                self.eos_id,
                self.config.data.cross_sentences,
                self.config.eval_batch_size,
            )
        assert self.ngram is not None
        # an n-gram's probability reads the order - 1 ids before it, and nothing before the
        # last </s>: a </s> in front of them changes neither (see KneserNey.log_probs)
        own = self._history()
        piece = np.concatenate([[self.eos_id], chunk[history - own :]]).astype(np.int64)
        return self.ngram.log_probs(piece)[own:]

    def _chunk_log_probs(self, chunk: np.ndarray, history: int) -> np.ndarray:
        own = self._own_chunk_log_probs(chunk, history)
        if self.partner is None:
            return own
        other = self.partner._own_chunk_log_probs(chunk, history)
        return mix_log_probs(own, other, self.own_share())

    # -- the next-word distribution --------------------------------------------------------------
    @torch.no_grad()
    def next_distribution(self, history: Sequence[int]) -> np.ndarray:
        """p(w | history) over the vocabulary: (V,) float64; ``history`` starts with ``</s>``."""
        p = self._own_distribution(history)
        if self.partner is not None:
            share = self.own_share()
            p = share * p + (1 - share) * self.partner._own_distribution(history)
        if self.cache_size > 0 and self.cache_weight > 0:
            p = self._with_next_cache(p, np.asarray(history[1:], dtype=np.int64))
        return p

    def _with_next_cache(self, p: np.ndarray, text: np.ndarray) -> np.ndarray:
        """``p`` (V,) mixed with each order's cache of the word after ``text`` (the words read
        so far), as :func:`with_cache` mixes the figures of :func:`cache_probs`."""
        end = len(text)  # the next word's position
        pos = np.arange(max(0, end - self.cache_size), end)  # the window
        weights = self.cache_decay ** (end - 1 - pos).astype(np.float64)
        skipped = self._cache_skipped()
        rest = 1.0 - self.cache_weight
        out, norm = rest * p, rest
        for order, share in enumerate(self.cache_weights, start=1):
            used = np.ones(len(pos), dtype=bool)
            if order == 1 and skipped is not None:
                used &= ~skipped[text[pos]]
            for i in range(1, min(order, end + 1)):  # positions whose word i back is the next's
                used &= (pos >= i) & (text[np.maximum(pos - i, 0)] == text[end - i])
            if order - 1 > end:  # fewer words read than the order needs before the next
                used[:] = False
            w = weights * used
            if share > 0 and w.sum() > 0:
                out = out + share * np.bincount(text[pos], w, minlength=len(p)) / w.sum()
                norm += share
        return out / norm

    def _own_distribution(self, history: Sequence[int]) -> np.ndarray:
        if self.ngram is not None:
            return self.ngram.distribution(history)
        assert self.network is not None
        C = self.network.config.context_size
        tail = [self.eos_id] * max(0, C - len(history)) + list(history)[-C:]
        context = torch.tensor([tail], dtype=torch.long)  # (1, C)
        if not self.config.data.cross_sentences:
            context = mask_before_sentence_start(context, self.eos_id)
        self.network.eval()
        device = next(self.network.parameters()).device
        return self.network.log_probs(context.to(device))[0].double().exp().cpu().numpy()

    # -- sampling ------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str = "",
        max_tokens: int = 30,
        temperature: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        stop_at_eos: bool = True,
    ) -> Generation:
        """Sample a continuation of ``prompt``; unknown prompt words become ``<unk>`` (noted).

        ``temperature`` is a finite number > 0 (lower: likelier words), or 0 for always the
        likeliest word; ``top_k`` > 0 samples among the k likeliest only; at most
        :data:`MAX_GENERATED_TOKENS` tokens."""
        owner = "LanguageModel.generate"
        prompt = check_str(prompt, "prompt", owner)
        max_tokens = check_int(max_tokens, "max_tokens", owner, ge=1, le=MAX_GENERATED_TOKENS)
        temperature = check_number(
            temperature,
            "temperature",
            owner,
            ge=0,
            must="a finite number > 0 (or 0 for always the likeliest word)",
        )
        top_k = check_int(top_k, "top_k", owner, ge=0, must="an int >= 0 (0 = no limit)")
        seed = check_int(seed, "seed", owner, ge=0, le=MAX_SEED)
        stop_at_eos = check_bool(stop_at_eos, "stop_at_eos", owner)
        words = prompt.lower().split() if self.config.data.lowercase else prompt.split()
        unknown = [w for w in words if w not in self.vocab]
        history = [self.eos_id] + self.vocab.encode(words)
        generator = torch.Generator().manual_seed(seed)
        produced: list[str] = []
        for _ in range(max_tokens):
            p = torch.from_numpy(self.next_distribution(history))  # (V,)
            word = _sample(p, temperature, top_k, generator)
            history.append(word)
            token = self.vocab.itos[word]
            produced.append(token)
            if stop_at_eos and word == self.eos_id:
                break
        return Generation(prompt_tokens=words, tokens=produced, unknown=unknown)


@dataclass
class Generation:
    prompt_tokens: list[str]
    tokens: list[str]  # the sampled tokens (``</s>`` included when sampled)
    unknown: list[str]  # prompt words that were not in the vocabulary (read as <unk>)

    @property
    def text(self) -> str:
        """Prompt and continuation; ``</s>`` shown as a line break."""
        out = " ".join(self.prompt_tokens + self.tokens)
        return out.replace(f" {EOS}", "\n").replace(EOS, "\n").rstrip("\n")


def _sample(p: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> int:
    if temperature == 0:
        return int(p.argmax())
    logits = p.clamp_min(1e-300).log() / temperature  # (V,)
    if 0 < top_k < len(p):
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = torch.softmax(logits, dim=0)  # (V,)
    return int(torch.multinomial(probs, 1, generator=generator))


# -------------------------------------------------------------------------------------------------
# loading


def load(
    run_dir: str | Path,
    interpolate_with: str | Path | None = None,
    tune_on: str | Path | None = None,
    weight: float | None = None,
    standalone: bool = False,
    cache: int | None = None,
    cache_weight: float | None = None,
    cache_order: int | None = None,
    cache_decay: float | None = None,
    cache_skip: int | None = None,
) -> LanguageModel:
    """Load a trained LM (either kind) from its run directory.

    ``run_dir`` may also be an ARPA file (an n-gram model from any tool, see :func:`load_arpa`).
    With ``interpolate_with`` (or a run trained with ``interpolate_with``), the LM is mixed with
    that run or ARPA file: the mixture weight λ (the feed-forward model's share, whichever run it is; this
    run's when both or neither are feed-forward) is ``weight`` if given, else fitted on
    ``tune_on``, else the weight fitted at training time.  ``standalone`` ignores the run's own
    ``interpolate_with``. ``cache`` (a number of words; 0: none) replaces the run's unigram cache
    (``cache.size``) and ``cache_order`` its order (``cache.order``: 2 adds a bigram cache...),
    ``cache_decay`` and ``cache_skip`` its ``cache.decay`` and ``cache.skip``; its share is
    ``cache_weight`` if given (split evenly over the orders), else fitted on ``tune_on`` (after
    the mixture), else the run's.

    >>> lm = load("runs/ptb_lm", interpolate_with="runs/ptb_kn5", tune_on="ptb.valid.txt")  # doctest: +SKIP
    >>> load("kenlm.arpa").perplexity("ptb.test.txt")  # doctest: +SKIP
    """
    check_path(interpolate_with, "interpolate_with", "load", optional=True)
    check_path(tune_on, "tune_on", "load", optional=True)
    if weight is not None:
        weight = check_number(weight, "weight", "load", ge=0, le=1)
    standalone = check_bool(standalone, "standalone", "load")
    if cache is not None:
        cache = check_int(cache, "cache", "load", ge=0, le=100_000)
    if cache_weight is not None:
        cache_weight = check_number(cache_weight, "cache_weight", "load", ge=0, le=0.999)
    if cache_order is not None:
        cache_order = check_int(cache_order, "cache_order", "load", ge=1, le=MAX_CACHE_ORDER)
    if cache_decay is not None:
        cache_decay = check_number(cache_decay, "cache_decay", "load", gt=0, le=1)
    if cache_skip is not None:
        cache_skip = check_int(cache_skip, "cache_skip", "load", ge=0)
    lm, tuned = _load_mixed(run_dir, interpolate_with, tune_on, weight, standalone)
    changes = (cache, cache_weight, cache_order, cache_decay, cache_skip)
    if any(change is not None for change in changes):
        size = lm.cache_size if cache is None else cache
        lm.set_cache(size, cache_weight, cache_decay, cache_skip, order=cache_order)
    if tune_on is not None and cache_weight is None and lm.cache_size > 0:
        # the mixture's fit scored tune_on already: the cache is fitted over those figures
        if tuned is not None:
            lm.fit_cache(*tuned)
        else:
            lm.fit_cache(lm.encode(tune_on))
    return lm


Tuned = tuple[Corpus, np.ndarray]  # the text a mixture was fitted on, the mixture's log p


def _load_mixed(
    run_dir: str | Path,
    interpolate_with: str | Path | None,
    tune_on: str | Path | None,
    weight: float | None,
    standalone: bool,
) -> tuple[LanguageModel, Tuned | None]:
    """:func:`load` without the cache's settings; with the mixture's figures on ``tune_on`` when
    its weight was fitted there."""
    run_dir = run_path(run_dir)
    if run_dir.is_file():  # an ARPA file; mixed, it takes its partner's word ids
        if interpolate_with is None:
            return load_arpa(run_dir), None
        other = Path(interpolate_with)
        partner = load_arpa(other) if other.is_file() else load(other, standalone=True)
        lm = load_arpa(run_dir, partner.vocab)
        return lm, _attach_partner(lm, run_dir, other, tune_on, weight, partner)
    lm = _load_alone(run_dir)
    partner_dir = interpolate_with
    if partner_dir is None and lm.config.interpolate_with and not standalone:
        partner_dir = lm.config.interpolate_with
    if partner_dir is None:
        return lm, None
    return lm, _attach_partner(lm, run_dir, Path(partner_dir), tune_on, weight)


def load_lm(
    run_dir: str | Path,
    interpolate_with: str | Path | None = None,
    tune_on: str | Path | None = None,
    weight: float | None = None,
    standalone: bool = False,
) -> LanguageModel:
    """Deprecated name of :func:`load` (``from ffnlp.tasks.lm import load``)."""
    warnings.warn(
        "ffnlp.tasks.lm.load_lm is deprecated; use ffnlp.tasks.lm.load (same arguments)",
        DeprecationWarning,
        stacklevel=2,
    )
    return load(run_dir, interpolate_with, tune_on, weight, standalone)


def load_arpa(path: str | Path, vocab: Vocab | None = None) -> LanguageModel:
    """A back-off n-gram model read from an ARPA file (KenLM, SRILM, ``ffnlp lm export``).

    Its vocabulary is the file's words (``</s>`` and ``<unk>`` first); with ``vocab`` (a run's,
    to mix the two) the file's words must be that vocabulary's. Texts are scored as every ffnlp
    LM scores them: ``<s>`` starts each line, every word and the ``</s>`` ending the line are
    predicted, unknown words become ``<unk>``.
    """
    model, words = read_arpa(path, vocab)
    return LanguageModel(LMConfig(kind="kneser_ney"), words, Path(path), ngram=model)


def _load_alone(run_dir: Path) -> LanguageModel:
    """The run's own model, vocabulary, configuration and summary; no partner."""
    run_dir = run_path(run_dir)
    arch = read_arch(run_dir)
    expect_task(run_dir, arch, "lm")
    has_config = (run_dir / CONFIG).is_file()
    cfg = read_config(run_dir, resolve_config, "lm") if has_config else LMConfig()
    vocab = Vocab.load(run_dir / VOCAB)
    if EOS not in vocab:
        raise ModelFileError(f"{run_dir / 'vocab.json'} has no {EOS}; the file is corrupted")
    summary = read_summary(run_dir)
    if arch["type"] == NGRAM_TYPE:
        ngram, _ = load_ngram(run_dir)
        lm = LanguageModel(cfg, vocab, run_dir, ngram=ngram, summary=summary)
        size = ngram.vocab_size
    else:
        network, _ = load_model(run_dir, task="lm")
        if not isinstance(network, FeedForwardLM):
            raise ModelFileError(
                f"{run_dir} holds a {type(network).__name__}, not a feed-forward LM or Kneser-Ney "
                "model"
            )
        lm = LanguageModel(cfg, vocab, run_dir, network=network, summary=summary)
        size = network.vocab_size
    _read_cache_shares(lm, summary.get("cache"), run_dir / "summary.json")
    if len(vocab) != size:
        raise ModelFileError(
            f"{run_dir}: vocab.json has {len(vocab)} words but the model {size}; the files come "
            "from different runs"
        )
    return lm


def _attach_partner(
    lm: LanguageModel,
    run_dir: Path,
    partner_dir: Path,
    tune_on: str | Path | None,
    weight: float | None,
    partner: LanguageModel | None = None,
) -> Tuned | None:
    """Mix ``lm`` with the LM of ``partner_dir`` (a run or an ARPA file; ``partner`` when already
    loaded), at the weight given, fitted on ``tune_on``, or fitted at training time
    (interpolation.json), in that order of preference; the mixture's figures on ``tune_on``
    when fitted there."""
    if partner is None and partner_dir.is_file():  # ARPA: indexed by this model's vocabulary
        partner = load_arpa(partner_dir, lm.vocab)
    elif partner is None:
        partner = load(partner_dir, standalone=True)
    if partner.vocab.itos != lm.vocab.itos:
        raise ConfigError(
            f"{partner_dir} and {run_dir} have different vocabularies; train the second with "
            f"--interpolate-with {run_dir} so that it reuses the first one's vocabulary"
        )
    lm.partner = partner
    interp = run_dir / INTERPOLATION
    saved = read_json(interp) if interp.is_file() else {}
    if weight is not None:
        lm.set_weight(weight)
    elif tune_on is not None:
        corpus = lm.encode(tune_on)
        own, other = lm.own_log_probs(corpus), partner.own_log_probs(corpus)
        lm.mix_with(partner, fit_mixture_weight(own, other))
        return corpus, mix_log_probs(own, other, lm.own_share())
    elif saved and _saved_partner(saved) == partner_dir.resolve():
        weight = saved.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ModelFileError(f"{interp}: 'weight' must be a number from 0 to 1; got {weight!r}")
        if "weight_of" in saved:
            lm.set_weight(float(weight))
        else:  # written before λ had one meaning: then "weight" was this run's share
            lm.mix_with(partner, float(weight))
        _read_cache_shares(lm, saved.get("cache"), interp)  # the cache over the mixture
    else:
        raise ConfigError(
            f"no mixture weight for {run_dir} with {partner_dir}: pass --dev FILE to fit it, "
            "or --weight W (λ, the feed-forward model's share, between 0 and 1)"
        )
    return None


def _read_cache_shares(lm: LanguageModel, fitted: object, path: Path) -> None:
    """The cache's shares fitted at training (a ``cache`` block of summary.json, or of
    interpolation.json for the mixture), when it is of the cache ``lm`` holds."""
    if not isinstance(fitted, dict) or fitted.get("size") != lm.cache_size:
        return
    weight = fitted.get("weights", fitted.get("weight"))
    try:
        lm.cache_weights = _check_shares(weight, lm.cache_order, path.name)
    except ConfigError as e:
        raise ModelFileError(
            f"{path}: cache.weights must be {lm.cache_order} number(s) from 0 to 1, summing "
            f"below 1; got {weight!r}"
        ) from e


def _saved_partner(saved: dict[str, Any]) -> Path | None:
    partner = saved.get("with")
    return Path(partner).resolve() if isinstance(partner, str) and partner else None


def _split_share(share: float, order: int) -> tuple[float, ...]:
    """One share of the caches split evenly over orders 1..order."""
    return (share / order,) * order


def _check_shares(weight: object, order: int, owner: str) -> tuple[float, ...]:
    """The caches' shares: one number (split evenly over the orders) or one per order, each
    from 0, summing to at most 0.999."""
    if isinstance(weight, (list, tuple)):
        if len(weight) != order:
            raise ConfigError(
                f"'weight' of {owner}: one share per cache order ({order}); got {len(weight)}"
            )
        shares = tuple(check_number(w, "weight", owner, ge=0, le=0.999) for w in weight)
    else:
        shares = _split_share(check_number(weight, "weight", owner, ge=0, le=0.999), order)
    if sum(shares) > 0.999 + 1e-12:
        raise ConfigError(f"'weight' of {owner}: the shares sum to {sum(shares):g}; at most 0.999")
    return shares
