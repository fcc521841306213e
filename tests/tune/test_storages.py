"""Where a study lives: --storage parsed and checked, a second worker on SQLite warned, and
workers sharing a study on a real PostgreSQL server and on a journal file, one of them killed
mid-trial (its trial failed and run again by the other)."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from pathlib import Path

import pytest

from ffnlp.errors import ConfigError
from ffnlp.folders import layout
from tests.extras import has, needs
from tests.tune.postgres import Server
from tests.tune.test_workers import command, start

optuna = needs("optuna")
optuna_trial = needs("optuna.trial")
TrialState = optuna_trial.TrialState

from ffnlp.tune import storage  # noqa: E402
from ffnlp.tune.study import tune  # noqa: E402
from tests.tune.conftest import classify_options  # noqa: E402

# ------------------------------------------------------------------------------- parsing


def test_the_default_is_the_folders_sqlite_file(tmp_path: Path) -> None:
    parsed = storage.parse(None, tmp_path / "study")
    assert parsed.kind == "sqlite"
    assert parsed.url == f"sqlite:///{(tmp_path / 'study').resolve()}/study.db"


def test_a_journal_file_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    parsed = storage.parse("journal:runs.log", tmp_path / "study")
    assert (parsed.kind, parsed.path) == ("journal", tmp_path.resolve() / "runs.log")
    assert parsed.shown == f"journal:{tmp_path.resolve() / 'runs.log'}"
    assert not (tmp_path / "runs.log").exists()  # parsing creates nothing


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("journal:", "needs a file"),
        ("journal:no/such/folder/x.log", "does not exist; create it"),
        ("journal:.", "is a folder"),
        ("sqlite:///:memory:", "one in memory is lost"),
        ("sqlite://", "needs a file"),
        ("study.db", "neither a database URL"),
        ("postgresql://u@h:notaport/db", "not a valid database URL"),
        ("nosuchdb://u@h/db", "SQLAlchemy has no installed driver"),
    ],
)
def test_a_bad_storage_is_refused_saying_how_to_write_it(
    given: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--storage") as caught:
        storage.parse(given, tmp_path / "study")
    assert says in str(caught.value)


def test_a_journal_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real.log").write_text("", encoding="utf-8")
    (tmp_path / "link.log").symlink_to(tmp_path / "real.log")
    with pytest.raises(ConfigError, match="symbolic link"):
        storage.parse(f"journal:{tmp_path / 'link.log'}", tmp_path / "study")


def test_the_password_is_never_shown(tmp_path: Path) -> None:
    needs("psycopg")
    parsed = storage.parse("postgresql://ann:s3cret@db.example:5432/studies", tmp_path)
    assert parsed.kind == "postgresql" and "s3cret" in parsed.url
    assert parsed.shown == "postgresql://ann:***@db.example:5432/studies"


def test_a_server_that_does_not_answer_is_a_clear_error(
    data: dict[str, Path], tmp_path: Path
) -> None:
    needs("psycopg")
    url = "postgresql://ann:s3cret@127.0.0.1:1/studies"  # nothing listens on port 1
    with pytest.raises(ConfigError) as caught:
        tune(classify_options(data, tmp_path / "nowhere", trials=1, storage=url))
    message = str(caught.value)
    assert message.startswith(
        "--storage postgresql://ann:***@127.0.0.1:1/studies: cannot open the study there "
        "(OperationalError: "
    )
    assert "s3cret" not in message and not (tmp_path / "nowhere" / "tune.json").exists()


def test_a_missing_postgresql_driver_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("psycopg2", "psycopg"):  # neither driver can be imported
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as caught:
        storage.parse("postgresql://ann:s3cret@db.example/studies", tmp_path)
    message = str(caught.value)
    assert "pip install 'ffnlp[postgres]'" in message and "s3cret" not in message


def test_a_missing_named_driver_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ConfigError, match="the driver psycopg2 is not installed") as caught:
        storage.parse("postgresql+psycopg2://ann@db.example/studies", tmp_path)
    assert "pip install 'ffnlp[postgres]'" in str(caught.value)


def test_a_missing_mysql_driver_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("MySQLdb", "pymysql"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=r"pip install 'ffnlp\[mysql\]' and write mysql\+pymysql"):
        storage.parse("mysql://ann@db.example/studies", tmp_path)


@pytest.mark.skipif(not has("pymysql"), reason="needs PyMySQL: pip install -e '.[mysql]'")
def test_mysql_runs_on_pymysql_where_mysqlclient_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    parsed = storage.parse("mysql://ann@db.example/studies", tmp_path)
    assert parsed.url.startswith("mysql+pymysql://") and parsed.shown.startswith("mysql://")


# -------------------------------------------------------------------- SQLite and workers


def test_a_second_worker_on_sqlite_is_warned_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parsed = storage.parse(None, tmp_path)
    with caplog.at_level(logging.WARNING, logger="ffnlp"):
        with storage.worker_mark(parsed, tmp_path) as first:
            assert first is False and not caplog.records
            with storage.worker_mark(parsed, tmp_path) as second:
                assert second is True
        with storage.worker_mark(parsed, tmp_path) as alone_again:
            assert alone_again is False
    [record] = caplog.records
    assert "another worker is running on the study" in record.getMessage()
    assert "journal:PATH" in record.getMessage() and "postgresql://" in record.getMessage()


def test_workers_on_a_journal_are_not_warned(tmp_path: Path) -> None:
    parsed = storage.parse(f"journal:{tmp_path / 'j.log'}", tmp_path)
    with storage.worker_mark(parsed, tmp_path) as first, storage.worker_mark(parsed, tmp_path):
        assert first is False
    assert not (tmp_path / layout.WORKERS_LOCK).exists()


# ---------------------------------------------------------------- a study in each storage


def _journal(tmp_path: Path) -> str:
    return f"journal:{tmp_path / 'study.log'}"


def test_a_study_in_a_journal_file_continues_and_is_reported(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "j"
    given = _journal(tmp_path)
    first = tune(classify_options(data, out, storage=given, trials=2))
    assert first["storage"] == given and first["trials"] == 2
    again = tune(classify_options(data, out, storage=given, trials=1))
    assert again["trials"] == 3 and again["states"] == {"COMPLETE": 3}
    assert json.loads((out / "tune.json").read_text(encoding="utf-8"))["storage"] == given
    from ffnlp.report.studyfolder import read_study

    # a report opens a storage outside the folder only when it is given (never the one
    # tune.json names: it could be anyone's), and reads trials.csv otherwise
    read = read_study(out, storage=given)
    assert read.source == "storage" and [t.number for t in read.trials] == [0, 1, 2]
    assert read_study(out).source == "trials.csv"


def test_a_study_on_postgresql(data: dict[str, Path], tmp_path: Path, postgres: Server) -> None:
    url = postgres.create("continued")
    out = tmp_path / "pg"
    first = tune(classify_options(data, out, storage=url, trials=2))
    assert first["storage"] == url
    again = tune(classify_options(data, out, storage=url, trials=1))
    assert again["states"] == {"COMPLETE": 3}
    assert [t.number for t in _load(url, "pg")] == [0, 1, 2]


def test_total_trials_is_the_studys_budget(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "budget"
    given = _journal(tmp_path)
    assert tune(classify_options(data, out, storage=given, trials=None, total_trials=3))[
        "states"
    ] == {"COMPLETE": 3}
    # the study holds its 3: a worker started later runs none
    assert (
        tune(classify_options(data, out, storage=given, trials=None, total_trials=3))["trials"] == 3
    )
    assert (
        tune(classify_options(data, out, storage=given, trials=None, total_trials=4))["trials"] == 4
    )


# ------------------------------------------------- two workers, one killed in the middle


def _load(storage_url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    parsed = storage.parse(storage_url, Path("."))
    with storage.opened(parsed) as opened, contextlib.suppress(KeyError):  # being created
        return optuna.load_study(study_name=name, storage=opened).get_trials(deepcopy=False)
    return []


def _wait_for_a_trial_of(
    pid: int, out: Path, url: str, others: list[object], after_one: bool = True
) -> int:
    """Until the worker ``pid`` trains a trial (with ``after_one``: after a first trial has
    completed); its number."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for proc in others:
            assert proc.poll() is None, proc.communicate()[1]  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # the storage may be busy: ask again
            known = _load(url, out.name)
            if not after_one or any(t.state == TrialState.COMPLETE for t in known):
                for t in known:
                    folder = out / "trials" / f".{t.number:04d}.tmp-{pid}"
                    if t.state == TrialState.RUNNING and (folder / "metrics.jsonl").is_file():
                        return t.number
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} started no trial")


def _repeats(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the dead trial that ``trial`` runs again (Optuna's retry history)."""
    history = trial.system_attrs.get("retry_history") or []
    return history[-1] if history else None


def _table(trials: list[optuna.trial.FrozenTrial]) -> str:
    return "\n".join(
        f"{t.number} {t.state.name} start={t.datetime_start} end={t.datetime_complete} "
        f"repeats={_repeats(t)} error={t.user_attrs.get('error')}"
        for t in trials
    )


def _two_workers_one_killed(data: dict[str, Path], out: Path, url: str, total: int) -> None:
    """Two workers on one study of ``total`` trials; the first is SIGKILLed in the middle of a
    trial. The other ends the study: every trial once, the killed one failed and run again."""
    # trials long enough (12 epochs) to be caught in the middle
    slow = ["--set", "train.epochs=12", "--set", "train.early_stopping=false"]
    # a heartbeat every 5 s, dead after 10 s: on a loaded machine a living worker's heartbeat
    # can come several seconds late (and its trial be taken for dead: run again, up to 3 times)
    argv = command(data, out, *slow, "--storage", url, "--keep", "all", "--heartbeat", "5")
    argv += ["--retries", "3"]
    argv += ["--total-trials", str(total), "--rescore", "0", "--quiet"]
    first = start(argv)
    # the second worker starts once the first trains: on a loaded machine a worker's start-up
    # (Python, torch, Optuna) can take so long that the other has run the whole study meanwhile
    _wait_for_a_trial_of(first.pid, out, url, [first], after_one=False)
    second = start(argv)
    killed = _wait_for_a_trial_of(first.pid, out, url, [first, second])
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    _, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr

    trials = _load(url, out.name)
    print(_table(trials))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    surplus = [t for t in failed if "not run" in str(t.user_attrs.get("error", ""))]
    # failed for want of a heartbeat: the killed trial (and, on a machine so loaded that a living
    # worker's heartbeat came 6 s late, that one too): each run again once
    dead = [t.number for t in failed if "error" not in t.user_attrs]
    assert killed in dead and len(dead) + len(surplus) == len(failed)
    assert not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    assert len(complete) == total  # none lost, none beyond the budget
    assert len({t.number for t in complete}) == total
    # none run twice: every completed trial has its own parameters (the learning rate is drawn
    # from a continuous range), but for the one that ran the killed trial again
    copies = {_repeats(t): t for t in trials if _repeats(t) is not None}
    assert sorted(copies) == sorted(dead)  # each dead trial run again once, and only those
    again = copies[killed]
    while again.state != TrialState.COMPLETE:  # the copy died too: its own copy
        again = copies[again.number]
    assert again.number > killed and again.params == trials[killed].params
    assert storage.retried_from(again) in dead
    assert len({t.params["train.lr"] for t in complete}) == total
    # its folder: the completed trials' only, the killed trial's removed
    folders = sorted(p.name for p in (out / "trials").iterdir() if not p.name.startswith("."))
    assert folders == [f"{t.number:04d}" for t in complete]
    assert not [p for p in (out / "trials").iterdir() if p.name.startswith(f".{killed:04d}")]
    rows = (out / "trials.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(trials) and f"\n{killed},FAIL," in "\n".join(rows)
    print(  # shown with -s: the figures of the acceptance run
        f"{url.split(':')[0]}: {len(complete)} complete trials, {len(trials)} in all; trial "
        f"{killed} killed, run again as trial {again.number}; {len(dead) - 1} other trial(s) "
        f"taken for dead; {len(surplus)} surplus"
    )


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_two_workers_on_postgresql_one_killed(
    data: dict[str, Path], tmp_path: Path, postgres: Server
) -> None:
    _two_workers_one_killed(data, tmp_path / "pg_killed", postgres.create("killed"), 4)


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_two_workers_on_a_journal_one_killed(data: dict[str, Path], tmp_path: Path) -> None:
    _two_workers_one_killed(data, tmp_path / "journal_killed", _journal(tmp_path), 4)


@pytest.mark.slow
def test_twenty_trials_on_postgresql_one_worker_killed(
    data: dict[str, Path], tmp_path: Path, postgres: Server
) -> None:
    _two_workers_one_killed(data, tmp_path / "pg20", postgres.create("twenty"), 20)


@pytest.mark.slow
def test_twenty_trials_on_a_journal_one_worker_killed(
    data: dict[str, Path], tmp_path: Path
) -> None:
    _two_workers_one_killed(data, tmp_path / "journal20", _journal(tmp_path), 20)
