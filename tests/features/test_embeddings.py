"""Word-vector I/O: round trips, gensim as the reference reader and writer, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ffnlp.errors import DataError
from ffnlp.features.embeddings import detect_format, load_vectors, save_vectors
from tests.extras import needs

WORDS = ["the", "cat", "sat", "café", "<unk>"]


def _vectors(n: int = 5, dim: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary"])
def test_round_trip_is_exact(tmp_path: Path, fmt: str) -> None:
    vectors = _vectors()
    path = tmp_path / "v.out"
    save_vectors(path, WORDS, vectors, format=fmt)
    assert detect_format(path) == fmt
    words, loaded = load_vectors(path)
    assert words == WORDS
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, vectors)
    words2, loaded2 = load_vectors(path, format=fmt)
    assert words2 == WORDS
    np.testing.assert_array_equal(loaded2, vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_what_we_write(tmp_path: Path, binary: bool) -> None:
    gensim_models = needs("gensim.models")
    vectors = _vectors()
    path = tmp_path / "v.bin"
    save_vectors(path, WORDS, vectors, format="word2vec-binary" if binary else "word2vec-text")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == WORDS
    np.testing.assert_array_equal(kv.vectors, vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_we_read_what_gensim_writes(tmp_path: Path, binary: bool) -> None:
    gensim_models = needs("gensim.models")
    vectors = _vectors(6, 3)
    words = ["a", "b", "c", "dé", "e", "f"]
    kv = gensim_models.KeyedVectors(vector_size=3)
    kv.add_vectors(words, vectors)
    path = tmp_path / "g.vec"
    kv.save_word2vec_format(str(path), binary=binary)
    loaded_words, loaded = load_vectors(path)
    assert loaded_words == words
    if binary:
        np.testing.assert_array_equal(loaded, vectors)
    else:  # gensim writes text with %f-like rounding; compare with its own reader
        again = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=False)
        np.testing.assert_array_equal(loaded, again.vectors)


def test_c_tool_binary_with_newlines_and_gzip(tmp_path: Path) -> None:
    # the original word2vec.c writes "\n" after each vector; and people gzip their files
    vectors = _vectors(2, 3)
    body = b"2 3\n"
    for w, row in zip(["x", "y"], vectors, strict=True):
        body += w.encode() + b" " + row.astype("<f4").tobytes() + b"\n"
    path = tmp_path / "c.bin.gz"
    path.write_bytes(gzip.compress(body))
    words, loaded = load_vectors(path)
    assert words == ["x", "y"]
    np.testing.assert_array_equal(loaded, vectors)


def test_glove_and_fasttext_vec(tmp_path: Path) -> None:
    glove = tmp_path / "glove.6B.3d.txt"
    glove.write_text("the 0.1 0.2 0.3\n, -1 0 1e-3\n", encoding="utf-8")
    assert detect_format(glove) == "glove"
    words, vectors = load_vectors(glove)
    assert words == ["the", ","]
    np.testing.assert_allclose(vectors, [[0.1, 0.2, 0.3], [-1, 0, 1e-3]], rtol=1e-6)
    vec = tmp_path / "wiki.vec"
    vec.write_text("2 3 \nthe 0.1 0.2 0.3 \nof 1 2 3 \n", encoding="utf-8")  # trailing spaces
    words, vectors = load_vectors(vec, format="fasttext-vec")
    assert words == ["the", "of"]
    assert vectors.shape == (2, 3)


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("2 3\nthe 0.1 0.2 0.3\nof 1 two 3\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_vectors(path)
    assert str(err.value) == f"{path}:3: 'two' after 'of' is not a number"


def test_inconsistent_dimension(tmp_path: Path) -> None:
    path = tmp_path / "bad.glove"
    path.write_text("the 0.1 0.2 0.3\nof 1 2\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_vectors(path, format="glove")
    assert str(err.value) == (
        f"{path}:2: 2 numbers after 'of', expected 3 (every vector must have the same dimension)"
    )


def test_header_count_mismatch_and_truncated_binary(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("3 2\na 1 2\nb 3 4\n", encoding="utf-8")
    with pytest.raises(DataError, match="header says 3 vectors but the file holds 2"):
        load_vectors(path)
    binpath = tmp_path / "short.bin"
    save_vectors(binpath, WORDS, _vectors(), format="word2vec-binary")
    binpath.write_bytes(binpath.read_bytes()[:-10])
    with pytest.raises(DataError, match="file ends after 4"):
        load_vectors(binpath, format="word2vec-binary")


def test_wrong_encoding_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\u00e9 1 2\n".encode("latin-1"))
    with pytest.raises(
        DataError, match=r"latin.txt:1: .* not valid utf-8; pass the file's encoding"
    ):
        load_vectors(path, format="glove")
    words, _ = load_vectors(path, format="glove", encoding="latin-1")
    assert words == ["café"]
    with pytest.raises(DataError, match="does not exist"):
        load_vectors(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="format must be one of"):
        load_vectors(path, format="glov")


def test_run_directory_is_accepted(tmp_path: Path) -> None:
    save_vectors(tmp_path / "vectors.bin", WORDS, _vectors(), format="word2vec-binary")
    words, vectors = load_vectors(tmp_path)
    assert words == WORDS and vectors.shape == (5, 4)


def test_save_rejects_words_with_spaces(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="contains whitespace"):
        save_vectors(tmp_path / "x.txt", ["new york"], np.zeros((1, 2)))
