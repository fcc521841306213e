from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import DataError
from ffnlp.experiments.compare import compare_predictions, mcnemar_exact, permutation_test
from ffnlp.tasks.classify.predictions import Predictions
from ffnlp.tasks.sample import write_sample
from tests.extras import needs

sk_metrics = needs("sklearn.metrics")
accuracy_score, f1_score = sk_metrics.accuracy_score, sk_metrics.f1_score


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


# ------------------------------------------------------------------- the paired bootstrap


def records(gold: list, predicted: list, labels: list[str]) -> list[dict]:
    """Prediction records as predictions.jsonl holds them (probabilities: 1 on the prediction)."""
    out = []
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        chosen = set(p) if isinstance(p, list) else {p}
        probs = {label: (0.9 if label in chosen else 0.1) for label in labels}
        out.append({"index": i, "label": g, "prediction": p, "probabilities": probs})
    return out


def known_difference(n: int = 2000, seed: int = 5) -> tuple[Predictions, Predictions]:
    """A right on 80% of n examples, B on 85%: B is 5 points better, errors independent."""
    rng = random.Random(seed)
    gold = [rng.choice("abc") for _ in range(n)]

    def answers(share_right: float, salt: int) -> list[str]:
        picks = list(range(n))
        random.Random(seed + salt).shuffle(picks)
        right = set(picks[: round(share_right * n)])
        return [g if i in right else {"a": "b", "b": "c", "c": "a"}[g] for i, g in enumerate(gold)]

    a = Predictions.from_records(records(gold, answers(0.80, 1), ["a", "b", "c"]), "A")
    b = Predictions.from_records(records(gold, answers(0.85, 2), ["a", "b", "c"]), "B")
    return a, b


def test_identical_predictions_give_p_1_and_an_interval_at_0() -> None:
    a, _ = known_difference()
    result = compare_predictions(a, a)
    assert result["p_value"] == 1.0
    for name in ("accuracy", "macro_f1"):
        figure = result["bootstrap"][name]
        assert figure["difference"] == 0.0 and figure["p_value"] == 1.0
        assert figure["ci95"][0] <= 0.0 <= figure["ci95"][1]


def test_a_known_five_point_difference_is_found() -> None:
    a, b = known_difference()
    result = compare_predictions(a, b)
    boot = result["bootstrap"]
    assert boot["resamples"] == 10_000 and boot["seed"] == 0
    accuracy = boot["accuracy"]
    assert (accuracy["a"], accuracy["b"]) == (0.80, 0.85)
    assert accuracy["difference"] == pytest.approx(0.05)
    assert accuracy["p_value"] < 0.05 and result["p_value"] < 0.05  # McNemar agrees
    assert accuracy["ci95"][0] < 0.05 < accuracy["ci95"][1] and accuracy["ci95"][0] > 0
    # the interval is about ± 1.96 standard errors of the paired difference
    right_a = np.array([p == g for p, g in zip(a.predicted, a.gold, strict=True)], dtype=float)
    right_b = np.array([p == g for p, g in zip(b.predicted, b.gold, strict=True)], dtype=float)
    se = np.std(right_b - right_a) / np.sqrt(len(right_a))
    assert accuracy["ci95"][1] - accuracy["ci95"][0] == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert boot["macro_f1"]["ci95"][0] > 0 and boot["macro_f1"]["p_value"] < 0.05
    swapped = compare_predictions(b, a)["bootstrap"]["accuracy"]  # B - A changes sign
    assert swapped["difference"] == pytest.approx(-0.05) and swapped["p_value"] < 0.05


def test_the_bootstrap_is_seeded_and_matches_a_plain_loop_over_resamples() -> None:
    rng = random.Random(3)
    gold = [rng.choice("xyz") for _ in range(60)]
    pred_a = [g if rng.random() < 0.6 else rng.choice("xyz") for g in gold]
    pred_b = [g if rng.random() < 0.7 else rng.choice("xyz") for g in gold]
    a = Predictions.from_records(records(gold, pred_a, ["x", "y", "z"]), "A")
    b = Predictions.from_records(records(gold, pred_b, ["x", "y", "z"]), "B")
    boot = compare_predictions(a, b, resamples=500, seed=7)["bootstrap"]
    assert boot == compare_predictions(a, b, resamples=500, seed=7)["bootstrap"]
    assert boot != compare_predictions(a, b, resamples=500, seed=8)["bootstrap"]
    # the same draws (one chunk of 500 x 60), each resample scored by scikit-learn
    drawn = np.random.default_rng(7).integers(0, 60, size=(500, 60))
    g, pa, pb = np.array(gold), np.array(pred_a), np.array(pred_b)
    for name, score in (
        ("accuracy", accuracy_score),
        (
            "macro_f1",
            lambda y, p: f1_score(y, p, average="macro", labels=["x", "y", "z"], zero_division=0),
        ),
    ):
        diffs = np.array([score(g[i], pb[i]) - score(g[i], pa[i]) for i in drawn])
        assert boot[name]["ci95"] == pytest.approx(list(np.percentile(diffs, [2.5, 97.5])))
        below, above = (diffs <= 0).sum() + 1, (diffs >= 0).sum() + 1
        assert boot[name]["p_value"] == pytest.approx(min(1, 2 * min(below, above) / 501))
        assert boot[name]["difference"] == pytest.approx(score(g, pb) - score(g, pa))


def test_multilabel_predictions_get_precision_at_1_and_micro_f1() -> None:
    labels = ["p", "q", "r"]
    gold = [["p"], ["p", "q"], ["r"], ["q"]] * 50
    a = Predictions.from_records(records(gold, [["p"], ["q"], ["p"], ["q"]] * 50, labels), "A")
    b = Predictions.from_records(records(gold, [["p"], ["p", "q"], ["r"], ["q"]] * 50, labels), "B")
    result = compare_predictions(a, b)
    assert result["metric"] == "precision_at_1"
    assert set(result["bootstrap"]) == {"resamples", "seed", "precision_at_1", "micro_f1"}
    micro = result["bootstrap"]["micro_f1"]
    # A: 3 hits of 4 predicted, 5 gold per block of 4; B: all 5 right
    assert micro["a"] == pytest.approx(2 * 3 / (4 + 5)) and micro["b"] == 1.0
    assert micro["p_value"] < 0.05 and micro["ci95"][0] > 0


def test_predictions_of_other_examples_cannot_be_paired() -> None:
    a, b = known_difference(n=100)
    shorter = Predictions.from_records(records(a.gold[:99], a.predicted[:99], a.labels), "C")
    with pytest.raises(DataError) as info:
        compare_predictions(a, shorter)
    assert str(info.value) == (
        "A holds 100 examples and C 99: the runs were tested on different data, so their "
        "predictions cannot be paired; compare them on one labelled file with --data FILE"
    )
    gold = list(a.gold)
    gold[7] = "a" if gold[7] != "a" else "b"
    other = Predictions.from_records(records(gold, a.predicted, a.labels), "D")
    with pytest.raises(DataError) as info:
        compare_predictions(a, other)
    assert str(info.value) == (
        f"A and D differ at example 7 (gold label {a.gold[7]!r} against {gold[7]!r}): the runs "
        "were tested on different data (or in another order), so their predictions cannot be "
        "paired; compare them on one labelled file with --data FILE"
    )


def test_compare_cli_on_the_predictions_of_two_runs(tmp_path) -> None:
    data = write_sample(tmp_path / "d", sizes=(300, 60, 80))
    split = {"dev": data["dev"], "test": data["test"]}
    ffnlp.train_classifier(data["train"], **split, out=tmp_path / "a", overrides=["train.epochs=3"])
    ffnlp.train_classifier(
        data["train"], **split, out=tmp_path / "b", overrides=["train.epochs=1", "train.lr=0.0005"]
    )
    args = ["compare", str(tmp_path / "a"), str(tmp_path / "b")]
    result = CliRunner().invoke(app, [*args, "--json", "--bootstrap", "2000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    summaries = [json.loads((tmp_path / r / "summary.json").read_text()) for r in "ab"]
    assert out["data"] == "predictions.jsonl" and out["examples"] == 80
    assert out["a"]["accuracy"] == pytest.approx(summaries[0]["test"]["accuracy"])
    boot = out["bootstrap"]
    assert boot["resamples"] == 2000 and boot["seed"] == 3
    assert boot["macro_f1"]["a"] == pytest.approx(summaries[0]["test"]["macro_f1"])
    assert boot["macro_f1"]["b"] == pytest.approx(summaries[1]["test"]["macro_f1"])
    # the same classifiers through --data give the same answer
    again = CliRunner().invoke(
        app, [*args, "--data", str(data["test"]), "--json", "--bootstrap", "2000", "--seed", "3"]
    )
    assert again.exit_code == 0, again.output
    assert {**json.loads(again.stdout), "data": "predictions.jsonl"} == out

    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "McNemar exact p = " in text.replace("\n", " ")  # what compare printed before
    lines = text[text.index("paired bootstrap") :].splitlines()
    assert (
        lines[0] == "paired bootstrap, B - A (10,000 resamples, seed 0; 95% percentile interval):"
    )
    figure = r"[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\] p = \S+"
    assert re.fullmatch("  accuracy " + figure, lines[1]), lines[1]
    assert re.fullmatch("  macro_f1 " + figure, lines[2]), lines[2]

    same = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--json"])
    figures = json.loads(same.stdout)["bootstrap"]
    assert figures["accuracy"]["p_value"] == 1.0 and figures["accuracy"]["ci95"] == [0.0, 0.0]

    (tmp_path / "b" / "predictions.jsonl").unlink()
    missing = CliRunner().invoke(app, args)
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        "Error: comparing two classifier runs needs --data FILE (labelled examples to test both "
        f"on), or a predictions.jsonl in each (written by a run trained with --test); "
        f"{tmp_path / 'b'} has none"
    )
