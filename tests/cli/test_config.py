from __future__ import annotations

from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.tasks.reference import reference_markdown
from tests.conftest import ROOT

runner = CliRunner()


def test_show_resolves_file_and_overrides() -> None:
    result = runner.invoke(
        app,
        [
            "config",
            "show",
            "classify",
            "--config",
            str(ROOT / "configs/sst2_logreg.toml"),
            "--set",
            "train.lr=0.25",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lr = 0.25" in result.stdout and 'format = "label-text"' in result.stdout


def test_unknown_task_is_an_error() -> None:
    result = runner.invoke(app, ["config", "show", "classifier"])
    assert result.exit_code == 1
    assert "Error: unknown task 'classifier'; choose one of: classify, lm, w2v" in result.stderr


def test_docs_configuration_is_up_to_date() -> None:
    path = ROOT / "docs/configuration.md"
    assert path.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run `ffnlp config reference > docs/configuration.md`"
    )
