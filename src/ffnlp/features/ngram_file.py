"""``vocab.safetensors``: a bag-of-n-grams run's ``vocab.json`` in binary form, for a quick start.

``ffnlp classify predict`` on the NumPy path spends most of its start-up on a run with tens of
thousands of n-gram features reading their names from vocab.json (JSON-parsing them, splitting
them into tokens, numbering the tokens). Training therefore also writes the same features as
arrays (:func:`encode`), which load in a few milliseconds (:func:`read`):

- ``tokens`` (uint8): every distinct token of the features in UTF-8, joined by one space (a
  token holds no space: a feature's name is its tokens joined by one);
- ``kinds`` (int32): the numbers of every feature's tokens back to back, features in column
  order (a token's number is its position in ``tokens``);
- ``lengths`` (int32, one per feature): how many tokens each has;
- ``idf`` (float64, one per feature), for tf-idf weighting;

and in the header's metadata ``format`` (:data:`FORMAT`), ``vocab`` (vocab.json less its
``features.features`` and ``features.idf`` lists: the labels, the featuriser's settings),
``vocab_sha256`` (of the vocab.json it was made from, byte for byte) and ``data_sha256`` (of the
arrays, in the order above). vocab.json stays the run's description of its features: a run
without this file (an older one, or one trained with other features) is read from vocab.json
as before, and a file whose ``format`` this version does not know is left unread. A file that
cannot be read, whose arrays do not match their digest, or that was made from another
vocab.json, is a :class:`~ffnlp.errors.ModelFileError` naming it (``ffnlp.load`` checks it).

NumPy, safetensors and the standard library only: the predict command reads it without PyTorch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ffnlp.errors import ModelFileError
from ffnlp.features.fast import NgramLayout, ngram_layout
from ffnlp.folders.layout import NGRAMS

FILE = NGRAMS
FORMAT = "ffnlp.ngrams.1"
_ARRAYS = ("tokens", "kinds", "lengths", "idf")  # in this order in data_sha256
_DTYPES = {"tokens": np.uint8, "kinds": np.int32, "lengths": np.int32, "idf": np.float64}
_MAX_HEADER = 100 * 1024 * 1024  # the header's byte count is read first: a sane bound on it


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in _ARRAYS:
        if name in arrays:
            h.update(name.encode("ascii"))
            h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def encode(vocab: dict[str, Any], vocab_bytes: bytes) -> bytes | None:
    """The file's bytes for a classifier's ``vocab`` (as written to vocab.json, whose bytes
    are ``vocab_bytes``); ``None`` when its features are not a bag of n-grams that
    :func:`~ffnlp.features.fast.ngram_layout` lays out."""
    from safetensors.numpy import save

    state = vocab.get("features")
    if not isinstance(state, dict) or not isinstance(state.get("features"), list):
        return None
    if state.get("char_features") or state.get("contrast_words"):
        return None  # character n-grams, marked clauses: vocab.json alone holds them
    layout = ngram_layout(state["features"])
    if layout is None or len(layout.tokens) >= 2**31:
        return None
    arrays: dict[str, np.ndarray] = {
        "tokens": np.frombuffer(" ".join(layout.tokens).encode("utf-8"), dtype=np.uint8),
        "kinds": layout.kinds.astype(np.int32),
        "lengths": layout.lengths.astype(np.int32),
    }
    if state.get("idf") is not None:
        arrays["idf"] = np.asarray(state["idf"], dtype=np.float64)
    rest = {**vocab, "features": {k: v for k, v in state.items() if k not in ("features", "idf")}}
    metadata = {
        "format": FORMAT,
        "vocab": json.dumps(rest),
        "vocab_sha256": hashlib.sha256(vocab_bytes).hexdigest(),
        "data_sha256": _digest(arrays),
    }
    return bytes(save(arrays, metadata=metadata))


def read(run_dir: Path, vocab_bytes: bytes) -> tuple[dict[str, Any], NgramLayout] | None:
    """The run's vocab.json as this file holds it, ``(vocab, layout)``: vocab.json's object
    without ``features.features`` (``features.idf`` is ``layout.idf``), and the features'
    layout; ``None`` when the run has no such file or one of a format this version does not
    know. ``vocab_bytes``: the run's vocab.json, which the file must have been made from."""
    path = run_dir / FILE
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(
            f"{path} is not a regular file; delete it (ffnlp then reads vocab.json)"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror or exc})") from None
    metadata = _metadata(path, raw)
    if metadata.get("format") != FORMAT:
        return None
    if metadata.get("vocab_sha256") != hashlib.sha256(vocab_bytes).hexdigest():
        raise ModelFileError(
            f"{path} was not made from {run_dir / 'vocab.json'} (its sha256 differs): the files "
            "come from different runs, or vocab.json was edited; delete "
            f"{path} (ffnlp then reads vocab.json) or retrain the run"
        )
    arrays = _arrays(path, raw)
    if metadata.get("data_sha256") != _digest(arrays):
        raise _corrupted(path, "its arrays do not match their sha256")
    try:
        vocab = json.loads(metadata["vocab"])
    except (KeyError, ValueError, RecursionError):
        raise _corrupted(path, "its vocab entry is not JSON") from None
    if not isinstance(vocab, dict) or not isinstance(vocab.get("features"), dict):
        raise _corrupted(path, "its vocab entry is not a classifier's vocabulary")
    return vocab, _layout(path, arrays)


def _corrupted(path: Path, why: str) -> ModelFileError:
    return ModelFileError(
        f"{path} is corrupted ({why}); delete it (ffnlp then reads vocab.json) or retrain the run"
    )


def _metadata(path: Path, raw: bytes) -> dict[str, Any]:
    """The safetensors header's ``__metadata__``: 8 bytes (little-endian) giving the header's
    length, then the header, a JSON object."""
    if len(raw) < 8:
        raise _corrupted(path, f"{len(raw)} bytes, too short for a safetensors file")
    size = int.from_bytes(raw[:8], "little")
    if size > min(len(raw) - 8, _MAX_HEADER):
        raise _corrupted(path, "not a safetensors file, or cut short: its header runs past the end")
    try:
        header = json.loads(raw[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _corrupted(path, "its header is not JSON") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        raise _corrupted(path, "its header has no metadata")
    return metadata


def _arrays(path: Path, raw: bytes) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(raw)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise _corrupted(path, f"not a safetensors file: {exc}") from None
    required = {"tokens", "kinds", "lengths"}
    if not required <= set(arrays) <= set(_ARRAYS):
        raise _corrupted(path, f"it holds {sorted(arrays)}, not {sorted(required)} (and idf)")
    for name, array in arrays.items():
        if array.dtype != _DTYPES[name] or array.ndim != 1:
            raise _corrupted(path, f"{name} is {array.dtype} {list(array.shape)}")
    return arrays


def _layout(path: Path, arrays: dict[str, np.ndarray]) -> NgramLayout:
    """The arrays as a layout, each checked against the others."""
    try:
        text = arrays["tokens"].tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise _corrupted(path, "tokens is not UTF-8") from None
    tokens = text.split(" ") if text else []
    kinds = arrays["kinds"].astype(np.int64)
    lengths = arrays["lengths"].astype(np.int64)
    idf = arrays.get("idf")
    problem = None
    if len(set(tokens)) != len(tokens) or "" in tokens:
        problem = "tokens are not distinct non-empty tokens"
    elif len(lengths) and int(lengths.min()) < 1:
        problem = "a feature of no token"
    elif int(lengths.sum()) != len(kinds):
        problem = f"lengths add up to {int(lengths.sum())}, kinds has {len(kinds)}"
    elif len(kinds) and not (int(kinds.min()) >= 0 and int(kinds.max()) < len(tokens)):
        problem = "kinds numbers a token that tokens does not have"
    elif idf is not None and len(idf) != len(lengths):
        problem = f"{len(idf)} idf values for {len(lengths)} features"
    if problem is not None:
        raise _corrupted(path, problem)
    return NgramLayout(tokens, kinds, lengths, idf)
