"""Language modelling end to end: corpus -> model (feed-forward or Kneser-Ney) -> run directory.

Both kinds share the vocabulary, the id stream and the perplexity convention of
:mod:`ffnlp.text.corpus`: perplexity = exp(mean negative log-likelihood per predicted token over the
whole text), where every word and one ``</s>`` per sentence are predicted, the leading ``</s>``
is not.  A neural run can be interpolated with a Kneser-Ney run (or the other way round), the
mixture weight fitted on the dev text by EM.

Python API::

    lm = train_lm("ptb.train.txt.gz", dev="ptb.valid.txt", test="ptb.test.txt",
                  config="configs/ptb_lm.toml", out="runs/ptb_lm")
    lm.perplexity("ptb.test.txt")
    lm.generate("the company said", max_tokens=20, seed=1)
    lm = load_lm("runs/ptb_lm")
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.models.io import load_model, save_model
from ffnlp.models.kneser_ney import KneserNey
from ffnlp.models.lm import FeedForwardLM, FFLMConfig
from ffnlp.runtime import open_run_dir, prepare_process, seed_everything
from ffnlp.text.corpus import (
    EOS,
    Corpus,
    CorpusConfig,
    LMBatches,
    build_vocab,
    encode_corpus,
    mask_before_sentence_start,
)
from ffnlp.text.vocab import Vocab
from ffnlp.training import Callback, TrainConfig, Trainer

KINDS = ("ffnn", "kneser_ney")
KN_ARRAYS = "model.safetensors"
MODEL_JSON = "model.json"


@dataclass(frozen=True)
class KNConfig:
    order: int = option(
        5, "n-gram order (2-5 are usual; 5 is the classic PTB baseline)", ge=1, le=9
    )


def _lm_train_defaults() -> TrainConfig:
    return TrainConfig(batch_size=512, monitor="dev.perplexity", log_every=200)


@dataclass(frozen=True)
class LMConfig:
    kind: str = option(
        "ffnn", "ffnn (the neural model) or kneser_ney (the n-gram baseline)", choices=KINDS
    )
    interpolate_with: str = option(
        "", "run directory of another LM (same vocabulary) to mix with, weight fitted on dev"
    )
    eval_batch_size: int = option(4096, "windows per batch when computing perplexity", ge=1)
    samples: int = option(3, "sentences sampled into summary.json after training", ge=0)
    data: CorpusConfig = section(CorpusConfig)
    model: FFLMConfig = section(FFLMConfig)
    kneser_ney: KNConfig = section(KNConfig)
    train: TrainConfig = field(default_factory=_lm_train_defaults)


def resolve_config(
    config: LMConfig | str | Path | dict[str, Any] | None, overrides: Iterable[str] = ()
) -> LMConfig:
    """Defaults (the LM's own [train] defaults included) -> TOML file or dict -> ``key=value``
    overrides, validated."""
    return cfgmod.resolve(LMConfig, config, overrides)


# -------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def token_log_probs_nn(
    model: FeedForwardLM, source: LMBatches, batch_size: int = 4096
) -> np.ndarray:
    """log p of every target of ``source`` under the neural model, in order: (T,) float64."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for batch in source.batches(batch_size, None):
        batch = {k: v.to(device) for k, v in batch.items()}
        out.append(-model.token_nll(batch).double().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def perplexity_of(log_probs: np.ndarray) -> float:
    """exp(mean negative log-likelihood per token)."""
    return float(math.exp(-float(np.mean(log_probs))))


def make_evaluator(batch_size: int):
    """The trainer's dev evaluation: mean NLL per token and perplexity over the whole text."""

    def evaluate(model: nn.Module, source: Any) -> dict[str, float]:
        lp = token_log_probs_nn(model, source, batch_size)  # type: ignore[arg-type]
        loss = -float(np.mean(lp))
        return {"loss": loss, "perplexity": math.exp(loss)}

    return evaluate


def fit_mixture_weight(first: np.ndarray, second: np.ndarray, iterations: int = 100) -> float:
    """The λ maximising Σ log(λ p1 + (1-λ) p2) over tokens, by EM (from log-probabilities)."""
    lam = 0.5
    p1, p2 = np.exp(first), np.exp(second)
    for _ in range(iterations):
        mix = lam * p1 + (1 - lam) * p2
        new = float(np.mean(lam * p1 / mix))
        if abs(new - lam) < 1e-7:
            lam = new
            break
        lam = new
    return lam


def mix_log_probs(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    return (
        np.logaddexp(np.log(weight) + first, np.log1p(-weight) + second)
        if 0 < weight < 1
        else (first if weight >= 1 else second)
    )


# -------------------------------------------------------------------------------------------------
# the model behind one run directory, whatever its kind


class LanguageModel:
    """A trained LM with its vocabulary: scoring, perplexity and sampling."""

    def __init__(
        self,
        config: LMConfig,
        vocab: Vocab,
        run_dir: Path | None,
        network: FeedForwardLM | None = None,
        ngram: KneserNey | None = None,
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
        self.weight = weight  # this model's share in the mixture
        self.summary = summary or {}
        self.eos_id = vocab.stoi(EOS)

    def set_weight(self, weight: float) -> None:
        """This model's share in the mixture with its partner, in [0, 1]."""
        if not 0 <= weight <= 1:
            raise ConfigError(f"the mixture weight must lie between 0 and 1; got {weight}")
        self.weight = float(weight)

    @property
    def kind(self) -> str:
        return "ffnn" if self.network is not None else "kneser_ney"

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

    def log_probs(self, corpus: Corpus) -> np.ndarray:
        """log p of every target, mixed with the partner model when there is one."""
        own = self.own_log_probs(corpus)
        if self.partner is None:
            return own
        return mix_log_probs(own, self.partner.own_log_probs(corpus), self.weight)

    def encode(self, path: str | Path) -> Corpus:
        return encode_corpus(path, self.vocab, self.config.data)

    def perplexity(self, path: str | Path) -> float:
        """Perplexity of a text file (one sentence a line), ``</s>`` counted."""
        return perplexity_of(self.log_probs(self.encode(path)))

    def evaluate(self, path: str | Path) -> dict[str, Any]:
        corpus = self.encode(path)
        lp = self.log_probs(corpus)
        out: dict[str, Any] = {
            "perplexity": perplexity_of(lp),
            "loss": -float(np.mean(lp)),
            "tokens": corpus.targets,
            "sentences": corpus.sentences,
            "oov_rate": corpus.unknown / max(corpus.words, 1),
        }
        if self.partner is not None:
            out["weight"] = self.weight
        return out

    # -- the next-word distribution --------------------------------------------------------------
    @torch.no_grad()
    def next_distribution(self, history: Sequence[int]) -> np.ndarray:
        """p(w | history) over the vocabulary: (V,) float64; ``history`` starts with ``</s>``."""
        p = self._own_distribution(history)
        if self.partner is not None:
            p = self.weight * p + (1 - self.weight) * self.partner._own_distribution(history)
        return p

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
        """Sample a continuation of ``prompt``; unknown prompt words become ``<unk>`` (noted)."""
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1; got {max_tokens}")
        if temperature < 0:
            raise ConfigError(
                f"temperature must be >= 0 (0 = always the likeliest word); got {temperature}"
            )
        if top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0 = no limit); got {top_k}")
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
    probs = torch.softmax(logits, dim=0)
    return int(torch.multinomial(probs, 1, generator=generator))


# -------------------------------------------------------------------------------------------------
# training


def train_lm(
    train: str | Path,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    config: LMConfig | str | Path | dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    out: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    interpolate_with: str | Path | None = None,
) -> LanguageModel:
    """Train a feed-forward LM or fit a Kneser-Ney model; write the run directory."""
    extra = [f'interpolate_with="{interpolate_with}"'] if interpolate_with is not None else []
    cfg = resolve_config(config, list(overrides) + extra)
    run_dir, cfg = open_run_dir(
        out, "lm", resume, cfg, lambda saved: resolve_config(saved, list(overrides) + extra)
    )
    partner = _load_partner(cfg.interpolate_with) if cfg.interpolate_with else None
    cfgmod.save_toml(cfg, run_dir / "config.toml")
    prepare_process(cfg.train.threads)

    started = time.perf_counter()
    vocab = partner.vocab if partner is not None else build_vocab(train, cfg.data)
    vocab.save(run_dir / "vocab.json")
    cache = run_dir / "cache"
    train_corpus = encode_corpus(train, vocab, cfg.data, cache_dir=cache)
    dev_corpus = encode_corpus(dev, vocab, cfg.data) if dev is not None else None
    test_corpus = encode_corpus(test, vocab, cfg.data) if test is not None else None
    data_seconds = time.perf_counter() - started
    eos = vocab.stoi(EOS)

    summary: dict[str, Any] = {
        "task": "lm",
        "kind": cfg.kind,
        "vocab_size": len(vocab),
        "train_tokens": train_corpus.targets,
        "data_seconds": data_seconds,
    }
    if cfg.kind == "kneser_ney":
        t0 = time.perf_counter()
        ngram = KneserNey.fit(train_corpus.ids.numpy(), cfg.kneser_ney.order, len(vocab), eos)
        seconds = time.perf_counter() - t0
        lm = LanguageModel(cfg, vocab, run_dir, ngram=ngram)
        _save_kn(ngram, run_dir)
        summary.update(
            {
                "train_seconds": seconds,
                "epochs": 1,
                "tokens_per_second": train_corpus.targets / max(seconds, 1e-9),
                "ngrams": ngram.state()[1]["ngrams"],
                "discounts": ngram.discount_table,
            }
        )
        records: list[dict[str, Any]] = []
    else:
        seed_everything(cfg.train.seed)
        model = FeedForwardLM(len(vocab), cfg.model)
        C = cfg.model.context_size
        train_source = LMBatches(train_corpus.ids, C, eos, cfg.data.cross_sentences)
        dev_source = (
            LMBatches(dev_corpus.ids, C, eos, cfg.data.cross_sentences)
            if dev_corpus is not None
            else None
        )
        train_cfg = cfg.train
        if dev_source is None and train_cfg.monitor.startswith("dev."):
            train_cfg = cfgmod.replace(train_cfg, early_stopping=False, restore_best=False)
        trainer = Trainer(
            model,
            train_cfg,
            train_source,
            dev=dev_source,
            evaluate=make_evaluator(cfg.eval_batch_size),
            callbacks=list(callbacks),
            run_dir=run_dir,
        )
        cpu_started = time.process_time()
        history = trainer.fit(resume=resume)
        cpu_seconds = time.process_time() - cpu_started
        network = trainer.model.cpu().eval()
        assert isinstance(network, FeedForwardLM)
        save_model(
            network, run_dir, "lm", {"vocab_size": len(vocab), "config": cfgmod.to_dict(cfg.model)}
        )
        lm = LanguageModel(cfg, vocab, run_dir, network=network)
        records = history.records
        summary.update(
            {
                "train_seconds": trainer.train_seconds,
                "train_cpu_seconds": cpu_seconds,  # on a shared machine, wall time is noise
                "epochs": trainer.epoch,
                "best_epoch": history.best_epoch,
                "steps": trainer.step,
                "tokens_per_second": train_corpus.targets
                * trainer.epoch
                / max(trainer.train_seconds, 1e-9),
                "stop_reason": trainer.stop_reason,
                "interrupted": trainer.interrupted,
                "parameters": sum(p.numel() for p in network.parameters()),
            }
        )
    for name, corpus in (("dev", dev_corpus), ("test", test_corpus)):
        if corpus is not None:
            lp = lm.own_log_probs(corpus)
            summary[name] = {
                "perplexity": perplexity_of(lp),
                "loss": -float(np.mean(lp)),
                "tokens": corpus.targets,
                "oov_rate": corpus.unknown / max(corpus.words, 1),
            }
    if partner is not None:
        summary["interpolated"] = _interpolate(lm, partner, dev_corpus, test_corpus)
    if cfg.samples:
        summary["samples"] = [
            lm.generate("", max_tokens=40, seed=i).text for i in range(cfg.samples)
        ]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    lm.summary = summary
    if records:
        _plot(records, run_dir)
    return lm


def _interpolate(
    lm: LanguageModel, partner: LanguageModel, dev: Corpus | None, test: Corpus | None
) -> dict[str, Any]:
    """Fit the mixture weight on dev; report the mixture's dev/test perplexity."""
    if dev is None:
        raise ConfigError("interpolate_with needs --dev: the mixture weight is fitted on dev data")
    own_dev, other_dev = lm.own_log_probs(dev), partner.own_log_probs(dev)
    weight = fit_mixture_weight(own_dev, other_dev)
    lm.partner, lm.weight = partner, weight
    out: dict[str, Any] = {
        "with": str(partner.run_dir),
        "weight": weight,
        "dev": {"perplexity": perplexity_of(mix_log_probs(own_dev, other_dev, weight))},
    }
    if test is not None:
        mixed = mix_log_probs(lm.own_log_probs(test), partner.own_log_probs(test), weight)
        out["test"] = {"perplexity": perplexity_of(mixed)}
    (lm.run_dir / "interpolation.json").write_text(json.dumps(out, indent=2), encoding="utf-8")  # type: ignore[operator]
    return out


def _plot(records: list[dict[str, Any]], run_dir: Path) -> None:
    """plots/loss.png (the shared plot) and plots/dev_perplexity.png."""
    from ffnlp.report.plots import plot_history

    plot_history(records, run_dir, metric="perplexity")


# -------------------------------------------------------------------------------------------------
# saving and loading


def _save_kn(ngram: KneserNey, run_dir: Path) -> None:
    arrays, header = ngram.state()
    save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(run_dir / KN_ARRAYS))
    arch = {"task": "lm", "type": "kneser_ney", "args": header}
    (run_dir / MODEL_JSON).write_text(json.dumps(arch, indent=2), encoding="utf-8")


def load_lm(
    run_dir: str | Path,
    interpolate_with: str | Path | None = None,
    tune_on: str | Path | None = None,
    weight: float | None = None,
    standalone: bool = False,
) -> LanguageModel:
    """Load a trained LM (either kind) from its run directory.

    With ``interpolate_with`` (or a run trained with ``interpolate_with``), the LM is mixed with
    that run: the mixture weight is ``weight`` if given, else fitted on ``tune_on``, else the
    weight fitted at training time.  ``standalone`` ignores the run's own ``interpolate_with``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / MODEL_JSON).is_file():
        raise ModelFileError(
            f"{run_dir} is not an ffnlp LM run directory: {MODEL_JSON} is missing "
            "(train one with ffnlp lm train --out DIR)"
        )
    cfg = (
        resolve_config(run_dir / "config.toml")
        if (run_dir / "config.toml").is_file()
        else LMConfig()
    )
    vocab = Vocab.load(run_dir / "vocab.json")
    try:
        arch = json.loads((run_dir / MODEL_JSON).read_text(encoding="utf-8"))
        kind = arch["type"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{run_dir / MODEL_JSON} is corrupted ({exc})") from None
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if kind == "kneser_ney":
        path = run_dir / KN_ARRAYS
        try:
            arrays = load_arrays(str(path))
        except Exception as exc:  # safetensors raises several types for damaged files
            raise ModelFileError(f"{path} cannot be read ({exc}); the file is corrupted") from None
        ngram = KneserNey.from_state(arrays, arch["args"])
        lm = LanguageModel(cfg, vocab, run_dir, ngram=ngram, summary=summary)
        size = ngram.vocab_size
    else:
        network, _ = load_model(run_dir)
        assert isinstance(network, FeedForwardLM)
        lm = LanguageModel(cfg, vocab, run_dir, network=network, summary=summary)
        size = network.vocab_size
    if len(vocab) != size:
        raise ModelFileError(
            f"{run_dir}: vocab.json has {len(vocab)} words but the model {size}; the files come "
            "from different runs"
        )
    partner_dir = interpolate_with
    if partner_dir is None and cfg.interpolate_with and not standalone:
        partner_dir = cfg.interpolate_with
    if partner_dir is None:
        return lm
    partner = _load_partner(partner_dir)
    if partner.vocab.itos != vocab.itos:
        raise ConfigError(
            f"{partner_dir} and {run_dir} have different vocabularies; train the second with "
            f"--interpolate-with {run_dir} so that it reuses the first one's vocabulary"
        )
    lm.partner = partner
    interp = run_dir / "interpolation.json"
    saved = json.loads(interp.read_text()) if interp.is_file() else {}
    if weight is not None:
        lm.set_weight(weight)
    elif tune_on is not None:
        corpus = lm.encode(tune_on)
        lm.weight = fit_mixture_weight(lm.own_log_probs(corpus), partner.own_log_probs(corpus))
    elif saved and Path(saved.get("with", "")).resolve() == Path(partner_dir).resolve():
        lm.weight = float(saved["weight"])
    else:
        raise ConfigError(
            f"no mixture weight for {run_dir} with {partner_dir}: pass --dev FILE to fit it, "
            "or --weight W (this run's share, between 0 and 1)"
        )
    return lm


def _load_partner(path: str | Path) -> LanguageModel:
    """The other LM of a mixture, alone (its own partner, if it has one, is left out)."""
    return load_lm(path, standalone=True)
