from __future__ import annotations

import json
import math
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
    assert d["ci95"] == pytest.approx([0.81 - half, 0.81 + half], rel=1e-4)
    assert describe([0.5])["ci95"] == [0.5, 0.5]


# t(0.975, df) from printed tables (e.g. NIST/SEMATECH's), to three decimals; beyond 30 degrees
# of freedom a table that falls back on the normal's 1.960 gives intervals too narrow
TEXTBOOK_T975 = {
    1: 12.706,
    2: 4.303,
    4: 2.776,
    9: 2.262,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


@pytest.mark.parametrize("df", sorted(TEXTBOOK_T975))
def test_t_quantile_matches_the_printed_tables(df: int) -> None:
    assert t_quantile_975(df) == pytest.approx(TEXTBOOK_T975[df], abs=5e-4)


def test_t_quantile_tends_to_the_normal_but_stays_above_it() -> None:
    assert 1.960 < t_quantile_975(200) < 1.973
    assert t_quantile_975(10**6) == pytest.approx(1.95996, abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile_975(0)


@pytest.mark.parametrize("n", [2, 5, 31, 41])
def test_describe_half_width_is_t_times_the_standard_error(n: int) -> None:
    values = [0.5 + 0.01 * ((7 * i) % 11) for i in range(n)]
    d = describe(values)
    t = TEXTBOOK_T975[n - 1]  # df 1, 4, 30 and 40: the old table gave 1.960 for 40
    se = statistics.stdev(values) / n**0.5
    assert d["ci95"][1] - d["mean"] == pytest.approx(t * se, rel=3e-4)
    assert d["mean"] - d["ci95"][0] == pytest.approx(t * se, rel=3e-4)


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


def test_describe_values_near_the_float_limit() -> None:
    """A run file may hold 1e308: the sum overflows, the statistics do not raise."""
    d = describe([8.988465674311579e307, 8.98846567431158e307])
    assert d["mean"] == pytest.approx(8.98846567431158e307) and d["n"] == 2
    assert 0 < d["sd"] < 1e293
    spread = describe([1e308, 1e308, -1e308])
    assert spread["mean"] == pytest.approx(1e308 / 3) and spread["ci95"] == [-math.inf, math.inf]
    assert describe([0.5, 0.7])["mean"] == pytest.approx(0.6)
