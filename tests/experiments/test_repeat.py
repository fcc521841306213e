from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.experiments.stats import describe, t_quantile_975
from ffnlp.tasks.sample import write_sample


def test_describe_matches_the_textbook_interval() -> None:
    d = describe([0.80, 0.82, 0.81, 0.83, 0.79])
    assert d["mean"] == pytest.approx(0.81)
    assert d["sd"] == pytest.approx(statistics.stdev([0.80, 0.82, 0.81, 0.83, 0.79]))
    half = 2.776 * d["sd"] / 5**0.5
    assert d["ci95"] == pytest.approx([0.81 - half, 0.81 + half])
    assert describe([0.5])["ci95"] == [0.5, 0.5]
    assert t_quantile_975(200) == 1.96


def test_repeat_runs_each_seed_and_aggregates(tmp_path) -> None:
    data = write_sample(tmp_path / "d", sizes=(200, 40, 40))
    result = CliRunner().invoke(
        app,
        [
            "repeat",
            "classify",
            "--seeds",
            "3",
            "--train",
            str(data["train"]),
            "--dev",
            str(data["dev"]),
            "--test",
            str(data["test"]),
            "--set",
            "train.epochs=2",
            "--out",
            str(tmp_path / "r"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    acc = summary["repeat"]["test"]["accuracy"]
    per_seed = [
        json.loads((tmp_path / "r" / f"seed_{s}" / "summary.json").read_text())["test"]["accuracy"]
        for s in range(3)
    ]
    assert acc["values"] == pytest.approx(per_seed)
    assert acc["n"] == 3 and acc["ci95"][0] <= acc["mean"] <= acc["ci95"][1]
    assert not (
        tmp_path / "r" / "seed_0" / "model.safetensors"
    ).exists()  # weights dropped by default
