"""`ffnlp report DIR` on an `ffnlp tune` study folder (made here directly with Optuna)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.report import studyplots
from ffnlp.report.html import write_report
from ffnlp.report.studyfolder import param_importances, read_study
from ffnlp.tasks.sample import write_sample
from tests.report.pages import linked_files, png_sizes
from tests.report.studies import make_study

SECTIONS = (
    "history",
    "importances",
    "slices",
    "parallel",
    "intermediate",
    "best-curves",
    "top",
    "best-config",
    "space",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("data"), sizes=(200, 40, 40))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Path]) -> Path:
    """Two real trials, three synthetic complete ones, two pruned, one failed."""
    return make_study(tmp_path_factory.mktemp("s") / "study", data, failed=1)


@pytest.fixture(scope="module")
def page(study: Path) -> str:
    path = write_report(study)
    assert path == study / "report.html"
    return path.read_text(encoding="utf-8")


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Each figure the study plots render, as {axes title: [{label, x, y, color} per line]}."""
    captured: dict[str, list[dict[str, Any]]] = {}
    real = studyplots.figure_png

    def capture(fig: Any, dpi: int = 110) -> bytes:
        for ax in fig.axes:
            captured[ax.get_title()] = [
                {
                    "label": line.get_label(),
                    "x": list(line.get_xdata()),
                    "y": list(line.get_ydata()),
                    "color": line.get_color(),
                }
                for line in ax.get_lines()
            ]
        return real(fig, dpi)

    monkeypatch.setattr(studyplots, "figure_png", capture)
    return captured


def test_the_page_has_every_section_and_the_study_facts(page: str) -> None:
    for section in SECTIONS:
        assert f"<h2 id='{section}'>" in page
    assert "<tr><td>trials</td><td>8 (5 complete, 2 pruned, 1 fail)</td></tr>" in page
    assert "<tr><td>metric</td><td>dev.accuracy (maximize)</td></tr>" in page
    assert "<tr><td>read from</td><td>storage</td></tr>" in page
    assert "<tr><td>best value</td><td>0.6800 (trial 4)</td></tr>" in page
    assert "<tr><td>best train.optimizer</td><td>sgd</td></tr>" in page
    assert "class='note'" not in page  # everything could be drawn
    assert "Learning curves of every trial (2 pruned, in grey)" in page
    assert "[train]" in page  # best.toml


def test_every_image_is_a_complete_png_data_uri(page: str) -> None:
    # history, importances, slices, parallel, intermediate, the best trial's loss and dev curves
    assert len(png_sizes(page)) == 7


def test_the_top_trials_are_ranked_and_link_to_their_reports(study: Path, page: str) -> None:
    rows = page.split("<h2 id='top'>")[1].split("</table>")[0].split("<tr>")[2:]
    trials = [int(r.split("<td>")[2].split("<")[0]) for r in rows]
    assert trials == [4, 3, 2, 1, 0]  # the synthetic trials score 0.62..0.68, the real ones less
    links = linked_files(study / "report.html")
    assert {p.parent.name for p in links} == {f"{n:04d}" for n in trials}
    assert all(p.name == "report.html" and p.is_file() for p in links)


def test_pruned_trials_are_drawn(study: Path, figures: dict[str, list[dict[str, Any]]]) -> None:
    write_report(study, study.parent / "again.html")
    history = figures["optimisation history (maximize)"]
    pruned = next(line for line in history if line["label"] == "pruned (last reported value)")
    assert pruned["x"] == [5, 6] and pruned["y"] == [0.35, 0.36]  # at their last reported value
    best_so_far = next(line for line in history if line["label"] == "best so far")
    assert best_so_far["y"][-1] == 0.68
    curves = figures["values reported at each evaluation (what the pruner sees)"]
    grey = [line for line in curves if line["color"] == "tab:gray"]
    assert len(grey) == 2 and all(len(line["x"]) == 1 for line in grey)
    assert sum(line["color"] == "tab:blue" for line in curves) == 4  # complete, but the best
    best = next(line for line in curves if line["color"] == "tab:red")
    assert best["label"] == "best (trial 4)" and best["x"] == [7, 14, 21]


def test_the_trials_read_from_trials_csv_are_those_of_the_storage(
    study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = read_study(study)
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if Optuna were not installed
    from_csv = read_study(study)
    assert (stored.source, from_csv.source) == ("storage", "trials.csv")
    for a, b in zip(stored.trials, from_csv.trials, strict=True):
        assert (a.number, a.state, a.value, a.params) == (b.number, b.state, b.value, b.params)
        assert a.intermediate == b.intermediate  # reported to Optuna = read from metrics.jsonl
        assert a.run_dir == b.run_dir


def test_without_optuna_the_page_renders_all_but_the_importances(
    study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    page = write_report(study, study.parent / "no_optuna.html").read_text(encoding="utf-8")
    assert (
        "<p class='note'>Parameter importances need Optuna, an optional dependency: "
        "pip install &#x27;ffnlp[tune]&#x27;.</p>"
    ) in page
    assert len(png_sizes(page)) == 6  # all but the importances
    assert "<tr><td>read from</td><td>trials.csv</td></tr>" in page


def test_without_optuna_and_without_trials_csv_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_study(tmp_path / "study", real=0, complete=2, pruned=0, csv_file=False)
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {folder} has no trials.csv, and reading the trials from the study's Optuna "
        "storage needs Optuna, an optional dependency: pip install 'ffnlp[tune]'\n"
    )


def test_importances_from_trials_csv_rank_the_same_parameters(
    study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored, _ = param_importances(read_study(study))
    (study.parent / "copy").mkdir(exist_ok=True)
    copy = study.parent / "copy" / "study"
    shutil.copytree(study, copy, ignore=shutil.ignore_patterns("study.db"), dirs_exist_ok=True)
    info = json.loads((copy / "tune.json").read_text(encoding="utf-8"))
    info["storage"] = f"sqlite:///{copy.resolve()}/gone.db"  # nothing to open: trials.csv
    (copy / "tune.json").write_text(json.dumps(info), encoding="utf-8")
    from_csv = read_study(copy)
    assert from_csv.source == "trials.csv" and not (copy / "gone.db").exists()
    inferred, why = param_importances(from_csv)
    assert stored is not None and inferred is not None, why
    assert set(inferred) == set(stored) == {"train.lr", "train.batch_size", "train.optimizer"}
    assert sum(inferred.values()) == pytest.approx(1.0)


def test_a_moved_study_folder_reads_its_own_study_db(study: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(study, moved)
    shutil.move(study / "study.db", tmp_path / "elsewhere.db")  # tune.json's URL now fails
    try:
        assert read_study(moved).source == "storage"
    finally:
        shutil.move(tmp_path / "elsewhere.db", study / "study.db")


def test_an_unreadable_storage_falls_back_to_trials_csv(study: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    (copy / "study.db").write_bytes(b"not a database at all" * 100)
    loaded = read_study(copy)
    assert loaded.source == "trials.csv" and len(loaded.trials) == 8
    assert loaded.notes[0].startswith(f"the study's storage sqlite:///{copy.resolve()}/study.db")
    assert "could not be read" in loaded.notes[0]


@pytest.mark.parametrize(
    ("complete", "pruned", "importance_note"),
    [
        (1, 1, "Parameter importances need at least two complete trials; this study has 1."),
        (0, 2, "Parameter importances need at least two complete trials; this study has 0."),
        (0, 0, "Parameter importances need at least two complete trials; this study has 0."),
    ],
)
def test_a_study_with_fewer_than_two_complete_trials_renders_with_notes(
    tmp_path: Path, complete: int, pruned: int, importance_note: str
) -> None:
    folder = make_study(tmp_path / "study", real=0, complete=complete, pruned=pruned)
    page = write_report(folder).read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"<h2 id='{section}'>" in page
    assert f"<p class='note'>{importance_note}</p>" in page
    sizes = png_sizes(page)
    if complete == 0:
        assert "<p class='note'>No slice plots: no trial has completed yet.</p>" in page
        assert "<p class='note'>No trial has completed yet.</p>" in page
        assert "has no best.toml yet" in page
        assert len(sizes) == (2 if pruned else 1)  # history (+ the pruned trials' values)
    else:
        assert len(sizes) == 6  # all but the importances
        assert "<tr><td>best value</td><td>0.5600 (trial 0)</td></tr>" in page


def test_a_damaged_tune_json_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "tune.json").write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'tune.json'} is corrupted (not JSON")
