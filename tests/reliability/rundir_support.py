"""Shared pieces of the run-folder reliability tests: tiny data, the three tasks' train commands,
checksums of a folder, the CLI driven in-process, a signal sent at a given step."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from ffnlp.cli import common
from ffnlp.cli.main import app
from ffnlp.tasks.sample import write_sample
from ffnlp.training import Callback

TASKS = ("classify", "lm", "w2v")

# a few seconds at most per training on two busy cores; every setting is deterministic
SETTINGS = {
    "classify": ["train.epochs=3", "train.threads=1", "train.batch_size=16", "train.log_every=4"],
    "lm": [
        "train.epochs=3",
        "train.threads=1",
        "train.batch_size=64",
        "train.log_every=4",
        "model.embedding_dim=8",
        "model.hidden_sizes=[16]",
        "model.context_size=2",
        "data.min_count=1",
    ],
    "w2v": [
        "train.epochs=3",
        "train.threads=1",
        "train.batch_size=32",
        "train.log_every=4",
        "model.dim=8",
        "model.min_count=1",
        "model.workers=1",
        "model.window=2",
        "corpus.prefetch=false",
    ],
}

runner = CliRunner()


def write_data(folder: Path) -> dict[str, Path]:
    """Labelled train/dev files (classify) and a plain corpus (lm, w2v), small."""
    paths = write_sample(folder, sizes=(160, 40, 40))
    lines = paths["corpus"].read_text(encoding="utf-8").splitlines()
    paths["lm_train"] = folder / "lm_train.txt"
    paths["lm_train"].write_text("\n".join(lines[:160]) + "\n", encoding="utf-8")
    paths["lm_dev"] = folder / "lm_dev.txt"
    paths["lm_dev"].write_text("\n".join(lines[160:200]) + "\n", encoding="utf-8")
    paths["empty"] = folder / "empty.txt"
    paths["empty"].write_text("", encoding="utf-8")
    return paths


def train_args(task: str, data: dict[str, Path], empty: bool = False) -> list[str]:
    """`ffnlp TASK train` with its data and settings, without --out/--resume/--force."""
    if task == "classify":
        train = data["empty"] if empty else data["train"]
        args = ["classify", "train", "--train", str(train), "--dev", str(data["dev"])]
        args += ["--test", str(data["test"])]  # predictions.jsonl too
    elif task == "lm":
        train = data["empty"] if empty else data["lm_train"]
        args = ["lm", "train", "--train", str(train), "--dev", str(data["lm_dev"])]
    else:
        corpus = data["empty"] if empty else data["lm_train"]
        args = ["w2v", "train", "--corpus", str(corpus)]
    for setting in SETTINGS[task]:
        args += ["--set", setting]
    return [*args, "--quiet"]


def invoke(args: list[str]) -> Any:
    """Run the CLI in-process; ``.exit_code``, ``.stdout``, ``.stderr``."""
    return runner.invoke(app, [str(a) for a in args])


def error_line(result: Any) -> str:
    """The one line the CLI wrote to stderr (asserting it is one line)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def checksums(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too): files by content and mode, links by target,
    folders by mode."""
    out: dict[str, str] = {}
    if not folder.exists():
        return out
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        st = path.lstat()
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = f"dir:{st.st_mode:o}"
        else:
            out[rel] = f"{st.st_mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def listing(folder: Path) -> list[str]:
    """Names in ``folder`` (hidden ones too), sorted."""
    return sorted(p.name for p in folder.iterdir())


def weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(str(run / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert np.array_equal(wa[name], wb[name]), name


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


class SignalAt(Callback):
    """Sends this process ``signum`` after optimiser step ``step``, as Ctrl-C or `kill` would."""

    def __init__(self, step: int, signum: int = signal.SIGINT):
        self.step = step
        self.signum = signum

    def on_batch_end(self, trainer: Any, loss: float | None) -> None:
        if trainer.step == self.step:
            os.kill(os.getpid(), self.signum)


def with_callbacks(monkeypatch: pytest.MonkeyPatch, *callbacks: Callback) -> None:
    """Make the CLI's train commands hand ``callbacks`` to the Trainer (where its progress bar
    would go)."""
    made: Callable[[bool], list[Callback]] = lambda quiet: list(callbacks)  # noqa: E731
    monkeypatch.setattr(common, "progress_callbacks", made)  # what every train command calls
