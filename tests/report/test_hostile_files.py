"""`ffnlp report` on run folders whose files were edited by hand or crafted: every value reaches
the page as escaped text (numbers included), and a value of the wrong type is one error naming
the file and the field."""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample
from tests.report.pages import DEFANG, structure

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "</td></tr></table><a href='javascript:alert(1)'>x</a>",
    "\"' onmouseover='alert(1)",
    "&lt;b&gt; &amp; <!-- -->",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    data = write_sample(root / "d", sizes=(120, 30, 30))
    ffnlp.train_classifier(
        data["train"],
        dev=data["dev"],
        test=data["test"],
        out=root / "r",
        overrides=["train.epochs=2"],
    )
    return root / "r"


def _summary(change: Callable[[dict[str, Any], Any], None]) -> Callable[[Path, Any], None]:
    def edit(folder: Path, payload: Any) -> None:
        path = folder / "summary.json"
        summary = json.loads(path.read_text(encoding="utf-8"))
        change(summary, payload)
        path.write_text(json.dumps(summary), encoding="utf-8")

    return edit


def _metrics(change: Callable[[list[dict[str, Any]], Any], None]) -> Callable[[Path, Any], None]:
    def edit(folder: Path, payload: Any) -> None:
        path = folder / "metrics.jsonl"
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        change(records, payload)
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    return edit


def _relabel(summary: dict[str, Any], payload: str) -> None:
    summary["labels"][0] = payload
    for split in ("dev", "test"):
        per_class = summary[split]["per_class"]
        per_class[payload] = per_class.pop("0")


def _plot_named(folder: Path, payload: str) -> None:
    shutil.copyfile(folder / "plots" / "confusion.png", folder / "plots" / f"{payload}.png")


SHOWN: dict[str, Callable[[Path, Any], None]] = {
    "a label": _summary(_relabel),
    "a metric name": _summary(lambda s, x: s["dev"].__setitem__(x, 0.5)),
    "a scalar's name and value": _summary(lambda s, x: s.__setitem__(x, x)),
    "the task": _summary(lambda s, x: s.__setitem__("task", x)),
    "a warning": _summary(lambda s, x: s.__setitem__("warnings", [x, 5, None])),
    "a sample": _summary(lambda s, x: s.__setitem__("samples", [x, x])),
    "the train loss": _metrics(lambda rs, x: rs[0]["train"].__setitem__("loss", x)),
    "a dev metric name": _metrics(lambda rs, x: [r["dev"].__setitem__(x, 1.0) for r in rs]),
    "config.toml": lambda f, x: (f / "config.toml").write_text(f"# {x}\n</pre>{x}", "utf-8"),
    "a plot's file name": _plot_named,
}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("where", list(SHOWN))
def test_a_value_from_a_run_file_is_text_on_the_page(
    run: Path, tmp_path: Path, where: str, payload: str
) -> None:
    pages = []
    if "plot" in where:
        payload = payload.replace("/", "_")  # a file name
    for shown in (payload, payload.translate(DEFANG)):
        folder = tmp_path / f"r{len(pages)}"
        shutil.copytree(run, folder)
        (folder / "report.html").unlink(missing_ok=True)
        SHOWN[where](folder, shown)
        result = CliRunner().invoke(app, ["report", str(folder)])
        assert result.exit_code == 0, result.output
        pages.append((folder / "report.html").read_text(encoding="utf-8"))
    assert structure(pages[0]) == structure(pages[1])  # the payload made no element
    assert html.escape(payload) in pages[0] and "<script>" not in pages[0]  # shown as text


WRONG: list[tuple[str, Callable[[Path, Any], None], Any, str]] = [
    (
        "a confusion count",
        _summary(lambda s, x: s["dev"]["confusion"][0].__setitem__(1, x)),
        PAYLOADS[0],
        "summary.json: dev.confusion[0][1] must be a whole number (below 2^53), not a string",
    ),
    (
        "a negative confusion count",
        _summary(lambda s, x: s["test"]["confusion"][1].__setitem__(0, x)),
        -3,
        "summary.json: test.confusion[1][0] is negative (-3)",
    ),
    (
        "a confusion matrix of the wrong size",
        _summary(lambda s, x: s["dev"]["confusion"].append(x)),
        [1, 2],
        "summary.json: dev.confusion has 3 rows for 2 labels",
    ),
    (
        "a support",
        _summary(lambda s, x: s["dev"]["per_class"]["1"].__setitem__("support", x)),
        PAYLOADS[1],
        "summary.json: dev.per_class.1.support must be a whole number (below 2^53), not a string",
    ),
    (
        "a precision",
        _summary(lambda s, x: s["test"]["per_class"]["0"].__setitem__("precision", x)),
        [PAYLOADS[1]],
        "summary.json: test.per_class.0.precision must be a number or null, not a list",
    ),
    (
        "the labels",
        _summary(lambda s, x: s.__setitem__("labels", x)),
        {"a": PAYLOADS[0]},
        "summary.json: labels must be a list, not an object",
    ),
    (
        "a label",
        _summary(lambda s, x: s["labels"].__setitem__(1, x)),
        None,
        "summary.json: labels[1] must be a string or a number, not null",
    ),
    (
        "a split",
        _summary(lambda s, x: s.__setitem__("dev", x)),
        [0.5],
        "summary.json: dev must be an object, not a list",
    ),
    (
        "a score too large for a float",
        _summary(lambda s, x: s["dev"].__setitem__("accuracy", x)),
        10**400,
        "summary.json: dev.accuracy must be a number, not a whole number of 401 digits",
    ),
    (
        "an epoch",
        _metrics(lambda rs, x: rs[1].__setitem__("epoch", x)),
        PAYLOADS[0],
        "metrics.jsonl line 2: epoch must be a whole number (below 2^53), not a string",
    ),
    (
        "a step",
        _metrics(lambda rs, x: rs[0].__setitem__("step", x)),
        PAYLOADS[2],
        "metrics.jsonl line 1: step must be a whole number (below 2^53), not a string",
    ),
    (
        "a fractional step",
        _metrics(lambda rs, x: rs[0].__setitem__("step", x)),
        7.5,
        "metrics.jsonl line 1: step must be a whole number (below 2^53), not a number",
    ),
    (
        "a huge step",
        _metrics(lambda rs, x: rs[0].__setitem__("step", x)),
        10**30,
        "metrics.jsonl line 1: step must be a whole number (below 2^53), not a whole number of "
        "31 digits",
    ),
    (
        "a learning rate",
        _metrics(lambda rs, x: rs[0].__setitem__("lr", x)),
        PAYLOADS[0],
        "metrics.jsonl line 1: lr must be a number, not a string",
    ),
    (
        "a record",
        _metrics(lambda rs, x: rs.append(x)),
        [1, 2],
        "metrics.jsonl line 3: the record must be an object, not a list",
    ),
    (
        "the train scores",
        _metrics(lambda rs, x: rs[0].__setitem__("train", x)),
        PAYLOADS[0],
        "metrics.jsonl line 1: train must be an object or null, not a string",
    ),
]


@pytest.mark.parametrize(("what", "edit", "value", "message"), WRONG, ids=[w[0] for w in WRONG])
def test_a_value_of_the_wrong_type_names_the_file_and_the_field(
    run: Path,
    tmp_path: Path,
    what: str,
    edit: Callable[[Path, Any], None],
    value: Any,
    message: str,
) -> None:
    folder = tmp_path / "r"
    shutil.copytree(run, folder)
    (folder / "report.html").unlink(missing_ok=True)
    edit(folder, value)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {folder / message.split(':')[0]}:{message.split(':', 1)[1]}"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "report.html").exists()


def test_a_metrics_line_that_is_not_json_is_named(run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "r"
    shutil.copytree(run, folder)
    with (folder / "metrics.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"epoch": \n')
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {folder / 'metrics.jsonl'} line 3 is not JSON")


def test_storage_is_refused_for_a_run_folder(run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(run), "--storage", "sqlite:///x.db"])
    assert result.exit_code == 1
    assert "--storage is for a study folder" in result.stderr


def test_a_summary_json_that_is_a_link_is_not_read(run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "r"
    shutil.copytree(run, folder)
    (folder / "report.html").unlink(missing_ok=True)
    outside = tmp_path / "elsewhere.json"
    shutil.move(folder / "summary.json", outside)
    (folder / "summary.json").symlink_to(outside)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {folder / 'summary.json'} is a symbolic link")
    assert not (folder / "report.html").exists()
