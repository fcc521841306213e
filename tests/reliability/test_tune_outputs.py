"""`ffnlp tune` as a hostile user would run it: its study folder where it cannot be (a file,
below a file, a read-only file system, a full disk, a link where study.db goes), and everything
a study can get wrong that is checkable before the first trial (the metric, infinite values in
the space, the seeds, the storage URL). Each case: one ``Error:`` line, exit 1, before trial 0,
and nothing created on disk (no folder, no half-made study.db, no ``.tune.lock``) nor changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.cases import Unchanged, assert_error, invoke
from tests.tune.conftest import SMALL_CLASSIFIER, write_data

pytest.importorskip("optuna", reason="needs the tune extra: pip install -e '.[tune]'")

FULL = "no space left on the device to write the study's storage"


@pytest.fixture(scope="module")
def tune_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_data(tmp_path_factory.mktemp("tune_outputs"))


@pytest.fixture
def tune(tune_data, monkeypatch) -> list[str]:
    """`ffnlp tune classify` that sets the study up and trains nothing (--trials 0); a trial
    that starts anyway fails the test."""
    import ffnlp.tune.objective as objective

    monkeypatch.setattr(objective, "run_trial", lambda *a: pytest.fail("a trial started"))
    args = ["tune", "classify", "--train", tune_data["train"], "--dev", tune_data["dev"]]
    args += ["--space", tune_data["space"], "--trials", "0", "--quiet", "--rescore", "0"]
    for setting in SMALL_CLASSIFIER:
        args += ["--set", setting]
    return [str(a) for a in args]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------- the study folder


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "--out {file} is a file, not a directory; choose another --out"),
        ("below-file", "--out {file}/study is below {file}, which is a file"),
        ("link", "--out {link} is a symbolic link"),
    ],
)
def test_tune_out_where_no_study_folder_can_be(place, tune, where, message) -> None:
    (place["root"] / "dirlink").symlink_to(place["folder"])
    dest = {
        "file": place["file"],
        "below-file": place["file"] / "study",
        "link": place["root"] / "dirlink",
    }[where]
    names = {k: str(v) for k, v in place.items()} | {"link": str(place["root"] / "dirlink")}
    with Unchanged(place["root"]):
        result = invoke([*tune, "--out", dest])
    assert_error(result, message.format(**names))
    assert listing(place["root"]) == ["dirlink", "folder", "link", "target"]
    assert listing(place["folder"]) == []


def test_tune_out_on_a_read_only_file_system(tune, mount) -> None:
    disk = mount("ro")
    result = invoke([*tune, "--out", disk / "study"])
    assert_error(
        result, f"--out {disk / 'study'}: the folder {disk} cannot be written", "read-only"
    )


def test_tune_on_a_full_disk_leaves_nothing_and_the_rerun_works(tune, mount) -> None:
    """The half-made study.db used to refuse every rerun ("holds other files")."""
    disk = mount("full")
    out = disk / "study"
    result = invoke([*tune, "--out", out])
    assert_error(result, f"{FULL} {out / 'study.db'}", "nothing was left behind")
    assert listing(disk) == ["filler"]  # no folder, no study.db, no .tune.lock
    (disk / "filler").unlink()
    result = invoke([*tune, "--out", out])
    assert result.exit_code == 0, result.output
    assert {"study.db", "tune.json"} <= set(listing(out)) and ".tune.lock" not in listing(out)


def test_a_failure_while_the_study_is_set_up_removes_what_it_made(
    tune, tmp_path, monkeypatch
) -> None:
    """tune.json failing to be written (after study.db was made): study.db, the lock and the
    folder go, the folder above stays."""
    import ffnlp.tune.study as study_module
    from ffnlp.errors import OutputError

    def full(out, meta):
        raise OutputError(f"no space left on the device to write {out / 'tune.json'}")

    monkeypatch.setattr(study_module, "_write_meta", full)
    (tmp_path / "keep.txt").write_text("mine\n")
    with Unchanged(tmp_path):
        result = invoke([*tune, "--out", tmp_path / "a" / "study"])
    assert_error(result, f"{tmp_path / 'a' / 'study' / 'tune.json'}")
    assert listing(tmp_path) == ["keep.txt"]


def test_a_refused_tune_leaves_no_lock_in_an_existing_run_folder(tune, straight) -> None:
    """`tune --out RUN` is refused (the folder holds other files) and RUN is as it was: no
    .tune.lock inside it."""
    run = straight("classify")
    before = listing(run)
    with Unchanged(run):
        result = invoke([*tune, "--out", run])
    assert_error(result, "holds other files", "and no study (tune.json)")
    assert listing(run) == before


def test_a_study_db_link_is_refused_and_its_target_unchanged(tune, place) -> None:
    study = place["root"] / "study"
    study.mkdir()
    (study / "study.db").symlink_to(place["file"])
    with Unchanged(place["root"]):
        result = invoke([*tune, "--out", study])
    assert_error(result, f"{study / 'study.db'} is a symbolic link")
    assert listing(study) == ["study.db"]
    assert place["file"].read_text() == "precious\n"


def test_a_study_leaves_no_lock_behind(tune, tmp_path) -> None:
    out = tmp_path / "study"
    for _ in range(2):  # a new study, then the same one continued
        result = invoke([*tune, "--out", out])
        assert result.exit_code == 0, result.output
    assert not any(name.endswith(".lock") for name in listing(out)), listing(out)


def test_a_study_db_left_without_tune_json_is_continued(tune, tmp_path) -> None:
    """A worker killed while it set the study up leaves study.db and no tune.json: the next
    run continues that study instead of refusing the folder."""
    out = tmp_path / "study"
    assert invoke([*tune, "--out", out]).exit_code == 0
    for path in out.iterdir():  # what setting the study up had made when it was killed
        if path.name != "study.db":
            path.unlink()
    result = invoke([*tune, "--out", out])
    assert result.exit_code == 0, result.output
    assert (out / "tune.json").is_file()


# ------------------------------------------------------------ checked before the first trial


def space_file(folder: Path, text: str) -> Path:
    path = folder / "space.toml"
    path.write_text(text)
    return path


INF_CHOICE = '["train.lr"]\ntype = "categorical"\nchoices = [inf, 0.1]\n'
INF_FIXED = (
    '["model.mlp.activation"]\ntype = "categorical"\nchoices = ["relu", "tanh"]\n'
    '[fixed]\n"train.lr" = inf\n'
)
INF_HIGH = '["train.lr"]\ntype = "float"\nlow = 0.001\nhigh = inf\n'
NAN_WEIGHT = '["train.weight_decay"]\ntype = "categorical"\nchoices = [0.0, nan]\n'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "dev.nosuch"], "--metric dev.nosuch: the trials of this classify study report dev.loss, dev.accuracy, dev.macro_f1"),
        (["--metric", "dev.acuracy"], "did you mean dev.accuracy?"),
        (["--metric", "test.accuracy"], "--metric must be a dev metric"),
        (["--set", 'train.monitor="dev.nosuch"'], "the metric (train.monitor; choose another with --metric) dev.nosuch"),
        (["--seed", "-1"], "--seed must be a whole number, 0 or more; got -1"),
        (["--set", "train.seed=9223372036854775807"], "leaves no room for the study's seeds"),
        (["--storage", "sqlite:///:memory:"], "--storage sqlite:///:memory: is an in-memory database"),
        (["--storage", "sqlite://"], "--storage sqlite:// is an in-memory database"),
        (["--storage", "sqlite:///file::memory:?cache=shared"], "is an in-memory database"),
        (["--storage", "not a url"], "--storage 'not a url' is not a database URL"),
        (["--storage", "sqlite:///{root}/no/such/folder/s.db"], "the folder {root}/no/such/folder does not exist"),
        (["--storage", "sqlite:///{root}"], "--storage sqlite:///{root}: {root} is a folder"),
        (["--storage", "postgresql://ffnlp@127.0.0.1:9/nothing"], "--storage postgresql://ffnlp@127.0.0.1:9/nothing: cannot open the study there"),
        (["--space", "{space:inf-choice}"], "the choice inf is not a value train.lr takes: it must be a finite number"),
        (["--space", "{space:inf-fixed}"], "[fixed]: train.lr must be a finite number (not infinity); got inf"),
        (["--space", "{space:inf-high}"], "high must be a number; got inf"),
        (["--space", "{space:nan-choice}"], "must be a number (not NaN)"),
        (["--set", "train.lr=inf"], "train.lr must be a finite number (not infinity); got inf"),
    ],
    ids=[
        "metric-unknown", "metric-typo", "metric-test", "monitor-unknown", "seed-negative",
        "seed-no-room", "storage-memory", "storage-empty-sqlite", "storage-memory-uri",
        "storage-not-url", "storage-no-folder", "storage-folder", "storage-unreachable",
        "space-inf-choice", "space-inf-fixed", "space-inf-high", "space-nan-choice", "set-inf",
    ],
)  # fmt: skip
def test_checked_before_the_first_trial(tune, tmp_path, args, message) -> None:
    spaces = {
        "{space:inf-choice}": INF_CHOICE,
        "{space:inf-fixed}": INF_FIXED,
        "{space:inf-high}": INF_HIGH,
        "{space:nan-choice}": NAN_WEIGHT,
    }
    root = tmp_path / "here"
    root.mkdir()
    filled = []
    for arg in args:
        if arg in spaces:
            arg = str(space_file(tmp_path, spaces[arg]))
        filled.append(arg.replace("{root}", str(root)))
    command = list(tune)
    if "--space" in filled:  # the test's space instead of the fixture's
        at = command.index("--space")
        del command[at : at + 2]
    out = tmp_path / "study"
    with Unchanged(tmp_path):
        result = invoke([*command, *filled, "--out", out])
    assert_error(result, message.replace("{root}", str(root)))
    assert not out.exists()
    assert listing(root) == []


@pytest.mark.parametrize(
    ("driver_says", "message"),
    [
        ("database or disk is full", f"{FULL} {{out}}/study.db (database or disk is full)"),
        ("disk I/O error", "the study's storage sqlite:///{out}/study.db failed: disk I/O error"),
    ],
)
def test_the_storage_failing_during_a_study_is_one_line(
    tune, tmp_path, monkeypatch, driver_says, message
) -> None:
    """After the setting up (a full disk at the tables, a lost database): one line, not
    SQLAlchemy's statement, parameters and link; the study stays to be continued."""
    import sqlite3

    import sqlalchemy.exc

    import ffnlp.tune.results as results

    def failing(*args):
        raise sqlalchemy.exc.OperationalError(
            "INSERT INTO trials ...", {}, sqlite3.OperationalError(driver_says)
        )

    monkeypatch.setattr(results, "write_tables", failing)
    out = tmp_path / "study"
    result = invoke([*tune, "--out", out])
    line = assert_error(result, message.format(out=out), "the finished trials are kept")
    assert "INSERT" not in line and "sqlalche.me" not in line
    assert {"study.db", "tune.json"} <= set(listing(out))


@pytest.mark.parametrize("name", ["trials", "trials.csv", "best.toml", "tune.json"])
def test_a_link_inside_a_study_folder_is_refused(tune, place, name) -> None:
    """A study continued whose trials/ (or a table) is a link: nothing is written through it."""
    out = place["root"] / "study"
    assert invoke([*tune, "--out", out]).exit_code == 0
    moved = place["root"] / f"moved-{name}"
    if (out / name).exists():
        (out / name).rename(moved)
    else:
        moved.mkdir()
    (out / name).symlink_to(moved)
    with Unchanged(place["root"]):
        result = invoke([*tune, "--out", out])
    assert_error(result, f"{out / name} is a symbolic link")


def test_the_setup_lock_is_removed_by_its_holder_and_taken_in_turn(tmp_path) -> None:
    """Two workers: the second waits, then locks the file the first left (a new one, since the
    first removed its own); a folder removed meanwhile (a first worker whose setting up failed)
    is made again for the second."""
    import threading

    from ffnlp.fileio import make_folders, remove_made
    from ffnlp.tune.study import StudyLock

    out = tmp_path / "study"
    first = StudyLock(out, made=make_folders(out))
    first.acquire()
    made: list[Path] = []
    second = StudyLock(out, made=made)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (second.acquire(), got.set()))
    waiter.start()
    assert not got.wait(0.3)  # held by the first
    # the first worker fails: its lock file and its new folder go before it lets go of the lock
    assert first.fd is not None
    (out / ".tune.lock").unlink()
    out.rmdir()
    os.close(first.fd)
    assert got.wait(10)
    waiter.join()
    assert (out / ".tune.lock").is_file() and made == [out]
    second.release()
    assert listing(out) == []
    remove_made(made)
    assert not out.exists()


@pytest.mark.parametrize(("name", "kind"), [("trials", "file"), ("trials.csv", "folder")])
def test_a_file_where_the_study_wants_a_folder_is_said_before_trial_0(
    tune, tmp_path, name, kind
) -> None:
    out = tmp_path / "study"
    assert invoke([*tune, "--out", out]).exit_code == 0
    path = out / name
    if path.exists():
        path.unlink()
    if kind == "folder":
        path.mkdir()
    else:
        path.write_text("mine\n")
    with Unchanged(tmp_path):
        result = invoke([*tune, "--out", out])
    other = "folder" if kind == "file" else "file"
    assert_error(result, f"{path} should be a {other} of the study, and is not")
