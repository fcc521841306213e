"""`ffnlp demo`, the README's first command, end to end on its generated sample."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ffnlp.cli.main import app


def test_demo_tours_every_task_and_leaves_run_directories(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    for run in ("classify", "classify_ffnn", "lm", "kn", "w2v"):
        assert (tmp_path / run / "summary.json").is_file(), run
    for run in ("classify", "classify_ffnn", "lm", "w2v"):
        assert (tmp_path / run / "plots" / "loss.png").is_file(), run
    clf = json.loads((tmp_path / "classify" / "summary.json").read_text())
    assert clf["test"]["accuracy"] > 0.7  # the sample is learnable: templates + negation
    assert "generate('the plot')" in result.output and "nearest to 'good'" in result.output
