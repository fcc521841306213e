"""`--init-from RUN` on the three train commands: a continued run end to end on the built-in
sample, and every bad --init-from answered with one `Error:` line that leaves nothing on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample

runner = CliRunner()

POOLED = [
    "--set",
    'model.type="pooled"',
    "--set",
    'features.kind="ids"',
    "--set",
    "features.buckets=300",
]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 60, 60))


@pytest.fixture(scope="module")
def runs(sample, tmp_path_factory) -> dict[str, Path]:
    """A pooled classifier, an lm, a w2v and a Kneser-Ney run, trained briefly."""
    root = tmp_path_factory.mktemp("runs")
    found = {name: root / name for name in ("clf", "lm", "w2v", "kn")}
    quick = ["--quiet", "--set", "train.epochs=1"]
    commands = {
        "clf": ["classify", "train", "--train", sample["train"], *POOLED, *quick],
        "lm": [
            "lm",
            "train",
            "--train",
            sample["corpus"],
            "--set",
            "model.hidden_sizes=[16]",
            "--set",
            "samples=0",
            *quick,
        ],
        "w2v": ["w2v", "train", "--corpus", sample["corpus"], "--set", "model.dim=16", *quick],
        "kn": ["lm", "train", "--train", sample["corpus"], "--set", 'kind="kneser_ney"', "--quiet"],
    }
    for name, command in commands.items():
        result = invoke(*command, "--out", found[name])
        assert result.exit_code == 0, result.output
    return found


def test_classify_train_continues_a_run_from_the_command_line(sample, runs, tmp_path) -> None:
    out = tmp_path / "continued"
    result = invoke(
        "classify",
        "train",
        "--init-from",
        runs["clf"],
        "--train",
        sample["dev"],
        "--set",
        "train.epochs=1",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["init_from"]["run"] == str(runs["clf"].resolve())
    assert (out / "init_from.json").is_file()
    assert 'type = "pooled"' in (out / "config.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["lm", "w2v"])
def test_lm_and_w2v_train_continue_a_run(command, sample, runs, tmp_path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("the zorblax film is zorblax .\n" * 6, encoding="utf-8")
    data = ["--train", extra] if command == "lm" else ["--corpus", extra]
    out = tmp_path / "continued"
    result = invoke(command, "train", "--init-from", runs[command], *data, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    lineage = json.loads(result.stdout)["init_from"]
    assert lineage["vocab"]["after"] == lineage["vocab"]["before"] + 1  # zorblax
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["itos"][-1] == "zorblax"


def expect_refused(tmp_path: Path, *args: object) -> str:
    out = tmp_path / "new"
    result = invoke(*args, "--out", out)
    line = error_line(result)
    assert line.startswith("Error: ")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    return line


def test_a_missing_run_is_refused(sample, tmp_path) -> None:
    missing = tmp_path.parent / "no_such_run"
    line = expect_refused(
        tmp_path, "classify", "train", "--train", sample["train"], "--init-from", missing
    )
    assert line == (
        f"Error: --init-from {missing}: {missing} does not exist; give the directory of a "
        "trained run"
    )


def test_a_folder_that_is_not_a_run_is_refused(sample, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("not_a_run")
    (folder / "notes.txt").write_text("hello", encoding="utf-8")
    work = tmp_path_factory.mktemp("work")
    line = expect_refused(
        work, "classify", "train", "--train", sample["train"], "--init-from", folder
    )
    assert line == (
        f"Error: --init-from {folder}: {folder} is not an ffnlp run directory: model.json is "
        "missing (train a model with --out DIR first)"
    )


def test_a_run_of_another_task_is_refused(sample, runs, tmp_path) -> None:
    line = expect_refused(
        tmp_path, "classify", "train", "--train", sample["train"], "--init-from", runs["w2v"]
    )
    assert line == (
        f"Error: --init-from {runs['w2v']}: it is a w2v run, and ffnlp classify train continues "
        f"a classify run; to continue it use ffnlp w2v train --init-from {runs['w2v']}"
    )
    line = expect_refused(
        tmp_path, "w2v", "train", "--corpus", sample["corpus"], "--init-from", runs["lm"]
    )
    assert "it is an lm run, and ffnlp w2v train continues a w2v run" in line


def test_a_kneser_ney_run_has_no_weights_to_continue(sample, runs, tmp_path) -> None:
    line = expect_refused(
        tmp_path, "lm", "train", "--train", sample["corpus"], "--init-from", runs["kn"]
    )
    assert line == (
        f"Error: --init-from {runs['kn']}: the run is a Kneser-Ney model, counted rather than "
        "trained, so it has no weights to continue; continue a feed-forward LM run (kind = "
        '"ffnn"), or fit Kneser-Ney on all the text'
    )
    line = expect_refused(
        tmp_path,
        "lm",
        "train",
        "--train",
        sample["corpus"],
        "--init-from",
        runs["lm"],
        "--set",
        'kind="kneser_ney"',
    )
    assert line == (
        f"Error: --init-from {runs['lm']}: kind = 'kneser_ney' is counted, not trained, and "
        "cannot start from the run's weights; leave kind = \"ffnn\" (the run's)"
    )


def test_another_embedding_dim_is_an_incompatible_architecture(sample, runs, tmp_path) -> None:
    line = expect_refused(
        tmp_path,
        "classify",
        "train",
        "--train",
        sample["train"],
        "--init-from",
        runs["clf"],
        "--set",
        "model.pooled.dim=32",
    )
    assert line.startswith(
        f"Error: --init-from {runs['clf']}: the model this configuration builds does not fit "
        "the run's weights: the weight 'embedding.weight' is ("
    )
    assert ", 100) in the run and (" in line and ", 32) with this configuration" in line
    assert "settings that differ from the run's: model.pooled.dim (100 in the run, 32 here)" in line
    line = expect_refused(
        tmp_path,
        "lm",
        "train",
        "--train",
        sample["corpus"],
        "--init-from",
        runs["lm"],
        "--set",
        "model.embedding_dim=8",
    )
    assert "the model this configuration builds does not fit the run's weights" in line
    assert "model.embedding_dim (" in line and ", 8 here)" in line
    line = expect_refused(
        tmp_path,
        "w2v",
        "train",
        "--corpus",
        sample["corpus"],
        "--init-from",
        runs["w2v"],
        "--set",
        "model.dim=8",
    )
    assert line == (
        f"Error: --init-from {runs['w2v']}: the rows of the run's weights are laid out by "
        "settings this configuration changes: model.dim = 8 here but 16 in the run it "
        "continues; set it back (or leave it out: the run's settings are the base)"
    )


def test_a_changed_row_layout_is_refused(sample, runs, tmp_path) -> None:
    line = expect_refused(
        tmp_path,
        "classify",
        "train",
        "--train",
        sample["train"],
        "--init-from",
        runs["clf"],
        "--set",
        "features.buckets=100",
        "--set",
        "features.ngram_range=[1, 3]",
    )
    assert "features.ngram_range = [1, 3] here but [1, 2] in the run it continues" in line
    assert "features.buckets = 100 here but 300 in the run it continues" in line


def test_resume_with_init_from_is_refused(sample, runs, tmp_path) -> None:
    result = invoke(
        "classify",
        "train",
        "--train",
        sample["train"],
        "--init-from",
        runs["clf"],
        "--resume",
        tmp_path / "run",
    )
    assert error_line(result).startswith(
        "Error: --resume and --init-from cannot be used together: --resume continues the "
        "interrupted run in its folder from its own checkpoint"
    )
    assert list(tmp_path.iterdir()) == []


def test_seeds_with_init_from_is_a_usage_error(sample, runs) -> None:
    result = invoke(
        "classify", "train", "--train", sample["train"], "--init-from", runs["clf"], "--seeds", "2"
    )
    assert result.exit_code == 2
    assert "--init-from is for a single run" in result.stderr


def test_the_train_commands_document_init_from() -> None:
    for group in ("classify", "lm", "w2v"):
        result = invoke(group, "train", "--help")
        assert result.exit_code == 0 and "--init-from" in result.output, group


def test_cv_continues_the_run_in_every_fold(sample, runs, tmp_path) -> None:
    out = tmp_path / "cv"
    result = invoke(
        "classify",
        "cv",
        "--data",
        sample["train"],
        "--folds",
        "2",
        "--init-from",
        runs["clf"],
        "--set",
        "train.epochs=1",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["init_from"] == str(runs["clf"])
    for fold in ("fold_1", "fold_2"):
        summary = json.loads((out / fold / "summary.json").read_text(encoding="utf-8"))
        assert summary["init_from"]["run"] == str(runs["clf"].resolve())
        assert 'type = "pooled"' in (out / fold / "config.toml").read_text(encoding="utf-8")


def test_the_train_output_names_the_run_it_continued(sample, runs, tmp_path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("2 a zorblax film .\n0 a dull film .\n1 a good film .\n", encoding="utf-8")
    out = tmp_path / "continued"
    result = invoke("classify", "train", "--init-from", runs["clf"], "--train", extra, "--out", out)
    assert result.exit_code == 0, result.output
    lineage = json.loads((out / "summary.json").read_text(encoding="utf-8"))["init_from"]
    rows = lineage["input_rows"]
    assert (
        f"continued from {runs['clf'].resolve()}; rows {rows['before']} -> {rows['after']}; "
        "new labels: 2"
    ) in result.stdout.replace("\n", "")
