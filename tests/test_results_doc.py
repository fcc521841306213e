"""docs/results.md is a page of commands and pointers: every command it shows must run as written
(its sub-command and options exist), every preset it names must ship, and every link must land
on a heading of the page it names. A renamed option, preset or heading fails here."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from tests.conftest import ROOT

DOC = ROOT / "docs" / "results.md"
LINK = re.compile(r"\]\(([a-z_-]+\.md)(?:#([^)]*))?\)")
PRESET = re.compile(r"^\| `([a-z0-9_]+)`", re.M)


def _slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's rules) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _commands(text: str) -> list[list[str]]:
    """Each command of the page's bash blocks, continuation lines joined, split as a shell would."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    joined = [b.replace("\\\n", " ") for b in blocks]
    return [shlex.split(line) for block in joined for line in block.splitlines() if line.strip()]


def test_every_link_lands_on_a_heading() -> None:
    text = DOC.read_text(encoding="utf-8")
    links = LINK.findall(text)
    assert len(links) >= 10  # the tables were read
    for page, anchor in links:
        target = ROOT / "docs" / page
        assert target.is_file(), page
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page}#{anchor}"


def test_every_preset_named_in_a_table_ships() -> None:
    names = set(PRESET.findall(DOC.read_text(encoding="utf-8")))
    assert {"sst2_best", "mr_best", "ptb_lm_best", "ptb_w2v"} <= names
    missing = sorted(n for n in names if not (ROOT / "src/ffnlp/presets" / f"{n}.toml").is_file())
    assert missing == []


def test_slug_follows_the_renderer() -> None:
    assert _slug("Character n-grams: `features.minn`, `features.maxn`") == (
        "character-n-grams-featuresminn-featuresmaxn"
    )
    assert _slug("Results on PTB train (887,521 tokens)") == "results-on-ptb-train-887521-tokens"


@pytest.mark.parametrize("command", _commands(DOC.read_text(encoding="utf-8")), ids=" ".join)
def test_every_command_names_real_options(command: list[str]) -> None:
    if command[0] == "python":  # a bench script: the file and its options
        script = ROOT / command[1]
        source = script.read_text(encoding="utf-8")
        for word in command[2:]:
            if word.startswith("--"):
                assert f'"{word}"' in source, f"{command[1]} has no {word}"
        return
    assert command[0] == "ffnlp"
    words = command[1:]
    sub = [w for w in words[:2] if not w.startswith("-")]  # e.g. ["lm", "train"]
    result = CliRunner().invoke(app, [*sub[:2], "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for word in words:
        if word.startswith("--"):  # the whole option, not a prefix of a longer one
            found = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", result.output)
            assert found, f"ffnlp {' '.join(sub)} has no {word}"
    for value in (v for k, v in zip(words, words[1:], strict=False) if k == "--config"):
        assert (ROOT / "src/ffnlp/presets" / f"{value}.toml").is_file(), value
