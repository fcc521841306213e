"""EncodedCorpus: one pass counts and encodes the corpus, in memory or spilled to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffnlp.errors import DataError
from ffnlp.tasks.w2v import EncodedCorpus, resolve_config


def test_encoded_corpus_chunks_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("a b c\nb c\nrare a b\n\nc c\n", encoding="utf-8")
    cfg = resolve_config(None, ["corpus.chunk_tokens=1000"])
    for limit in (100, 0):  # in memory, then on disk
        cfg2 = resolve_config(cfg, [f"corpus.max_memory_tokens={limit}"])
        enc = EncodedCorpus.read(path, cfg2.corpus, min_count=2)
        assert enc.vocab.itos == ["c", "b", "a"]  # by count, ties alphabetical
        assert enc.vocab.counts == [4, 3, 2]
        assert enc.raw_tokens == 10 and enc.words == 9
        chunk = np.concatenate([enc.chunk(i) for i in range(len(enc))])
        assert chunk.tolist() == [2, 1, 0, -1, 1, 0, -1, 2, 1, -1, 0, 0, -1]  # "rare" dropped
        enc.close()


@pytest.mark.parametrize("limit", [10**9, 0])
def test_chunks_on_disk_equal_chunks_in_memory_and_max_vocab_cuts_by_count(
    tmp_path: Path, limit: int
) -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in rng.zipf(1.5, size=5000) % 200]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(words[i : i + 7]) for i in range(0, 5000, 7)) + "\n")
    cfg = resolve_config(None, ["corpus.chunk_tokens=1000"]).corpus
    memory = EncodedCorpus.read(path, cfg, min_count=2, max_vocab=20)
    cfg = resolve_config(None, ["corpus.chunk_tokens=1000", f"corpus.max_memory_tokens={limit}"])
    other = EncodedCorpus.read(path, cfg.corpus, min_count=2, max_vocab=20, workdir=tmp_path)
    assert len(other) == len(memory) > 1  # several chunks
    assert other.vocab.itos == memory.vocab.itos and len(other.vocab) == 20
    assert other.vocab.counts == sorted(other.vocab.counts, reverse=True)
    for i in range(len(memory)):
        np.testing.assert_array_equal(other.chunk(i), memory.chunk(i))
        assert other.chunk(i).max() < 20
    assert other.chunk_words == memory.chunk_words and other.raw_tokens == 5000
    other.close()
    assert not list(tmp_path.glob("*.ids"))  # close() removes the token file


def test_a_failed_read_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text(" ".join(f"w{i}" for i in range(3000)) + "\n", encoding="utf-8")
    cfg = resolve_config(None, ["corpus.chunk_tokens=1000", "corpus.max_memory_tokens=0"])
    with pytest.raises(DataError, match="no word occurs at least model.min_count = 2 times"):
        EncodedCorpus.read(path, cfg.corpus, min_count=2, workdir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_an_empty_corpus_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt: the corpus holds no tokens"):
        EncodedCorpus.read(path, resolve_config().corpus)
