"""A run written under torchrun with ``--max-restarts``: which job writes it, and the partial run
an earlier attempt of the same job left, which a restarted attempt continues as ``--resume``
would (see :func:`ffnlp.tasks.run.start_run`); and the marker of an interrupted run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ffnlp.fileio import write_atomic
from ffnlp.folders.layout import CONFIG, JOB_FILE, MARKER
from ffnlp.folders.transaction import orphaned, resumable


def torchrun_job() -> dict[str, Any] | None:
    """Who this process is, where torchrun may restart it (``--max-restarts`` > 0): the job's
    rendezvous id, this machine, and the torchrun process that starts the workers again (the
    same for every attempt of one job). None otherwise."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    restarts = os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")
    if not run_id or not restarts.isdigit() or int(restarts) == 0:
        return None
    import socket

    return {"run_id": run_id, "host": socket.gethostname(), "agent": os.getppid()}


def restart_count() -> int:
    """Which attempt of its torchrun job this process is (0: the first)."""
    text = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return int(text) if text.isdigit() else 0


def note_job(run_dir: Path) -> None:
    """Record in ``run_dir`` the torchrun job writing it (nothing outside a restartable job)."""
    job = torchrun_job()
    if job is not None:
        (run_dir / JOB_FILE).parent.mkdir(exist_ok=True)
        write_atomic(run_dir / JOB_FILE, json.dumps(job), within=run_dir)


def left_by_earlier_attempt(out: str | Path | None) -> Path | None:
    """The partial run that an earlier attempt of this torchrun job left for ``out`` (after a
    rank died, torchrun started the workers again: ``TORCHELASTIC_RESTART_COUNT`` > 0), when it
    can be continued (it has a checkpoint): ``out`` kept as interrupted, or the hidden folder of
    a main process killed outright. None otherwise, and always for a first attempt, a run some
    other command wrote, or a job of another torchrun process (the job must match)."""
    job = torchrun_job()
    if job is None or restart_count() == 0 or out is None:
        return None
    final = Path(os.path.abspath(out))
    if final.exists():  # kept as interrupted when the main process stopped cleanly
        candidates = [final] if (final / MARKER).is_file() else []
    else:  # the main process was killed outright: its hidden folder, the newest first
        candidates = sorted(orphaned(final), key=lambda o: o.stat().st_mtime, reverse=True)
    for folder in candidates:
        if not resumable(folder) or not (folder / CONFIG).is_file():
            continue
        try:
            wrote = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if wrote == job:
            return folder
    return None


def write_marker(run_dir: Path, info: dict[str, Any]) -> None:
    """Mark ``run_dir`` as interrupted (what stopped it, where); removed when it completes."""
    write_atomic(run_dir / MARKER, json.dumps(info, indent=2), within=run_dir)
