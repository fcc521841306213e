"""Where a study lives (``--storage``), and what keeps several workers on it honest.

Three kinds of storage:

- an SQLite file, ``sqlite:///PATH`` (the default: ``DIR/study.db``): one machine, a few workers
  at most. SQLite locks the whole file for each write, so workers wait on each other, and on a
  network file system its locks are unreliable; Optuna advises against it for parallel
  optimisation. A second worker on an SQLite study is warned, with the alternatives.
- a database server, ``postgresql://USER@HOST:PORT/DB`` (the driver is the ``postgres`` extra)
  or ``mysql+pymysql://USER@HOST:PORT/DB`` (the ``mysql`` extra): workers on any number of
  machines.
- a journal file, ``journal:PATH``: Optuna's JournalStorage, an append-only log, on one machine
  or on a file system that every worker mounts (NFS): no server to run.

Every worker beats a heartbeat for its running trial (``--heartbeat`` seconds: the database's
clock for a server, each machine's clock for a journal). A trial whose heartbeat is older than
twice that is a dead worker's: the next worker to start a trial marks it failed and queues a
copy of it (same parameters, a new number) that the next free worker runs, up to ``--retries``
times.

tune.json records the storage with any password hidden (``postgresql://user:***@host/db``):
give the password through ``PGPASSWORD`` or ``~/.pgpass`` to keep it off the command line.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp.errors import ConfigError, OutputError
from ffnlp.fileio import is_disk_full
from ffnlp.folders.layout import STUDY_DB, WORKERS_LOCK

if TYPE_CHECKING:
    import optuna

if sys.platform == "win32":  # pragma: no cover - Windows: no check for a second SQLite worker
    fcntl = None
else:
    import fcntl

logger = logging.getLogger(__name__)

JOURNAL = "journal:"
HEARTBEAT_KEY = "ffnlp:heartbeat"  # a journal trial's last heartbeat (seconds since the epoch)
# the back-ends of SQLAlchemy URLs ffnlp knows, with the extra that installs their driver and a
# driver to fall back on when the default one is absent
BACKENDS = {
    "postgresql": ("postgres", "PostgreSQL", ("psycopg", "psycopg2")),
    "mysql": ("mysql", "MySQL", ("mysqldb", "pymysql")),
}
SQLITE_WORKERS = (
    "SQLite locks the whole database for every write, so workers wait on each other (and may "
    "fail with 'database is locked'), and its locks are unreliable on a network file system; "
    "Optuna advises against SQLite for parallel optimisation. For several workers use "
    "--storage journal:PATH (one machine, or a file system every worker mounts) or "
    "--storage postgresql://USER@HOST/DB (any number of machines)"
)


@dataclass(frozen=True)
class Storage:
    """A parsed ``--storage``."""

    kind: str  # sqlite | postgresql | mysql | journal | other (another SQLAlchemy back-end)
    url: str  # what is opened: an SQLAlchemy URL (password included), or journal:ABSOLUTE_PATH
    shown: str  # what tune.json, the output and the messages show: the password hidden
    path: Path | None = None  # the file of an SQLite or journal storage


def parse(given: str | None, out: Path) -> Storage:
    """``--storage`` (None: ``DIR/study.db``) checked and parsed; a ConfigError saying what is
    wrong and how to write it."""
    if given is None:
        path = Path(out).resolve() / STUDY_DB
        return Storage("sqlite", f"sqlite:///{path}", f"sqlite:///{path}", path)
    text = given.strip()
    if text.startswith(JOURNAL):
        return _journal(text[len(JOURNAL) :])
    if "://" not in text:
        raise ConfigError(
            f"--storage {given!r} is neither a database URL (sqlite:///PATH, "
            "postgresql://USER@HOST:PORT/DB, mysql+pymysql://USER@HOST:PORT/DB) nor a journal "
            "file (journal:PATH)"
        )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"--storage {given!r} is not a valid database URL ({exc})") from None
    shown = url.render_as_string(hide_password=True)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise ConfigError(
                f"--storage {shown}: an SQLite study needs a file (sqlite:///PATH); one in "
                "memory is lost when the process ends"
            )
        # kept as given (a relative path is the working folder's), so that a continued study
        # is recognised by the same --storage
        return Storage("sqlite", text, shown, Path(url.database).resolve())
    kind = backend if backend in BACKENDS else "other"
    url = _with_a_driver(url, shown)
    return Storage(kind, url.render_as_string(hide_password=False), shown)


def _journal(text: str) -> Storage:
    if not text.strip():
        raise ConfigError("--storage journal: needs a file: journal:PATH (e.g. journal:study.log)")
    path = Path(text).expanduser()
    if path.is_symlink():
        raise ConfigError(f"--storage journal:{text}: {path} is a symbolic link; name the file")
    path = path.resolve()
    if path.is_dir():
        raise ConfigError(f"--storage journal:{text}: {path} is a folder; name a file in it")
    if not path.parent.is_dir():
        raise ConfigError(
            f"--storage journal:{text}: the folder {path.parent} does not exist; create it "
            "(on a shared file system for workers on several machines)"
        )
    return Storage("journal", f"{JOURNAL}{path}", f"{JOURNAL}{path}", path)


def _with_a_driver(url: Any, shown: str) -> Any:
    """The URL with a driver that is installed: the back-end's default one, else another one
    SQLAlchemy knows (postgresql:// runs on psycopg 3 or on psycopg2, whichever is installed);
    a ConfigError naming the extra to install when there is none."""
    from sqlalchemy.exc import NoSuchModuleError

    backend = url.get_backend_name()
    extra, name, fallbacks = BACKENDS.get(backend, (None, backend, ()))
    given_driver = "+" in url.drivername
    candidates = [url]
    if not given_driver:
        candidates += [url.set(drivername=f"{backend}+{d}") for d in fallbacks]
    for candidate in candidates:
        try:
            candidate.get_dialect().import_dbapi()
        except (ImportError, NoSuchModuleError):
            continue
        return candidate
    if (
        extra is not None
        and given_driver
        and not (backend == "mysql" and "pymysql" in url.drivername)
    ):
        raise ConfigError(
            f"--storage {shown}: the driver {url.drivername.split('+', 1)[1]} is not "
            f"installed; install it, or write {backend}://... with pip install 'ffnlp[{extra}]'"
        )
    if extra is not None:
        raise ConfigError(
            f"--storage {shown}: {name} needs a driver that is not installed: "
            f"pip install 'ffnlp[{extra}]'"
            + (" and write mysql+pymysql://..." if backend == "mysql" else "")
        )
    raise ConfigError(
        f"--storage {shown}: SQLAlchemy has no installed driver for {url.drivername}; install "
        "it, or use postgresql://, mysql+pymysql://, sqlite:///PATH or journal:PATH"
    )


# ---------------------------------------------------------------------------- opening it


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Optuna marks its heartbeat experimental; the warning says nothing to a user here."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@contextlib.contextmanager
def opened(
    storage: Storage, heartbeat: int | None = None, retries: int = 0
) -> Iterator[optuna.storages.BaseStorage]:
    """:func:`open_storage`, its database connections closed at the end."""
    made = open_storage(storage, heartbeat, retries)
    try:
        yield made
    finally:
        engine = getattr(made, "engine", None)
        if engine is not None:
            engine.dispose()


def open_storage(
    storage: Storage, heartbeat: int | None = None, retries: int = 0
) -> optuna.storages.BaseStorage:
    """The Optuna storage; with ``heartbeat`` (seconds), trials beat it and a trial silent for
    twice as long is failed and queued again (at most ``retries`` times). Readers (the report,
    the tests) open it without. A ConfigError when it cannot be opened (a server that does not
    answer, a refused login, an unreadable file)."""
    import sqlalchemy.exc

    try:
        return _open(storage, heartbeat, retries)
    except (ImportError, ValueError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        text = str(exc).strip()
        if storage.url != storage.shown:
            text = text.replace(storage.url, storage.shown)
        first = text.splitlines()[0] if text else "no details"
        if "database or disk is full" in text or is_disk_full(exc):
            raise OutputError(
                f"no space left on the device to write the study's storage "
                f"{storage.path or storage.shown} ({first}); free some space and run the same "
                "command again (nothing was left behind)"
            ) from None
        raise ConfigError(
            f"--storage {storage.shown}: cannot open the study there ({type(exc).__name__}: "
            f"{first})"
        ) from None


def _open(storage: Storage, heartbeat: int | None, retries: int) -> optuna.storages.BaseStorage:
    import optuna

    retry = _retry_callback(retries) if heartbeat is not None and retries > 0 else None
    with quiet_experimental():
        if storage.kind == "journal":
            assert storage.path is not None
            try:
                from optuna.storages.journal import JournalFileBackend
            except ImportError:  # Optuna before 4.0
                from optuna.storages import JournalFileStorage as JournalFileBackend

            backend = JournalFileBackend(str(storage.path))
            if heartbeat is None:
                return optuna.storages.JournalStorage(backend)
            return _journal_with_heartbeat()(backend, heartbeat, 2 * heartbeat, retry)
        engine = {"connect_args": {"timeout": 120}} if storage.kind == "sqlite" else {}
        beat: dict[str, Any] = {}
        if heartbeat is not None:
            beat = {"heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat}
            if retry is not None:
                names = inspect.signature(optuna.storages.RDBStorage).parameters
                key = (
                    "heartbeat_stale_trial_callback"
                    if "heartbeat_stale_trial_callback" in names
                    else "failed_trial_callback"
                )
                beat[key] = retry
        return optuna.storages.RDBStorage(storage.url, engine_kwargs=engine, **beat)


def _retry_callback(retries: int) -> Callable[..., None]:
    import optuna

    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is None:  # Optuna before 4.9
        cls = optuna.storages.RetryFailedTrialCallback
    with quiet_experimental():
        callback: Callable[..., None] = cls(max_retry=retries)
    return callback


def retried_from(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the dead worker's trial that ``trial`` runs again (None: a fresh one)."""
    number = trial.system_attrs.get("failed_trial")
    return number if isinstance(number, int) else None


def _journal_with_heartbeat() -> type:
    """JournalStorage with Optuna's heartbeat (which only its RDBStorage has): a running trial
    records the time in a system attribute every ``heartbeat`` seconds."""
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import TrialState

    class JournalWithHeartbeat(optuna.storages.JournalStorage, BaseHeartbeat):
        def __init__(
            self,
            backend: Any,
            heartbeat: int,
            grace: int,
            callback: Callable[..., None] | None,
        ) -> None:
            super().__init__(backend)
            self._beat, self._grace, self._callback = heartbeat, grace, callback

        def record_heartbeat(self, trial_id: int) -> None:
            # another worker may have failed the trial meanwhile (a stalled machine): nothing
            # to record then, and the worker's own result is refused when it ends
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                self.set_trial_system_attr(trial_id, HEARTBEAT_KEY, time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            stale = []
            for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                beats = [t.datetime_start.timestamp()] if t.datetime_start else []
                last = t.system_attrs.get(HEARTBEAT_KEY)
                if isinstance(last, (int, float)):
                    beats.append(float(last))
                if beats and now - max(beats) > self._grace:
                    stale.append(t._trial_id)
            return stale

        def get_heartbeat_interval(self) -> int | None:
            return self._beat

        def get_heartbeat_stale_trial_callback(self) -> Callable[..., None] | None:
            return self._callback

        def get_failed_trial_callback(self) -> Callable[..., None] | None:  # Optuna < 4.9
            return self._callback

    return JournalWithHeartbeat


# ------------------------------------------------------------------------ SQLite and workers


@contextlib.contextmanager
def worker_mark(storage: Storage, out: Path) -> Iterator[bool]:
    """While a worker runs on an SQLite study, it holds ``DIR/.workers.lock`` shared; whether
    another worker holds it too (said with a warning: see SQLITE_WORKERS). Call it under the
    folder's set-up lock, so that two workers starting together see each other."""
    if storage.kind != "sqlite" or fcntl is None:
        yield False
        return
    path = Path(out) / WORKERS_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            others = False
        except BlockingIOError:
            others = True
        fcntl.flock(fd, fcntl.LOCK_SH)
        if others:
            logger.warning(
                "another worker is running on the study in %s: %s", storage.shown, SQLITE_WORKERS
            )
        yield others
    finally:
        # the last worker out removes the file (no lock is left in the study folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with contextlib.suppress(OSError):
                path.unlink()
        except BlockingIOError:
            pass
        os.close(fd)
