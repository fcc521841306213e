"""Corpora for language models: text -> one stream of token ids -> context windows as views.

A corpus file holds one sentence (or document) a line, tokens separated by spaces (``.gz`` read
transparently).  It becomes a single 1-D int32 id tensor::

    </s> w1 w2 ... </s> w1 w2 ... </s>

The leading ``</s>`` marks the start of the first sentence; every other ``</s>`` ends one sentence
and starts the next.  Each token after the leading ``</s>`` is a prediction target, ``</s>``
included, which is the convention of Mikolov's PTB numbers: a corpus of W words in S sentences has
W + S targets.  Blank lines are skipped (they hold no sentence).

Windows are views: ``windows(ids, C)`` is ``ids.unfold(0, C + 1, 1)`` (no copy); a batch gathers
its rows from it.  By default the history runs across sentence boundaries (a better guess of the
next word); with ``cross_sentences=False`` every context position before the last ``</s>`` of the
window is replaced by ``</s>``, so the model only sees the current sentence, like an n-gram model.

Corpora with more tokens than a threshold are written to a memory-mapped ``.npy`` file (int32)
instead of RAM, so a corpus larger than memory trains with the same code: the training order is
shuffled block by block, and the memory used does not grow with the corpus.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ffnlp.config import option
from ffnlp.errors import DataError
from ffnlp.fileio import output_error
from ffnlp.text import shards
from ffnlp.text.readers import read_corpus
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import UNK, Vocab
from ffnlp.training import distributed

EOS = "</s>"
SPECIALS = (EOS, UNK)
_CHUNK = 1 << 20  # ids per chunk when writing a memory-mapped corpus


@dataclass(frozen=True)
class CorpusConfig:
    min_count: int = option(
        1, "keep words seen at least this often in training (others -> <unk>)", ge=1
    )
    max_size: int = option(0, "largest vocabulary, </s> and <unk> included (0 = no limit)", ge=0)
    lowercase: bool = option(False, "lowercase the text (PTB is lowercased already)")
    encoding: str = option("utf-8", "encoding of the corpus files")
    cross_sentences: bool = option(
        True, "context windows reach back into previous sentences (false: each sentence alone)"
    )
    memory_map_tokens: int = option(
        20_000_000, "corpora with more ids than this go to a memory-mapped int32 .npy file", ge=0
    )


@dataclass
class Corpus:
    """One tensorised corpus file."""

    ids: torch.Tensor  # (N,) int32: </s> s1 </s> s2 </s> ...
    path: Path
    sentences: int
    words: int  # tokens without the </s> markers
    unknown: int  # words mapped to <unk> that were not literally <unk> in the text

    @property
    def targets(self) -> int:
        """Tokens predicted when scoring the corpus: words + one </s> per sentence."""
        return len(self.ids) - 1


def tokenizer_for(config: CorpusConfig) -> Tokenizer:
    return Tokenizer("whitespace", lowercase=config.lowercase)


def sentences(path: str | Path, config: CorpusConfig) -> Iterator[list[str]]:
    """The token lists of ``path``, one per non-blank line, streamed."""
    tokenize = tokenizer_for(config)
    for line in read_corpus(path, config.encoding):
        yield tokenize(line)


def build_vocab(path: str | Path, config: CorpusConfig) -> Vocab:
    """The vocabulary of a training corpus: ``</s>``, ``<unk>``, then words by frequency.

    A corpus that already contains ``<unk>`` (as PTB does) keeps using it: its count is kept and no
    second unknown-word token is added.

    ``path`` may name several files (a glob pattern or a folder, :mod:`ffnlp.text.shards`): each
    process counts the words of its own shards and the counts of every process are summed, so
    every process gets the vocabulary of the whole corpus without reading it.
    """
    if not shards.names_shards(path):
        counter: Counter[str] = Counter()
        for tokens in sentences(path, config):
            counter.update(tokens)
    else:
        positions, paths = shards.mine(path, "--train")
        mine = {i: word_counts(p, config) for i, p in zip(positions, paths, strict=True)}
        counter = Counter()
        for counts in shards.in_shard_order(mine, "the word counts"):
            counter.update(counts)
    vocab = Vocab.from_counts(
        counter,
        min_count=config.min_count,
        max_size=config.max_size or None,
        specials=SPECIALS,
    )
    if len(vocab) <= len(SPECIALS):
        raise DataError(f"{path}: no words found; a corpus has one sentence a line")
    return vocab


def word_counts(path: Path, config: CorpusConfig) -> Counter[str]:
    """How often each token occurs in ``path``."""
    counter: Counter[str] = Counter()
    for tokens in sentences(path, config):
        counter.update(tokens)
    return counter


def encode_training_corpus(
    path: str | Path, vocab: Vocab, config: CorpusConfig, cache_dir: str | Path | None = None
) -> tuple[Corpus, bool]:
    """:func:`encode_corpus` of the training input, which may be several files (a glob pattern or
    a folder): one process encodes them all, in order, as one corpus; under torchrun each
    process encodes only its own shards. Also whether the corpus is this process's own part
    (sharded under several processes)."""
    if not shards.names_shards(path):
        return encode_corpus(path, vocab, config, cache_dir), False
    positions, paths = shards.mine(path, "--train")
    parts = []
    for i, p in zip(positions, paths, strict=True):
        # a folder per shard: two shards may have the same name (a pattern over folders)
        where = Path(cache_dir) / f"shard-{i}" if cache_dir is not None else None
        parts.append(encode_corpus(p, vocab, config, where))
        shards.record(p)
    # each part starts with </s>; one corpus has it once, as the files' concatenation would
    ids = torch.cat([parts[0].ids, *(part.ids[1:] for part in parts[1:])])
    corpus = Corpus(
        ids,
        Path(path),
        sum(p.sentences for p in parts),
        sum(p.words for p in parts),
        sum(p.unknown for p in parts),
    )
    return corpus, distributed.world_size() > 1


def encode_corpus(
    path: str | Path, vocab: Vocab, config: CorpusConfig, cache_dir: str | Path | None = None
) -> Corpus:
    """Tensorise ``path`` with ``vocab``; big corpora go to ``cache_dir/<name>.ids.npy`` (mmap).

    The memory-mapped path needs the length first, so it reads the file twice; small corpora are
    read once into RAM.
    """
    p = Path(path)
    eos = vocab.stoi(EOS)
    unk = vocab.unk_id
    chunks: list[np.ndarray] = [np.array([eos], dtype=np.int32)]
    n_sent = n_words = n_unknown = 0
    buffer: list[int] = []
    out: np.memmap | None = None
    filled = 0
    size = _count_ids(p, config) if cache_dir is not None and _may_exceed(p, config) else 0
    npy = Path(cache_dir) / (p.name + ".ids.npy") if cache_dir is not None else None
    if npy is not None and size > config.memory_map_tokens:
        npy.parent.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.int32, shape=(size,))
        _reserve(npy)
        out[0] = eos
        filled = 1
        chunks = []
    for tokens in sentences(p, config):
        ids = vocab.encode(tokens)
        n_sent += 1
        n_words += len(ids)
        if unk is not None:
            n_unknown += ids.count(unk) - tokens.count(UNK)
        buffer.extend(ids)
        buffer.append(eos)
        if len(buffer) >= _CHUNK:
            filled = _flush(buffer, chunks, out, filled)
    filled = _flush(buffer, chunks, out, filled)
    if n_sent == 0:
        raise DataError(f"{p}: the corpus is empty (no non-blank lines)")
    if out is not None and npy is not None:
        out.flush()
        del out
        array = np.load(npy, mmap_mode="c")
    else:
        array = np.concatenate(chunks)
    return Corpus(torch.from_numpy(array), p, n_sent, n_words, n_unknown)


@dataclass
class CorpusCounts:
    """What :func:`stream_ids` has read so far: sentences, words, words read as ``<unk>``, and
    ids (the leading ``</s>`` and one ``</s>`` per sentence included)."""

    sentences: int = 0
    words: int = 0
    unknown: int = 0
    ids: int = 0

    @property
    def targets(self) -> int:
        """Tokens predicted when scoring the ids read: words + one </s> per sentence."""
        return max(self.ids - 1, 0)


def stream_ids(
    path: str | Path, vocab: Vocab, config: CorpusConfig, counts: CorpusCounts, size: int = _CHUNK
) -> Iterator[np.ndarray]:
    """The id stream :func:`encode_corpus` builds, read and yielded piece by piece: int32 arrays
    of at least ``size`` ids (the last fewer; whole sentences), the first starting with the
    leading ``</s>``. ``counts`` grows as the pieces come; an empty corpus is the same
    DataError as :func:`encode_corpus`'s, once the file has been read."""
    p = Path(path)
    eos = vocab.stoi(EOS)
    unk = vocab.unk_id
    buffer: list[int] = [eos]
    for tokens in sentences(p, config):
        ids = vocab.encode(tokens)
        counts.sentences += 1
        counts.words += len(ids)
        if unk is not None:
            counts.unknown += ids.count(unk) - tokens.count(UNK)
        buffer.extend(ids)
        buffer.append(eos)
        if len(buffer) >= size:
            counts.ids += len(buffer)
            yield np.array(buffer, dtype=np.int32)
            buffer.clear()
    if counts.sentences == 0:
        raise DataError(f"{p}: the corpus is empty (no non-blank lines)")
    if buffer:
        counts.ids += len(buffer)
        yield np.array(buffer, dtype=np.int32)


def target_chunks(
    pieces: Iterable[np.ndarray], eos_id: int, history: int, size: int
) -> Iterator[np.ndarray]:
    """The targets of an id stream (every id after its leading ``</s>``), given as consecutive
    ``pieces`` (:func:`stream_ids`), in chunks of ``size`` targets (the last fewer), each
    preceded by the ``history`` ids before its first target: int32 arrays of ``history + n``
    ids. Before the stream's start the history is ``</s>``, as :class:`LMBatches` pads it. At
    most one piece and one chunk are held at a time."""
    if size < 1 or history < 0:
        raise ValueError("target_chunks needs size >= 1 and history >= 0")
    held = np.full(history, eos_id, dtype=np.int32)  # the ids before the next target
    first = True
    for piece in pieces:
        if first:  # the leading </s> starts the stream: a history id, never a target
            if len(piece) == 0 or int(piece[0]) != eos_id:
                raise ValueError("the id stream must start with </s>")
            piece, first = piece[1:], False
        held = np.concatenate([held, piece])
        start = 0
        while len(held) - start - history >= size:
            yield held[start : start + history + size]
            start += size
        held = held[start:]
    if len(held) > history:
        yield held


def _reserve(path: Path) -> None:
    """Claim the disk space of a memory-mapped file up front: writing through the map to a full
    disk would kill the process (SIGBUS), where claiming it is a clear error (ENOSPC)."""
    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # cannot reserve: map as before
            raise output_error(exc, path, size) from None
    except AttributeError:  # pragma: no cover - no posix_fallocate (macOS, Windows)
        pass
    finally:
        os.close(fd)


def _flush(buffer: list[int], chunks: list[np.ndarray], out: np.ndarray | None, filled: int) -> int:
    part = np.array(buffer, dtype=np.int32)
    buffer.clear()
    if out is None:
        chunks.append(part)
    else:
        out[filled : filled + len(part)] = part
    return filled + len(part)


def _may_exceed(path: Path, config: CorpusConfig) -> bool:
    """Whether the file could hold more ids than the memory-map threshold (else skip counting).

    A token takes at least two bytes of text (a character and a separator); gzip rarely packs
    text more than tenfold.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    most = (size * 10 if gz else size) // 2 + 1
    return most > config.memory_map_tokens


def _count_ids(path: Path, config: CorpusConfig) -> int:
    total = 1
    for tokens in sentences(path, config):
        total += len(tokens) + 1
    return total


# -------------------------------------------------------------------------------------------------
# windows and batches


def windows(ids: torch.Tensor, context_size: int) -> torch.Tensor:
    """Every run of ``context_size + 1`` consecutive ids, as a view: (N - C, C + 1).

    Row ``k`` is ``ids[k : k + C + 1]``: a context of C words and the word that follows it. A
    stream shorter than C + 1 ids (one short sentence) has no such run: (0, C + 1).
    """
    if len(ids) < context_size + 1:
        return ids.new_empty((0, context_size + 1))
    return ids.unfold(0, context_size + 1, 1)  # (N - C, C + 1), shares ids' storage


def mask_before_sentence_start(context: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Replace every context word before the last ``</s>`` in its row by ``</s>``: (B, C)."""
    is_eos = context == eos_id  # (B, C)
    # True where some </s> sits at this position or later in the row
    before = is_eos.flip(1).cummax(1).values.flip(1)  # (B, C)
    return context.masked_fill(before, eos_id)


class LMBatches:
    """A batch source over one id stream: ``{"context": (B, C) long, "target": (B,) long}``.

    Targets are positions 1..N-1 of the stream.  The first C - 1 targets lack a full history in
    the stream; their missing words are ``</s>``, as if the corpus were preceded by empty sentences.
    Training order is shuffled within blocks of ``block_size`` targets, blocks in random order, so
    the permutation held in memory stays bounded on corpora of any size.
    """

    def __init__(
        self,
        ids: torch.Tensor,
        context_size: int,
        eos_id: int,
        cross_sentences: bool = True,
        block_size: int = 1 << 20,
    ):
        if ids.dim() != 1 or len(ids) < 2:
            raise DataError("a language-model corpus needs at least one sentence")
        if int(ids[0]) != eos_id:
            raise ValueError("the id stream must start with </s>")
        self.ids = ids
        self.context_size = context_size
        self.eos_id = eos_id
        self.cross_sentences = cross_sentences
        self.block_size = block_size
        self.windows = windows(ids, context_size)  # (N - C, C + 1) view
        self._offsets = torch.arange(-context_size, 1)  # (C + 1,)

    def __len__(self) -> int:
        return len(self.ids) - 1

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def rows(self, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch predicting stream positions ``targets`` (B,) int64."""
        C = self.context_size
        if len(self.windows) > 0:
            rows = self.windows[(targets - C).clamp(min=0)]  # (B, C + 1)
        else:
            rows = torch.empty(len(targets), C + 1, dtype=self.ids.dtype)
        head = targets < C
        if bool(head.any()):  # the first C - 1 targets: pad the missing history with </s>
            where = (targets[head, None] + self._offsets).clamp(min=0)  # (b, C + 1)
            rows[head] = self.ids[where]
        rows = rows.long()
        context, target = rows[:, :C], rows[:, C]  # (B, C), (B,)
        if not self.cross_sentences:
            context = mask_before_sentence_start(context, self.eos_id)
        return {"context": context, "target": target.contiguous()}

    def batches(
        self, batch_size: int, generator: torch.Generator | None
    ) -> Iterator[dict[str, torch.Tensor]]:
        for targets in self._target_chunks(batch_size, generator):
            yield self.rows(targets)

    def _target_chunks(
        self, batch_size: int, generator: torch.Generator | None
    ) -> Iterator[torch.Tensor]:
        n = len(self)
        if generator is None:
            for start in range(1, n + 1, batch_size):
                yield torch.arange(start, min(start + batch_size, n + 1))
            return
        n_blocks = -(-n // self.block_size)
        pending = torch.empty(0, dtype=torch.int64)
        for block in torch.randperm(n_blocks, generator=generator).tolist():
            start = 1 + block * self.block_size
            length = min(self.block_size, n + 1 - start)
            order = torch.randperm(length, generator=generator) + start
            pending = torch.cat([pending, order])
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
        if len(pending):
            yield pending
