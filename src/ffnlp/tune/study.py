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
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp.errors import ConfigError, FfnlpError, Interrupted
from ffnlp.fileio import write_atomic
from ffnlp.tune import storage
from ffnlp.tune.objective import Plan, TrialFailed, completed_any, objective, run_dir_of
from ffnlp.tune.prepare import TuneOptions, prepare

if TYPE_CHECKING:
    import optuna

    from ffnlp.training.callbacks import Callback

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: setting up a study is not locked
    fcntl = None  # type: ignore[assignment]

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
    with contextlib.ExitStack() as held:
        with _setup_lock(out):
            _check_folder(out, meta)
            held.enter_context(storage.worker_mark(where, out))
            opened = held.enter_context(storage.opened(where, options.heartbeat, options.retries))
            study = _open_study(options, meta, opened, where.shown)
            if options.base_trial and not study.get_trials(deepcopy=False):
                meta["base_trial"] = _enqueue_base(study, plan, meta["base"])
            _write_meta(out, meta)
        if on_start is not None:
            on_start(meta)
        return _run(study, plan, options, meta, on_trial, callbacks)


def _run(
    study: optuna.study.Study,
    plan: Plan,
    options: TuneOptions,
    meta: dict[str, Any],
    on_trial: Callable[[TrialLine], None] | None,
    callbacks: Sequence[Callback],
) -> dict[str, Any]:
    from ffnlp.tune import results

    out = plan.out
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


def _fail_stale(study: optuna.study.Study) -> None:
    """Fail the running trials of dead workers (their heartbeat too old), queueing each again
    (``--retries``)."""
    import optuna

    with storage.quiet_experimental():
        optuna.storages.fail_stale_trials(study)


# ------------------------------------------------------------------------ folder and storage


@contextlib.contextmanager
def _setup_lock(out: Path, name: str = ".tune.lock") -> Iterator[None]:
    """Workers starting together set the folder and the storage up one at a time (and workers
    ending together re-score one at a time: ``name`` ".rescore.lock")."""
    out.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(out / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_folder(out: Path, meta: dict[str, Any]) -> None:
    """A new study needs an empty (or new) folder; a continued one, the same study."""
    path = out / "tune.json"
    if not path.is_file():
        others = [p.name for p in out.iterdir() if not p.name.startswith(".")]
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
    write_atomic(out / "tune.json", json.dumps(meta, indent=2, default=str))


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
    except (ValueError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise ConfigError(
            f"--storage {url}: cannot open the study there ({type(exc).__name__}: {exc})"
        ) from None
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

    with _setup_lock(plan.out, ".rescore.lock"):
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
        key=lambda t: float(t.value),  # type: ignore[arg-type]
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
        "config": "best.toml",
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
