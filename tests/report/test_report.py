from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample
from ffnlp.training import ProgressBar


def test_progress_bar_shows_epoch_loss_and_dev_metric(tmp_path) -> None:
    data = write_sample(tmp_path / "d", sizes=(200, 40, 40))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140)
    ffnlp.train_classifier(
        data["train"],
        dev=data["dev"],
        out=tmp_path / "r",
        overrides=["train.epochs=2", "train.log_every=2"],
        callbacks=[ProgressBar(console=console)],
    )
    text = buffer.getvalue()
    assert "epoch 2/2" in text
    assert "loss 0." in text
    assert "dev accuracy 0." in text


def test_report_embeds_plots_and_results(tmp_path) -> None:
    data = write_sample(tmp_path / "d", sizes=(200, 40, 40))
    ffnlp.train_classifier(
        data["train"],
        dev=data["dev"],
        test=data["test"],
        out=tmp_path / "r",
        overrides=["train.epochs=2"],
    )
    result = CliRunner().invoke(app, ["report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert "data:image/png;base64," in page
    assert "Confusion matrix (test)" in page
    assert "[train]" in page  # the configuration


def test_report_of_a_folder_without_a_run(tmp_path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "has no summary.json" in result.stderr
