"""The study: options checked, the folder and its storage opened, trials run, results written.

``tune(options)`` is ``ffnlp tune`` without the terminal. Before the first trial it checks
everything a user can get wrong (:mod:`ffnlp.tune.prepare`: the data options of the task, the
space against the task's configuration, the metric), so that a study never fails at trial 12 for
a typo. The study lives
in an Optuna storage: ``DIR/study.db`` (SQLite) unless ``--storage`` names another (a journal
file, a PostgreSQL database: :mod:`ffnlp.tune.storage`); running the same command again
continues it (its trials keep their numbers), and several processes may run on one study at
once, each drawing its own trials, until each has run ``--trials`` or the study holds
``--total-trials``. A worker that dies mid-trial (SIGKILL, a lost machine) stops beating its
heartbeat; the next worker to start a trial marks that trial failed, removes what it left and
queues it again (``--retries``), and nothing else is lost.

The folder follows a fixed layout (tune.json, study.db, trials/NNNN/, trials.csv, best.toml,
best/, seeds/): see docs/tuning.md.
"""

# Over 350 lines on purpose: opening the folder and the storage, the session's loop and its end
# are one sequence; each step is a function.

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp.errors import ConfigError, FfnlpError, Interrupted, OutputError
from ffnlp.fileio import (
    is_disk_full,
    make_folders,
    remove_made,
    write_atomic,
)
from ffnlp.folders import layout
from ffnlp.folders.layout import (
    BEST_TOML,
    RESCORE_LOCK,
    TUNE_JSON,
    TUNE_LOCK,
)
from ffnlp.folders.lock import hold, let_go
from ffnlp.tune import storage
from ffnlp.tune.objective import (
    Plan,
    TrialFailed,
    completed_any,
    objective,
    run_dir_of,
    search_value,
)
from ffnlp.tune.prepare import TuneOptions, prepare

if TYPE_CHECKING:
    import optuna

    from ffnlp.training.callbacks import Callback

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0  # seconds, when neither --trials nor --timeout is given (fastText's)
MISSING_OPTUNA = "ffnlp tune needs Optuna: pip install 'ffnlp[tune]'"
FAILURES_IN_A_ROW = 5  # a session stops when its trials fail this many times in a row
# what must be the same when a study is continued
SAME_ON_RESUME = ("task", "metric", "direction", "space", "base", "scored_on", "cv", "trial_seeds")
# what a study from before a setting existed had (its tune.json lacks the key)
BEFORE_THE_SETTING = {"trial_seeds": 1}


@dataclass(frozen=True)
class TrialLine:
    """What a display shows of a finished trial."""

    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None
    params: dict[str, Any]
    seconds: float | None
    best_number: int | None
    best_value: float | None
    note: str  # why it was pruned or failed ("" otherwise)


def require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise FfnlpError(MISSING_OPTUNA) from None


def tune(
    options: TuneOptions,
    on_trial: Callable[[TrialLine], None] | None = None,
    callbacks: Sequence[Callback] = (),
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or continue) a study; write its folder; return what the CLI prints. ``on_start``
    gets tune.json's content once the options are checked and the folder is set up."""
    require_optuna()
    plan, meta = prepare(options)
    plan.callbacks = list(callbacks)
    out = plan.out
    where = storage.parse(options.storage, out)
    with contextlib.ExitStack() as held:  # the storage's connections, this worker's mark
        study = _set_up(out, options, plan, meta, where, held)
        if on_start is not None:
            on_start(meta)
        with _storage_errors(meta):
            return _run(study, plan, options, meta, callbacks, on_trial)


def _run(
    study: optuna.study.Study,
    plan: Plan,
    options: TuneOptions,
    meta: dict[str, Any],
    callbacks: Sequence[Callback],
    on_trial: Callable[[TrialLine], None] | None,
) -> dict[str, Any]:
    """The session's trials, the re-scoring, the tables, the refit and the seeds."""
    out = plan.out
    from ffnlp.tune import results

    _fail_stale(study)
    results.remove_debris(study, out)
    session = _Session(plan, options, on_trial)
    if options.trials != 0:
        timeout = options.timeout
        if options.trials is None and timeout is None and options.total_trials is None:
            timeout = DEFAULT_TIMEOUT
        plan.end = time.monotonic() + timeout if timeout is not None else None
        plan.deadline = plan.end
        session.leave_time_for_rescoring(study)
        try:
            session.search(study)
        except (Interrupted, KeyboardInterrupt):
            results.remove_debris(study, out)  # the interrupted trial, failed
            results.write_tables(study, plan)
            raise
        session.raise_if_stuck()
    if plan.rescore:
        _rescore(study, plan, callbacks)
    results.write_tables(study, plan)
    results.apply_keep(study, out, options.keep)
    results.remove_debris(study, out)
    return _finish(study, plan, options, meta, callbacks)


# ------------------------------------------------------------------------ folder and storage


def _fail_stale(study: optuna.study.Study) -> None:
    """Fail the running trials of dead workers (their heartbeat too old), queueing each again
    (``--retries``)."""
    import optuna

    with storage.quiet_experimental():
        optuna.storages.fail_stale_trials(study)


class StudyLock:
    """``DIR/.tune.lock`` (or ``.rescore.lock``), held with ``flock`` while a worker sets the
    folder and the storage up (or re-scores): workers starting together take turns. The holder
    removes the file when it lets go (so that no lock is left behind, after a failure either);
    a worker that locked a file removed meanwhile locks the new one instead."""

    def __init__(self, out: Path, name: str = TUNE_LOCK, made: list[Path] | None = None):
        self.path = out / name
        self.fd: int | None = None
        self.made = made  # folders made for the study: the folder again, if it went meanwhile

    def acquire(self) -> None:
        self.fd = hold(self.path, remake=self._remake)

    def _remake(self) -> bool:
        """A worker whose setting up failed removed the new folder while we waited: make it
        again (True), unless it was not made for this study or is there (False)."""
        if self.made is None or self.path.parent.exists():
            return False
        self.made += make_folders(self.path.parent, self.path)
        return True

    def release(self) -> None:
        if self.fd is not None:
            let_go(self.path, self.fd)
            self.fd = None


@contextlib.contextmanager
def _setup_lock(out: Path, name: str = TUNE_LOCK) -> Iterator[None]:
    """Workers ending together re-score one at a time (``name`` :data:`~ffnlp.folders.layout.RESCORE_LOCK`); the study
    folder exists by then."""
    lock = StudyLock(out, name)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _set_up(
    out: Path,
    options: TuneOptions,
    plan: Plan,
    meta: dict[str, Any],
    where: storage.Storage,
    held: contextlib.ExitStack,
) -> optuna.study.Study:
    """Make the folder (when new), open the study in its storage (made when new), enqueue the
    base trial of a new study and write tune.json, one worker at a time. A failure at any step
    removes what this step made (the folder, study.db, the lock) and leaves a study that was
    there as it was, so that the same command can be run again."""
    made = make_folders(out, out / TUNE_JSON)
    lock = StudyLock(out, made=made)
    database = _sqlite_file(meta["storage"])
    created: list[Path] = []
    try:
        lock.acquire()
        _check_folder(out, meta)
        _check_parts(out)
        if database is not None:
            if database.is_symlink():
                raise OutputError(
                    f"{database} is a symbolic link; ffnlp does not write through links (it "
                    "could overwrite a file elsewhere). Remove the link and try again"
                )
            if not database.exists():
                created = [database, *_sqlite_companions(database)]
        marked = not (out / layout.WORKERS_LOCK).exists()
        held.enter_context(storage.worker_mark(where, out))
        with _storage_errors(meta, setting_up=True):
            opened = held.enter_context(storage.opened(where, options.heartbeat, options.retries))
            study = _open_study(options, meta, opened, where.shown)
            if options.base_trial and not study.get_trials(deepcopy=False):
                meta["base_trial"] = _enqueue_base(study, plan, meta["base"])
        _write_meta(out, meta)
    except BaseException:
        held.close()  # the connections closed, this worker's mark let go, before the removal
        if locals().get("marked"):
            with contextlib.suppress(OSError):
                (out / layout.WORKERS_LOCK).unlink(missing_ok=True)
        if created:
            _dispose_engine(locals().get("study"))
            for path in created:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
        lock.release()
        remove_made(made)
        raise
    lock.release()
    return study


def _check_parts(out: Path) -> None:
    """What the study writes as it goes (the tables, trials/, best/): never through a link, and
    a file where a folder goes (or the reverse) is said before the first trial, not after it."""
    for name in layout.STUDY_PARTS:
        path = out / name
        if path.is_symlink():
            raise OutputError(
                f"{path} is a symbolic link; ffnlp does not write through links in a study "
                "folder (it could overwrite files elsewhere). Remove the link and try again"
            )
        folder = name in layout.STUDY_FOLDERS
        if path.exists() and path.is_dir() != folder:
            raise OutputError(
                f"{path} should be a {'folder' if folder else 'file'} of the study, and is not; "
                f"move it away and try again"
            )


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite storage URL (None for another database)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def _sqlite_companions(database: Path) -> list[Path]:
    """The files SQLite keeps beside a database while writing it (journal, write-ahead log)."""
    return [database.with_name(database.name + end) for end in ("-journal", "-wal", "-shm")]


def _dispose_engine(study: Any) -> None:
    """Close the storage's connections (before its file is removed)."""
    engine = getattr(getattr(study, "_storage", None), "engine", None)
    if engine is not None:
        with contextlib.suppress(Exception):
            engine.dispose()


@contextlib.contextmanager
def _storage_errors(meta: dict[str, Any], setting_up: bool = False) -> Iterator[None]:
    """The storage failing (a full disk, a lost database server) as one line naming it, rather
    than SQLAlchemy's statement, parameters and link."""
    import optuna
    import sqlalchemy.exc

    try:
        yield
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        raise storage_error(exc, meta["storage"], setting_up) from None


def storage_error(exc: BaseException, url: str, setting_up: bool = False) -> FfnlpError:
    """One line for a failure of the study's storage ``url`` (while the study is set up: what
    the setting up made is removed; later: the finished trials are kept)."""
    kept = "nothing was left behind" if setting_up else "the finished trials are kept"
    text, full = _storage_failure(exc)
    if full:
        database = _sqlite_file(url)
        where = database if database is not None else url
        return OutputError(
            f"no space left on the device to write the study's storage {where} ({text}); free "
            f"some space and run the same command again ({kept})"
        )
    return FfnlpError(
        f"the study's storage {url} failed: {text}; check it (or another --storage) and run "
        f"the same command again ({kept})"
    )


def _storage_failure(exc: BaseException) -> tuple[str, bool]:
    """The first line of what the database driver said under ``exc`` (SQLAlchemy's ``orig``,
    Optuna's cause), and whether it says the disk is full."""
    cause: BaseException = exc
    while True:
        inner = getattr(cause, "orig", None) or cause.__cause__
        if not isinstance(inner, BaseException) or inner is cause:
            break
        cause = inner
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    full = "database or disk is full" in text or is_disk_full(cause) or is_disk_full(exc)
    return text, full


def _check_folder(out: Path, meta: dict[str, Any]) -> None:
    """A new study needs an empty (or new) folder; a continued one, the same study."""
    path = out / TUNE_JSON
    if not path.is_file():
        # a study.db without tune.json: a worker killed while it set the study up (a failure
        # there removes it); the study in it is continued
        own_db = () if meta["storage_given"] else layout.STUDY_DB_FILES
        others = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        others = [name for name in others if name not in own_db]
        if others:
            raise ConfigError(
                f"--out {out} holds other files ({', '.join(sorted(others)[:3])}) and no "
                "study (tune.json); choose a new or empty folder"
            )
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); is {out} a study folder?") from None
    changed = [
        (key, before, now)
        for k in SAME_ON_RESUME
        for key, before, now in _differences(
            k, old.get(k, BEFORE_THE_SETTING.get(k)), meta.get(k), 1 if k == "space" else 9
        )
    ]
    if changed:
        details = "; ".join(
            f"{key}: {_short(before)} before, {_short(now)} now" for key, before, now in changed
        )
        raise ConfigError(
            f"--out {out} holds a study with other settings ({details}); continue it with the "
            "same options, or choose another --out for a new study"
        )
    same_storage = (
        old.get("storage") == meta["storage"]
        if meta["storage_given"]
        else not old.get("storage_given", False)  # DIR/study.db, wherever DIR is now
    )
    if not same_storage or old.get("study_name") != meta["study_name"]:
        raise ConfigError(
            f"--out {out} holds the study {old.get('study_name')!r} in {old.get('storage')}; "
            "continue it with the same --storage and --study-name (or none of them)"
        )


def _differences(key: str, before: Any, now: Any, depth: int) -> list[tuple[str, Any, Any]]:
    """(dotted key, before, now) of what differs; tables compared key by key, ``depth`` deep."""
    if isinstance(before, dict) and isinstance(now, dict) and depth > 0:
        return [
            item
            for k in sorted(set(before) | set(now), key=str)
            for item in _differences(f"{key}.{k}", before.get(k), now.get(k), depth - 1)
        ]
    return [] if _canonical(before) == _canonical(now) else [(key, before, now)]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _short(value: Any) -> str:
    text = _canonical(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _write_meta(out: Path, meta: dict[str, Any]) -> None:
    write_atomic(out / TUNE_JSON, json.dumps(meta, indent=2, default=str))


def _open_study(
    options: TuneOptions, meta: dict[str, Any], opened: optuna.storages.BaseStorage, url: str
) -> optuna.study.Study:
    import optuna
    import sqlalchemy.exc

    from ffnlp.tune.pruning import make_pruner
    from ffnlp.tune.sampling import TrialSeededTPE

    try:
        with storage.quiet_experimental():
            study = optuna.create_study(
                storage=opened,
                study_name=meta["study_name"],
                sampler=TrialSeededTPE(options.seed),
                pruner=make_pruner(options.pruner),
                direction=meta["direction"],
                load_if_exists=True,
            )
    except (
        ImportError,
        ValueError,
        OSError,
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
    ) as exc:
        text, full = _storage_failure(exc)
        if full:
            raise storage_error(exc, url, setting_up=True) from None
        raise ConfigError(f"--storage {url}: cannot open the study there ({text})") from None
    if study.direction.name.lower() != meta["direction"]:
        raise ConfigError(
            f"the study {meta['study_name']!r} in {url} is to {study.direction.name.lower()} "
            f"its objective, and {meta['metric']} is to {meta['direction']}; choose another "
            "--study-name"
        )
    return study


def _enqueue_base(study: optuna.study.Study, plan: Plan, base: dict[str, Any]) -> dict[str, Any]:
    """A new study's first trial is the base configuration (its values of the tuned keys that
    the space can give; the others are drawn): the study starts from what the user has, and
    ends with it unless a trial does better. What tune.json records of it."""
    params, outside = plan.space.base_params(base)
    study.enqueue_trial(params, user_attrs={"base": True})
    if outside:
        logger.info(
            "trial 0 is the base configuration, except %s (its value is outside the space: drawn)",
            ", ".join(outside),
        )
    else:
        logger.info("trial 0 is the base configuration")
    return {"number": 0, "params": plan.space.decode(params), "drawn": outside}


# ------------------------------------------------------------------------------ the session


class _Session:
    """This process's part of the study: after each trial, the tables and the clean-up, the
    display, and a stop when trials keep failing."""

    def __init__(
        self, plan: Plan, options: TuneOptions, on_trial: Callable[[TrialLine], None] | None
    ) -> None:
        self.plan, self.options, self.on_trial = plan, options, on_trial
        self.failures_in_a_row = 0
        self.last_error = ""
        self.stuck = False
        self.ran = 0  # trials this process has run
        self.out_of_time = False

    def search(self, study: optuna.study.Study) -> None:
        """Run trials until this process has run --trials, the time budget is spent, or the
        study holds --total-trials. A worker that finds the study's budget met while other
        workers' trials are running waits for them: should one of those workers die, its trial
        is queued again (its heartbeat stops) and this worker runs it."""
        options, plan = self.options, self.plan
        while not (self.stuck or self.out_of_time):
            left = None if options.trials is None else options.trials - self.ran
            timeout = None if plan.end is None else plan.end - time.monotonic()
            if (left is not None and left <= 0) or (timeout is not None and timeout <= 0):
                return
            if not self.budget_left(study):
                if not _running(study):
                    return
                pause = float(options.heartbeat)
                time.sleep(pause if timeout is None else max(0.0, min(pause, timeout)))
                _fail_stale(study)
                continue
            try:
                study.optimize(
                    objective(plan),
                    n_trials=left,
                    timeout=timeout,
                    catch=(TrialFailed,),
                    callbacks=[self.after_trial],
                )
            except (Interrupted, KeyboardInterrupt):
                raise
            except Exception:
                if not self.taken_for_dead(study):
                    raise
                self.ran += 1
                continue
            if options.total_trials is None:
                return

    def taken_for_dead(self, study: optuna.study.Study) -> bool:
        """Whether this process's trial was failed by another worker while it ran (its
        heartbeat came late: a machine too busy, or stopped for a while): Optuna then refuses
        its result. Said with a warning; the study goes on (the trial's copy runs again)."""
        plan = self.plan
        if plan.current is None or plan.raised:
            return False
        try:
            trial = study.get_trials(deepcopy=False)[plan.current]
        except Exception:  # the storage cannot answer: the first error is the one to show
            return False
        if trial.state.name != "FAIL":
            return False
        shutil.rmtree(plan.out / run_dir_of(trial.number), ignore_errors=True)  # its run: dropped
        logger.warning(
            "trial %d was taken for dead by another worker (its heartbeat came more than "
            "2 x --heartbeat %d s late) and failed; its result is dropped, and a copy of it "
            "runs again (--retries). A busy machine needs a longer --heartbeat.",
            trial.number,
            self.options.heartbeat,
        )
        return True

    def budget_left(self, study: optuna.study.Study) -> bool:
        """Whether the study may start another trial under --total-trials: it holds fewer
        trials that completed, were pruned, run or wait than that, or a trial waits (a dead
        worker's, queued again)."""
        total = self.options.total_trials
        if total is None:
            return True
        trials = study.get_trials(deepcopy=False)
        if any(t.state.name == "WAITING" for t in trials):
            return True
        return sum(t.state.name != "FAIL" for t in trials) < total

    def leave_time_for_rescoring(self, study: optuna.study.Study) -> bool:
        """Move the search's deadline so that the re-scoring of the present front-runners fits
        in the time budget; whether that deadline has come (and a trial has completed)."""
        plan = self.plan
        if plan.end is None or not plan.rescore:
            return False
        from ffnlp.tune.rescore import seconds_needed

        plan.deadline = plan.end - seconds_needed(study, plan)
        return time.monotonic() >= plan.deadline and completed_any(study)

    def after_trial(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        from ffnlp.tune import results

        self.ran += 1
        if self.leave_time_for_rescoring(study):
            self.out_of_time = True
            study.stop()
        if self.options.total_trials is not None:
            _fail_stale(study)
            if not self.budget_left(study):
                study.stop()
        results.write_tables(study, self.plan)
        spare: list[int] = []
        if self.plan.rescore:
            from ffnlp.tune.rescore import candidates

            spare = [t.number for t in candidates(study, self.plan)]
        results.apply_keep(study, self.plan.out, self.options.keep, spare)
        if trial.state.name == "FAIL":
            self.failures_in_a_row += 1
            self.last_error = str(trial.user_attrs.get("error", "an error"))
            if self.failures_in_a_row >= FAILURES_IN_A_ROW:
                self.stuck = True
                study.stop()
        else:
            self.failures_in_a_row = 0
        if self.on_trial is not None:
            self.on_trial(trial_line(study, trial, self.plan))

    def raise_if_stuck(self) -> None:
        if self.stuck:
            raise ConfigError(
                f"the last {FAILURES_IN_A_ROW} trials all failed, the last one with: "
                f"{self.last_error}. Check the space and the base configuration."
            )


def _running(study: optuna.study.Study) -> bool:
    return any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False))


def _rescore(study: optuna.study.Study, plan: Plan, callbacks: Sequence[Callback]) -> None:
    """Re-score the front-runners (one worker at a time: the next reads what the first
    trained)."""
    from ffnlp.tune.rescore import rescore

    with _setup_lock(plan.out, RESCORE_LOCK):
        rescore(study, plan, callbacks)


def trial_line(study: optuna.study.Study, trial: optuna.trial.FrozenTrial, plan: Plan) -> TrialLine:
    from ffnlp.tune.results import best_trial

    best = best_trial(study)
    note = ""
    if trial.state.name == "FAIL":
        note = str(trial.user_attrs.get("error", ""))
    elif trial.state.name == "PRUNED":
        note = "time budget" if trial.user_attrs.get("stopped") == "timeout" else "pruned"
    again = storage.retried_from(trial)
    if again is not None:
        note = f"{note}; " if note else ""
        note += f"trial {again} again (its worker died)"
    return TrialLine(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=plan.space.decode(trial.params),
        seconds=trial.user_attrs.get("seconds"),
        best_number=best.number if best is not None else None,
        best_value=best.value if best is not None else None,
        note=note,
    )


def _finish(
    study: optuna.study.Study,
    plan: Plan,
    options: TuneOptions,
    meta: dict[str, Any],
    callbacks: Sequence[Callback],
) -> dict[str, Any]:
    """The study's outcome (what --json prints), after the refit and the seeds if asked."""
    from ffnlp.tune import results

    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    ranked = sorted(
        (t for t in trials if t.state.name == "COMPLETE" and t.value is not None),
        key=search_value,
        reverse=plan.direction == "maximize",
    )
    result: dict[str, Any] = {
        "dir": str(plan.out),
        "study_name": study.study_name,
        "storage": meta["storage"],
        "task": plan.task,
        "metric": plan.metric,
        "direction": plan.direction,
        "trial_seeds": plan.trial_seeds,
        "trials": len(trials),
        "states": states,
        "top": [
            {
                "number": t.number,
                "value": t.value,
                "seconds": t.user_attrs.get("seconds"),
                "params": plan.space.decode(t.params),
                "run_dir": run_dir_of(t.number),
            }
            for t in ranked[:10]
        ],
    }
    best = results.best_trial(study, plan.out)
    if best is None:
        if options.refit or options.seeds:
            raise ConfigError(
                "no trial has completed yet, so there is no best configuration to --refit or "
                "run over --seeds; run more trials (--trials / --timeout)"
            )
        return result
    result["best"] = {
        "number": best.number,
        "value": best.value,
        "params": plan.space.decode(best.params),
        "run_dir": run_dir_of(best.number),
        "config": BEST_TOML,
    }
    from ffnlp.tune.rescore import read_table

    table = read_table(plan.out)
    if table is not None:
        result["rescore"] = table
        chosen = next((r for r in table["candidates"] if r["number"] == best.number), None)
        if chosen is not None:
            result["best"].update(value=chosen["value"], seeds=len(chosen["values"]))
    if options.refit:
        result["refit"] = results.refit(best, plan, options.refit_on, callbacks)
    if options.seeds:
        result["seeds"] = results.seeds(best, plan, options.seeds, callbacks)
    return result
