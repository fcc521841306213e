"""Multi-label classification: the head, P@k / R@k as fastText computes them, thresholds, the run.

The synthetic sample: questions about four cooking topics, each with one to three of them as its
labels; a topic's words say which, so a short training run learns them.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import ffnlp
from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError
from ffnlp.experiments.cv import strata, stratified_folds
from ffnlp.models.heads import MultiLabelHead, make_head, output_size
from ffnlp.tasks.classify.metrics import (
    multilabel_metrics,
    precision_recall_at_k,
    tune_thresholds,
)
from ffnlp.tasks.classify.predictions import read_predictions
from ffnlp.text.readers import LabeledData, read_labeled
from tests.extras import needs

TOPICS = {
    "sauce": ["sauce", "gravy", "roux"],
    "cheese": ["cheese", "cheddar", "brie"],
    "baking": ["bake", "oven", "flour"],
    "bread": ["bread", "yeast", "dough"],
}
FILLER = ["how", "do", "i", "make", "it", "the", "a", "with", "for", "why"]
FAST = ["train.epochs=8", "train.lr=0.1", "train.threads=1", "train.checkpoint=false"]


def write_multilabel(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        labels = rng.sample(sorted(TOPICS), rng.choice([1, 1, 2, 2, 3]))
        words = [rng.choice(TOPICS[label]) for label in labels for _ in range(2)]
        words += rng.sample(FILLER, 4)
        rng.shuffle(words)
        lines.append(" ".join(f"__label__{x}" for x in labels) + " " + " ".join(words))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ml")
    return {
        name: write_multilabel(root / f"{name}.txt", n, seed)
        for name, n, seed in (("train", 300, 1), ("dev", 60, 2), ("test", 60, 3))
    }


@pytest.fixture(scope="module")
def run(sample, tmp_path_factory) -> Path:
    """A pooled multi-label run with per-label thresholds tuned on dev."""
    out = tmp_path_factory.mktemp("run") / "r"
    ffnlp.train_classifier(
        sample["train"],
        dev=sample["dev"],
        test=sample["test"],
        out=out,
        overrides=[
            'model.type="pooled"',
            'features.kind="ids"',
            "model.pooled.dim=16",
            "task.tune_thresholds=true",
            *FAST,
        ],
    )
    return out


# ------------------------------------------------------------------------------------ the head


def test_head_loss_is_torchs_bce_with_logits_summed_over_labels() -> None:
    logits = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.rand(5, 4) > 0.5  # (B, K) bool, as the batches hold it
    ours = MultiLabelHead(4).loss(logits, y)
    reference = torch.nn.BCEWithLogitsLoss(reduction="sum")(logits, y.double()) / 5
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, reference)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(g_ours, g_ref)


def test_head_label_smoothing_moves_targets_towards_a_half() -> None:
    logits = torch.randn(3, 4)
    y = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]])
    target = y.float() * 0.8 + 0.1
    reference = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / 3
    torch.testing.assert_close(MultiLabelHead(4, label_smoothing=0.2).loss(logits, y), reference)


def test_head_probabilities_are_independent_sigmoids() -> None:
    logits = torch.tensor([[3.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    head = MultiLabelHead(3)
    torch.testing.assert_close(head.probabilities(logits), torch.sigmoid(logits))
    assert head.probabilities(logits).sum(1)[0] > 1  # need not sum to one
    assert head.predict(logits).tolist() == [[True, True, False], [False, False, False]]


def test_make_head_and_output_size_follow_the_multilabel_flag() -> None:
    assert isinstance(make_head(2, multilabel=True), MultiLabelHead)
    assert not make_head(2).multilabel
    assert output_size(2) == 1 and output_size(2, multilabel=True) == 2
    with pytest.raises(ConfigError) as info:
        make_head(3, class_weight=[1.0, 2.0, 1.0], multilabel=True)
    assert str(info.value) == (
        "loss.class_weight weighs the examples of each class of single-label data; multi-label "
        "data has no single class per example: set loss.class_weight = 'none'"
    )


# ------------------------------------------------------------------------------------ metrics


def test_precision_and_recall_at_k_by_hand() -> None:
    gold = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    probs = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.3, 0.2, 0.1, 0.4], [0.5, 0.6, 0.7, 0.8]])
    # top-1: label 0 (hit), label 3 (miss), label 3 (hit): 2 of 3 predictions, 2 of 5 gold labels
    assert precision_recall_at_k(gold, probs, 1) == pytest.approx((2 / 3, 2 / 5))
    # top-2: {0, 2} 1 hit, {3, 0} 0 hits, {3, 2} 1 hit: 2 of 6, 2 of 5
    assert precision_recall_at_k(gold, probs, 2) == pytest.approx((2 / 6, 2 / 5))
    # k beyond the 4 labels predicts all 4, as fastText does: 5 of 12, 5 of 5
    assert precision_recall_at_k(gold, probs, 5) == pytest.approx((5 / 12, 1.0))


def test_examples_without_a_gold_label_are_left_out() -> None:
    gold = torch.tensor([[1, 0], [0, 0]])
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.3]])
    m = multilabel_metrics(gold, probs, ["a", "b"])
    assert m["examples"] == 1 and m["precision_at_1"] == 1.0 and m["recall_at_1"] == 1.0


def test_micro_macro_f1_and_per_label_match_scikit_learn() -> None:
    needs("sklearn.metrics")
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    gold = rng.random((40, 6)) < 0.3
    gold[:, 5] = False  # a label nobody has: F1 0, as scikit-learn's zero_division=0
    gold[~gold.any(1), 0] = True  # every example keeps a label
    probs = rng.random((40, 6))
    for threshold in (0.5, np.linspace(0.2, 0.7, 6)):
        m = multilabel_metrics(
            torch.from_numpy(gold),
            torch.from_numpy(probs),
            list("abcdef"),
            torch.as_tensor(threshold),
        )
        pred = probs >= threshold
        assert m["micro_f1"] == pytest.approx(f1_score(gold, pred, average="micro"))
        assert m["macro_f1"] == pytest.approx(
            f1_score(gold, pred, average="macro", zero_division=0)
        )
        p, r, f, support = precision_recall_fscore_support(gold, pred, zero_division=0)
        for i, label in enumerate("abcdef"):
            row = m["per_class"][label]
            assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
                (p[i], r[i], f[i], support[i])
            )


def test_precision_and_recall_at_k_match_fasttext_test(tmp_path) -> None:
    fasttext = needs("fasttext")
    train = write_multilabel(tmp_path / "train.txt", 200, 1)
    model = fasttext.train_supervised(
        str(train), loss="ova", epoch=5, lr=0.5, dim=8, thread=1, seed=1, verbose=0
    )
    known = [name[len("__label__") :] for name in model.get_labels()]

    def probabilities(text: str) -> list[float]:
        # fasttext-wheel 0.9.2: predict(str) trips over numpy 2 and predict(list) repeats the
        # first probability in every column; its binding's own predict gives (probability, label)s
        row = [0.0] * len(known)
        for value, name in model.f.predict(text + "\n", -1, 0.0, "strict"):
            row[known.index(name[len("__label__") :])] = float(value)
        return row

    lines, rows, golds = [], [], []
    source = write_multilabel(tmp_path / "all.txt", 80, 5).read_text(encoding="utf-8")
    for i, line in enumerate(source.splitlines()):
        text = " ".join(t for t in line.split() if not t.startswith("__label__"))
        if i % 3 == 0:  # a third with wrong labels: figures that are not all 1
            line = "__label__bread __label__sauce " + text
        if i == 7:
            line = "__label__unseen " + line  # a gold label fastText never saw
        if i == 8:
            line = "__label__unseen " + text  # and an example with no label fastText knows
        row = probabilities(text)
        if len(set(row)) < len(row):
            continue  # fastText's sigmoid table makes ties, which its test and predict order
            # differently: a tie at the k-th place makes either count right
        lines.append(line)
        rows.append(row)
        labels = {t[len("__label__") :] for t in line.split() if t.startswith("__label__")}
        golds.append([name in labels for name in known])
    test = tmp_path / "test.txt"
    test.write_text("\n".join(lines) + "\n", encoding="utf-8")
    gold, probs = torch.tensor(golds), torch.tensor(rows, dtype=torch.float64)
    assert len(lines) > 40  # most have no tie
    for k in (1, 2, 5):
        n, precision, recall = model.test(str(test), k=k)
        assert 0 < precision < 1 and 0 < recall <= 1
        ours = multilabel_metrics(gold, probs, known, at_k=(k,))
        assert ours["examples"] == n
        assert ours[f"precision_at_{k}"] == pytest.approx(precision, abs=1e-12)
        assert ours[f"recall_at_{k}"] == pytest.approx(recall, abs=1e-12)


def test_tuned_thresholds_maximise_each_labels_f1() -> None:
    probs = torch.tensor([[0.9, 0.6], [0.8, 0.6], [0.3, 0.2], [0.2, 0.1]])
    gold = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]])
    # label 0: cutting after 0.3 (2 hits of 3 predicted, 2 gold) has F1 0.8, the best; the
    # threshold lies halfway to the next probability. Label 1 has no positive: the default.
    tuned = tune_thresholds(gold, probs, default=0.5, min_support=1)
    assert tuned.tolist() == pytest.approx([0.25, 0.5])
    # by default a label needs 10 dev examples to get a threshold of its own
    assert tune_thresholds(gold, probs, default=0.5).tolist() == pytest.approx([0.5, 0.5])
    pred = probs[:, 0] >= tuned[0]
    assert pred.tolist() == [True, True, True, False]


def test_tuned_thresholds_never_split_equal_probabilities() -> None:
    probs = torch.tensor([[0.7], [0.7], [0.1]])
    gold = torch.tensor([[1], [0], [0]])
    # the best cut inside the tie (after the first 0.7) cannot be made: both 0.7s or neither
    assert tune_thresholds(gold, probs, 0.5, min_support=1).tolist() == pytest.approx([0.4])


# ------------------------------------------------------------------------------- the run


def test_multilabel_predictions_hold_label_lists_at_the_tuned_thresholds(run, sample) -> None:
    summary = json.loads((run / "summary.json").read_text())
    clf = ffnlp.load(run)
    test = read_labeled(sample["test"])
    p = read_predictions(run)
    assert p.multilabel and p.labels == ["baking", "bread", "cheese", "sauce"]
    assert p.gold == [list(labels) for labels in test.label_lists()]
    # what predict gives at the run's thresholds, most probable first
    assert p.predicted == [[label for label, _ in top] for top in clf.predict(test.texts, k=-1)]
    gold = sum(map(len, p.gold))
    made = sum(map(len, p.predicted))
    hits = sum(len(set(g) & set(q)) for g, q in zip(p.gold, p.predicted, strict=True))
    assert 2 * hits / (gold + made) == pytest.approx(summary["test"]["micro_f1"])
    top = [t in g for t, g in zip(p.top(), p.gold, strict=True)]
    assert sum(top) / len(top) == pytest.approx(summary["test"]["precision_at_1"])


def test_multilabel_run_writes_fasttext_comparable_figures(run) -> None:
    summary = json.loads((run / "summary.json").read_text())
    assert summary["multilabel"] is True and summary["tuned_thresholds"] is True
    assert summary["labels"] == ["baking", "bread", "cheese", "sauce"]
    for key in (
        "precision_at_1",
        "recall_at_1",
        "precision_at_5",
        "recall_at_5",
        "micro_f1",
        "macro_f1",
    ):
        assert 0.0 <= summary["test"][key] <= 1.0
    assert summary["test"]["precision_at_1"] > 0.9
    assert summary["test"]["recall_at_5"] == 1.0  # 4 labels: the top 5 holds every one
    assert "confusion" not in summary["test"] and "accuracy" not in summary["test"]
    assert (run / "plots" / "label_f1.png").is_file()
    assert not (run / "plots" / "confusion.png").exists()
    assert (run / "plots" / "dev_precision_at_1.png").is_file()
    config = (run / "config.toml").read_text()
    assert "multilabel = true" in config and 'monitor = "dev.precision_at_1"' in config
    vocab = json.loads((run / "vocab.json").read_text())
    assert len(vocab["thresholds"]) == 4


def test_predict_returns_labels_at_or_above_the_threshold(run) -> None:
    clf = ffnlp.load(run)
    assert clf.multilabel
    text = "cheddar gravy sauce brie"
    probs = dict(zip(clf.labels.labels, clf.predict_proba([text])[0], strict=True))
    assert sum(probs.values()) != pytest.approx(1.0)  # independent probabilities
    every = clf.predict(text, k=-1, threshold=0.0)
    assert [label for label, _ in every] == sorted(probs, key=lambda x: -probs[x])
    assert {label for label, _ in clf.predict(text, k=4, threshold=0.5)} == {"cheese", "sauce"}
    assert len(clf.predict(text, k=1, threshold=0.5)) == 1
    assert clf.predict(text, k=4, threshold=1.0) == []  # possibly none
    # without a threshold: the per-label thresholds tuned on dev
    tuned = dict(zip(clf.labels.labels, clf.thresholds or [], strict=True))
    assert clf.predict(text, k=4) == [(label, p) for label, p in every if p >= tuned[label]]


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan])
def test_a_threshold_outside_zero_one_is_an_error(run, threshold) -> None:
    clf = ffnlp.load(run)
    with pytest.raises(ConfigError) as info:
        clf.predict("bread", threshold=threshold)
    assert str(info.value) == (
        "The 'threshold' parameter of Classifier.predict must be a number from 0 to 1 or None; "
        f"got {threshold} (float)."
    )


def test_k_must_be_positive_or_minus_one(run) -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "The 'k' parameter of Classifier.predict must be an int >= 1 (or -1 for every "
            "label); got 0 (int)."
        ),
    ):
        ffnlp.load(run).predict("bread", k=0)


def test_save_and_load_round_trip(run, sample) -> None:
    clf = ffnlp.load(run)
    again = clf.save(run.parent / "copy")
    loaded = ffnlp.load(again)
    assert loaded.multilabel and loaded.thresholds == clf.thresholds
    texts = ["yeast dough oven", "roux"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    assert loaded.predict(texts, k=3) == clf.predict(texts, k=3)
    assert loaded.test(sample["test"]) == clf.test(sample["test"])


def test_test_leaves_unseen_gold_labels_out_and_counts_them(run, tmp_path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("__label__bread __label__pizza yeast dough\n__label__pizza oven\n")
    m = ffnlp.load(run).test(path)
    assert m["unseen_labels"] == 2 and m["examples"] == 1 and m["gold_labels"] == 1
    assert m["precision_at_1"] == 1.0


def test_single_label_data_on_a_multilabel_run_is_read_as_one_label_each(run, tmp_path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("__label__bread yeast dough\n__label__cheese brie\n")
    assert ffnlp.load(run).test(path)["precision_at_1"] == 1.0


@pytest.mark.parametrize(
    ("model_type", "kind"), [("logreg", "ngrams"), ("mlp", "ngrams"), ("pooled", "ids")]
)
def test_every_model_family_learns_a_multilabel_sample(sample, tmp_path, model_type, kind) -> None:
    clf = ffnlp.train_classifier(
        sample["train"],
        dev=sample["dev"],
        out=tmp_path / "r",
        overrides=[f'model.type="{model_type}"', f'features.kind="{kind}"', *FAST],
    )
    assert clf.multilabel
    assert clf.summary["dev"]["precision_at_1"] > 0.85
    assert clf.summary["dev"]["micro_f1"] > 0.6


def test_multilabel_auto_leaves_single_label_data_alone(tmp_path) -> None:
    from ffnlp.tasks.sample import write_sample

    paths = write_sample(tmp_path / "s", sizes=(60, 20, 20))
    clf = ffnlp.train_classifier(
        paths["train"], dev=paths["dev"], out=tmp_path / "r", overrides=FAST
    )
    assert not clf.multilabel and "multilabel" not in clf.summary
    assert "accuracy" in clf.summary["dev"]
    assert 'multilabel = "auto"' in (tmp_path / "r" / "config.toml").read_text()


def test_multilabel_true_trains_sigmoids_on_one_label_a_line(tmp_path) -> None:
    path = tmp_path / "one.txt"
    path.write_text("".join(f"{i % 2} {'good' if i % 2 else 'bad'} film\n" for i in range(40)))
    clf = ffnlp.train_classifier(
        path, out=tmp_path / "r", overrides=["task.multilabel=true", *FAST]
    )
    assert clf.multilabel and clf.predict_proba(["good"]).shape == (1, 2)


def test_multilabel_false_refuses_multilabel_data(sample, tmp_path) -> None:
    with pytest.raises(DataError) as info:
        ffnlp.train_classifier(
            sample["train"], out=tmp_path / "r", overrides=["task.multilabel=false"]
        )
    assert str(info.value) == (
        f"{sample['train']}: examples with several labels (or labels written as a list), but "
        "task.multilabel = false; set task.multilabel = true (or 'auto') to train one sigmoid "
        "per label"
    )
    assert not (tmp_path / "r").exists()


def test_tune_thresholds_needs_multilabel_data_and_dev_data(sample, tmp_path) -> None:
    from ffnlp.tasks.sample import write_sample

    paths = write_sample(tmp_path / "s", sizes=(60, 20, 20))
    with pytest.raises(ConfigError, match="tunes the thresholds of multi-label runs"):
        ffnlp.train_classifier(
            paths["train"], out=tmp_path / "a", overrides=["task.tune_thresholds=true"]
        )
    with pytest.raises(ConfigError, match=re.escape("on the dev data; pass --dev")):
        ffnlp.train_classifier(
            sample["train"], out=tmp_path / "b", overrides=["task.tune_thresholds=true"]
        )


def test_class_weight_is_refused_for_multilabel_data(sample, tmp_path) -> None:
    with pytest.raises(ConfigError, match="multi-label data has no single class per example"):
        ffnlp.train_classifier(
            sample["train"], out=tmp_path / "r", overrides=['loss.class_weight="balanced"']
        )


def test_a_model_type_without_a_multilabel_head_is_refused(sample, tmp_path) -> None:
    from tests.models import toy_bag

    assert toy_bag.ToyBag.registry_name == "toy_bag"
    with pytest.raises(ConfigError, match="'toy_bag' does not build a multi-label head"):
        ffnlp.train_classifier(
            sample["train"], out=tmp_path / "r", overrides=['model.type="toy_bag"']
        )


def test_jsonl_and_csv_multilabel_files_train(tmp_path) -> None:
    rows = [(["bread", "baking"], "yeast dough oven"), (["cheese"], "brie cheddar")] * 10
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "labels": y}) + "\n" for y, t in rows))
    csv = tmp_path / "d.csv"
    csv.write_text("tags,text\n" + "".join(f'"{",".join(y)}",{t}\n' for y, t in rows))
    for path, sets in (
        (jsonl, []),
        (csv, ["data.label_column=tags", 'data.label_separator=","']),
    ):
        clf = ffnlp.train_classifier(path, out=tmp_path / path.suffix[1:], overrides=[*sets, *FAST])
        assert clf.multilabel and clf.labels.labels == ["baking", "bread", "cheese"]


# --------------------------------------------------------------------------- cv and the CLI


def test_cv_stratifies_multilabel_data_on_each_examples_rarest_label() -> None:
    sets = [("a", "b"), ("a",), ("a", "c"), ("a", "b"), ("b",), ("a", "c")]
    data = LabeledData(
        texts=["x"] * 6, labels=[s[0] for s in sets], path=Path("d"), label_sets=sets
    )
    assert strata(data) == ["b", "a", "c", "b", "b", "c"]  # counts: a 5, b 3, c 2
    folds = stratified_folds(strata(data), 2, seed=0)
    for label in "bc":  # each rare label lands in both folds
        assert all(any(label in sets[i] for i in fold) for fold in folds)


def test_cli_train_predict_eval_and_bad_threshold(sample, run, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            "classify",
            "train",
            "--train",
            str(sample["train"]),
            "--dev",
            str(sample["dev"]),
            "--out",
            str(out),
            "-q",
            "--json",
            "--set",
            "train.epochs=2",
            "--set",
            "train.threads=1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dev"]["precision_at_1"] >= 0.0
    result = runner.invoke(
        app,
        ["classify", "predict", str(run), "--k", "2", "--threshold", "0.5", "--json"],
        input="cheddar gravy sauce brie\nnothing at all\n",
    )
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert {x["label"] for x in first["top"]} == {"cheese", "sauce"}
    assert all(x["prob"] >= 0.5 for x in second["top"])
    result = runner.invoke(
        app, ["classify", "predict", str(run), "--threshold", "1.5"], input="x\n"
    )
    assert result.exit_code == 1
    assert "threshold must be a probability between 0 and 1; got 1.5" in result.output
    result = runner.invoke(app, ["classify", "eval", str(run), "--data", str(sample["test"])])
    assert result.exit_code == 0 and "precision_at_1" in result.stdout


def test_compare_two_multilabel_runs_on_precision_at_1(run, sample) -> None:
    from ffnlp.experiments.compare import compare_classifiers

    result = compare_classifiers(run, run, sample["test"])
    assert result["metric"] == "precision_at_1"
    assert result["a"]["precision_at_1"] == result["b"]["precision_at_1"] > 0.9
    assert result["p_value"] == 1.0
