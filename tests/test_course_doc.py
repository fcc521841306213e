"""docs/course.md's shell commands run as written, in order, from the root of a clone.

The fast tests read the page's ```bash blocks with the README's helpers (tests/test_readme.py) and
check them without running anything: every option parses with the CLI's own parser, every run
folder a command reads was written by an earlier command, every config and data file exists,
every long command states its duration; and the page's contents list matches its sections. The
slow test runs every command with tiny settings, as the README's does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_DATA
from tests.test_readme import (
    DURATION,
    LONG,
    TINY,
    bash_commands,
    check_parses,
    check_reads_only_what_exists,
    command_path,
    ffnlp_args,
    run_in_a_fresh_clone,
    tiny,
)

COURSE = ROOT / "docs" / "course.md"


def course_commands() -> list[tuple[str, str]]:
    return bash_commands(COURSE)


def test_every_command_is_complete_and_reads_only_runs_written_before() -> None:
    commands = [command for _, command in course_commands()]
    assert len(commands) > 40
    check_reads_only_what_exists(commands)


def test_every_command_parses() -> None:
    """Also the tiny versions the slow test runs."""
    checked = 0
    for _, command in course_commands():
        for args in ffnlp_args(command) + ffnlp_args(tiny(command)):
            check_parses(args)
            checked += 1
    assert checked > 80


def test_long_commands_state_their_duration() -> None:
    for comment, command in course_commands():
        for args in ffnlp_args(command):
            if command_path(args) in LONG:
                assert DURATION.search(comment), f"no duration in the comment above: {command}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_contents_list_every_section_in_order() -> None:
    text = COURSE.read_text(encoding="utf-8")
    sections = [h for h in re.findall(r"^## (.+)$", text, re.M) if h != "Contents"]
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^- \[(.+?)\]\(#(.+?)\)$", contents, re.M) == [
        (h, slug(h)) for h in sections
    ]
    # and every link to a section anywhere on the page leads to one
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in {slug(h) for h in sections}, anchor


def test_every_lesson_has_a_command_and_says_what_to_look_at() -> None:
    text = COURSE.read_text(encoding="utf-8")
    lessons = re.split(r"^## ", text, flags=re.M)[2:]  # after the introduction and the contents
    assert len(lessons) >= 17
    for lesson in lessons:
        title = lesson.splitlines()[0]
        assert "```bash\n" in lesson, f"no command in {title!r}"
        assert "What to look at:" in lesson, f"no 'What to look at' in {title!r}"


def test_the_readme_links_the_course() -> None:
    assert "`docs/course.md`" in (ROOT / "README.md").read_text(encoding="utf-8")


def fit_tiny_vectors(command: str) -> str:
    """A classifier that starts from the tiny word2vec run's vectors takes their dimension."""
    if "model.pooled.pretrained=runs/" not in command:
        return command
    dim = next(s for s in TINY[("w2v", "train")] if s.startswith("model.dim="))
    return f"{command} --set model.pooled.{dim.removeprefix('model.')}"


@pytest.mark.slow
def test_the_course_commands_run_in_order_from_a_fresh_clone(tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the course's commands read real data from {SHARED_DATA}, which is absent")
    commands = [fit_tiny_vectors(command) for _, command in course_commands()]
    clone = run_in_a_fresh_clone(commands, tmp_path)
    assert (clone / "runs" / "sst2_ffnn_5seeds").is_dir()
