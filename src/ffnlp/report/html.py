"""report.html: a self-contained page (plots embedded) describing a folder ffnlp made: a run, a
group of runs or a tuning study."""

from __future__ import annotations

from pathlib import Path

from ffnlp.errors import ConfigError
from ffnlp.folders.folder import run_path
from ffnlp.report.group import write_run_report
from ffnlp.report.runpage import write_page
from ffnlp.report.study import study_page
from ffnlp.report.studyfolder import is_study, read_study


def write_report(
    run_dir: str | Path, out: str | Path | None = None, storage: str | None = None
) -> Path:
    """Write the HTML report of a folder ffnlp made: ``DIR/report.html`` (or ``out``).

    The folder is a run, a group of runs of one configuration (``ffnlp repeat``, ``ffnlp
    classify cv``: its summary.json says so, see :mod:`ffnlp.report.group`) or an ``ffnlp tune``
    study (its tune.json says so, see :mod:`ffnlp.report.study`). Only the folder's own files are
    read (no symbolic link is followed), and no database a file names is opened: a study's
    trials come from its own study.db, else from ``storage`` when given (the Optuna storage URL
    the study was run with), else from trials.csv. A damaged file is a ModelFileError naming it
    and the field."""
    run_dir = run_path(run_dir)
    if is_study(run_dir):
        return write_page(
            run_dir,
            out,
            lambda page: study_page(read_study(run_dir, storage), page),
            f"{run_dir / 'tune.json'}, trials.csv or a trial's files do not hold what ffnlp "
            "tune writes",
        )
    if storage is not None:
        raise ConfigError(
            f"--storage is for a study folder (an `ffnlp tune --out` folder with a tune.json); "
            f"{run_dir} is not one"
        )
    return write_run_report(run_dir, out)
