"""`ffnlp report` on study folders that were edited, copied or crafted: the report reads only the
folder's own files (never the database tune.json names), shows every value as text, and a field
of the wrong type is one error naming the file and the field."""

from __future__ import annotations

import csv
import html
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from tests.report.pages import DEFANG, defanged, structure
from tests.report.studies import make_study

X = "<img src=x onerror=alert(1)></td><script>alert(2)</script>"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three complete trials and a pruned one (synthetic run folders: nothing is trained)."""
    return make_study(tmp_path_factory.mktemp("s") / "study", None, real=0, complete=3, pruned=1)


def _copy(study: Path, to: Path, db: bool = True) -> Path:
    shutil.copytree(study, to, ignore=None if db else shutil.ignore_patterns("study.db"))
    (to / "report.html").unlink(missing_ok=True)
    return to


def _edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _report(*args: str) -> Any:
    return CliRunner().invoke(app, ["report", *args])


def _unrelated_db(path: Path) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
    return path.read_bytes()


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def test_the_storage_tune_json_names_is_never_opened(study: Path, tmp_path: Path) -> None:
    copy = _copy(study, tmp_path / "copy", db=False)
    other = tmp_path / "unrelated.db"
    before = _unrelated_db(other)
    _edit_json(copy / "tune.json", lambda info: info.__setitem__("storage", f"sqlite:///{other}"))
    result = _report(str(copy))
    assert result.exit_code == 0, result.output
    assert other.read_bytes() == before and _tables(other) == ["notes"]
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert "<tr><td>read from</td><td>trials.csv</td></tr>" in page
    # a server URL is not tried either (nothing listens there; a try would be an error note)
    _edit_json(
        copy / "tune.json", lambda info: info.__setitem__("storage", "postgresql://127.0.0.1:9/x")
    )
    assert _report(str(copy)).exit_code == 0
    assert "127.0.0.1" not in (copy / "report.html").read_text(encoding="utf-8")


def test_storage_given_by_the_user_is_read(study: Path, tmp_path: Path) -> None:
    copy = _copy(study, tmp_path / "copy", db=False)
    (copy / "trials.csv").unlink()
    result = _report(str(copy))
    assert result.exit_code == 1
    assert "has no trials.csv and no readable study.db" in result.stderr
    assert "--storage URL" in result.stderr
    kept = tmp_path / "kept.db"
    shutil.copyfile(study / "study.db", kept)
    result = _report(str(copy), "--storage", f"sqlite:///{kept}")
    assert result.exit_code == 0, result.output
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert "<tr><td>read from</td><td>storage</td></tr>" in page


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///{tmp}/missing.db", "names no SQLite file"),
        ("sqlite:///:memory:", "names no SQLite file"),
        ("sqlite:///{tmp}/unrelated.db", "holds no Optuna study (no table 'studies')"),
        ("sqlite:///{tmp}/text.db", "is not an SQLite database"),
    ],
)
def test_a_storage_that_holds_no_study_is_refused_untouched(
    study: Path, tmp_path: Path, url: str, message: str
) -> None:
    copy = _copy(study, tmp_path / "copy", db=False)
    before = _unrelated_db(tmp_path / "unrelated.db")
    (tmp_path / "text.db").write_text("just text, long enough to look like a file" * 50)
    result = _report(str(copy), "--storage", url.format(tmp=tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --storage") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "unrelated.db").read_bytes() == before
    assert not (tmp_path / "missing.db").exists() and not (copy / "report.html").exists()


def _rescore(study: Path) -> dict[str, Any]:
    return {
        "metric": "dev.accuracy",
        "direction": "maximize",
        "candidates": [
            {
                "number": 2,
                "base": False,
                "search_value": 0.62,
                "search_seeds": 1,
                "seeds": [100, 101],
                "values": [0.6, 0.61],
                "value": 0.605,
                "all_seeds": 0.61,
                "p_vs_base": 0.03,
            },
            {
                "number": 1,
                "base": True,
                "search_value": 0.59,
                "search_seeds": 1,
                "seeds": [100, 101],
                "values": [0.58, 0.57],
                "value": 0.575,
                "all_seeds": 0.58,
                "p_vs_base": None,
            },
        ],
        "best": 2,
        "why": "the best mean",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.__setitem__("candidates", {"0": 1}), "candidates must be a list, not an object"),
        (lambda t: t.pop("candidates"), "candidates must be a list, not null"),
        (lambda t: t["candidates"].__setitem__(0, X), "candidates[0] must be an object, not a string"),
        (lambda t: t["candidates"][0].__setitem__("number", X), "candidates[0].number must be a whole number"),
        (lambda t: t["candidates"][1].__setitem__("value", X), "candidates[1].value must be a number or null, not a string"),
        (lambda t: t["candidates"][0].__setitem__("search_seeds", [X]), "candidates[0].search_seeds must be a whole number (below 2^53), not a list"),
        (lambda t: t["candidates"][0]["values"].__setitem__(1, X), "candidates[0].values[1] must be a number or null, not a string"),
        (lambda t: t["candidates"][0].__setitem__("p_vs_base", X), "candidates[0].p_vs_base must be a number or null"),
        (lambda t: t["candidates"][0].__setitem__("base", "no"), "candidates[0].base must be true or false, not a string"),
        (lambda t: t.__setitem__("best", X), "best must be a whole number (below 2^53) or null, not a string"),
        (lambda t: t.__setitem__("why", [X]), "why must be a string, not a list"),
    ],
)  # fmt: skip
def test_a_rescore_json_field_of_the_wrong_type_is_named(
    study: Path, tmp_path: Path, change: Any, message: str
) -> None:
    copy = _copy(study, tmp_path / "copy")
    table = _rescore(copy)
    change(table)
    (copy / "rescore.json").write_text(json.dumps(table), encoding="utf-8")
    result = _report(str(copy))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {copy / 'rescore.json'}: {message}"), result.stderr
    assert not (copy / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([{"kind": "study"}], "is corrupted (a JSON list, not an object)"),
        ({"kind": ["study"]}, ": kind must be a string or null, not a list"),
        ({"kind": "study", "metric": 3}, ": metric must be a string or null, not a number"),
        ({"kind": "study", "command": ["ffnlp", 1]}, ": command[1] must be a string, not a number"),
        ({"kind": "study", "space": [X]}, ": space must be an object, not a list"),
        ({"kind": "study", "direction": {"x": 1}}, ": direction must be a string or null"),
    ],
)
def test_a_tune_json_of_the_wrong_shape_is_named(
    study: Path, tmp_path: Path, content: Any, message: str
) -> None:
    copy = _copy(study, tmp_path / "copy")
    info = json.loads((copy / "tune.json").read_text(encoding="utf-8"))
    if isinstance(content, dict):
        content = {**info, **content}
    (copy / "tune.json").write_text(json.dumps(content), encoding="utf-8")
    result = _report(str(copy))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {copy / 'tune.json'}"), result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _hostile_study(copy: Path, payload: str) -> None:
    """The payload in every text field the study page shows."""

    def tune(info: dict[str, Any]) -> None:
        info.update(task=payload, metric=f"dev.{payload}", study_name=payload)
        info["command"] = ["ffnlp", payload]
        info["space"] = {payload: {"type": payload, payload: payload}}

    _edit_json(copy / "tune.json", tune)
    table = _rescore(copy)
    table.update(metric=payload, why=payload)
    (copy / "rescore.json").write_text(json.dumps(table), encoding="utf-8")
    with (copy / "trials.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[0].append(f"params_{payload}")
    for row in rows[1:]:
        row.append(payload)
    with (copy / "trials.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    (copy / "best.toml").write_text(f"# {payload}\n", encoding="utf-8")
    for summary in copy.glob("trials/*/summary.json"):
        _edit_json(summary, lambda s: s.update({payload: payload, "task": payload}))


def test_every_text_of_a_study_is_text_on_its_page(study: Path, tmp_path: Path) -> None:
    pages = []
    for i, payload in enumerate((X, X.translate(DEFANG))):
        copy = _copy(study, tmp_path / f"c{i}", db=False)
        _hostile_study(copy, payload)
        result = _report(str(copy))
        assert result.exit_code == 0, result.output
        pages.append((copy / "report.html").read_text(encoding="utf-8"))
        for trial in sorted(copy.glob("trials/*/report.html")):
            pages.append(trial.read_text(encoding="utf-8"))
    half = len(pages) // 2
    assert half >= 2  # the study page and at least one trial's page
    for hostile, tame in zip(pages[:half], pages[half:], strict=True):
        assert structure(hostile) == structure(tame)
        assert html.escape(X) in hostile and "<script>" not in hostile


def test_defanged_is_a_translation_of_every_string() -> None:
    assert defanged({"<a>": ["x=1", 2, None]}) == {"\u2039a\u203a": ["x\u22611", 2, None]}
