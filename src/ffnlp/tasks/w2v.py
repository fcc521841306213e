"""Word2vec end to end: corpus -> vocabulary -> streamed pairs -> SkipGram -> Trainer -> run dir.

The corpus is read once: one pass over the text counts the words and turns every line into integer
ids (a Python dict look-up per token, the only per-token Python in the whole pipeline); the ids are
kept in chunks of about ``corpus.chunk_tokens`` tokens, in memory or in a temporary file for
corpora larger than ``corpus.max_memory_tokens``. Each epoch then streams the chunks: subsampling,
dynamic windows and pair generation are vectorised over a whole chunk, and the pairs of ``batch_size``
corpus words at a time become one batch (with their noise words) for the shared Trainer. A
background thread prepares the next batches while the model trains on the current one.

Run directory: config.toml, vocab.json (words and counts), model.safetensors + model.json,
vectors.bin (word2vec binary: what ``ffnlp w2v export`` converts and the classifiers load),
metrics.jsonl, summary.json, plots/.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.config import option, section
from ffnlp.errors import ConfigError, DataError, ModelFileError, TrainingError
from ffnlp.features.embeddings import save_vectors
from ffnlp.features.wordvec_eval import WordVectors, evaluate_analogies, evaluate_similarity
from ffnlp.models.io import load_model, save_model
from ffnlp.models.skipgram import (
    NoiseSampler,
    SkipGram,
    fused_step_layout,
    keep_probabilities,
    window_pairs,
)
from ffnlp.runtime import (
    available_cores,
    open_run_dir,
    prepare_process,
    seed_everything,
    select_device,
)
from ffnlp.text.readers import read_corpus
from ffnlp.text.vocab import Vocab
from ffnlp.training import Callback, TrainConfig, Trainer, update_step_if_allowed

log = logging.getLogger(__name__)

VECTORS_FILE = "vectors.bin"

# --------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CorpusConfig:
    encoding: str = option("utf-8", "text encoding of the corpus")
    lowercase: bool = option(False, "lowercase the corpus before counting (PTB already is)")
    chunk_tokens: int = option(
        1_000_000,
        "tokens prepared at once; bounds the memory of pair generation (~100 bytes/token)",
        ge=1000,
    )
    max_memory_tokens: int = option(
        20_000_000,
        "corpora with more tokens keep their ids in a temporary file, not in memory",
        ge=0,
    )
    prefetch: bool = option(True, "prepare the next batches in a background thread")


@dataclass(frozen=True)
class Word2VecModelConfig:
    architecture: str = option(
        "skipgram",
        "skipgram (a word predicts its neighbours) or cbow",
        choices=("skipgram", "cbow"),
    )
    dim: int = option(100, "vector dimension", ge=1)
    window: int = option(5, "largest window; each centre draws its own from 1..window", ge=1)
    negative: int = option(5, "noise words per positive pair", ge=1)
    min_count: int = option(5, "ignore words seen fewer times", ge=1)
    max_vocab: int = option(0, "keep only the most frequent words (0 = no limit)", ge=0)
    sample: float = option(1e-3, "subsampling threshold t of frequent words (0 = off)", ge=0)
    noise_power: float = option(0.75, "noise distribution exponent: P(w) ~ count(w) ** power")
    shared_negatives: int = option(
        0,
        "skip-gram: 0 = `negative` noise words per pair (word2vec); M > 0 = M noise words per "
        "centre word, shared by its window's pairs (fewer rows to update: faster)",
        ge=0,
    )
    workers: int = option(
        0,
        "threads that share each batch's pairs, as gensim's workers (0 = every available core "
        "but the one the batch-preparing thread takes when corpus.prefetch is on)",
        ge=0,
    )


@dataclass(frozen=True)
class EvaluationConfig:
    similarity: list[str] = option(
        [], "word-similarity files evaluated after every epoch and at the end"
    )
    analogies: str = option("", "analogy questions file evaluated at the end ('' = none)")
    restrict: int = option(30000, "analogies: search among this many most frequent words", ge=1)


@dataclass(frozen=True)
class W2VConfig:
    corpus: CorpusConfig = section(CorpusConfig)
    model: Word2VecModelConfig = section(Word2VecModelConfig)
    evaluation: EvaluationConfig = section(EvaluationConfig)
    # word2vec's own settings: plain SGD at alpha 0.025 decaying linearly to 0.0001 (ratio 0.004)
    # over all epochs, 1 intra-op thread + the prefetch thread = 2 cores (gensim: workers = 2)
    train: TrainConfig = section(
        TrainConfig,
        epochs=5,
        batch_size=1024,
        optimizer="sgd",
        lr=0.025,
        sparse=True,
        schedule="linear",
        min_lr_ratio=0.004,
        restore_best=False,
        threads=1,
        log_every=200,
    )


def resolve_config(
    config: W2VConfig | str | Path | dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    **settings: Any,
) -> W2VConfig:
    """Defaults -> TOML file or dict -> ``--set`` overrides -> keyword settings ("model.dim": 50)."""
    return cfgmod.resolve(W2VConfig, config, overrides, **settings)


# ---------------------------------------------------------------------------------------- corpus


class EncodedCorpus:
    """A corpus read once: its vocabulary and its token ids, in sentence-aligned chunks.

    A chunk is an int32 array of word ids with -1 after every sentence (a line of the file);
    words below min_count are already removed, as word2vec does before windowing.
    """

    def __init__(
        self,
        vocab: Vocab,
        raw_tokens: int,
        chunk_words: list[int],
        chunks: list[np.ndarray] | None = None,
        file: Path | None = None,
        offsets: list[tuple[int, int]] | None = None,
    ):
        self.vocab = vocab
        self.raw_tokens = raw_tokens  # every token of the file, also those below min_count
        self.chunk_words = chunk_words  # in-vocabulary tokens per chunk
        self._chunks = chunks
        self._file = file
        self._offsets = offsets or []

    @property
    def words(self) -> int:
        return sum(self.chunk_words)

    def __len__(self) -> int:
        return len(self.chunk_words)

    def chunk(self, i: int) -> np.ndarray:
        if self._chunks is not None:
            return self._chunks[i]
        assert self._file is not None
        start, length = self._offsets[i]
        return np.fromfile(self._file, dtype=np.int32, count=length, offset=start * 4)

    def close(self) -> None:
        if self._file is not None and self._file.exists():
            self._file.unlink()

    @classmethod
    def read(
        cls,
        path: str | Path,
        cfg: CorpusConfig,
        min_count: int = 5,
        max_vocab: int = 0,
        workdir: str | Path | None = None,
    ) -> EncodedCorpus:
        """Count and encode ``path`` in one streamed pass (then remap the ids by frequency)."""
        type_ids: dict[str, int] = {}
        counts = np.zeros(0, dtype=np.int64)
        pending: list[int] = []
        provisional: list[np.ndarray] = []  # chunks of provisional ids (first-seen order)
        spill: Any = None  # the temporary file once the corpus outgrows max_memory_tokens
        spill_offsets: list[tuple[int, int]] = []
        raw = 0

        def flush() -> None:
            nonlocal counts, spill, raw
            arr = np.asarray(pending, dtype=np.int32)
            pending.clear()
            words = arr[arr >= 0]
            raw += len(words)
            found = np.bincount(words, minlength=len(type_ids))
            if len(found) > len(counts):
                counts = np.pad(counts, (0, len(found) - len(counts)))
            counts[: len(found)] += found
            if spill is None and raw > cfg.max_memory_tokens:
                spill = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed after the last chunk
                    prefix="ffnlp-w2v-", suffix=".ids", dir=workdir, delete=False
                )
                for c in provisional:
                    _append(spill, c, spill_offsets)
                provisional.clear()
            if spill is not None:
                _append(spill, arr, spill_offsets)
            else:
                provisional.append(arr)

        setdefault = type_ids.setdefault
        for line in read_corpus(path, cfg.encoding):
            tokens = (line.lower() if cfg.lowercase else line).split()
            pending.extend([setdefault(t, len(type_ids)) for t in tokens])
            pending.append(-1)
            if len(pending) >= cfg.chunk_tokens:
                flush()
        if pending:
            flush()
        if raw == 0:
            raise DataError(f"{path}: the corpus holds no tokens")

        # the vocabulary: min_count, then by count (ties alphabetical), as Vocab.build orders it
        types = list(type_ids)
        kept = [i for i in range(len(types)) if counts[i] >= min_count]
        if not kept:
            raise DataError(
                f"{path}: no word occurs at least model.min_count = {min_count} times "
                f"(the most frequent occurs {int(counts.max())} times); lower model.min_count"
            )
        kept.sort(key=lambda i: (-int(counts[i]), types[i]))
        if max_vocab:
            kept = kept[:max_vocab]
        vocab = Vocab([types[i] for i in kept], [int(counts[i]) for i in kept], specials=())
        remap = np.full(len(types) + 1, -2, dtype=np.int32)  # last slot: the sentence marker -1
        remap[np.asarray(kept)] = np.arange(len(kept), dtype=np.int32)
        remap[-1] = -1

        def final(arr: np.ndarray) -> np.ndarray:
            out = remap[arr]  # -1 stays -1 (index -1 is the last slot)
            return out[out != -2]

        if spill is None:
            chunks = [final(c) for c in provisional]
            return cls(vocab, raw, [int((c >= 0).sum()) for c in chunks], chunks=chunks)
        spill.close()
        src = Path(spill.name)
        dst = src.with_suffix(".final.ids")
        offsets: list[tuple[int, int]] = []
        chunk_words = []
        with dst.open("wb") as out:
            for start, length in spill_offsets:
                c = final(np.fromfile(src, dtype=np.int32, count=length, offset=start * 4))
                chunk_words.append(int((c >= 0).sum()))
                _append(out, c, offsets)
        src.unlink()
        return cls(vocab, raw, chunk_words, file=dst, offsets=offsets)


def _append(fh: Any, arr: np.ndarray, offsets: list[tuple[int, int]]) -> None:
    start = offsets[-1][0] + offsets[-1][1] if offsets else 0
    fh.write(arr.astype(np.int32).tobytes())
    offsets.append((start, len(arr)))


# ----------------------------------------------------------------------------------- the batches


class PairBatches:
    """The Trainer's BatchSource for word2vec: an epoch streams the corpus chunk by chunk.

    ``batch_size`` counts corpus words (before subsampling), as word2vec's learning-rate decay
    does, so the number of batches is known before the epoch; a batch holds every pair whose
    centre is one of those words (about 2 * 0.6 * window pairs per kept word for skip-gram).
    """

    def __init__(
        self,
        corpus: EncodedCorpus,
        cfg: Word2VecModelConfig,
        prefetch: bool = True,
        step_layout: bool = False,
    ):
        self.corpus = corpus
        self.step_layout = step_layout  # add fused_step_layout's fields to skip-gram batches
        self.window, self.negative = cfg.window, cfg.negative
        self.cbow = cfg.architecture == "cbow"
        self.shared_negatives = cfg.shared_negatives
        self.keep = keep_probabilities(corpus.vocab.counts, cfg.sample)  # (V,)
        self.noise = NoiseSampler(corpus.vocab.counts, cfg.noise_power)
        self.prefetch = prefetch
        self.epoch = 0

    def __len__(self) -> int:
        return self.corpus.words

    def num_batches(self, batch_size: int) -> int:
        return sum(-(-n // batch_size) for n in self.corpus.chunk_words)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(
        self, batch_size: int, generator: torch.Generator | None
    ) -> Iterator[dict[str, torch.Tensor]]:
        if generator is None:  # a fixed draw (evaluation order is fixed anyway)
            generator = torch.Generator().manual_seed(0)
        produce = self._produce(batch_size, generator)
        return _prefetched(produce) if self.prefetch else produce

    def _produce(self, batch_size: int, g: torch.Generator) -> Iterator[dict[str, torch.Tensor]]:
        for i in range(len(self.corpus)):
            yield from self._chunk_batches(self.corpus.chunk(i), batch_size, g)

    def _chunk_batches(
        self, chunk: np.ndarray, batch_size: int, g: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        ids = torch.from_numpy(chunk.astype(np.int64))  # (T,) words and -1 sentence ends
        is_word = ids >= 0
        sentence = torch.cumsum(~is_word, 0)[is_word]  # (n,) sentence number of each word
        words = ids[is_word]  # (n,)
        n = len(words)
        kept = (torch.rand(n, generator=g) < self.keep[words]).nonzero().squeeze(1)  # (K,)
        kept_words = words[kept]  # (K,)
        centre, context = window_pairs(
            sentence[kept], self.window, g
        )  # (P,), (P,) positions in kept
        n_batches = -(-n // batch_size)
        # batch b: centres among words [b * batch_size, (b + 1) * batch_size) of the chunk
        kept_bounds = torch.searchsorted(kept, torch.arange(n_batches + 1) * batch_size)
        pair_bounds = torch.searchsorted(centre, kept_bounds).tolist()
        for b in range(n_batches):
            lo, hi = pair_bounds[b], pair_bounds[b + 1]
            if self.cbow:
                yield self._cbow_batch(kept_words, centre[lo:hi], context[lo:hi], g)
                continue
            if self.shared_negatives:
                centres, sizes = torch.unique_consecutive(centre[lo:hi], return_counts=True)
                yield {
                    "context": kept_words[context[lo:hi]],  # (P,) first: the trainer counts pairs
                    "center": kept_words[centres],  # (C,) each centre once
                    "pair_center": torch.repeat_interleave(
                        torch.arange(len(centres)), sizes
                    ),  # (P,)
                    # (C,) weight of each shared noise word: pairs x negative / M
                    "noise_weight": sizes.float() * (self.negative / self.shared_negatives),
                    "negatives": self.noise.sample(
                        (len(centres), self.shared_negatives), g
                    ),  # (C, M)
                }
                continue
            targets = torch.empty(hi - lo, 1 + self.negative, dtype=torch.int64)  # (B, 1+N)
            torch.index_select(kept_words, 0, context[lo:hi], out=targets[:, 0])
            targets[:, 1:] = self.noise.sample((hi - lo, self.negative), g)
            batch = {
                "center": kept_words[centre[lo:hi]],  # (B,)
                "context": targets[:, 0],  # (B,)
                "negatives": targets[:, 1:],  # (B, N)
                "targets": targets,  # (B, 1+N) both, as the model's fused step wants them
            }
            if self.step_layout:  # the fused SGD step's index bookkeeping, done here, ahead
                batch.update(fused_step_layout(batch))
            yield batch

    def _cbow_batch(
        self,
        kept_words: torch.Tensor,
        centre: torch.Tensor,
        context: torch.Tensor,
        g: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        centres, sizes = torch.unique_consecutive(centre, return_counts=True)  # (B,), (B,)
        offsets = torch.zeros(len(sizes), dtype=torch.int64)
        offsets[1:] = torch.cumsum(sizes, 0)[:-1]
        return {
            "center": kept_words[centres],  # (B,)
            "context": kept_words[context],  # (sum of window sizes,)
            "offsets": offsets,  # (B,)
            "negatives": self.noise.sample((len(centres), self.negative), g),  # (B, N)
        }


_DONE = object()


def _prefetched(items: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, ``depth`` ahead (torch ops release the GIL)."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=work, name="ffnlp-w2v-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# ------------------------------------------------------------------------------------ the result


class Word2VecRun:
    """A trained word2vec model: its vectors (:class:`WordVectors`), vocabulary, run directory."""

    def __init__(
        self,
        config: W2VConfig,
        vocab: Vocab,
        model: SkipGram,
        run_dir: Path | None = None,
        summary: dict[str, Any] | None = None,
    ):
        self.config = config
        self.vocab = vocab
        self.model = model.eval()
        self.run_dir = run_dir
        self.summary = summary or {}
        self.wv = WordVectors(vocab.itos, model.word_vectors().numpy())

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        return self.wv.most_similar(word, k)

    def evaluate(
        self,
        similarity: Sequence[str | Path] = (),
        analogies: str | Path | None = None,
        restrict: int = 30000,
    ) -> dict[str, Any]:
        return evaluate_vectors(self.wv, similarity, analogies, restrict)

    def export(self, path: str | Path, format: str = "word2vec-text") -> None:
        self.wv.save(path, format=format)

    def save(self, run_dir: str | Path) -> Path:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfgmod.save_toml(self.config, run_dir / "config.toml")
        self.vocab.save(run_dir / "vocab.json")
        save_model(self.model, run_dir, "w2v", _model_args(self.model))
        save_vectors(
            run_dir / VECTORS_FILE, self.wv.words, self.wv.vectors, format="word2vec-binary"
        )
        self.run_dir = run_dir
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> Word2VecRun:
        run_dir = Path(run_dir)
        model, arch = load_model(run_dir)
        if arch["task"] != "w2v" or not isinstance(model, SkipGram):
            raise ModelFileError(f"{run_dir} holds a {arch['task']} model, not word2vec")
        try:
            config = resolve_config(run_dir / "config.toml")
            vocab = Vocab.load(run_dir / "vocab.json")
        except FileNotFoundError as exc:
            raise ModelFileError(
                f"{run_dir} is incomplete: {Path(exc.filename).name} is missing"
            ) from None
        summary_path = run_dir / "summary.json"
        summary = (
            json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
        )
        return cls(config, vocab, model, run_dir, summary)


def load(run_dir: str | Path) -> Word2VecRun:
    """The word2vec run saved in ``run_dir`` (what ``ffnlp.load`` returns for a w2v run)."""
    return Word2VecRun.load(run_dir)


def _model_args(model: SkipGram) -> dict[str, Any]:
    return {
        "vocab_size": model.vocab_size,
        "dim": model.dim,
        "cbow": model.cbow,
        "sparse": model.sparse,
        "workers": model.workers,
    }


def load_word_vectors(
    path: str | Path, format: str = "auto", encoding: str = "utf-8"
) -> WordVectors:
    """Vectors from an ffnlp w2v run directory or any vectors file (word2vec, GloVe, .vec)."""
    return WordVectors.load(path, format=format, encoding=encoding)


def evaluate_vectors(
    wv: WordVectors,
    similarity: Sequence[str | Path] = (),
    analogies: str | Path | None = None,
    restrict: int = 30000,
) -> dict[str, Any]:
    """``{"similarity": {file name: {...}}, "analogy": {"accuracy", "3cosmul", "sections", ...}}``."""
    out: dict[str, Any] = {}
    if similarity:
        out["similarity"] = {Path(p).name: evaluate_similarity(wv, p) for p in similarity}
    if analogies:
        add = evaluate_analogies(wv, analogies, restrict=restrict, method="3cosadd")
        mul = evaluate_analogies(wv, analogies, restrict=restrict, method="3cosmul")
        out["analogy"] = {
            "file": Path(analogies).name,
            "accuracy": add["accuracy"],
            "3cosadd": add["accuracy"],
            "3cosmul": mul["accuracy"],
            "questions": add["questions"],
            "skipped": add["skipped"],
            "restrict": add["restrict"],
            "sections": {
                name: {
                    "3cosadd": s["accuracy"],
                    "3cosmul": mul["sections"][name]["accuracy"],
                    "questions": s["questions"],
                }
                for name, s in add["sections"].items()
            },
        }
    return out


def _similarity_evaluator(files: Sequence[str], vocab: Vocab):
    """Per-epoch evaluation for the Trainer: Spearman on each similarity file."""

    def evaluate(model: nn.Module, source: Any) -> dict[str, Any]:
        wv = WordVectors(vocab.itos, model.word_vectors().cpu().numpy())  # type: ignore[operator]
        return {f"spearman_{Path(p).stem}": evaluate_similarity(wv, p)["spearman"] for p in files}

    return evaluate


# ------------------------------------------------------------------------------------- training


def train_word2vec(
    corpus: str | Path,
    config: W2VConfig | str | Path | dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    out: str | Path | None = None,
    seed: int | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    **settings: Any,
) -> Word2VecRun:
    """Train word vectors on a plain-text corpus (one sentence a line) and write the run directory.

    >>> run = train_word2vec("ptb.train.txt.gz", config="configs/ptb_w2v.toml", out="runs/w2v")  # doctest: +SKIP
    >>> run.most_similar("stock", k=3)                                                          # doctest: +SKIP
    """
    if seed is not None:
        settings["train.seed"] = seed
    cfg = resolve_config(config, overrides, **settings)
    run_dir, cfg = open_run_dir(
        out, "w2v", resume, cfg, lambda saved: resolve_config(saved, overrides, **settings)
    )
    for p in [
        *cfg.evaluation.similarity,
        *([cfg.evaluation.analogies] if cfg.evaluation.analogies else []),
    ]:
        if not Path(p).is_file():
            raise ConfigError(
                f"evaluation file {p} does not exist (evaluation.similarity / analogies)"
            )
    cfgmod.save_toml(cfg, run_dir / "config.toml")
    prepare_process(cfg.train.threads)

    started = time.perf_counter()
    encoded = EncodedCorpus.read(
        corpus, cfg.corpus, cfg.model.min_count, cfg.model.max_vocab, workdir=run_dir
    )
    try:
        vocab = encoded.vocab
        # the fused step's index layout is made ahead only for the model it serves: a CPU one
        # (on a GPU the Trainer takes the autograd path)
        on_cpu = select_device(cfg.train.device).type == "cpu"
        source = PairBatches(
            encoded,
            cfg.model,
            prefetch=cfg.corpus.prefetch,
            step_layout=cfg.train.fused_sgd and on_cpu,
        )
        prep_seconds = time.perf_counter() - started
        seed_everything(cfg.train.seed)
        model = SkipGram(
            len(vocab),
            cfg.model.dim,
            cbow=cfg.model.architecture == "cbow",
            sparse=cfg.train.sparse,
            workers=cfg.model.workers
            or max(1, available_cores() - (1 if cfg.corpus.prefetch else 0)),
        )
        evaluate = None
        train_cfg = cfg.train
        files = list(cfg.evaluation.similarity)
        if files:
            evaluate = _similarity_evaluator(files, vocab)
            if train_cfg.monitor == "dev.loss":
                train_cfg = cfgmod.replace(train_cfg, monitor=f"dev.spearman_{Path(files[0]).stem}")
        trainer = Trainer(
            model,
            train_cfg,
            source,
            dev=source if files else None,
            evaluate=evaluate,
            callbacks=list(callbacks),
            run_dir=run_dir,
            step=update_step_if_allowed(model.sgd_step, model, train_cfg),
        )
        cpu_started = time.process_time()
        try:
            history = trainer.fit(resume=resume)
        except TrainingError as exc:
            raise TrainingError(
                f"{str(exc).rstrip('.')}. For word2vec the usual cause is a batch that is too large for the "
                f"vocabulary: a batch sums the updates of all its pairs, so with {len(vocab)} words "
                f"each one gets many at once; lower train.batch_size (now {train_cfg.batch_size})"
            ) from None
    finally:
        encoded.close()

    result = Word2VecRun(cfg, vocab, trainer.model.cpu().eval(), run_dir)  # type: ignore[arg-type]
    result.save(run_dir)
    seconds = trainer.train_seconds
    cpu_seconds = time.process_time() - cpu_started
    summary: dict[str, Any] = {
        "task": "w2v",
        "architecture": cfg.model.architecture,
        "vocab_size": len(vocab),
        "corpus_tokens": encoded.raw_tokens,
        "corpus_words_in_vocab": encoded.words,
        "epochs": trainer.epoch,
        "train_seconds": seconds,
        "prep_seconds": prep_seconds,
        # counted as gensim counts: corpus tokens x epochs / training seconds
        "words_per_second": encoded.raw_tokens * trainer.epoch / seconds
        if seconds > 0
        else math.nan,
        "train_cpu_seconds": cpu_seconds,  # every thread of the process, for loaded machines
        "threads": torch.get_num_threads(),
        "workers": model.workers,
        "prefetch_thread": cfg.corpus.prefetch,
        "stop_reason": trainer.stop_reason,
        "interrupted": trainer.interrupted,
        "final_train_loss": history.epochs[-1]["train"]["loss"] if history.epochs else None,
    }
    if history.epochs and history.epochs[-1].get("dev"):
        summary["dev"] = history.epochs[-1]["dev"]
    summary["evaluation"] = result.evaluate(
        files, cfg.evaluation.analogies or None, cfg.evaluation.restrict
    )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    result.summary = summary
    try:
        from ffnlp.report.plots import plot_history

        plot_history(history.records, run_dir)
    except ImportError:  # pragma: no cover - plotting is optional
        pass
    return result


__all__ = [
    "EncodedCorpus",
    "PairBatches",
    "W2VConfig",
    "Word2VecRun",
    "evaluate_vectors",
    "load",
    "load_word_vectors",
    "resolve_config",
    "train_word2vec",
]
