"""The README's shell commands run as written, in order, from a fresh clone.

The fast tests read the README's ```bash blocks and check them without running anything: the two
set-up commands come first, no placeholder is left, every run folder a command reads was written
by an earlier command, every option parses, every long command states its duration. The slow
test runs every command (after the set-up lines) in a temporary folder laid out like a clone
beside ``../shared/data``, with tiny settings: one epoch, two seeds, two folds, small LMs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ffnlp import presets
from ffnlp.cli.main import app
from tests.conftest import ROOT, SHARED_DATA

README = ROOT / "README.md"
SETUP = ['python3 -m pip install -c constraints.txt -e ".[dev]" && ffnlp demo', "python3 -m pytest"]
# options whose value is a path the command writes
WRITES = {"--out", "-o", "--output", "--plot"}
LONG = (("classify", "train"), ("classify", "cv"), ("repeat",), ("lm", "train"), ("w2v", "train"))
DURATION = re.compile(r"\b\d+(\.\d+)? (s|seconds?|minutes?)\b")
# a run folder named anywhere in a token: `runs/x`, `runs/x/plots/a.png`, `pretrained=runs/x`
RUN_FOLDER = re.compile(r"(?<![\w./-])runs/[\w.-]+")

# Tiny settings (--set key=value) per command; one thread, as the machine may be busy.
TINY_TRAIN = ["train.epochs=1", "train.threads=1"]
TINY = {
    ("classify", "train"): TINY_TRAIN,
    ("classify", "cv"): TINY_TRAIN,
    ("repeat",): TINY_TRAIN,
    ("lm", "train"): [
        *TINY_TRAIN,
        "train.max_steps=3",
        "model.embedding_dim=8",
        "model.hidden_sizes=[8]",
    ],
    ("w2v", "train"): [*TINY_TRAIN, "train.max_steps=3", "model.dim=8"],
}


def bash_commands(markdown: Path) -> list[tuple[str, str]]:
    """(comment just above, command) for every command of every ```bash block of a Markdown
    file, in order; continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown.read_text(encoding="utf-8"), re.S):
        comment, pending = "", ""
        for line in block.splitlines():
            if not pending and line.lstrip().startswith("#"):
                comment = line.strip()
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1]
                continue
            command = (pending + line).strip()
            pending = ""
            if command:
                commands.append((comment, " ".join(command.split())))
                comment = ""
    return commands


def readme_commands() -> list[tuple[str, str]]:
    return bash_commands(README)


def ffnlp_args(command: str) -> list[list[str]]:
    """The arguments of each `ffnlp` call in a command (a pipeline may hold several)."""
    calls, current = [], None
    for token in shlex.split(command):
        if token in ("|", "&&", ";"):
            current = None
        elif current is None and token == "ffnlp":
            current = []
            calls.append(current)
        elif current is not None:
            current.append(token)
    return calls


def command_path(args: list[str]) -> tuple[str, ...]:
    """("classify", "train") for `ffnlp classify train ...`, ("repeat",) for `ffnlp repeat ...`."""
    command, path = typer.main.get_command(app), []
    while hasattr(command, "commands"):
        path.append(args[len(path)])
        command = command.commands[path[-1]]
    return tuple(path)


def test_the_set_up_commands_come_first() -> None:
    commands = [command for _, command in readme_commands()]
    assert commands[:2] == SETUP


def test_the_first_block_is_exactly_the_two_set_up_commands_ci_runs() -> None:
    """.ci/run runs what .ci/readme_setup.py reads from the README's first block: that block holds
    the two set-up commands and nothing else, so that CI runs exactly what a newcomer types."""
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "readme_setup.py"), str(README)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == SETUP
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "readme_setup.py README.md" in ci
    assert "pip install" not in ci.split("readme_setup.py")[0]  # nothing installed before it


def check_parses(args: list[str]) -> None:
    """One `ffnlp` call's options and arguments checked by the CLI's own parser (nothing runs)."""
    path = command_path(args)
    leaf = typer.main.get_command(app)
    for name in path:
        leaf = leaf.commands[name]  # type: ignore[attr-defined]
    leaf.make_context(" ".join(["ffnlp", *path]), args[len(path) :])


def check_reads_only_what_exists(commands: list[str]) -> None:
    """Every command is a complete ffnlp command; every run folder it reads (`runs/NAME`, also
    inside a --set value) was written by an earlier command (--out, --plot ...); every config
    file and data file it names exists."""
    written: set[str] = set()
    for command in commands:
        assert "..." not in command and "…" not in command, command
        calls = ffnlp_args(command)
        assert calls, f"not an ffnlp command: {command}"
        for args in calls:
            outputs = {args[i + 1] for i, a in enumerate(args[:-1]) if a in WRITES}
            for token in args:
                for run in RUN_FOLDER.findall(token) if token not in outputs else []:
                    assert run in written, f"{run} is read before a command writes it: {command}"
                if token.startswith("configs/"):
                    assert (ROOT / token).is_file(), token
            for option, value in zip(args, args[1:], strict=False):
                if option in ("--config", "-c") and "/" not in value:
                    assert value.removesuffix(".toml") in presets.names(), f"no preset {value}"
                if "shared/data" in token:
                    assert token.startswith("../shared/data/"), token
                    if SHARED_DATA.is_dir():
                        assert (SHARED_DATA / token.removeprefix("../shared/data/")).exists(), token
            written |= {"/".join(o.split("/")[:2]) for o in outputs if o.startswith("runs/")}


def test_every_command_is_complete_and_reads_only_runs_written_before() -> None:
    commands = [command for _, command in readme_commands()[2:]]
    assert len(commands) > 10
    check_reads_only_what_exists(commands)


def test_every_command_parses() -> None:
    """Options and arguments, also of the tiny versions, are checked by the CLI's own parser
    (nothing runs)."""
    for _, command in readme_commands()[2:]:
        for args in ffnlp_args(command) + ffnlp_args(tiny(command)):
            check_parses(args)


def test_long_commands_state_their_duration() -> None:
    for comment, command in readme_commands()[2:]:
        for args in ffnlp_args(command):
            if command_path(args) in LONG:
                assert DURATION.search(comment), f"no duration in the comment above: {command}"


def tiny(command: str) -> str:
    """The command with tiny settings (same options otherwise)."""
    command = re.sub(r"--seeds \d+", "--seeds 2", command)
    command = re.sub(r"--folds \d+", "--folds 2", command)
    for args in ffnlp_args(command):
        for setting in TINY.get(command_path(args), []):
            command += " --set " + shlex.quote(setting)
    return command


def run_in_a_fresh_clone(commands: list[str], tmp_path: Path) -> Path:
    """Run the commands in order, each with its tiny settings, in a folder laid out like a clone
    beside ``../shared/data``; fail on the first that fails. Returns the clone."""
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(SHARED_DATA)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    define = f'ffnlp() {{ {shlex.quote(sys.executable)} -m ffnlp "$@"; }}; set -o pipefail; '
    for command in commands:
        run = subprocess.run(
            ["bash", "-c", define + tiny(command)],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, f"{tiny(command)}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    return clone


@pytest.mark.slow
def test_the_readme_commands_run_in_order_from_a_fresh_clone(tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the README's commands read real data from {SHARED_DATA}, which is absent")
    clone = run_in_a_fresh_clone([command for _, command in readme_commands()[2:]], tmp_path)
    assert (clone / "runs" / "sst2_logreg" / "report.html").is_file()
