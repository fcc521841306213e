"""Shared by the reliability tests: the CLI in-process, the one-line error check, checksums of
what is already on disk, and small trained runs to break."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample

runner = CliRunner()

FAST_CLASSIFY = ["--set", "train.epochs=1", "--quiet"]
TINY_LM = [
    "--set", "model.embedding_dim=8", "--set", "model.hidden_sizes=[8]",
    "--set", "model.context_size=2", "--set", "train.epochs=1", "--set", "train.threads=1",
    "--set", "samples=0", "--quiet",
]  # fmt: skip
TINY_W2V = [
    "--set", "model.dim=8", "--set", "model.min_count=1", "--set", "train.epochs=1",
    "--set", "model.workers=1", "--quiet",
]  # fmt: skip


def invoke(args: Sequence[Any], input: bytes | str | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_error(result: Result, *fragments: str, code: int = 1) -> str:
    """The command failed with ``code`` and one line ``Error: ...`` holding every fragment
    (no traceback); returns that line."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"a traceback instead of an error line: {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"not one line: {result.stderr!r}"
    line = lines[0]
    assert line.startswith("Error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def checksums(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (a file or a folder), by path; symbolic links by
    their target's name."""
    out: dict[str, str] = {}
    for root in roots:
        paths = [root] if not root.is_dir() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_symlink():
                out[str(path)] = "-> " + str(path.readlink())
            elif path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class Unchanged:
    """``with Unchanged(a, b):`` asserts that no file under a or b changed, appeared or went."""

    def __init__(self, *roots: Path):
        self.roots = roots

    def __enter__(self) -> Unchanged:
        self.before = checksums(*self.roots)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert checksums(*self.roots) == self.before, "a file already on disk changed"


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


def train_runs(root: Path) -> dict[str, Path]:
    """Sample data and one small run of each kind: classify (logreg, pooled, lexicon mlp), lm
    (feed-forward, Kneser-Ney), w2v. Returns their paths and the data files'."""
    data = write_sample(root / "data", sizes=(200, 40, 40))
    lexicon = root / "lexicon"
    lexicon.mkdir()
    (lexicon / "positive-words.txt").write_text("good\ngreat\nfunny\ncharming\n")
    (lexicon / "negative-words.txt").write_text("bad\ndull\nboring\n")
    runs = root / "runs"
    split = ["--train", data["train"], "--dev", data["dev"], "--test", data["test"]]
    commands = {
        "clf": ["classify", "train", *split, *FAST_CLASSIFY],
        "pooled": [
            "classify", "train", *split, *FAST_CLASSIFY, "--set", "model.type=pooled",
            "--set", "features.kind=ids", "--set", "features.buckets=50",
            "--set", "model.pooled.dim=8",
        ],
        "lexicon": [
            "classify", "train", *split, *FAST_CLASSIFY, "--set", "model.type=mlp",
            "--set", "features.kind=lexicon", "--set", f'features.lexicon.path="{lexicon}"',
        ],
        "lm": ["lm", "train", "--train", data["corpus"], *TINY_LM],
        "kn": [
            "lm", "train", "--train", data["corpus"], "--quiet", "--set", 'kind="kneser_ney"',
            "--set", "kneser_ney.order=2",
        ],
        "w2v": ["w2v", "train", "--corpus", data["corpus"], *TINY_W2V],
    }  # fmt: skip
    paths: dict[str, Path] = {name: Path(p) for name, p in data.items()}
    paths["lexicon_dir"] = lexicon
    for name, args in commands.items():
        result = invoke([*args, "--out", runs / name])
        assert result.exit_code == 0, result.output
        paths[name] = runs / name
    return paths


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
