"""Model files: weights in safetensors (no pickle, so loading never runs code) + model.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_model as _st_load
from safetensors.torch import save_model as _st_save
from torch import nn

from ffnlp.errors import ModelFileError
from ffnlp.models.registry import build_model

WEIGHTS = "model.safetensors"
ARCH = "model.json"


def save_model(model: nn.Module, run_dir: str | Path, task: str, args: dict[str, Any]) -> None:
    """Write model.safetensors and model.json ({"task", "type", "args"}) into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _st_save(model, str(run_dir / WEIGHTS))  # handles tied (shared) tensors
    arch = {"task": task, "type": model.registry_name, "args": args}
    (run_dir / ARCH).write_text(json.dumps(arch, indent=2), encoding="utf-8")


def read_arch(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / ARCH
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
