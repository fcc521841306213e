"""`ffnlp report DIR` on `ffnlp repeat` and `ffnlp classify cv` folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.experiments.cv import cross_validate
from ffnlp.experiments.repeat import repeat
from ffnlp.experiments.stats import describe
from ffnlp.report import group
from ffnlp.report.group import curve_metric, mean_curve
from ffnlp.tasks.sample import write_sample
from tests.report.pages import linked_files, png_sizes

SETTINGS = ["train.epochs=2", "train.log_every=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("data"), sizes=(200, 40, 40))


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Path]) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("r") / "rep"
    return repeat(
        "classify", data["train"], dev=data["dev"], test=data["test"], overrides=SETTINGS,
        seeds=[0, 1], out=out,
    )  # fmt: skip


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Path]) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("c") / "cv"
    return cross_validate(data["train"], folds=3, overrides=SETTINGS, out=out)


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The axes of every figure the group report draws: [(ylabel, [(label, lw, x, y)])]."""
    captured: list[Any] = []
    real = group.figure_png

    def capture(fig: Any, dpi: int = 110) -> bytes:
        for ax in fig.axes:
            lines = [
                (line.get_label(), line.get_linewidth(), list(line.get_xdata()), list(line.get_ydata()))
                for line in ax.get_lines()
            ]  # fmt: skip
            captured.append((ax.get_ylabel(), lines))
        return real(fig, dpi)

    monkeypatch.setattr(group, "figure_png", capture)
    return captured


def _report(folder: Path) -> str:
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    return (folder / "report.html").read_text(encoding="utf-8")


def _row(page: str, first_cell: str) -> list[str]:
    row = page.split(f"<tr><td>{first_cell}</td>")[1].split("</tr>")[0]
    return [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]


def test_repeat_report_tables_each_seed_and_the_mean_sd_ci(repeated: dict[str, Any]) -> None:
    folder = Path(repeated["run_dir"])
    page = _report(folder)
    for section in ("summary", "runs", "curves", "configuration"):
        assert f"<h2 id='{section}'>" in page
    values = [run["test"]["accuracy"] for run in repeated["runs"]]
    d = describe(values)
    assert _row(page, "test accuracy") == [
        f"{d['mean']:.4f}", f"{d['sd']:.4f}", f"[{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]", "2",
    ]  # fmt: skip
    seed_1 = _row(page, "seed 1")
    assert (
        f"{values[1]:.4f}" in seed_1 and seed_1[-1] == "<a href='./seed_1/report.html'>report</a>"
    )
    assert {p.parent.name for p in linked_files(folder / "report.html")} == {"seed_0", "seed_1"}
    assert all(p.is_file() for p in linked_files(folder / "report.html"))
    assert f"--config {folder / 'seed_0' / 'config.toml'}" in page
    assert f"{folder / 'config.toml'}" not in page  # the file the old page pointed at
    assert "[train]" in page and "Each run overrides <code>train.seed</code>" in page
    assert len(png_sizes(page)) == 1


def test_cv_report_tables_each_fold(folds: dict[str, Any]) -> None:
    folder = Path(folds["run_dir"])
    page = _report(folder)
    d = describe(folds["cv"]["accuracy"]["values"])
    assert d["mean"] == pytest.approx(folds["cv"]["accuracy"]["mean"])
    assert _row(page, "test accuracy")[:3] == [
        f"{d['mean']:.4f}", f"{d['sd']:.4f}", f"[{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]",
    ]  # fmt: skip
    for k in (1, 2, 3):
        assert _row(page, f"fold {k}")[-1] == f"<a href='./fold_{k}/report.html'>report</a>"
    assert f"ffnlp classify cv --folds 3 --config {folder / 'fold_1' / 'config.toml'}" in page
    assert "<tr><td>examples</td><td>200</td></tr>" in page
    assert len(png_sizes(page)) == 1


def test_the_curves_show_every_run_and_their_mean_in_bold(
    repeated: dict[str, Any], figures: list[Any]
) -> None:
    folder = Path(repeated["run_dir"])
    (folder / "again").mkdir(exist_ok=True)
    CliRunner().invoke(app, ["report", str(folder), "--out", str(folder / "again" / "r.html")])
    (dev_label, dev_lines), (loss_label, loss_lines) = figures
    assert (dev_label, loss_label) == ("dev accuracy", "train loss")
    for lines in (dev_lines, loss_lines):
        assert [label for label, *_ in lines] == ["seed 0", "seed 1", "mean of 2"]
        (_, thin, x0, y0), (_, _, x1, y1), (_, bold, xm, ym) = lines
        assert bold > 2 * thin and xm == x0 == x1
        assert ym == pytest.approx((np.asarray(y0) + np.asarray(y1)) / 2)
    # links from a page elsewhere are relative to that page
    page = (folder / "again" / "r.html").read_text(encoding="utf-8")
    assert "<a href='../seed_0/report.html'>report</a>" in page


def test_a_missing_run_folder_leaves_its_row_without_a_link(
    repeated: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "rep"
    shutil.copytree(repeated["run_dir"], copy)
    shutil.rmtree(copy / "seed_0")
    page = _report(copy)
    assert _row(page, "seed 0")[-1] == "<span class='muted'>—</span>"
    assert _row(page, "seed 1")[-1] == "<a href='./seed_1/report.html'>report</a>"
    assert "seed_1" in page.split("<h2 id='configuration'>")[1]  # the config of a run still there


def test_mean_curve_over_the_steps_every_run_covers() -> None:
    grid, mean = mean_curve([([2, 4, 6, 8], [1.0, 2.0, 3.0, 4.0]), ([3, 6], [0.0, 3.0])])
    assert grid.tolist() == [3, 4, 6]  # from the latest start to the earliest end
    assert mean.tolist() == pytest.approx([(1.5 + 0.0) / 2, (2.0 + 1.0) / 2, 3.0])
    empty_grid, empty_mean = mean_curve([([], []), ([1, 2], [0.5, 0.5])])
    assert empty_grid.tolist() == [1, 2] and empty_mean.tolist() == [0.5, 0.5]
    assert mean_curve([([1, 2], [0, 0]), ([5, 6], [1, 1])])[0].size == 0  # no common step


def test_curve_metric_prefers_the_task_metric() -> None:
    assert curve_metric([{"dev": {"loss": 1.0, "perplexity": 3.0}}]) == "perplexity"
    assert curve_metric([{"dev": {"loss": 1.0, "macro_f1": 0.3, "accuracy": 0.5}}]) == "accuracy"
    assert curve_metric([{"dev": {"loss": 1.0}}]) == "loss"
    assert curve_metric([{"train": {"loss": 1.0}}]) is None


def test_a_seed_that_leads_out_of_the_folder_is_not_followed(
    repeated: dict[str, Any], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(Path(repeated["run_dir"]) / "seed_0", outside)
    (outside / "report.html").unlink(missing_ok=True)  # other tests reported seed_0
    folder = tmp_path / "a" / "rep"
    shutil.copytree(repeated["run_dir"], folder)
    (folder / "report.html").unlink(missing_ok=True)
    (folder / "seed_x").mkdir()
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary["runs"][0]["seed"] = "x/../../../outside"  # an edited summary.json
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert (folder / "seed_x/../../../outside").is_dir()
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {folder / 'summary.json'}: runs[0].seed must be a whole number (below 2^53), not a string"
    )
    assert not (outside / "report.html").exists() and not (folder / "report.html").exists()
