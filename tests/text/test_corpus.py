"""The LM corpus pipeline: id stream, windows as views, sentence masking, batches, memory mapping."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ffnlp.errors import DataError
from ffnlp.text.corpus import (
    EOS,
    CorpusConfig,
    LMBatches,
    build_vocab,
    encode_corpus,
    mask_before_sentence_start,
    windows,
)
from ffnlp.text.vocab import UNK

TEXT = "the cat sat\n\na <unk> sat on the mat\nthe dog\n"


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(TEXT)
    return path


def test_stream_layout_and_the_corpus_own_unk(corpus_file: Path) -> None:
    vocab = build_vocab(corpus_file, CorpusConfig())
    assert vocab.itos[:2] == [EOS, UNK]  # the corpus's <unk> is reused, not added twice
    assert vocab.itos.count(UNK) == 1
    assert vocab.counts[1] == 1
    corpus = encode_corpus(corpus_file, vocab, CorpusConfig())
    words = [vocab.itos[i] for i in corpus.ids.tolist()]
    expected = f"{EOS} the cat sat {EOS} a {UNK} sat on the mat {EOS} the dog {EOS}".split()
    assert words == expected  # the blank line holds no sentence
    assert corpus.ids.dtype == torch.int32
    assert (corpus.sentences, corpus.words, corpus.targets) == (3, 11, 14)
    assert corpus.unknown == 0  # the literal <unk> is not counted as out-of-vocabulary


def test_unknown_words_and_min_count(corpus_file: Path, tmp_path: Path) -> None:
    vocab = build_vocab(corpus_file, CorpusConfig(min_count=2))
    assert set(vocab.itos) == {EOS, UNK, "the", "sat"}
    dev = tmp_path / "dev.txt"
    dev.write_text("the zebra sat\n", encoding="utf-8")
    corpus = encode_corpus(dev, vocab, CorpusConfig())
    assert corpus.unknown == 1
    assert corpus.ids.tolist() == [0, vocab["the"], vocab[UNK], vocab["sat"], 0]


def test_empty_corpus_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no words found"):
        build_vocab(empty, CorpusConfig())


def test_windows_are_views_equal_to_a_naive_construction() -> None:
    ids = torch.randint(0, 50, (40,), dtype=torch.int32)
    for context in (1, 3, 7):
        w = windows(ids, context)
        naive = torch.stack([ids[k : k + context + 1] for k in range(len(ids) - context)])
        assert torch.equal(w, naive)
        assert w.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()  # no copy


def naive_context(stream: list[int], t: int, context: int, eos: int, cross: bool) -> list[int]:
    ctx = [stream[t - k] if t - k >= 0 else eos for k in range(context, 0, -1)]
    if not cross and eos in ctx:
        last = max(i for i, x in enumerate(ctx) if x == eos)
        ctx = [eos] * (last + 1) + ctx[last + 1 :]
    return ctx


@pytest.mark.parametrize("cross", [True, False])
@pytest.mark.parametrize("context", [1, 4, 9])
def test_batches_equal_a_naive_construction(cross: bool, context: int) -> None:
    rng = np.random.default_rng(0)
    stream = [0]
    for _ in range(12):
        stream += [int(x) for x in rng.integers(1, 30, size=int(rng.integers(1, 6)))] + [0]
    source = LMBatches(torch.tensor(stream, dtype=torch.int32), context, 0, cross_sentences=cross)
    batches = list(source.batches(7, None))
    got_ctx = torch.cat([b["context"] for b in batches]).tolist()
    got_tgt = torch.cat([b["target"] for b in batches]).tolist()
    assert got_tgt == stream[1:]
    assert got_ctx == [naive_context(stream, t, context, 0, cross) for t in range(1, len(stream))]
    assert batches[0]["context"].dtype == torch.int64


def test_shuffled_epoch_covers_every_target_once_in_blocks() -> None:
    stream = torch.arange(0, 103, dtype=torch.int32)  # targets 1..102; id 0 is </s>
    source = LMBatches(stream, 2, 0, block_size=10)
    gen = torch.Generator().manual_seed(0)
    batches = list(source.batches(8, gen))
    assert len(batches) == source.num_batches(8)
    targets = torch.cat([b["target"] for b in batches])
    assert sorted(targets.tolist()) == list(range(1, 103))
    assert targets.tolist() != list(range(1, 103))
    again = torch.cat([b["target"] for b in source.batches(8, torch.Generator().manual_seed(0))])
    assert torch.equal(targets, again)


def test_mask_before_sentence_start() -> None:
    ctx = torch.tensor([[5, 0, 6, 7], [5, 6, 7, 0], [5, 6, 7, 8], [0, 1, 0, 2]])
    masked = mask_before_sentence_start(ctx, 0)
    assert masked.tolist() == [[0, 0, 6, 7], [0, 0, 0, 0], [5, 6, 7, 8], [0, 0, 0, 2]]


def test_memory_mapped_corpus_equals_the_in_memory_one(corpus_file: Path, tmp_path: Path) -> None:
    vocab = build_vocab(corpus_file, CorpusConfig())
    in_ram = encode_corpus(corpus_file, vocab, CorpusConfig())
    mapped = encode_corpus(
        corpus_file, vocab, CorpusConfig(memory_map_tokens=0), cache_dir=tmp_path / "c"
    )
    assert (tmp_path / "c" / "train.txt.gz.ids.npy").is_file()
    assert torch.equal(in_ram.ids, mapped.ids)
    assert (mapped.sentences, mapped.words) == (in_ram.sentences, in_ram.words)
