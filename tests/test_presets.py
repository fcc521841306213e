"""The presets ship with the package and are found by name: `--config sst2_ffnn` from any folder,
a file of the same name in the working folder winning (and the log saying so), `ffnlp presets`
listing them all, and the clone's configs/ and the installed copies one set."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

from ffnlp import presets
from ffnlp.cli.main import app
from ffnlp.config import load_config_file
from ffnlp.errors import ConfigError, DataError
from ffnlp.tasks.classify import resolve_config as classify_config
from ffnlp.tasks.lm import resolve_config as lm_config
from ffnlp.tasks.sample import write_sample
from ffnlp.tasks.w2v import resolve_config as w2v_config
from tests.conftest import ROOT

runner = CliRunner()
CONFIGS = ROOT / "configs"
RESOLVERS = {"classify": classify_config, "lm": lm_config, "w2v": w2v_config}
FAST = ["--set", "train.epochs=1", "--set", "train.threads=1", "--set", "train.checkpoint=false"]


def ffnlp(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command, run in ``cwd`` (where the checkout is not)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ffnlp", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_presets_are_the_clones_configs() -> None:
    shipped = {
        p.name: p.read_bytes() for p in presets.preset_path("sst2_ffnn").parent.glob("*.toml")
    }
    shipped.pop(presets.INDEX)
    clone = {p.name: p.read_bytes() for p in CONFIGS.glob("*.toml")}
    assert sorted(shipped) == sorted(clone), "copy configs/*.toml into src/ffnlp/presets/"
    for name, text in clone.items():
        assert shipped[name] == text, f"src/ffnlp/presets/{name} differs from configs/{name}"


def test_every_preset_is_described_and_resolves_as_its_task() -> None:
    index = tomllib.loads(
        (presets.preset_path("sst2_ffnn").parent / presets.INDEX).read_text(encoding="utf-8")
    )
    assert sorted(index) == presets.names()
    for p in presets.all_presets():
        assert p.task in RESOLVERS, p
        assert p.about and p.result and p.data, p
        RESOLVERS[p.task](p.path)  # a valid configuration of its task (raises if not)


@pytest.mark.parametrize("name", presets.names())
def test_no_preset_holds_a_path(name: str) -> None:
    """Data and evaluation files are given on the command line: a preset that names one works
    only from the folder it was written in."""
    data = tomllib.loads(presets.preset_path(name).read_text(encoding="utf-8"))

    def strings(node: object) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    for value in strings(data):
        assert "/" not in value and "\\" not in value, f"{name}: {value!r} looks like a path"
    assert "../shared" not in presets.preset_path(name).read_text(encoding="utf-8")


def test_a_bare_name_is_the_preset_and_the_log_says_so(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="ffnlp"):
        for value in ("sst2_ffnn", "sst2_ffnn.toml"):
            assert presets.find_config(value) == presets.preset_path("sst2_ffnn")
    assert "the preset shipped with ffnlp" in caplog.text
    assert load_config_file("sst2_ffnn") == tomllib.loads(
        (CONFIGS / "sst2_ffnn.toml").read_text(encoding="utf-8")
    )


def test_a_file_of_the_same_name_wins_and_the_log_says_so(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sst2_ffnn").write_text("[train]\nepochs = 1\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="ffnlp"):
        assert presets.find_config("sst2_ffnn") == Path("sst2_ffnn")
    assert "is used, not the preset 'sst2_ffnn'" in caplog.text
    assert load_config_file("sst2_ffnn") == {"train": {"epochs": 1}}


def test_a_name_with_a_folder_is_only_ever_a_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        presets.find_config("configs/sst2_ffnn.toml")
    message = str(err.value)
    assert "resolved against the working folder" in message
    assert str(tmp_path / "configs" / "sst2_ffnn.toml") in message
    assert "ffnlp presets" in message


def test_an_unknown_name_suggests_the_closest_preset() -> None:
    with pytest.raises(ConfigError, match="did you mean 'sst2_ffnn'"):
        presets.get("sst2_fnn")


def test_ffnlp_presets_lists_and_shows_every_preset() -> None:
    listed = runner.invoke(app, ["presets"])
    assert listed.exit_code == 0, listed.output
    for p in presets.all_presets():
        assert f"{p.name}  ({p.task})" in listed.output
    as_json = runner.invoke(app, ["presets", "--json"])
    assert [p["name"] for p in json.loads(as_json.stdout)] == presets.names()
    shown = runner.invoke(app, ["presets", "show", "ptb_lm"])
    assert shown.exit_code == 0
    assert shown.stdout == (CONFIGS / "ptb_lm.toml").read_text(encoding="utf-8")
    bad = runner.invoke(app, ["presets", "show", "nosuch"])
    assert bad.exit_code == 1 and "Error: no preset named 'nosuch'" in bad.output


def test_train_by_preset_name_from_another_folder(tmp_path) -> None:
    data = write_sample(tmp_path / "data", sizes=(120, 30, 30))
    split = ["--train", data["train"], "--dev", data["dev"], "--test", data["test"]]
    done = ffnlp("classify", "train", "--config", "sst2_logreg", *split, *FAST, "--out", "run",
                 cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the preset shipped with ffnlp" in done.stderr
    config = tomllib.loads((tmp_path / "run" / "config.toml").read_text(encoding="utf-8"))
    assert config["features"]["ngram_range"] == [1, 2]  # the preset's, not the default's
    # a file of that name in the working folder is used instead, and the log says so
    (tmp_path / "sst2_logreg").write_text("[features]\nngram_range = [1, 1]\n", encoding="utf-8")
    done = ffnlp("classify", "train", "--config", "sst2_logreg", *split, *FAST, "--out", "run2",
                 cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "is used, not the preset 'sst2_logreg'" in " ".join(done.stderr.split())
    config = tomllib.loads((tmp_path / "run2" / "config.toml").read_text(encoding="utf-8"))
    assert config["features"]["ngram_range"] == [1, 1]


def test_w2v_train_takes_its_evaluation_files_on_the_command_line(tmp_path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 40, encoding="utf-8")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("cat\tdog\t7.0\nmat\tlog\t5.0\nthe\tsat\t1.0\n", encoding="utf-8")
    args = ["w2v", "train", "--corpus", corpus, "--config", "ptb_w2v", "--similarity", pairs,
            "--set", "model.min_count=1", "--set", "model.dim=8", "--set", "train.epochs=1",
            "--out", tmp_path / "run", "--json"]  # fmt: skip
    done = runner.invoke(app, [str(a) for a in args])
    assert done.exit_code == 0, done.output
    assert "pairs.tsv" in json.loads(done.stdout)["evaluation"]["similarity"]
    missing = runner.invoke(
        app, [str(a) for a in [*args[:-3], "--similarity", "nosuch.tsv", "--out", tmp_path / "r2"]]
    )
    assert missing.exit_code == 1
    assert "nosuch.tsv (resolved against the working folder" in missing.output
    assert not (tmp_path / "r2").exists()


def test_a_missing_lexicon_names_the_path_as_resolved(tmp_path, monkeypatch) -> None:
    from ffnlp.features.lexicon import read_word_list

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        read_word_list("lex/positive-words.txt")
    assert str(tmp_path / "lex" / "positive-words.txt") in str(err.value)
    assert "resolved against the working folder" in str(err.value)
