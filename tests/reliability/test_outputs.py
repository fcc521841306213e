"""Every command that writes a file the user names, as a hostile user would try it: a folder where
the file goes, a file where a folder goes, a symbolic link (its target must never change), a
read-only file system, a full disk. Each case: one ``Error:`` line naming the path, exit 1, and
nothing on disk changed or left behind (the folders a failed command made are gone too).

`explain graph --dot`, the ``--plot`` images (explain numpy-vs-torch, lr-find), `lr-find --out`,
`report`. The study folder of `ffnlp tune`: test_tune_outputs.py."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from ffnlp.fileio import Outputs, os_error_line
from ffnlp.inspect import graph as graph_module
from tests.reliability.cases import Unchanged, assert_error, invoke
from tests.reliability.test_disk_full import fail_nth_write

GRAPH = ["explain", "graph", "a*b+1", "a=2", "b=3"]
FULL = "no space left on the device to write"


def no_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)


def fake_graphviz(folder: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A `dot` on PATH that runs ``script`` (sh) instead of Graphviz."""
    fake = folder / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")


# ------------------------------------------------------------------------ explain graph --dot


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("folder", "--dot {folder} is a directory; give a file name"),
        ("below-file", "--dot {file}/g.dot is below {file}, which is a file"),
        ("link", "--dot {link} is a symbolic link; ffnlp does not write through links"),
        ("png-name", "this is the DOT text file; give it a .dot name"),
    ],
)
def test_explain_graph_dot_refuses_a_bad_destination(place, monkeypatch, where, message) -> None:
    no_graphviz(monkeypatch)
    dest = {
        "folder": place["folder"],
        "below-file": place["file"] / "g.dot",
        "link": place["link"],
        "png-name": place["root"] / "g.png",
    }[where]
    with Unchanged(place["root"]):
        result = invoke([*GRAPH, "--dot", dest])
    assert_error(result, message.format(**{k: str(v) for k, v in place.items()}))
    assert place["file"].read_text() == "precious\n"
    assert sorted(p.name for p in place["root"].iterdir()) == ["folder", "link", "target"]


def test_explain_graph_dot_refuses_a_link_where_its_png_goes(place, monkeypatch) -> None:
    fake_graphviz(
        place["root"], monkeypatch, 'while [ "$1" != "-o" ]; do shift; done\necho PNG > "$2"\n'
    )
    (place["root"] / "g.png").symlink_to(place["file"])
    with Unchanged(place["root"]):
        result = invoke([*GRAPH, "--dot", place["root"] / "g.dot"])
    assert_error(result, f"{place['root'] / 'g.png'} is a symbolic link")
    assert not (place["root"] / "g.dot").exists()


def test_explain_graph_dot_and_png_both_or_neither(tmp_path, monkeypatch) -> None:
    """Graphviz failing leaves no DOT file (nor the folder made for it)."""
    fake_graphviz(tmp_path, monkeypatch, "echo 'syntax error in line 1' >&2\nexit 1\n")
    with Unchanged(tmp_path):
        result = invoke([*GRAPH, "--dot", tmp_path / "new" / "g.dot"])
    assert_error(result, "Graphviz dot could not draw", "syntax error in line 1")
    assert not (tmp_path / "new").exists()


def test_explain_graph_dot_on_a_full_disk(mount) -> None:
    disk = mount("full")
    with Unchanged(disk):
        result = invoke([*GRAPH, "--dot", disk / "sub" / "g.dot"])
    assert_error(result, f"{FULL} {disk / 'sub' / 'g.dot'}", "Nothing was left half-written")
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no sub/, no temporary file


def test_explain_graph_dot_when_the_write_fails(tmp_path, monkeypatch) -> None:
    """The disk filling up at the write itself (a fault at the file's fsync): no file, no
    folder left."""
    no_graphviz(monkeypatch)
    fail_nth_write(monkeypatch, 1)
    result = invoke([*GRAPH, "--dot", tmp_path / "a" / "b" / "g.dot"])
    assert_error(result, f"{FULL} {tmp_path / 'a' / 'b' / 'g.dot'}")
    assert list(tmp_path.iterdir()) == []


def test_explain_graph_dot_on_a_read_only_file_system(mount) -> None:
    disk = mount("ro")
    result = invoke([*GRAPH, "--dot", disk / "g.dot"])
    assert_error(
        result, f"--dot {disk / 'g.dot'}: the folder {disk} cannot be written", "read-only"
    )


def test_explain_graph_dot_writes_the_file_and_its_folders(tmp_path, monkeypatch) -> None:
    no_graphviz(monkeypatch)
    result = invoke([*GRAPH, "--dot", tmp_path / "a" / "g.dot"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "g.dot").read_text().startswith("digraph")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["g.dot"]  # no temporary file


# ------------------------------------------------------------------------- lr-find --out / --plot


@pytest.fixture
def lr_find(data) -> list[str]:
    return [
        "classify", "lr-find", "--train", str(data["train"]), "--steps", "5",
        "--set", "train.threads=1", "--set", "train.batch_size=16", "--json",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--out", "file", "--out {file} is a file, not a directory"),
        ("--out", "below-file", "--out {file}/d is below {file}, which is a file"),
        ("--out", "link", "--out {link} is a symbolic link"),
        ("--out", "json-link", "{folder}/lr_find.json is a symbolic link"),
        ("--out", "png-link", "{folder}/lr_find.png is a symbolic link"),
        ("--plot", "folder", "--plot {folder} is a directory"),
        ("--plot", "link", "--plot {link} is a symbolic link"),
        ("--plot", "below-file", "--plot {file}/d is below {file}, which is a file"),
    ],
)
def test_lr_find_refuses_a_bad_destination_before_the_sweep(
    place, lr_find, monkeypatch, option, where, message
) -> None:
    import ffnlp.tasks.classify.lr_find as module

    def no_sweep(*args, **kwargs):  # the check comes first: the sweep must not run
        raise AssertionError("the sweep ran before the destination was checked")

    monkeypatch.setattr(module, "find_lr", no_sweep)
    if where == "json-link":
        (place["folder"] / "lr_find.json").symlink_to(place["file"])
    if where == "png-link":
        (place["folder"] / "lr_find.png").symlink_to(place["file"])
    dest = {
        "file": place["file"],
        "below-file": place["file"] / "d",
        "link": place["link"],
        "json-link": place["folder"],
        "png-link": place["folder"],
        "folder": place["folder"],
    }[where]
    with Unchanged(place["root"]):
        result = invoke([*lr_find, option, dest])
    assert_error(result, message.format(**{k: str(v) for k, v in place.items()}))
    assert place["file"].read_text() == "precious\n"


def test_lr_find_out_on_a_read_only_file_system(lr_find, mount) -> None:
    disk = mount("ro")
    result = invoke([*lr_find, "--out", disk / "sweep"])
    assert_error(result, f"--out {disk / 'sweep'}: the folder {disk} cannot be written")


def test_lr_find_out_on_a_full_disk_leaves_nothing(lr_find, mount) -> None:
    disk = mount("full")
    result = invoke([*lr_find, "--out", disk / "sweep"])
    assert_error(result, f"{FULL} {disk / 'sweep'}")
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_lr_find_writes_the_plot_and_the_json_or_neither(lr_find, tmp_path, monkeypatch) -> None:
    """The second file failing (the disk full at lr_find.json) takes the first (the plot) and
    the folder made for them back."""
    fail_nth_write(monkeypatch, 3)  # the plot's two syncs (image, staged copy), then the JSON
    result = invoke([*lr_find, "--out", tmp_path / "sweep"])
    assert_error(result, f"{FULL} {tmp_path / 'sweep' / 'lr_find.json'}")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    result = invoke([*lr_find, "--out", tmp_path / "sweep"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["lr_find.json", "lr_find.png"]


def test_lr_find_out_replaces_its_own_files_in_an_existing_folder(lr_find, tmp_path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "notes.txt").write_text("mine\n")
    (sweep / "lr_find.json").write_text("{}")
    result = invoke([*lr_find, "--out", sweep])
    assert result.exit_code == 0, result.output
    assert (sweep / "notes.txt").read_text() == "mine\n"
    assert '"suggested_lr"' in (sweep / "lr_find.json").read_text()
    assert sorted(p.name for p in sweep.iterdir()) == ["lr_find.json", "lr_find.png", "notes.txt"]


# ----------------------------------------------------------------- explain numpy-vs-torch --plot


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("folder.png", "--plot {folder}.png is a directory"),
        ("link", "--plot {root}/plot.svg is a symbolic link"),
        ("below-file", "--plot {file}/p.png is below {file}, which is a file"),
    ],
)
def test_numpy_vs_torch_plot_is_checked_before_training(
    place, data, monkeypatch, where, message
) -> None:
    import ffnlp.inspect.numpy_learner as module

    monkeypatch.setattr(module, "train_side_by_side", lambda *a, **k: pytest.fail("trained"))
    (place["root"] / "folder.png").mkdir()
    (place["root"] / "plot.svg").symlink_to(place["file"])
    dest = {
        "folder.png": place["root"] / "folder.png",
        "link": place["root"] / "plot.svg",
        "below-file": place["file"] / "p.png",
    }[where]
    args = ["explain", "numpy-vs-torch", "--train", data["train"], "--dev", data["dev"]]
    with Unchanged(place["root"]):
        result = invoke([*args, "--plot", dest])
    assert_error(result, message.format(**{k: str(v) for k, v in place.items()}))


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")]
)
def test_numpy_vs_torch_plot_is_in_the_format_its_name_says(data, tmp_path, suffix, magic) -> None:
    plot = tmp_path / f"curves{suffix}"
    args = ["explain", "numpy-vs-torch", "--train", data["train"], "--dev", data["dev"]]
    result = invoke(
        [*args, "--epochs", "1", "--hidden", "0", "--max-features", "50", "--plot", plot, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().startswith(magic)


# ------------------------------------------------------------------------------------ report


def test_report_refuses_a_link_in_place_of_report_html_before_the_work(
    straight, place, tmp_path, monkeypatch
) -> None:
    from tests.reliability.rundir_support import copy_run

    run = copy_run(straight("classify"), tmp_path / "run")
    (run / "report.html").symlink_to(place["file"])
    import ffnlp.report.group as group_module  # writes a run's page (report.runpage.run_page)

    monkeypatch.setattr(group_module, "run_page", lambda *a: pytest.fail("the page was made"))
    with Unchanged(tmp_path):
        result = invoke(["report", run])
    assert_error(result, f"{run / 'report.html'} is a symbolic link")
    assert place["file"].read_text() == "precious\n"


def test_report_out_link_is_refused(straight, place) -> None:
    with Unchanged(place["root"]):
        result = invoke(["report", straight("classify"), "--out", place["link"]])
    assert_error(result, f"--out {place['link']} is a symbolic link")


def test_report_in_a_read_only_place(straight, mount) -> None:
    disk = mount("ro")
    result = invoke(["report", straight("classify"), "--out", disk / "r.html"])
    assert_error(
        result, f"--out {disk / 'r.html'}: the folder {disk} cannot be written", "read-only"
    )


# ------------------------------------------------------------------------------ the last net


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "/x/out"),
            "Error: /x/out: Is a directory",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/x/y"),
            "Error: /x/y: Read-only file system",
        ),
        (OSError(errno.ENOSPC, "No space left on device", "/x/z"), f"Error: {FULL} /x/z"),
        (
            OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"),
            "Error: /a -> /b: Invalid",
        ),
    ],
)
def test_an_os_error_no_command_caught_is_one_line(monkeypatch, error, line) -> None:
    """The net under every command: an OSError that slipped through is still one line naming
    the path, exit 1, never a traceback."""

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(graph_module, "explain", fail)
    result = invoke(GRAPH)
    assert assert_error(result).startswith(line)
    assert os_error_line(error) in result.stderr


# ------------------------------------------------------------------------------ fileio.Outputs


def test_outputs_publish_all_or_nothing(tmp_path) -> None:
    (tmp_path / "old.txt").write_text("old\n")
    with pytest.raises(RuntimeError), Outputs() as outputs:
        outputs.folder(tmp_path / "made" / "deep")
        outputs.write(tmp_path / "old.txt", "new\n")
        outputs.write(tmp_path / "made" / "deep" / "a.txt", "a\n")
        raise RuntimeError("the command failed after staging")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]
    assert (tmp_path / "old.txt").read_text() == "old\n"
    with Outputs() as outputs:
        outputs.write(tmp_path / "old.txt", "new\n")
        outputs.write_with(
            tmp_path / "made" / "b.svg", lambda name: Path(name).write_text(Path(name).suffix)
        )
    assert (tmp_path / "old.txt").read_text() == "new\n"
    assert (tmp_path / "made" / "b.svg").read_text() == ".svg"  # the staged name kept the suffix
    assert sorted(p.name for p in (tmp_path / "made").iterdir()) == ["b.svg"]


# -------------------------------------------------------------- groups of runs: repeat, cv, demo


@pytest.fixture
def cv(data) -> list[str]:
    return [
        "classify", "cv", "--data", str(data["train"]), "--folds", "2", "--quiet",
        "--set", "train.epochs=1", "--set", "train.threads=1", "--set", "train.batch_size=32",
    ]  # fmt: skip


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_cv_removes_the_folds_it_made(cv, tmp_path, monkeypatch, existing) -> None:
    """The disk full in the second fold: the first fold's run goes too; a folder that was there
    keeps what it held."""
    out = tmp_path / "a" / "cv"
    if existing:
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("mine\n")
    real = os.fsync
    failed: list[str] = []

    def fsync(fd: int) -> None:  # the first fold completes; the second fold's first file fails
        name = os.readlink(f"/proc/self/fd/{fd}")
        if "fold_2" in name and stat.S_ISREG(os.fstat(fd).st_mode):
            failed.append(name)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file is synced")
    monkeypatch.setattr(os, "fsync", fsync)
    with Unchanged(tmp_path):
        result = invoke([*cv, "--out", out])
    assert_error(result, f"{FULL} {out}/")
    assert failed
    if existing:
        assert listing_of(out) == ["notes.txt"]
    else:
        assert listing_of(tmp_path) == []


def test_a_failed_repeat_removes_the_seeds_it_made(data, tmp_path, monkeypatch) -> None:
    """Both seeds trained, then the summary fails (an I/O error): the group folder goes."""
    import ffnlp.experiments.repeat as repeat_module

    def broken(*args):
        raise OSError(errno.EIO, "Input/output error", str(tmp_path / "rep" / "summary.json"))

    monkeypatch.setattr(repeat_module, "describe", broken)
    args = ["repeat", "classify", "--train", data["train"], "--seeds", "2", "--quiet"]
    args += ["--set", "train.epochs=1", "--set", "train.threads=1"]
    result = invoke([*args, "--out", tmp_path / "rep"])
    assert_error(result, f"{tmp_path / 'rep' / 'summary.json'}: Input/output error")
    assert listing_of(tmp_path) == []


@pytest.mark.parametrize(
    ("where", "message"),
    [("file", "--out {file} is a file"), ("below-file", "--out {file}/d is below {file}")],
)
def test_demo_out_is_checked_first(place, where, message) -> None:
    dest = place["file"] if where == "file" else place["file"] / "d"
    with Unchanged(place["root"]):
        result = invoke(["demo", "--out", dest])
    assert_error(result, message.format(**{k: str(v) for k, v in place.items()}))


def listing_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    "command",
    [
        [*GRAPH, "--dot"],
        ["classify", "lr-find", "--train", "{train}", "--plot"],
        ["w2v", "export", "{w2v}", "--output"],
    ],
    ids=["dot", "lr-find-plot", "w2v-export"],
)
def test_a_pipe_or_device_in_place_of_the_file_is_refused(
    place, data, straight, monkeypatch, command
) -> None:
    """A FIFO stands for /dev/null or any device: replacing it with a file (as an atomic write
    does) would remove the device, so it is refused before the work."""
    no_graphviz(monkeypatch)
    fifo = place["root"] / "pipe.png"
    os.mkfifo(fifo)
    names = {"train": str(data["train"]), "w2v": str(straight("w2v"))}
    args = [a.format(**names) for a in command]
    with Unchanged(place["root"]):
        result = invoke([*args, fifo])
    assert_error(result, f"{fifo} is not a regular file")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_name_too_long_for_the_temporary_file_is_one_line(tmp_path, monkeypatch) -> None:
    no_graphviz(monkeypatch)
    dest = tmp_path / ("g" * 250 + ".dot")  # a valid name; its temporary name is not
    with Unchanged(tmp_path):
        result = invoke([*GRAPH, "--dot", dest])
    assert_error(result, f"cannot write {dest}: its name is too long to be written safely")
    assert list(tmp_path.iterdir()) == []
