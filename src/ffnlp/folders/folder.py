"""Reading a run folder back, every file checked, and writing its config.toml and summary.json.

A run folder is user input like any other: it may be half-copied, edited by hand, from another
task or another version, or crafted. Every failure here is a :class:`ModelFileError` that names
the file and what to do, and nothing outside the folder is ever read.

- :func:`read_arch`: model.json, checked (an object with a string task and type, object args);
- :func:`read_json`: any JSON object of a run;
- :func:`read_summary` / :func:`write_summary`: summary.json;
- :func:`write_config` / :func:`config_text`: config.toml, the one place it is written;
- :func:`write_lineage` / :func:`read_lineage`: ``init_from.json``, the earlier run a continued
  run (``--init-from``) started from.

What needs to know the tasks (which task a config.toml belongs to, which commands read a run)
is in :mod:`ffnlp.tasks.runfolder`, above this.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.fileio import as_named, write_atomic
from ffnlp.folders.layout import ARCH, CONFIG, LINEAGE, MARKER, SUMMARY

log = logging.getLogger(__name__)


def run_path(run_dir: object) -> Path:
    """A run directory given as str or PathLike; ConfigError for anything else."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise ConfigError(f"a run directory must be a path (str or pathlib.Path); got {run_dir!r}")
    return Path(run_dir)


def a_run(task: str) -> str:
    """ "a classify run", "an lm run"."""
    return f"{'an' if task[:1] in 'aeiloux' else 'a'} {task} run"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a run file; unreadable, not UTF-8, not JSON or not an object: a
    :class:`ModelFileError` naming the file and what to do."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{as_named(path)} cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelFileError(
            f"{as_named(path)} is corrupted (not UTF-8 at byte {exc.start}); retrain or restore the file"
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            f"{as_named(path)} is corrupted (not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}); "
            "retrain or restore the file"
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting too deep
        raise ModelFileError(
            f"{as_named(path)} is corrupted ({str(exc).split(':')[0] or 'nested too deeply'}); retrain or "
            "restore the file"
        ) from None
    if not isinstance(data, dict):
        raise ModelFileError(
            f"{as_named(path)} is corrupted (a JSON {type(data).__name__}, not an object); retrain or "
            "restore the file"
        )
    return data


def read_arch(run_dir: str | Path) -> dict[str, Any]:
    """model.json of ``run_dir``, checked: an object with a string ``task`` and ``type`` and an
    object ``args``; anything else is a :class:`ModelFileError` naming the file."""
    run_dir = run_path(run_dir)
    path = run_dir / ARCH
    if not run_dir.exists():
        raise ModelFileError(
            f"{as_named(run_dir)} does not exist; give the directory of a trained run"
        )
    if not run_dir.is_dir():
        raise ModelFileError(f"{as_named(run_dir)} is a file; give the directory of a trained run")
    if not path.is_file() and (run_dir / MARKER).is_file():
        raise ModelFileError(
            f"{as_named(run_dir)} is an interrupted run that has no model yet; continue its training "
            f"with --resume {as_named(run_dir)}"
        )
    if not path.is_file():
        raise ModelFileError(
            f"{as_named(run_dir)} is not an ffnlp run directory: {ARCH} is missing "
            "(train a model with --out DIR first)"
        )
    arch = read_json(path)
    problems = [
        f'"{key}" must be {kind}'
        for key, kind, ok in (
            ("task", "a string", isinstance(arch.get("task"), str)),
            ("type", "a string", isinstance(arch.get("type"), str)),
            ("args", "an object", isinstance(arch.get("args"), dict)),
        )
        if not ok
    ]
    if problems:
        raise ModelFileError(
            f"{as_named(path)} is corrupted: {'; '.join(problems)}; retrain or restore it"
        )
    return arch


def read_summary(run_dir: Path, required: bool = False) -> dict[str, Any]:
    """summary.json as a dict. Loading a model does not need it: a missing file gives ``{}``
    and a damaged one ``{}`` with a logged warning, unless ``required`` (the report), when both
    are ModelFileErrors."""
    path = run_dir / SUMMARY
    if not path.is_file():
        if required:
            raise ModelFileError(
                f"{as_named(run_dir)} has no {SUMMARY}: is it a finished ffnlp run directory?"
            )
        return {}
    try:
        return read_json(path)
    except ModelFileError as exc:
        if required:
            raise
        log.warning("%s; the model loads without it", exc)
        return {}


def has_summary(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a summary.json (a complete run, or a group's results)."""
    return (run_dir / SUMMARY).is_file()


def has_config(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a config.toml."""
    return (run_dir / CONFIG).is_file()


def write_summary(run_dir: Path, summary: Any) -> None:
    """summary.json of ``run_dir`` (a run's figures, or a group's)."""
    write_atomic(run_dir / SUMMARY, json.dumps(summary, indent=2), within=run_dir)


def config_text(cfg: Any) -> str:
    """config.toml's text for the resolved configuration ``cfg``."""
    return cfgmod.dump_toml(cfg)


def write_config(run_dir: Path, cfg: Any, unchanged_ok: bool = False) -> None:
    """config.toml of ``run_dir``: the resolved configuration ``cfg``, re-runnable. The one
    writer of the file. ``unchanged_ok``: leave a file that already says the same alone (a
    resumed run)."""
    path = run_dir / CONFIG
    text = config_text(cfg)
    if unchanged_ok and path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, text, within=run_dir)


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
            f'{as_named(path)} is corrupted: "run" must be the folder of the run it continued'
        )
    return lineage
