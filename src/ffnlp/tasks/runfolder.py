"""Reading a run folder back where it takes knowing the tasks: which task made a run, its
config.toml resolved with that task's defaults, and the commands that read a run of another task.

The files themselves are named, read and checked by :mod:`ffnlp.folders` (the folder's owner);
these functions add what the task registry knows:

- :func:`read_config`: config.toml, resolved with the task's defaults;
- :func:`run_task`: the task that made a run, from model.json or else from config.toml's
  sections (an interrupted run has no model.json yet), for ``--resume``;
- :func:`expect_task` / :func:`expect_run_of`: refuse a run of another task, naming the
  commands that read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.folders.folder import a_run, read_arch
from ffnlp.folders.layout import ARCH, CONFIG
from ffnlp.tasks import registry

C = TypeVar("C")


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
