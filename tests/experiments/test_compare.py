from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.experiments.compare import mcnemar_exact, permutation_test
from ffnlp.tasks.sample import write_sample


def test_mcnemar_exact_small_cases() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # all five discordant pairs favour A
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(10, 2) == pytest.approx(
        2 * sum(math.comb(12, i) for i in range(3)) / 2**12
    )


def test_permutation_test_exact_and_separated() -> None:
    a, b = [0.90, 0.91, 0.92], [0.80, 0.81, 0.82]
    assert permutation_test(a, b) == pytest.approx(2 / 20)  # only the two extreme splits
    assert permutation_test([1.0, 2.0], [1.0, 2.0]) == 1.0


def test_compare_cli_on_two_classifiers(tmp_path) -> None:
    data = write_sample(tmp_path / "d", sizes=(300, 60, 80))
    ffnlp.train_classifier(data["train"], out=tmp_path / "a", overrides=["train.epochs=3"])
    ffnlp.train_classifier(
        data["train"], out=tmp_path / "b", overrides=["train.epochs=1", "train.lr=0.0005"]
    )
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--data",
            str(data["test"]),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["examples"] == 80 and 0 <= out["p_value"] <= 1
    assert out["a"]["accuracy"] - out["b"]["accuracy"] == pytest.approx(
        (out["only_a_right"] - out["only_b_right"]) / 80
    )
    missing = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert missing.exit_code == 1 and "needs --data FILE" in missing.stderr
