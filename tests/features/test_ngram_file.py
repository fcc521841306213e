"""vocab.safetensors: a bag of n-grams' features as arrays, read back as they were written, and
every way the file can be wrong is a ModelFileError naming it (or, for a format this version
does not know, no file)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from ffnlp.errors import ModelFileError
from ffnlp.features import ngram_file
from ffnlp.features.bag import BagOfNgrams
from ffnlp.features.fast import NgramLayout, ngram_layout
from ffnlp.text.tokenize import Tokenizer

TEXTS = [
    "a good film",
    "caf\u00e9 cr\u00e8me a film",
    "the film the film",
    "\u00e9t\u00e9 \u20ac !",
]


def _vocab(weighting: str = "tfidf") -> tuple[dict, bytes]:
    tokens = Tokenizer("whitespace").tokenize_all(TEXTS)
    bag = BagOfNgrams((1, 3), weighting).fit(tokens)
    vocab = {"labels": {"labels": ["neg", "pos"]}, "features": bag.to_dict(), "thresholds": None}
    return vocab, json.dumps(vocab).encode()


@pytest.mark.parametrize("weighting", ["tfidf", "count"])
def test_the_features_read_back_as_they_were_written(tmp_path: Path, weighting: str) -> None:
    vocab, raw = _vocab(weighting)
    (tmp_path / ngram_file.FILE).write_bytes(ngram_file.encode(vocab, raw) or b"")
    read = ngram_file.read(tmp_path, raw)
    assert read is not None
    stored, layout = read
    want = ngram_layout(vocab["features"]["features"])
    assert want is not None
    assert layout.tokens == want.tokens and "caf\u00e9" in layout.tokens
    assert layout.kinds.tolist() == want.kinds.tolist()
    assert layout.lengths.tolist() == want.lengths.tolist()
    names = [" ".join(layout.tokens[k] for k in row) for row in _split(layout)]
    assert names == vocab["features"]["features"]
    if weighting == "tfidf":
        assert layout.idf is not None
        assert layout.idf.tolist() == vocab["features"]["idf"]  # float64, exactly
    else:
        assert layout.idf is None
    rest = {k: v for k, v in vocab["features"].items() if k not in ("features", "idf")}
    assert stored == {**vocab, "features": rest}


def _split(layout: NgramLayout) -> list[list[int]]:
    ends = np.cumsum(layout.lengths).tolist()
    return [
        layout.kinds[e - n : e].tolist() for e, n in zip(ends, layout.lengths.tolist(), strict=True)
    ]


def test_no_file_or_a_file_of_another_format_is_not_read(tmp_path: Path) -> None:
    vocab, raw = _vocab()
    assert ngram_file.read(tmp_path, raw) is None
    other = save({"x": np.zeros(1, dtype=np.uint8)}, metadata={"format": "ffnlp.ngrams.99"})
    (tmp_path / ngram_file.FILE).write_bytes(other)
    assert ngram_file.read(tmp_path, raw) is None


def test_features_that_are_not_distinct_ngrams_get_no_file() -> None:
    vocab, raw = _vocab()
    vocab["features"]["features"][1] = vocab["features"]["features"][0]  # a repeated name
    assert ngram_file.encode(vocab, raw) is None
    vocab["features"]["features"][1] = "a  film"  # an empty token
    assert ngram_file.encode(vocab, raw) is None
    assert ngram_file.encode({"labels": {}, "features": {"vocab": {}}}, raw) is None  # ids


def _forged(tmp_path: Path, raw: bytes, arrays: dict[str, np.ndarray], **meta: str) -> None:
    """A file whose digests are right but whose arrays do not make sense together."""
    metadata = {
        "format": ngram_file.FORMAT,
        "vocab": json.dumps({"labels": {"labels": ["a"]}, "features": {}}),
        "vocab_sha256": hashlib.sha256(raw).hexdigest(),
        "data_sha256": ngram_file._digest(arrays),
        **meta,
    }
    (tmp_path / ngram_file.FILE).write_bytes(save(arrays, metadata=metadata))


def _arrays(tokens: str, kinds: list[int], lengths: list[int], **more) -> dict[str, np.ndarray]:
    return {
        "tokens": np.frombuffer(tokens.encode(), dtype=np.uint8),
        "kinds": np.asarray(kinds, dtype=np.int32),
        "lengths": np.asarray(lengths, dtype=np.int32),
        **more,
    }


BAD = [
    (_arrays("a b", [0, 2], [1, 1]), "kinds numbers a token that tokens does not have"),
    (_arrays("a b", [0, 1], [1, 2]), "lengths add up to 3, kinds has 2"),
    (_arrays("a a", [0, 1], [1, 1]), "tokens are not distinct non-empty tokens"),
    (_arrays("a  b", [0, 2], [1, 1]), "tokens are not distinct non-empty tokens"),
    (_arrays("a b", [0, 1], [2, 0]), "a feature of no token"),
    (_arrays("a b", [0, 1], [1, 1], idf=np.ones(3)), "3 idf values for 2 features"),
    (_arrays("a b", [0, 1], [1, 1], idf=np.ones(2, np.float32)), "idf is float32 [2]"),
    ({"tokens": np.zeros(2, np.uint8)}, "it holds ['tokens'], not ['kinds', 'lengths', 'tokens']"),
    (_arrays("\xff", [0], [1]) | {"tokens": np.array([0xFF], np.uint8)}, "tokens is not UTF-8"),
]


@pytest.mark.parametrize(("arrays", "message"), BAD, ids=[b[1][:30] for b in BAD])
def test_arrays_that_do_not_fit_together_are_named(tmp_path: Path, arrays, message) -> None:
    _forged(tmp_path, b"{}", arrays)
    with pytest.raises(ModelFileError) as info:
        ngram_file.read(tmp_path, b"{}")
    text = str(info.value)
    assert text.startswith(f"{tmp_path / ngram_file.FILE} is corrupted ({message}")
    assert "delete it (ffnlp then reads vocab.json) or retrain the run" in text


def test_a_vocab_entry_that_is_not_a_vocabulary_is_named(tmp_path: Path) -> None:
    arrays = _arrays("a b", [0, 1], [1, 1])
    _forged(tmp_path, b"{}", arrays, vocab="[1, 2]")
    with pytest.raises(ModelFileError, match="its vocab entry is not a classifier's vocabulary"):
        ngram_file.read(tmp_path, b"{}")
    _forged(tmp_path, b"{}", arrays, vocab="{")
    with pytest.raises(ModelFileError, match="its vocab entry is not JSON"):
        ngram_file.read(tmp_path, b"{}")


def test_a_header_that_is_not_json_or_has_no_metadata_is_named(tmp_path: Path) -> None:
    path = tmp_path / ngram_file.FILE
    path.write_bytes((4).to_bytes(8, "little") + b"{x}    ")
    with pytest.raises(ModelFileError, match=r"is corrupted \(its header is not JSON\)"):
        ngram_file.read(tmp_path, b"{}")
    path.write_bytes(save({"x": np.zeros(1, dtype=np.uint8)}))
    with pytest.raises(ModelFileError, match=r"is corrupted \(its header has no metadata\)"):
        ngram_file.read(tmp_path, b"{}")


def test_a_file_made_from_another_vocab_json_is_named(tmp_path: Path) -> None:
    vocab, raw = _vocab()
    (tmp_path / ngram_file.FILE).write_bytes(ngram_file.encode(vocab, raw) or b"")
    edited = raw.replace(b'"neg"', b'"NEG"')
    with pytest.raises(ModelFileError, match="was not made from .*vocab.json .its sha256 differs"):
        ngram_file.read(tmp_path, edited)


def test_a_link_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    vocab, raw = _vocab()
    real = tmp_path / "elsewhere.safetensors"
    real.write_bytes(ngram_file.encode(vocab, raw) or b"")
    (tmp_path / ngram_file.FILE).symlink_to(real)
    with pytest.raises(ModelFileError, match="is not a regular file"):
        ngram_file.read(tmp_path, raw)
