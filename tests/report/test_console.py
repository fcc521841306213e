"""report/console.py: the tables and lines of the commands, printed on the consoles it is given."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from ffnlp.report.console import (
    PER_LABEL_ROWS,
    ConsoleReport,
    prediction_line,
    short_metrics,
    short_params,
)


def consoles(width: int = 160) -> tuple[ConsoleReport, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    report = ConsoleReport(
        Console(file=out, width=width, color_system=None),
        Console(file=err, width=width, color_system=None),
    )
    return report, out, err


def test_short_params_name_each_key_by_its_last_part_unless_two_clash() -> None:
    params = {"train.lr": 0.003141, "model.mlp.hidden": [256, 64], "a.dropout": 0.5}
    assert short_params(params) == "lr=0.00314 hidden=[256,64] dropout=0.5"
    clash = {"model.mlp.dropout": 0.1, "features.dropout": 0.2, "train.epochs": 5}
    assert short_params(clash) == "model.mlp.dropout=0.1 features.dropout=0.2 epochs=5"
    assert short_params({"train.lr": float("nan")}) == "lr=nan"


def test_short_metrics_leave_out_the_per_class_tables() -> None:
    metrics = {"accuracy": 0.8, "per_class": {"pos": {}}, "confusion": [[1]], "loss": 0.3}
    assert short_metrics(metrics) == {"accuracy": 0.8, "loss": 0.3}


def test_a_prediction_line_is_tab_separated_or_one_json_object() -> None:
    top = [("pos", 0.91234), ("neg", 0.08766)]
    assert prediction_line("a fine film", top, False) == "pos\t0.9123\tneg\t0.0877\ta fine film"
    line = json.loads(prediction_line("a fine film", top, True))
    assert line == {
        "text": "a fine film",
        "label": "pos",
        "prob": 0.91234,
        "top": [{"label": "pos", "prob": 0.91234}, {"label": "neg", "prob": 0.08766}],
    }
    assert json.loads(prediction_line("none", [], True))["label"] is None  # multi-label: no label


def test_a_multi_label_eval_shows_the_most_frequent_labels_and_says_so() -> None:
    report, out, _ = consoles()
    per_class = {
        f"label{i}": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": i}
        for i in range(PER_LABEL_ROWS + 5)
    }
    report.classify_eval("run on data", {"per_class": per_class, "micro_f1": 0.25}, True)
    text = out.getvalue()
    assert f"the {PER_LABEL_ROWS} most frequent of {PER_LABEL_ROWS + 5} labels" in text
    assert "label34" in text and "label4 " not in text  # the least frequent are left out
    assert text.rstrip().endswith("micro_f1 0.2500")


def test_the_commentary_of_a_study_goes_to_err_and_its_results_to_out() -> None:
    report, out, err = consoles()
    report.tune_start({"trial_seeds": 1, "trial_seeds_reason": "lm", "rescore": {}})
    line = SimpleNamespace(
        number=3,
        value=None,
        state="FAIL",
        best_number=1,
        best_value=0.75,
        seconds=None,
        params={"train.lr": 0.1},
        note="CUDA out of memory",
    )
    report.tune_trial(line)
    assert out.getvalue() == ""
    assert "each trial trains 1 seed (lm)" in err.getvalue()
    assert "trial   3  failed  best 0.7500 (#1)" in err.getvalue()
    assert "CUDA out of memory" in err.getvalue()


def test_compare_says_which_test_it_ran() -> None:
    report, out, _ = consoles()
    seeds = {"run": "a", "mean": 0.8, "values": [0.8, 0.8]}
    result = {"test": "permutation", "metric": "test.accuracy", "p_value": 0.03125}
    report.compare({**result, "a": seeds, "b": {**seeds, "run": "b", "mean": 0.9}})
    assert "B b: mean 0.9000 over 2 seeds" in out.getvalue()
    assert "test.accuracy: permutation test p = 0.03125" in out.getvalue()


def test_quantize_shows_both_runs_side_by_side() -> None:
    report, out, _ = consoles()
    before = {"model_bytes": 4000, "bytes": 5000, "test": {"accuracy": 0.8}}
    after = {"model_bytes": 1000, "bytes": 2000, "test": {"accuracy": 0.79}}
    summary = {"method": "pq", "rows": [100, 50], "original": before, "quantized": after}
    report.quantize(summary, "runs/a", "runs/a_q")
    text = out.getvalue()
    assert "pq, rows 100 -> 50" in text and "4.0x smaller" in text and "-1.00 points" in text


def test_study_status_gives_no_callbacks_off_a_terminal() -> None:
    report, _, _ = consoles()
    with report.study_status(True) as callbacks:
        assert callbacks == []


def test_explain_shapes_prints_the_layers_and_the_cost() -> None:
    report, out, _ = consoles(200)
    layer = {
        "name": "fc[0]",
        "kind": "Linear",
        "inputs": [(2, 8)],
        "output": (2, 4),
        "product": "(B, D) @ (D, H)",
        "macs": 32,
        "params": 36,
    }
    shapes = {"layers": [layer], "macs_per_example": 16.0}
    report.shapes("run: forward pass on B = 2 texts", shapes, "text")
    text = out.getvalue()
    assert "(B, D) @ (D, H)" in text and "fc[0]" in text  # brackets shown, not read as markup
    assert "forward: 16 multiply-adds = 32 FLOPs per text" in text


def test_neighbors_show_each_word_or_the_one_analogy_query() -> None:
    report, out, _ = consoles()
    report.neighbors({"positive": [["good", 0.5]]})  # a query word may be called "positive"
    query = {"positive": ["king", "woman"], "negative": ["man"], "method": "3cosadd"}
    report.neighbors({**query, "neighbors": [["queen", 0.9]]}, Path("p.png"), query=True)
    lines = out.getvalue().splitlines()
    assert lines == [
        "positive: good (0.500)",
        "king + woman - man: queen (0.900)",
        "projection saved to p.png",
    ]
