"""Model files: weights in safetensors (no pickle, so loading never runs code) + model.json.

Two kinds of model live in run directories: ``nn.Module``s built through the registry
(:func:`save_model` / :func:`load_model`) and the count-based Kneser-Ney n-gram model
(:func:`save_ngram` / :func:`load_ngram`), whose tables are saved as plain arrays.  Both write
``model.safetensors`` beside ``model.json`` = ``{"task", "type", "args"}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file as _load_arrays
from safetensors.numpy import save_file as _save_arrays
from safetensors.torch import load_model as _st_load
from safetensors.torch import save_model as _st_save
from torch import nn

from ffnlp.errors import ModelFileError
from ffnlp.fileio import write_atomic, write_atomic_with
from ffnlp.models.kneser_ney import KneserNey
from ffnlp.models.registry import build_model

WEIGHTS = "model.safetensors"
ARCH = "model.json"
NGRAM_TYPE = "kneser_ney"  # model.json "type" of a KneserNey model (no nn.Module: not registered)


def save_model(model: nn.Module, run_dir: str | Path, task: str, args: dict[str, Any]) -> None:
    """Write model.safetensors and model.json ({"task", "type", "args"}) into ``run_dir``."""
    run_dir = Path(run_dir)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    write_atomic_with(  # save_model handles tied (shared) tensors
        run_dir / WEIGHTS, lambda tmp: _st_save(model, tmp), within=run_dir, needed=size
    )
    _write_arch(run_dir, task, str(model.registry_name), args)


def save_ngram(model: KneserNey, run_dir: str | Path, task: str) -> None:
    """Write a Kneser-Ney model: its tables into model.safetensors, its header as model.json's
    ``args`` (type ``kneser_ney``)."""
    run_dir = Path(run_dir)
    arrays, header = model.state()
    tables = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    write_atomic_with(
        run_dir / WEIGHTS,
        lambda tmp: _save_arrays(tables, tmp),
        within=run_dir,
        needed=sum(a.nbytes for a in tables.values()),
    )
    _write_arch(run_dir, task, NGRAM_TYPE, header)


def _write_arch(run_dir: Path, task: str, type_name: str, args: dict[str, Any]) -> None:
    arch = {"task": task, "type": type_name, "args": args}
    write_atomic(run_dir / ARCH, json.dumps(arch, indent=2), within=run_dir)


def read_arch(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / ARCH
    if not path.is_file() and (Path(run_dir) / "interrupted.json").is_file():
        raise ModelFileError(
            f"{Path(run_dir)} is an interrupted run that has no model yet; continue its training "
            f"with --resume {Path(run_dir)}"
        )
    if not path.is_file():
        raise ModelFileError(
            f"{Path(run_dir)} is not an ffnlp run directory: {ARCH} is missing "
            "(train a model with --out DIR first)"
        )
    try:
        arch = json.loads(path.read_text(encoding="utf-8"))
        _ = arch["type"], arch["args"], arch["task"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path} is corrupted ({exc}); retrain or restore the file") from None
    return arch


def load_model(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the module from model.json and load its weights; clear errors for bad files."""
    run_dir = Path(run_dir)
    arch = read_arch(run_dir)
    model = build_model(arch["type"], arch["args"])
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        raise ModelFileError(f"{weights} is missing; the run may not have finished")
    _check_shapes(model, weights, arch)
    try:
        missing, unexpected = _st_load(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{weights} cannot be read ({exc}); the file is corrupted") from None
    if missing or unexpected:
        raise ModelFileError(
            f"{weights} does not match {ARCH}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    model.eval()
    return model, arch


def _check_shapes(model: nn.Module, weights: Path, arch: dict[str, Any]) -> None:
    """ModelFileError naming every tensor whose shape in the weights file differs from the one
    model.json builds (an unreadable file is left to the loader, which says so)."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            # a safe_open handle is not iterable: keys() is its only listing
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError):
        return
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = [
        f"{k} is {stored[k]} in {WEIGHTS} but {built[k]} in the model {ARCH} builds"
        for k in built
        if k in stored and stored[k] != built[k]
    ]
    if wrong:
        raise ModelFileError(
            f"{weights.parent}: {'; '.join(wrong)} ({ARCH}: type {arch['type']!r}, args "
            f"{json.dumps(arch['args'])}); the two files come from different runs, or {ARCH} "
            "was edited: restore it, or retrain"
        )


def load_ngram(run_dir: str | Path) -> tuple[KneserNey, dict[str, Any]]:
    """Read back what :func:`save_ngram` wrote; clear errors for missing or damaged files."""
    run_dir = Path(run_dir)
    arch = read_arch(run_dir)
    if arch["type"] != NGRAM_TYPE:
        raise ModelFileError(
            f"{run_dir / ARCH} describes a {arch['type']!r} model, not a Kneser-Ney one"
        )
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        raise ModelFileError(f"{weights} is missing; the run may not have finished")
    try:
        arrays = _load_arrays(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{weights} cannot be read ({exc}); the file is corrupted") from None
    try:
        model = KneserNey.from_state(arrays, arch["args"])
    except ModelFileError as exc:
        raise ModelFileError(f"{run_dir}: {exc}") from None
    return model, arch
