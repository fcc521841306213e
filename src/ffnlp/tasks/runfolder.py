"""Reading a run folder back: every file checked, every failure a :class:`ModelFileError` that
names the file and what to do.

A run folder is user input like any other: it may be half-copied, edited by hand, from another
task or another version, or crafted. The loaders of the three tasks read it through these
functions (and :mod:`ffnlp.models.io` for model.json and the weights), so that a bad file gives
one clear error and nothing outside the folder is ever read.

- :func:`read_config`: config.toml, resolved with the task's defaults;
- :func:`read_summary`: summary.json, optional for loading (eval and predict do not need it);
- :func:`run_task`: the task that made a run, from model.json or else from config.toml's
  sections (an interrupted run has no model.json yet), for ``--resume``;
- :func:`write_lineage` / :func:`read_lineage`: ``init_from.json``, the earlier run a continued
  run (``--init-from``) started from, written before training so that ``--resume`` of an
  interrupted continued run grows the same vocabulary from the same run (summary.json repeats
  it under ``init_from``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.fileio import write_atomic
from ffnlp.models.io import ARCH, a_run, read_arch, read_json
from ffnlp.tasks import registry

log = logging.getLogger(__name__)

C = TypeVar("C")
CONFIG = "config.toml"
SUMMARY = "summary.json"
LINEAGE = "init_from.json"


def read_config(run_dir: Path, resolve: Callable[[Path], C], task: str) -> C:
    """The run's config.toml through the ``task``'s ``resolve``; a missing, unreadable or
    invalid file is a ModelFileError naming it (and saying so when it is another task's)."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise ModelFileError(f"{run_dir} is incomplete: {CONFIG} is missing")
    try:
        return resolve(path)
    except ConfigError as exc:
        other = _config_task(path)
        if other is not None and other != task:
            raise ModelFileError(
                f"{path} is the configuration of {a_run(other)} but {run_dir / ARCH} says "
                f"{a_run(task)}; the files come from different runs"
            ) from None
        text = str(exc)
        where = "" if str(path) in text else f"{path}: "
        raise ModelFileError(f"{where}{text}; retrain the run or restore the file") from None


def read_summary(run_dir: Path, required: bool = False) -> dict[str, Any]:
    """summary.json as a dict. Loading a model does not need it: a missing file gives ``{}``
    and a damaged one ``{}`` with a logged warning, unless ``required`` (the report), when both
    are ModelFileErrors."""
    path = run_dir / SUMMARY
    if not path.is_file():
        if required:
            raise ModelFileError(
                f"{run_dir} has no {SUMMARY}: is it a finished ffnlp run directory?"
            )
        return {}
    try:
        return read_json(path)
    except ModelFileError as exc:
        if required:
            raise
        log.warning("%s; the model loads without it", exc)
        return {}


def write_lineage(run_dir: Path, lineage: dict[str, Any]) -> None:
    """``init_from.json``: where a continued run's first weights came from."""
    write_atomic(run_dir / LINEAGE, json.dumps(lineage, indent=2), within=run_dir)


def read_lineage(run_dir: Path) -> dict[str, Any] | None:
    """``init_from.json`` of ``run_dir`` (None when the run was trained from scratch); a file
    without the earlier run's folder is a ModelFileError."""
    path = run_dir / LINEAGE
    if not path.is_file():
        return None
    lineage = read_json(path)
    if not isinstance(lineage.get("run"), str):
        raise ModelFileError(
            f'{path} is corrupted: "run" must be the folder of the run it continued'
        )
    return lineage


def run_task(run_dir: Path) -> str | None:
    """The task that made ``run_dir``: model.json's ``task``, else the task whose configuration
    has the top-level sections of config.toml; None when neither says."""
    if (run_dir / ARCH).is_file():
        task = read_arch(run_dir)["task"]
        return str(task)
    return _config_task(run_dir / CONFIG)


def _config_task(path: Path) -> str | None:
    """The one task whose configuration has every top-level section of the TOML file ``path``."""
    if not path.is_file():
        return None
    try:
        keys = set(cfgmod.load_toml(path))
    except ConfigError:
        return None
    matches = [task for task, cls in _task_configs().items() if keys and keys <= _fields(cls)]
    return matches[0] if len(matches) == 1 else None


def commands_of(task: str) -> str | None:
    """ "ffnlp lm eval/generate": the commands that read a run of ``task`` (None: unknown)."""
    spec = registry.find(task)
    return spec.command_line if spec is not None else None


def expect_task(run_dir: str | Path, arch: dict[str, Any], task: str) -> None:
    """Refuse a run of another task (``arch``: its model.json), naming the commands that read
    it."""
    found = arch["task"]
    if found == task:
        return
    commands = commands_of(found)
    if commands is not None:
        raise ModelFileError(
            f"{run_dir} is {a_run(found)}, not {a_run(task)}; use {commands} with it "
            "(in Python: ffnlp.load(run_dir))"
        )
    raise ModelFileError(
        f"{Path(run_dir) / ARCH} names the task {found!r}, which this ffnlp does not know "
        f"(known: {', '.join(registry.names())}); was it written by a newer ffnlp?"
    )


def expect_run_of(run_dir: Path, task: str) -> None:
    """Refuse to resume (or read) ``run_dir`` as a ``task`` run when it is a run of another."""
    found = run_task(run_dir)
    if found is not None and found != task:
        commands = commands_of(found) or f"ffnlp {found}"
        raise ModelFileError(
            f"{run_dir} is {a_run(found)}, not {a_run(task)}; use {commands} with it (resume it "
            f"with ffnlp {found} train --resume {run_dir})"
        )


def _task_configs() -> dict[str, type]:
    return {spec.name: spec.config for spec in registry.specs()}


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}
