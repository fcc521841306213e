"""`ffnlp lm eval` and `ffnlp lm generate` on n-gram models whose numbers are damaged: an ARPA
file with NaN or infinite entries, a Kneser-Ney run whose tables hold NaN or negative counts.
Each is one `Error:` line naming the file and the entry, exit 1, before any scoring."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ffnlp import train_lm

LINES = ["the cat sat on the mat", "a dog ran to the cat", "the mat is red"] * 20


@pytest.fixture(scope="module")
def kn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kn")
    train, dev = root / "train.txt", root / "dev.txt"
    train.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    dev.write_text("the cat ran\na dog sat\n", encoding="utf-8")
    run = root / "run"
    train_lm(
        train, dev, overrides=['kind="kneser_ney"', "kneser_ney.order=3", "samples=0"], out=run
    )
    arpa = root / "kn.arpa"
    _ffnlp("lm", "export", str(run), "--arpa", str(arpa))
    return {"run": run, "dev": dev, "arpa": arpa}


def _ffnlp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ffnlp", *args], capture_output=True, text=True, timeout=300
    )


def _refused(kn: dict[str, Path], model: Path, expected: str) -> None:
    """eval and generate both stop with the one error line ``expected`` (a prefix)."""
    for args in (
        ("lm", "eval", str(model), "--data", str(kn["dev"])),
        ("lm", "generate", str(model), "-n", "5", "--seed", "1"),
    ):
        result = _ffnlp(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {expected}"), lines
        assert result.stdout == ""


def test_a_sound_model_scores_a_finite_perplexity(kn: dict[str, Path]) -> None:
    for model in (kn["run"], kn["arpa"]):
        result = _ffnlp("lm", "eval", str(model), "--data", str(kn["dev"]), "--json")
        assert result.returncode == 0, result.stderr
        assert 1 < json.loads(result.stdout)["perplexity"] < 100


def _line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


@pytest.mark.parametrize(
    ("entry", "field", "value", "what"),
    [
        ("</s>", 0, "nan", "the log10 probability 'nan' of '</s>'"),
        ("<unk>", 0, "-inf", "the log10 probability '-inf' of '<unk>'"),
        ("cat", 0, "inf", "the log10 probability 'inf' of 'cat'"),
        ("cat", 2, "inf", "the log10 back-off weight 'inf' of 'cat'"),
        ("cat", 2, "nan", "the log10 back-off weight 'nan' of 'cat'"),
        ("<s> the", 0, "-inf", "the log10 probability '-inf' of '<s> the'"),
        ("<s> the", 0, "1e999", "the log10 probability '1e999' of '<s> the'"),
    ],
)
def test_an_arpa_entry_that_is_not_finite_is_refused_with_its_line(
    kn: dict[str, Path], tmp_path: Path, entry: str, field: int, value: str, what: str
) -> None:
    text = kn["arpa"].read_text(encoding="utf-8")
    lines = text.splitlines()
    number = next(
        i for i, line in enumerate(lines, 1) if line.split("\t")[1:2] == [entry] and "\t" in line
    )
    parts = lines[number - 1].split("\t")
    parts[field] = value
    lines[number - 1] = "\t".join(parts)
    bad = tmp_path / "bad.arpa"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _refused(kn, bad, f"{bad}:{number}: {what}")


def _with(array: str, edit: Callable[[np.ndarray], None]) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        arrays = dict(load_file(str(run / "model.safetensors")))
        values = arrays[array].copy()
        edit(values)
        arrays[array] = values
        save_file(arrays, str(run / "model.safetensors"))

    return change


def _nan(values: np.ndarray) -> None:
    values[1] = np.nan


def _negative(values: np.ndarray) -> None:
    values[1] = -4.0


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (_with("order2.numerator", _nan), "the Kneser-Ney table 'order2.numerator' holds nan at index 1"),
        (_with("order3.numerator", _negative), "the Kneser-Ney table 'order3.numerator' holds -4.0"),
        (_with("order2.denominator", _negative), "the Kneser-Ney table 'order2.denominator' holds -4.0"),
        (_with("order3.gamma", _nan), "the Kneser-Ney table 'order3.gamma' holds nan at index 1"),
        (_with("unigram", _nan), "the Kneser-Ney table 'unigram' holds nan at index 1"),
    ],
)  # fmt: skip
def test_a_kneser_ney_run_with_damaged_counts_is_refused_naming_the_table(
    kn: dict[str, Path], tmp_path: Path, change: Callable[[Path], None], what: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(kn["run"], run)
    change(run)
    _refused(kn, run, f"{run / 'model.safetensors'}: {what}")


def test_a_kneser_ney_header_out_of_range_is_refused_naming_model_json(
    kn: dict[str, Path], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(kn["run"], run)
    arch = json.loads((run / "model.json").read_text(encoding="utf-8"))
    arch["args"]["discounts"][1][2] = 7.5
    (run / "model.json").write_text(json.dumps(arch), encoding="utf-8")
    _refused(
        kn, run, f"{run / 'model.json'}: the Kneser-Ney model header is invalid: the discount D3"
    )
