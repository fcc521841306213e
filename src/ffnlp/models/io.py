"""Model files: weights in safetensors (no pickle, so loading never runs code) + model.json.

Two kinds of model live in run directories: ``nn.Module``s built through the registry
(:func:`save_model` / :func:`load_model`) and the count-based Kneser-Ney n-gram model
(:func:`save_ngram` / :func:`load_ngram`), whose tables are saved as plain arrays.  Both write
``model.safetensors`` beside ``model.json`` = ``{"task", "type", "args"}``. A quantised model
(``ffnlp quantize``: :func:`save_quantized`) adds ``"quantized"`` to model.json and keeps codes in
model.safetensors; :func:`load_model` decodes them (:mod:`ffnlp.models.quantized`), so the model
it returns is an ordinary float one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file as _load_arrays
from safetensors.numpy import save_file as _save_arrays
from safetensors.torch import load_file as _load_tensors
from safetensors.torch import load_model as _st_load
from safetensors.torch import save_file as _save_tensors
from safetensors.torch import save_model as _st_save
from torch import nn

from ffnlp.config import type_problem
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.fileio import write_atomic, write_atomic_with
from ffnlp.folders.folder import a_run, read_arch, run_path
from ffnlp.folders.layout import ARCH, WEIGHTS
from ffnlp.models import registry
from ffnlp.models.kneser_ney import KneserNey

NGRAM_TYPE = "kneser_ney"  # model.json "type" of a KneserNey model (no nn.Module: not registered)


def save_model(model: nn.Module, run_dir: str | Path, task: str, args: dict[str, Any]) -> None:
    """Write model.safetensors and model.json ({"task", "type", "args"}) into ``run_dir``."""
    run_dir = Path(run_dir)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    write_atomic_with(  # save_model handles tied (shared) tensors
        run_dir / WEIGHTS, lambda tmp: _st_save(model, tmp), within=run_dir, needed=size
    )
    _write_arch(run_dir, task, str(model.registry_name), args)


def save_quantized(
    model: nn.Module,
    run_dir: str | Path,
    task: str,
    args: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    quantized: dict[str, Any],
) -> None:
    """Write a quantised model: ``tensors`` (the codes of :func:`ffnlp.models.quantized.
    encode_state`) into model.safetensors, and model.json with its ``quantized`` entry."""
    run_dir = Path(run_dir)
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    write_atomic_with(
        run_dir / WEIGHTS, lambda tmp: _save_tensors(tensors, tmp), within=run_dir, needed=size
    )
    _write_arch(run_dir, task, str(model.registry_name), args, {"quantized": quantized})


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


def _write_arch(
    run_dir: Path,
    task: str,
    type_name: str,
    args: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    arch = {"task": task, "type": type_name, "args": args, **(extra or {})}
    write_atomic(run_dir / ARCH, json.dumps(arch, indent=2), within=run_dir)


def load_model(run_dir: str | Path, task: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the module from model.json and load its weights; clear errors for bad files.

    Nothing is allocated before model.json has been checked against the model's constructor
    (known arguments, their types) and against the shapes stored in model.safetensors (read from
    its header), so a damaged or crafted model.json cannot ask for terabytes. ``task``: refuse
    a run of another task (the task's loader says first which commands read it: see
    :func:`ffnlp.tasks.runfolder.expect_task`).
    """
    run_dir = run_path(run_dir)
    arch = read_arch(run_dir)
    if task is not None and arch["task"] != task:
        raise ModelFileError(f"{run_dir} is {a_run(arch['task'])}, not {a_run(task)}")
    path = run_dir / ARCH
    try:
        spec = registry.spec(arch["type"])
    except ConfigError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    args = arch["args"]
    check_arguments(spec, args, path)
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        raise ModelFileError(f"{weights} is missing; the run may not have finished")
    state = None
    if "quantized" in arch:  # ffnlp quantize: codes decoded to float tensors here
        state = quantized_state(weights, arch["quantized"], path)
        stored = {name: tuple(t.shape) for name, t in state.items()}
    else:
        stored = stored_shapes(weights)
    try:
        skeleton = spec.skeleton(args)  # shapes only: no memory, whatever the sizes say
    except (ImportError, MemoryError):  # the environment's fault, not the file's
        raise
    except Exception as exc:  # any failure to build from a file's args is the file's fault
        raise ModelFileError(
            f"{path}: its args do not make a {arch['type']!r} model ({exc}); retrain or restore it"
        ) from None
    mismatch = compare_shapes(skeleton, stored)
    if mismatch:
        raise ModelFileError(
            f"{weights} does not match {ARCH}: {mismatch}; the two files come from different "
            f"runs, or {ARCH} was edited: restore it, or retrain"
        )
    try:
        model = spec.rebuild(args)
        if state is not None:
            missing, unexpected = model.load_state_dict(state, strict=False)
        else:
            missing, unexpected = _st_load(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{weights} cannot be read ({exc}); the file is corrupted") from None
    if missing or unexpected:
        raise ModelFileError(
            f"{weights} does not match {ARCH}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(
                f"{weights} holds values that are not finite (inf or NaN) in {name}; the file "
                "is damaged or the training diverged: retrain or restore it"
            )
    model.eval()
    return model, arch


def quantized_state(weights: Path, quantized: object, arch_path: Path) -> dict[str, torch.Tensor]:
    """The float tensors of a quantised model file (see :mod:`ffnlp.models.quantized`)."""
    from ffnlp.models.quantized import decode_state

    try:
        tensors = _load_tensors(str(weights))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{weights} cannot be read ({exc}); the file is corrupted") from None
    return decode_state(tensors, quantized, arch_path)


def check_arguments(spec: registry.ModelSpec, args: dict[str, Any], path: Path) -> None:
    """model.json's ``args`` against the constructor of ``spec``: every key known, every
    required one present, every value of the annotated type."""
    problems = []
    accepted = spec.argument_types()
    for key, value in args.items():
        if key not in accepted:
            problems.append(f"unknown argument {key!r} (known: {', '.join(sorted(accepted))})")
            continue
        hint, _ = accepted[key]
        wrong = type_problem(value, hint)
        if wrong:
            problems.append(f"{key} must be {wrong}; got {_short(value)}")
    for key, (_, required) in accepted.items():
        if required and key not in args:
            problems.append(f"the argument {key!r} is missing")
    if problems:
        raise ModelFileError(
            f"{path} is corrupted ({'; '.join(problems)}); retrain or restore the file"
        )


def stored_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from the safetensors header alone (no tensor is loaded)."""
    try:
        with safe_open(str(weights), framework="pt") as fh:
            return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{weights} cannot be read ({exc}); the file is corrupted") from None


def compare_shapes(model: nn.Module, stored: dict[str, tuple[int, ...]]) -> str:
    """What differs between ``model``'s tensors and the ``stored`` shapes ("" when nothing).

    Tied tensors (one tensor under several names) are stored once, under any of their names."""
    saved = set(model.state_dict())
    groups: dict[int, list[str]] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    named = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for name, tensor in named:
        if name in saved:
            groups.setdefault(id(tensor), []).append(name)
            shapes[id(tensor)] = tuple(tensor.shape)
    problems = []
    known: set[str] = set()
    for key, names in groups.items():
        known.update(names)
        present = [n for n in names if n in stored]
        if not present:
            problems.append(f"{names[0]} is missing")
        for name in present:
            if stored[name] != shapes[key]:
                problems.append(
                    f"{name} is {_shape(stored[name])} in the weights but model.json makes it "
                    f"{_shape(shapes[key])}"
                )
    problems += [f"unexpected tensor {name}" for name in sorted(set(stored) - known)]
    return "; ".join(problems[:3]) + (f" and {len(problems) - 3} more" if len(problems) > 3 else "")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_ngram(run_dir: str | Path) -> tuple[KneserNey, dict[str, Any]]:
    """Read back what :func:`save_ngram` wrote; clear errors for missing or damaged files."""
    run_dir = run_path(run_dir)
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
        where = weights if "Kneser-Ney table" in str(exc) else run_dir / ARCH
        raise ModelFileError(f"{where}: {exc}") from None
    return model, arch
