"""Reading an `ffnlp tune` study folder back for its report.

A study folder (the ``--out`` of ``ffnlp tune``) holds tune.json (``"kind": "study"``, the task,
the metric and its direction, the storage), trials.csv, best.toml, and one run folder per trial
under ``trials/NNNN/``. The trials are read from the study's Optuna storage when Optuna is
installed and the storage can be opened (it is the record: it also holds the trials still running
and the values each trial reported while it trained); otherwise from trials.csv, with each trial's
learning curve taken from its own metrics.jsonl. Only the parameter importances need Optuna.

The storage read is the folder's own study.db, or the one the user names (``ffnlp report DIR
--storage URL``): never the URL tune.json holds, which a copied or crafted folder may point at
any database (opening one with Optuna creates its tables there). An SQLite file is only opened
when it exists and already holds an Optuna study.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.folders.folder import read_json
from ffnlp.folders.layout import METRICS, RESCORE_JSON, STUDY_DB, TRIALS_CSV, TUNE_JSON
from ffnlp.report.fields import check_rescore, check_tune, read_records
from ffnlp.report.page import own_file
from ffnlp.training.history import History
from ffnlp.tune.storage import opened, parse

INSTALL_TUNE = "pip install 'ffnlp[tune]'"
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass(frozen=True)
class StudyTrial:
    """One trial as the report needs it."""

    number: int
    state: str  # one of STATES
    value: float | None  # the objective; None unless COMPLETE (Optuna gives a pruned trial its
    # last reported value: the curve has it)
    seconds: float | None
    params: dict[str, Any]
    run_dir: Path | None  # its run folder, when the study folder holds it
    intermediate: dict[int, float] = field(default_factory=dict)  # step -> reported value
    distributions: dict[str, Any] = field(default_factory=dict)  # Optuna's, when read from it


@dataclass
class StudyFolder:
    """A study folder's settings (tune.json) and trials."""

    folder: Path
    info: dict[str, Any]
    trials: list[StudyTrial]
    source: str  # where the trials were read from: "storage" or "trials.csv"
    notes: list[str]  # what the reader could not do, for the page
    wall_seconds: float | None = None  # first trial start to last trial end (storage only)
    # rescore.json: the front-runners re-scored with fresh seeds, and the trial chosen
    rescore: dict[str, Any] | None = None

    @property
    def metric(self) -> str:
        return str(self.info.get("metric", ""))

    @property
    def direction(self) -> str:
        return "minimize" if self.info.get("direction") == "minimize" else "maximize"

    @property
    def complete(self) -> list[StudyTrial]:
        return [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]

    @property
    def best(self) -> StudyTrial | None:
        """The trial the re-scoring chose, else the complete trial with the best value."""
        done = self.complete
        if not done:
            return None
        chosen = (self.rescore or {}).get("best")
        for t in done:
            if t.number == chosen:
                return t
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda t: t.value if t.value is not None else math.nan)

    def ranked(self) -> list[StudyTrial]:
        """The complete trials, best first."""
        return sorted(
            self.complete,
            key=lambda t: t.value if t.value is not None else math.nan,
            reverse=self.direction == "maximize",
        )

    def param_names(self) -> list[str]:
        """Every parameter that some trial set, in the order they first appear."""
        return list(dict.fromkeys(k for t in self.trials for k in t.params))

    def log_params(self) -> set[str]:
        """The parameters sampled on a log scale (Optuna's distribution, else the space file's spec)."""
        logged = {
            name
            for t in self.trials
            for name, d in t.distributions.items()
            if getattr(d, "log", False)
        }
        space = self.info.get("space")
        if isinstance(space, dict):
            logged |= {k for k, v in space.items() if isinstance(v, dict) and v.get("log") is True}
        return logged


def is_study(folder: Path) -> bool:
    """Whether ``folder`` is a study folder: a tune.json of its own with ``"kind": "study"``."""
    path = folder / TUNE_JSON
    if not own_file(folder, path):
        return False
    return check_tune(read_json(path), path).get("kind") == "study"


def optuna_module() -> ModuleType | None:
    """Optuna, or None when it is not installed (it is the optional extra ``tune``)."""
    try:
        import optuna
    except ImportError:
        return None
    return optuna


@contextmanager
def quiet_optuna(optuna: ModuleType) -> Iterator[None]:
    """Optuna without its INFO lines on stderr and its experimental warnings (the report prints
    nothing; the tests turn warnings into errors)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def read_study(folder: Path, storage: str | None = None) -> StudyFolder:
    """The study in ``folder``: from its Optuna storage when possible, else from trials.csv.

    The storage is ``storage`` when given (an error when it cannot be read), else the folder's
    own study.db (trials.csv when it cannot be read). Neither readable: a ConfigError naming the
    extra to install when Optuna is missing, else a ModelFileError naming the files."""
    info = check_tune(read_json(folder / TUNE_JSON), folder / TUNE_JSON)
    rescore = _rescore_table(folder)
    notes: list[str] = []
    optuna = optuna_module()
    loaded: tuple[list[StudyTrial], float | None] | None = None
    if storage is not None:
        if optuna is None:
            raise ConfigError(
                f"--storage {storage}: reading a study's storage needs Optuna, an optional "
                f"dependency: {INSTALL_TUNE}"
            )
        _check_sqlite(storage, "--storage")
        try:
            loaded = _from_storage(optuna, folder, info, storage)
        except Exception as exc:  # any back-end's error
            raise ConfigError(
                f"--storage {storage} could not be read ({_first_line(exc)}); give the storage "
                "URL the study was run with (`ffnlp tune --storage`)"
            ) from None
    elif optuna is not None and own_file(folder, folder / STUDY_DB):
        own = f"sqlite:///{(folder / STUDY_DB).resolve()}"
        try:
            _check_sqlite(own, str(folder / STUDY_DB))
            loaded = _from_storage(optuna, folder, info, own)
        except Exception as exc:  # any back-end's error: the CSV is the fallback
            notes.append(f"the study's storage {own} could not be read ({_first_line(exc)}).")
    csv_path = folder / TRIALS_CSV
    if loaded is not None:
        trials, wall = loaded
        return StudyFolder(folder, info, trials, "storage", notes, wall, rescore)
    if not own_file(folder, csv_path):
        if optuna is None:
            raise ConfigError(
                f"{folder} has no {TRIALS_CSV}, and reading the trials from the study's Optuna "
                f"storage needs Optuna, an optional dependency: {INSTALL_TUNE}"
            )
        raise ModelFileError(
            f"{folder} has no {TRIALS_CSV} and no readable {STUDY_DB}"
            + (f" ({notes[-1].rstrip('.')})" if notes else "")
            + "; give the study's storage with --storage URL, or rerun the same `ffnlp tune` "
            "command to continue the study"
        )
    if optuna is None:
        notes.append(
            f"Optuna is not installed: the trials come from {TRIALS_CSV}, and the parameter "
            f"importances need it ({INSTALL_TUNE})."
        )
    else:
        notes.append(f"The trials come from {TRIALS_CSV}.")
    trials = _from_csv(folder, info, csv_path)
    return StudyFolder(folder, info, trials, TRIALS_CSV, notes, rescore=rescore)


def _first_line(exc: BaseException) -> str:
    """An exception's message as one line (SQLAlchemy's run to a dozen)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _rescore_table(folder: Path) -> dict[str, Any] | None:
    """rescore.json when the folder has one, checked (a ModelFileError naming the field)."""
    path = folder / RESCORE_JSON
    if not own_file(folder, path):
        return None
    return check_rescore(read_json(path), path)


def _check_sqlite(url: str, name: str) -> None:
    """An SQLite storage must be an existing file that holds an Optuna study: Optuna opening
    any other file (or a missing one) would create its tables there."""
    if url.startswith("journal:"):  # Optuna would create a missing journal file
        if not Path(url[len("journal:") :]).is_file():
            raise ConfigError(f"{name}: {url} names no journal file; give the study's storage")
        return
    if not url.startswith("sqlite:///"):
        return
    path = Path(url[len("sqlite:///") :])
    if url == "sqlite:///:memory:" or not path.is_file():
        raise ConfigError(f"{name}: {url} names no SQLite file; give the study's storage")
    import sqlite3

    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            found = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"{name}: {path} is not an SQLite database ({exc})") from None
    if found is None:
        raise ConfigError(f"{name}: {path} holds no Optuna study (no table 'studies')")


def _from_storage(
    optuna: ModuleType, folder: Path, info: dict[str, Any], storage: str
) -> tuple[list[StudyTrial], float | None]:
    with quiet_optuna(optuna), opened(parse(storage, folder)) as reader:  # a journal file too
        study = optuna.load_study(study_name=info.get("study_name"), storage=reader)
        frozen = study.get_trials(deepcopy=False)
    trials = []
    for t in frozen:
        attrs = t.user_attrs
        seconds = attrs.get("seconds")
        if not isinstance(seconds, (int, float)) and t.duration is not None:
            seconds = t.duration.total_seconds()
        run_dir = _trial_dir(folder, attrs.get("run_dir"), t.number)
        trials.append(
            StudyTrial(
                number=t.number,
                state=t.state.name,
                value=float(t.value)
                if t.value is not None and t.state.name == "COMPLETE"
                else None,
                seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
                params=dict(t.params),
                run_dir=run_dir,
                intermediate={int(k): float(v) for k, v in sorted(t.intermediate_values.items())},
                distributions=dict(t.distributions),
            )
        )
    starts = [t.datetime_start for t in frozen if t.datetime_start is not None]
    ends = [t.datetime_complete for t in frozen if t.datetime_complete is not None]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return trials, wall


def _trial_dir(folder: Path, relative: object, number: int) -> Path | None:
    """The trial's run folder inside the study folder (user attr "run_dir", else trials/NNNN);
    None when it is missing or would lead out of the folder."""
    name = relative if isinstance(relative, str) and relative else f"trials/{number:04d}"
    path = folder / name
    if path.is_symlink() or not path.is_dir():
        return None
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return path


def _from_csv(folder: Path, info: dict[str, Any], path: Path) -> list[StudyTrial]:
    metric = str(info.get("metric", ""))
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelFileError(f"{path} cannot be read ({exc}); the file is damaged") from None
    trials = []
    for i, row in enumerate(rows, start=2):
        try:
            number = int(row["number"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(
                f"{path} line {i}: no trial number (columns: {', '.join(row)})"
            ) from None
        state = str(row.get("state") or "").upper().removeprefix("TRIALSTATE.")
        run_dir = _trial_dir(folder, None, number)
        trials.append(
            StudyTrial(
                number=number,
                state=state if state in STATES else "FAIL",
                value=_number(row.get("value")) if state == "COMPLETE" else None,
                seconds=_number(row.get("seconds")),
                params={
                    k[len("params_") :]: _cell(v)
                    for k, v in row.items()
                    if k and k.startswith("params_") and v not in (None, "")
                },
                run_dir=run_dir,
                intermediate=_curve(run_dir, metric) if run_dir is not None else {},
            )
        )
    return sorted(trials, key=lambda t: t.number)


def _curve(run_dir: Path, metric: str) -> dict[int, float]:
    """step -> the metric at each dev evaluation, from the trial's metrics.jsonl ({} without it)."""
    path = run_dir / METRICS
    if not metric or not own_file(run_dir, path):
        return {}
    curve = {}
    for r in read_records(path):
        if isinstance(r.get("step"), int):
            value = History.value(r, metric)
            if value is not None and math.isfinite(value):
                curve[r["step"]] = value
    return curve


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _cell(text: str) -> Any:
    """A parameter as written in trials.csv: an int or a float when it reads as one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def param_importances(study: StudyFolder) -> tuple[dict[str, float] | None, str]:
    """Each parameter's share of the objective's variance (Optuna's fANOVA evaluator, seeded),
    most important first, and "" -- or None and a sentence saying why there are none."""
    optuna = optuna_module()
    if optuna is None:
        return None, f"Parameter importances need Optuna, an optional dependency: {INSTALL_TUNE}."
    done = study.complete
    if len(done) < 2:
        return None, (
            f"Parameter importances need at least two complete trials; this study has {len(done)}."
        )
    inferred = _distributions(optuna, done, study.log_params())
    try:
        with quiet_optuna(optuna):
            memory = optuna.create_study(direction=study.direction)
            for t in done:
                space = t.distributions or inferred
                params = {
                    k: str(v)
                    if isinstance(space[k], optuna.distributions.CategoricalDistribution)
                    and not t.distributions
                    else v
                    for k, v in t.params.items()
                    if k in space
                }
                memory.add_trial(
                    optuna.trial.create_trial(
                        params=params,
                        distributions={k: space[k] for k in params},
                        value=t.value,
                    )
                )
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            found = optuna.importance.get_param_importances(memory, evaluator=evaluator)
    except Exception as exc:  # too few distinct trials, an optional back-end missing, ...
        return None, f"Optuna could not compute the parameter importances ({exc})."
    if not found:
        return None, "No parameter varied over the complete trials: nothing to rank."
    return {str(k): float(v) for k, v in found.items()}, ""


def _distributions(
    optuna: ModuleType, trials: list[StudyTrial], logged: set[str]
) -> dict[str, Any]:
    """Distributions for trials read from trials.csv: the range each parameter took (int or
    float, on a log scale where the space says so) or the set of values it took."""
    dist = optuna.distributions
    space: dict[str, Any] = {}
    names = dict.fromkeys(k for t in trials for k in t.params)
    for name in names:
        seen = [t.params[name] for t in trials if name in t.params]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            log = name in logged and min(seen) > 0
            kind = (
                dist.IntDistribution
                if all(isinstance(v, int) for v in seen)
                else dist.FloatDistribution
            )
            space[name] = kind(min(seen), max(seen), log=log)
        else:
            space[name] = dist.CategoricalDistribution(sorted({str(v) for v in seen}))
    return space
