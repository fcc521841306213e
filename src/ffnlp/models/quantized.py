"""Quantised weights in a model file: int8 rows and product-quantised tables, and reading them back.

A quantised run (``ffnlp quantize``) stores some of its model's tensors in ``model.safetensors``
in a compact code, and says which in ``model.json``::

    "quantized": {"method": "pq", "tensors": {"embedding.weight": {"codec": "pq", ...}, ...}}

Loading (:func:`decode_state`) turns every code back into a float32 tensor of the shape the
model expects, so that the rebuilt model is an ordinary one: predict, eval, export and serve
read it as they read any run. Two codecs:

``int8`` (a 2-D tensor W (R, C)): ``W.q`` int8 (R, C) and ``W.scale`` float32, one scale per
  row (``axis`` 0; per column, ``axis`` 1, when rows are narrower than :data:`ROW_SCALE_MIN`
  columns, where a scale per row would cost more than it saves): ``W ~ q * scale``, symmetric,
  ``scale = max |row| / 127``.

``pq`` (product quantisation, Jégou et al. 2011, as fastText's ``quantize``): the D columns are
  cut into M = D / dsub blocks of ``dsub``; each block has a codebook of up to 256 centroids
  learnt by k-means over the rows, and a row keeps one byte per block, the number of its
  nearest centroid: ``W.codes`` uint8 (R, M), ``W.centroids`` float32 (M, 256, dsub). With
  ``qnorm`` (fastText's ``-qnorm``) the rows are normalised first and their norms quantised on
  their own with a 256-entry codebook: ``W.norm_codes`` uint8 (R,), ``W.norms`` float32 (256,).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffnlp.errors import ModelFileError

ROW_SCALE_MIN = 8  # rows narrower than this get one scale per column, not per row
KSUB = 256  # centroids per block: one byte per code
TRAIN_SAMPLE = 65_536  # rows the k-means of each block learns from (fastText's max_points)
PARTS = {"int8": ("q", "scale"), "pq": ("codes", "centroids")}


# ------------------------------------------------------------------------------------- int8


def encode_int8(weight: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A 2-D float tensor as int8 codes and float32 scales; the parts and model.json's entry."""
    w = weight.detach().float()
    axis = 0 if w.shape[1] >= ROW_SCALE_MIN else 1
    scale = w.abs().amax(dim=1 - axis) / 127.0  # (R,) or (C,)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    shaped = safe.unsqueeze(1) if axis == 0 else safe.unsqueeze(0)
    q = torch.round(w / shaped).clamp(-127, 127).to(torch.int8)
    return {"q": q, "scale": scale.contiguous()}, {"codec": "int8", "axis": axis}


def decode_int8(parts: dict[str, torch.Tensor], entry: dict[str, Any]) -> torch.Tensor:
    q, scale = parts["q"], parts["scale"].float()
    if entry.get("axis") not in (0, 1) or q.dtype != torch.int8 or q.ndim != 2:
        raise ValueError("an int8 tensor needs int8 codes (R, C) and axis 0 or 1")
    axis = int(entry["axis"])
    if scale.shape != (q.shape[axis],):
        raise ValueError(f"{q.shape[axis]} scales expected, got {tuple(scale.shape)}")
    shaped = scale.unsqueeze(1) if axis == 0 else scale.unsqueeze(0)
    return q.float() * shaped


# --------------------------------------------------------------------------------------- PQ


def kmeans(
    points: torch.Tensor, k: int, iterations: int, generator: torch.Generator
) -> torch.Tensor:
    """(k, d) centroids of ``points`` (N, d) by Lloyd's algorithm from k distinct random points
    (an empty cluster takes a random point again)."""
    n = points.shape[0]
    k = min(k, n)
    centroids = points[torch.randperm(n, generator=generator)[:k]].clone()  # (k, d)
    for _ in range(iterations):
        assign = nearest(points, centroids)  # (N,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)  # (k, d)
        counts = torch.bincount(assign, minlength=k)  # (k,)
        empty = counts == 0
        centroids = sums / counts.clamp(min=1).unsqueeze(1).to(points.dtype)
        if bool(empty.any()):
            refill = torch.randint(0, n, (int(empty.sum()),), generator=generator)
            centroids[empty] = points[refill]
    return centroids


def nearest(points: torch.Tensor, centroids: torch.Tensor, chunk: int = 65_536) -> torch.Tensor:
    """(N,) the index of each point's nearest centroid (squared Euclidean distance)."""
    out = torch.empty(points.shape[0], dtype=torch.long)
    c2 = (centroids * centroids).sum(1)  # (k,)
    for start in range(0, points.shape[0], chunk):
        part = points[start : start + chunk]  # (n, d)
        distance = c2.unsqueeze(0) - 2 * part @ centroids.t()  # (n, k); |p|^2 is the same for all
        out[start : start + chunk] = distance.argmin(1)
    return out


def encode_pq(
    weight: torch.Tensor, dsub: int = 2, qnorm: bool = False, iterations: int = 20, seed: int = 0
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A (R, D) table product-quantised (see the module's docstring); D must be a multiple of
    ``dsub``."""
    w = weight.detach().float()
    rows, dim = w.shape
    if dim % dsub:
        raise ValueError(f"the table's {dim} columns are not a multiple of dsub = {dsub}")
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, torch.Tensor] = {}
    if qnorm:
        norms = w.norm(dim=1)  # (R,)
        w = w / norms.clamp(min=1e-12).unsqueeze(1)
        sample = norms[torch.randperm(rows, generator=generator)[:TRAIN_SAMPLE]].unsqueeze(1)
        norm_book = kmeans(sample, KSUB, iterations, generator)  # (k, 1)
        parts["norm_codes"] = nearest(norms.unsqueeze(1), norm_book).to(torch.uint8)
        parts["norms"] = _padded(norm_book, KSUB).squeeze(1)  # (256,)
    blocks = dim // dsub
    codes = torch.empty((rows, blocks), dtype=torch.uint8)
    books = torch.zeros((blocks, KSUB, dsub))
    chosen = torch.randperm(rows, generator=generator)[:TRAIN_SAMPLE]
    for m in range(blocks):
        block = w[:, m * dsub : (m + 1) * dsub].contiguous()  # (R, dsub)
        book = kmeans(block[chosen], KSUB, iterations, generator)  # (k, dsub)
        codes[:, m] = nearest(block, book).to(torch.uint8)
        books[m] = _padded(book, KSUB)
    parts["codes"], parts["centroids"] = codes, books
    return parts, {"codec": "pq", "dsub": dsub, "qnorm": qnorm}


def _padded(book: torch.Tensor, k: int) -> torch.Tensor:
    """A codebook of fewer than k centroids (a table of fewer rows) padded with zero rows."""
    if book.shape[0] == k:
        return book
    return torch.cat([book, torch.zeros((k - book.shape[0], book.shape[1]))])


def decode_pq(parts: dict[str, torch.Tensor], entry: dict[str, Any]) -> torch.Tensor:
    codes, books = parts["codes"], parts["centroids"].float()
    if codes.dtype != torch.uint8 or codes.ndim != 2 or books.ndim != 3:
        raise ValueError("a pq tensor needs uint8 codes (R, M) and centroids (M, 256, dsub)")
    rows, blocks = codes.shape
    if books.shape[:2] != (blocks, KSUB) or books.shape[2] != entry.get("dsub"):
        raise ValueError(f"centroids of shape {tuple(books.shape)} do not fit {blocks} blocks")
    index = codes.long() + torch.arange(blocks) * KSUB  # (R, M) into the flattened books
    w = books.reshape(blocks * KSUB, -1)[index].reshape(rows, -1)  # (R, D)
    if entry.get("qnorm"):
        norm_codes, norms = parts["norm_codes"], parts["norms"].float()
        if norm_codes.shape != (rows,) or norms.shape != (KSUB,):
            raise ValueError("qnorm needs one norm code per row and 256 norms")
        w = w * norms[norm_codes.long()].unsqueeze(1)
    return w


# ------------------------------------------------------------------------------ the state


def encode_state(
    state: dict[str, torch.Tensor], codecs: dict[str, dict[str, Any]]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``state`` with the tensors named in ``codecs`` (name -> {"codec": "int8"} or {"codec":
    "pq", "dsub", "qnorm"}) encoded; the other floating tensors as float32. Returns the tensors
    to save and model.json's ``quantized["tensors"]``."""
    out: dict[str, torch.Tensor] = {}
    entries: dict[str, Any] = {}
    for name, tensor in state.items():
        codec = codecs.get(name)
        if codec is None:
            out[name] = (
                tensor.detach().float().contiguous() if tensor.is_floating_point() else tensor
            )
            continue
        if codec["codec"] == "pq":
            parts, entry = encode_pq(tensor, codec.get("dsub", 2), codec.get("qnorm", False))
        else:
            parts, entry = encode_int8(tensor)
        entries[name] = entry
        for part, value in parts.items():
            out[f"{name}.{part}"] = value.contiguous()
    return out, entries


def decode_state(
    tensors: dict[str, torch.Tensor], quantized: object, path: Path
) -> dict[str, torch.Tensor]:
    """The float state dict of a quantised model file (``tensors``: what model.safetensors
    holds; ``quantized``: model.json's entry); a ModelFileError naming ``path`` for anything
    that does not decode."""
    if not isinstance(quantized, dict) or not isinstance(quantized.get("tensors"), dict):
        raise ModelFileError(
            f'{path} is corrupted: "quantized" must be an object with a "tensors" object; '
            "quantise the run again"
        )
    state = dict(tensors)
    for name, entry in quantized["tensors"].items():
        codec = entry.get("codec") if isinstance(entry, dict) else None
        if codec not in PARTS:
            raise ModelFileError(
                f"{path} is corrupted: the tensor {name} has codec {codec!r} (known: int8, pq)"
            )
        parts = {
            key[len(name) + 1 :]: state.pop(key)
            for key in list(state)
            if key.startswith(name + ".") and key[len(name) + 1 :] in _PART_NAMES
        }
        missing = [p for p in PARTS[codec] if p not in parts]
        if missing:
            raise ModelFileError(
                f"{path.with_name('model.safetensors')} lacks {name}.{missing[0]}, which the "
                f"{codec} code of {name} needs; the files come from different runs"
            )
        try:
            state[name] = decode_int8(parts, entry) if codec == "int8" else decode_pq(parts, entry)
        except (ValueError, KeyError, IndexError, RuntimeError) as exc:
            raise ModelFileError(
                f"{path.with_name('model.safetensors')}: the {codec} code of {name} is "
                f"corrupted ({exc}); quantise the run again"
            ) from None
    return state


_PART_NAMES = {"q", "scale", "codes", "centroids", "norm_codes", "norms"}


def stored_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """The bytes of the tensors' data (what the codes save, before safetensors' header)."""
    return sum(t.numel() * t.element_size() for t in tensors.values())


def as_numpy(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in tensors.items()}
