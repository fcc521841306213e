"""The corpus, read once: its vocabulary and its word ids in sentence-aligned chunks.

One pass over the text counts the words and turns every line into integer ids (a Python dict
look-up per token, the only per-token Python in the whole pipeline). The ids are provisional
(first-seen order) until the counts are known; then the vocabulary is chosen (min_count, then by
count) and every chunk is remapped to it. Chunks stay in memory, or go to a temporary file once
the corpus outgrows ``corpus.max_memory_tokens``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO

import numpy as np

from ffnlp.errors import DataError
from ffnlp.tasks.w2v.config import CorpusConfig
from ffnlp.text.readers import read_corpus
from ffnlp.text.shards import mine, names_shards, record
from ffnlp.text.vocab import Vocab
from ffnlp.training.distributed import gather_objects, world_size

SENTENCE_END = -1  # the id after every sentence (line) in a chunk
_DROPPED = -2  # the remapped id of a word outside the vocabulary


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
        return _read_ids(self._file, start, length)

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
        known: Vocab | None = None,
    ) -> EncodedCorpus:
        """Count and encode ``path`` in one streamed pass (then remap the ids by frequency).

        ``known``: the vocabulary of an earlier run, which a continued run grows (see
        :meth:`~ffnlp.text.vocab.Vocab.extended`): its words keep their ids, whatever their
        count here, and the corpus's new words are appended."""
        encoder = _Encoder(cfg.max_memory_tokens, workdir)
        sharded = names_shards(path)
        # one file as given: the reader checks it (a clear error for anything not a path)
        files: list[str | Path] = list(mine(path, "--corpus")[1]) if sharded else [path]
        try:
            type_ids, pending = encoder.type_ids, encoder.pending
            setdefault = type_ids.setdefault
            for file in files:  # shards in order: as one file, their concatenation
                for line in read_corpus(file, cfg.encoding):
                    tokens = (line.lower() if cfg.lowercase else line).split()
                    pending.extend([setdefault(t, len(type_ids)) for t in tokens])
                    pending.append(SENTENCE_END)
                    if len(pending) >= cfg.chunk_tokens:
                        encoder.flush()
                if sharded:
                    record(file)
            if pending:
                encoder.flush()
            own_types = list(type_ids)
            types, counts = own_types, encoder.counts
            if sharded and world_size() > 1:  # the whole corpus's counts: every rank's summed
                types, counts = _summed_counts(own_types, encoder.counts)
            if int(counts.sum()) == 0:
                raise DataError(f"{path}: the corpus holds no tokens")
            if known is None:
                vocab, remap = _vocabulary(path, types, counts, min_count, max_vocab)
            else:
                vocab, remap = _grown(known, types, counts, min_count, max_vocab)
            if types is not own_types:  # this rank's provisional ids -> the whole corpus's
                where = {t: i for i, t in enumerate(types)}
                order = np.array([where[t] for t in own_types] + [len(types)], dtype=np.int64)
                remap = remap[order]
            return encoder.finish(vocab, remap)
        except BaseException:
            encoder.discard()
            raise


class _Encoder:
    """The streamed pass's state: provisional ids (first-seen order), their counts, and the
    chunks read so far, in memory or, past ``max_memory_tokens``, in a temporary file."""

    def __init__(self, max_memory_tokens: int, workdir: str | Path | None):
        self.max_memory_tokens = max_memory_tokens
        self.workdir = workdir
        self.type_ids: dict[str, int] = {}
        self.counts = np.zeros(0, dtype=np.int64)  # (types,) by provisional id
        self.pending: list[int] = []  # ids of the chunk being read
        self.raw = 0  # tokens read
        self.chunks: list[np.ndarray] = []  # provisional ids, while in memory
        self.spill: IO[bytes] | None = None  # the temporary file, once there is one
        self.spill_offsets: list[tuple[int, int]] = []

    def flush(self) -> None:
        """Count the pending chunk and store it (moving every chunk to disk once too large)."""
        arr = np.asarray(self.pending, dtype=np.int32)
        self.pending.clear()
        words = arr[arr >= 0]
        self.raw += len(words)
        found = np.bincount(words, minlength=len(self.type_ids))
        if len(found) > len(self.counts):
            self.counts = np.pad(self.counts, (0, len(found) - len(self.counts)))
        self.counts[: len(found)] += found
        if self.spill is None and self.raw > self.max_memory_tokens:
            self.spill = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed after the last chunk
                prefix="ffnlp-w2v-", suffix=".ids", dir=self.workdir, delete=False
            )
            for c in self.chunks:
                _append(self.spill, c, self.spill_offsets)
            self.chunks.clear()
        if self.spill is not None:
            _append(self.spill, arr, self.spill_offsets)
        else:
            self.chunks.append(arr)

    def finish(self, vocab: Vocab, remap: np.ndarray) -> EncodedCorpus:
        """The corpus with every chunk remapped to ``vocab``'s ids (in memory or in a new file)."""
        if self.spill is None:
            chunks = [_remapped(c, remap) for c in self.chunks]
            return EncodedCorpus(vocab, self.raw, [_words_in(c) for c in chunks], chunks=chunks)
        self.spill.close()
        src = Path(self.spill.name)
        dst = src.with_suffix(".final.ids")
        offsets: list[tuple[int, int]] = []
        chunk_words = []
        with dst.open("wb") as out:
            for start, length in self.spill_offsets:
                c = _remapped(_read_ids(src, start, length), remap)
                chunk_words.append(_words_in(c))
                _append(out, c, offsets)
        src.unlink()
        return EncodedCorpus(vocab, self.raw, chunk_words, file=dst, offsets=offsets)

    def discard(self) -> None:
        """Remove the temporary file of a read that failed."""
        if self.spill is not None:
            self.spill.close()
            Path(self.spill.name).unlink(missing_ok=True)


def _vocabulary(
    path: str | Path, types: list[str], counts: np.ndarray, min_count: int, max_vocab: int
) -> tuple[Vocab, np.ndarray]:
    """The vocabulary (min_count, then by count, ties alphabetical, as Vocab.build orders it) and
    the map from provisional ids to its ids: a word outside it maps to -2, and -1 (the sentence
    end, the map's last slot) to itself."""
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
    remap = np.full(len(types) + 1, _DROPPED, dtype=np.int32)
    remap[np.asarray(kept)] = np.arange(len(kept), dtype=np.int32)
    remap[SENTENCE_END] = SENTENCE_END
    return vocab, remap


def _summed_counts(types: list[str], counts: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Every rank's word counts summed (torchrun with sharded input): the word types of all
    ranks and their counts over the whole corpus, the same on every rank."""
    gathered = gather_objects((types, counts[: len(types)]), "the word counts")
    where: dict[str, int] = {}
    for rank_types, _ in gathered:
        for t in rank_types:
            where.setdefault(t, len(where))
    total = np.zeros(len(where), dtype=np.int64)
    for rank_types, rank_counts in gathered:
        index = np.array([where[t] for t in rank_types], dtype=np.int64)
        np.add.at(total, index, rank_counts)
    return list(where), total


def _grown(
    known: Vocab, types: list[str], counts: np.ndarray, min_count: int, max_vocab: int
) -> tuple[Vocab, np.ndarray]:
    """As :func:`_vocabulary`, for a continued run: ``known`` grown with the corpus's words."""
    counted = Vocab(types, [int(c) for c in counts[: len(types)]], specials=())
    vocab = known.extended(counted, min_count, max_vocab or None)
    remap = np.full(len(types) + 1, _DROPPED, dtype=np.int32)
    for i, token in enumerate(types):
        if token in vocab:
            remap[i] = vocab.stoi(token)
    remap[SENTENCE_END] = SENTENCE_END
    return vocab, remap


def _remapped(arr: np.ndarray, remap: np.ndarray) -> np.ndarray:
    out = remap[arr]  # the sentence end -1 indexes the last slot, which holds -1
    return out[out != _DROPPED]


def _words_in(chunk: np.ndarray) -> int:
    return int((chunk >= 0).sum())


def _read_ids(file: Path, start: int, length: int) -> np.ndarray:
    return np.fromfile(file, dtype=np.int32, count=length, offset=start * 4)


def _append(fh: IO[bytes], arr: np.ndarray, offsets: list[tuple[int, int]]) -> None:
    start = offsets[-1][0] + offsets[-1][1] if offsets else 0
    fh.write(arr.astype(np.int32).tobytes())
    offsets.append((start, len(arr)))
