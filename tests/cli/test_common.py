"""cli/common.py: what the commands share (the command line a run resumes or relaunches with)."""

from __future__ import annotations

from ffnlp.cli.common import without_options
from ffnlp.cli.main import resume_command


def test_without_options_drops_options_with_their_values_and_flags() -> None:
    argv = ["classify", "train", "--nproc", "2", "--max-restarts=1", "--train", "t.txt", "-q"]
    assert without_options(argv, ("--nproc", "--max-restarts")) == [
        "classify",
        "train",
        "--train",
        "t.txt",
        "-q",
    ]
    assert without_options(
        ["-o", "a", "-o=b", "--force", "--out=c"], ("-o", "--out"), ("--force",)
    ) == [
        "-o=b"  # only --name=VALUE of a long option is one argument
    ]


def test_a_resumed_run_keeps_every_option_but_its_folder() -> None:
    argv = ["lm", "train", "--train", "my corpus.txt", "--out", "runs/a", "--force", "--seed", "3"]
    assert resume_command(argv, "runs/a") == (
        "ffnlp lm train --train 'my corpus.txt' --seed 3 --resume runs/a"
    )
