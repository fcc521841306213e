"""The typed boundary of the Python API (ffnlp.params): a wrong argument is one ConfigError in
scikit-learn's words, naming the parameter, what it must be and what it got, raised before
anything is read or written; an existing run is never replaced by a truthy non-bool."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ffnlp
import ffnlp.tasks.lm
from ffnlp.errors import ConfigError
from ffnlp.params import (
    check_bool,
    check_instances,
    check_int,
    check_number,
    check_path,
    check_str,
    check_strings,
)
from ffnlp.training import Callback
from tests.reliability.cases import Unchanged, train_runs

# ------------------------------------------------------------------------------ the helpers


def test_the_message_has_scikit_learns_shape() -> None:
    with pytest.raises(ConfigError) as info:
        check_bool("no", "force", "train_classifier")
    assert str(info.value) == (
        "The 'force' parameter of train_classifier must be a bool; got 'no' (str)."
    )


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_check_bool_takes_booleans(value) -> None:
    assert check_bool(value, "x", "f") is bool(value)


@pytest.mark.parametrize("value", ["no", "", 0, 1, None, 1.0, [True]])
def test_check_bool_refuses_what_python_would_count_as_true_or_false(value) -> None:
    with pytest.raises(ConfigError, match="must be a bool"):
        check_bool(value, "x", "f")


def test_check_int_bounds_specials_and_numpy() -> None:
    assert check_int(np.int64(3), "k", "f", ge=1) == 3
    assert type(check_int(np.int64(3), "k", "f")) is int
    assert check_int(-1, "k", "f", ge=1, also=(-1,)) == -1
    for bad in (0, -2, 2.0, True, "3", None, math.nan):
        with pytest.raises(ConfigError, match="'k' parameter of f must be an int >= 1"):
            check_int(bad, "k", "f", ge=1, also=(-1,))
    with pytest.raises(ConfigError, match="an int >= 0 and <= 5; got 6"):
        check_int(6, "n", "f", ge=0, le=5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1.0", None, True, 0.0, -1])
def test_check_number_is_finite_and_in_range(bad) -> None:
    with pytest.raises(ConfigError, match="must be a finite number > 0"):
        check_number(bad, "temperature", "f", gt=0)


def test_check_number_returns_a_float_and_honours_each_bound() -> None:
    assert check_number(np.float32(0.5), "x", "f", ge=0, le=1) == 0.5
    assert check_number(1, "x", "f", lt=2) == 1.0
    with pytest.raises(ConfigError, match="< 1"):
        check_number(1, "x", "f", lt=1)


def test_lists_hold_what_they_must() -> None:
    assert check_strings(("a=1", "b=2"), "overrides", "f") == ["a=1", "b=2"]
    with pytest.raises(ConfigError, match="must be a list of strings; got 'a=1' \\(str\\)"):
        check_strings("a=1", "overrides", "f")
    with pytest.raises(ConfigError, match="item 1 is not one; got 2 \\(int\\)"):
        check_strings(["a", 2], "overrides", "f")
    with pytest.raises(ConfigError, match="got None"):
        check_strings(None, "overrides", "f")
    with pytest.raises(ConfigError, match="Callback instances, and item 0 is not one"):
        check_instances([Callback], "callbacks", "f", Callback, "Callback instances")
    assert check_instances((Callback(),), "callbacks", "f", Callback, "x")[0].__class__ is Callback


def test_paths_and_strings() -> None:
    assert check_path("a", "out", "f") == Path("a")
    assert check_path(None, "out", "f", optional=True) is None
    for bad in (None, "", 5, b"a"):
        with pytest.raises(ConfigError, match="'out' parameter of f must be a file or folder"):
            check_path(bad, "out", "f")
    assert check_str("sgd", "m", "f", choices=("sgd", "adam")) == "sgd"
    with pytest.raises(ConfigError, match="one of 'sgd', 'adam'; got 'x' \\(str\\)"):
        check_str("x", "m", "f", choices=("sgd", "adam"))


def test_a_huge_wrong_value_is_quoted_short() -> None:
    with pytest.raises(ConfigError) as info:
        check_bool("n" * 1_000_000, "force", "f")
    assert len(str(info.value)) < 200 and "(1,000,000 characters in all)" in str(info.value)


# ------------------------------------------------------------------- through the public API


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("api"))


def test_force_no_leaves_an_existing_run_as_it_was(world) -> None:
    with Unchanged(world["clf"]), pytest.raises(ConfigError) as info:
        ffnlp.train_classifier(world["train"], out=world["clf"], force="no")
    assert str(info.value) == (
        "The 'force' parameter of train_classifier must be a bool; got 'no' (str)."
    )
    with Unchanged(world["clf"]), pytest.raises(ConfigError, match="'force' parameter"):
        ffnlp.train_classifier(world["train"], out=world["clf"], **{"force": 1})


TRAIN = [
    ("classify-overrides-int", "train_classifier", {"overrides": [1]}, "'overrides' parameter of train_classifier must be a list of \"key=value\" strings, and item 0 is not one; got 1 (int)."),
    ("classify-overrides-str", "train_classifier", {"overrides": "train.epochs=1"}, "must be a list of \"key=value\" strings; got 'train.epochs=1' (str)."),
    ("classify-overrides-int-key", "train_classifier", {"overrides": {1: 2}}, "'overrides' parameter of train_classifier must be a mapping with dotted keys (str); got 1 (int)."),
    ("classify-overrides-object", "train_classifier", {"overrides": {"train.lr": object()}}, "the setting 'train.lr' must be a finite number, a string, a bool or a list of them"),
    ("classify-callbacks-int", "train_classifier", {"callbacks": [1]}, "'callbacks' parameter of train_classifier must be a list of ffnlp.training.Callback instances, and item 0 is not one; got 1 (int)."),
    ("classify-callbacks-none", "train_classifier", {"callbacks": None}, "got None (NoneType)."),
    ("classify-resume-str", "train_classifier", {"resume": "false"}, "'resume' parameter of train_classifier must be a bool; got 'false' (str)."),
    ("classify-seed-negative", "train_classifier", {"seed": -1}, "train.seed must be >= 0; got -1"),
    ("classify-seed-float", "train_classifier", {"seed": 1.5}, "got 1.5 (float)."),
    ("classify-out-int", "train_classifier", {"out": 7}, "'out' parameter of train_classifier must be a file or folder name (str or pathlib.Path) or None; got 7 (int)."),
    ("classify-setting-object", "train_classifier", {"train.lr": object()}, "the setting 'train.lr' must be a finite number, a string, a bool or a list of them"),
    ("classify-setting-nan", "train_classifier", {"train.lr": math.nan}, "got nan (float)"),
    ("lm-force-str", "train_lm", {"force": "yes"}, "'force' parameter of train_lm must be a bool; got 'yes' (str)."),
    ("lm-callbacks-class", "train_lm", {"callbacks": [Callback]}, "'callbacks' parameter of train_lm"),
    ("w2v-overrides-bytes", "train_word2vec", {"overrides": [b"model.dim=8"]}, "'overrides' parameter of train_word2vec"),
    ("w2v-resume-int", "train_word2vec", {"resume": 0}, "'resume' parameter of train_word2vec must be a bool; got 0 (int)."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("function", "kwargs", "message"), [c[1:] for c in TRAIN], ids=[c[0] for c in TRAIN]
)
def test_train_functions_check_their_arguments_before_anything_is_written(
    world, tmp_path, function, kwargs, message
) -> None:
    data = world["train"] if function == "train_classifier" else world["corpus"]
    kwargs = {"out": tmp_path / "run", **kwargs}
    with Unchanged(world["train"], world["corpus"]), pytest.raises(ConfigError) as info:
        getattr(ffnlp, function)(data, **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


RESULTS = [
    ("predict-k-minus-two", lambda w: ffnlp.load(w["clf"]).predict("a film", k=-2), "'k' parameter of Classifier.predict must be an int >= 1 (or -1 for every label); got -2 (int)."),
    ("predict-k-float", lambda w: ffnlp.load(w["clf"]).predict("a film", k=1.0), "got 1.0 (float)."),
    ("predict-threshold-nan", lambda w: ffnlp.load(w["clf"]).predict("a film", threshold=math.nan), "'threshold' parameter of Classifier.predict must be a number from 0 to 1 or None; got nan (float)."),
    ("predict-stream-batch", lambda w: list(ffnlp.load(w["clf"]).predict_stream(["a"], batch_size=0)), "'batch_size' parameter of Classifier.predict_stream must be an int >= 1; got 0 (int)."),
    ("vectors-stream-batch", lambda w: list(ffnlp.load(w["pooled"]).vectors_stream(["a"], batch_size="9")), "'batch_size' parameter of Classifier.vectors_stream"),
    ("word-vectors-stream-batch", lambda w: list(ffnlp.load(w["pooled"]).word_vectors_stream(["a"], batch_size=-1)), "'batch_size' parameter of Classifier.word_vectors_stream"),
    ("test-none", lambda w: ffnlp.load(w["clf"]).test(None), "'path' parameter of Classifier.test must be a file or folder name"),
    ("most-similar-k-negative", lambda w: ffnlp.load(w["w2v"]).most_similar("the", k=-1), "'k' parameter of Word2VecRun.most_similar must be an int >= 1; got -1 (int)."),
    ("most-similar-k-zero", lambda w: ffnlp.load(w["w2v"]).most_similar("the", k=0), "got 0 (int)."),
    ("most-similar-restrict", lambda w: ffnlp.load(w["w2v"]).most_similar("the", restrict=-3), "'restrict' parameter of Word2VecRun.most_similar must be an int >= 0; got -3 (int)."),
    ("most-similar-positive-int", lambda w: ffnlp.load(w["w2v"]).most_similar(["the", 3]), "'positive' parameter of WordVectors.most_similar must be a list of strings, and item 1 is not one; got 3 (int)."),
    ("most-similar-negative-none", lambda w: ffnlp.load(w["w2v"]).most_similar("the", negative=None), "'negative' parameter of WordVectors.most_similar"),
    ("w2v-evaluate-restrict", lambda w: ffnlp.load(w["w2v"]).evaluate(restrict=0), "The 'restrict' parameter of Word2VecRun.evaluate must be an int >= 1; got 0 (int)."),
    ("w2v-vector-int", lambda w: ffnlp.load(w["w2v"]).vector(3), "'word' parameter of Word2VecRun.vector must be a str; got 3 (int)."),
    ("w2v-export-none", lambda w: ffnlp.load(w["w2v"]).export(None), "'path' parameter of Word2VecRun.export"),
    ("generate-temperature-nan", lambda w: ffnlp.load(w["lm"]).generate(temperature=math.nan), "'temperature' parameter of LanguageModel.generate must be a finite number > 0 (or 0 for always the likeliest word); got nan (float)."),
    ("generate-temperature-inf", lambda w: ffnlp.load(w["lm"]).generate(temperature=math.inf), "got inf (float)."),
    ("generate-temperature-negative", lambda w: ffnlp.load(w["lm"]).generate(temperature=-0.5), "got -0.5 (float)."),
    ("generate-temperature-str", lambda w: ffnlp.load(w["lm"]).generate(temperature="hot"), "got 'hot' (str)."),
    ("generate-max-tokens-huge", lambda w: ffnlp.load(w["lm"]).generate(max_tokens=10**9), "'max_tokens' parameter of LanguageModel.generate must be an int >= 1 and <= 100000"),
    ("generate-top-k-float", lambda w: ffnlp.load(w["lm"]).generate(top_k=2.5), "'top_k' parameter of LanguageModel.generate"),
    ("generate-stop-str", lambda w: ffnlp.load(w["lm"]).generate(stop_at_eos="no"), "'stop_at_eos' parameter of LanguageModel.generate must be a bool; got 'no' (str)."),
    ("kn-generate-temperature-nan", lambda w: ffnlp.load(w["kn"]).generate(temperature=math.nan), "'temperature' parameter of LanguageModel.generate"),
    ("set-weight-nan", lambda w: ffnlp.load(w["lm"]).set_weight(math.nan), "'weight' parameter of LanguageModel.set_weight must be a finite number >= 0 and <= 1; got nan (float)."),
    ("set-weight-str", lambda w: ffnlp.load(w["lm"]).set_weight("0.5"), "got '0.5' (str)."),
    ("perplexity-int", lambda w: ffnlp.load(w["lm"]).perplexity(3), "'path' parameter of LanguageModel.perplexity"),
    ("lm-load-weight-nan", lambda w: ffnlp.tasks.lm.load(w["lm"], weight=math.nan), "The 'weight' parameter of load must be a finite number >= 0 and <= 1; got nan (float)."),
    ("lm-load-standalone-str", lambda w: ffnlp.tasks.lm.load(w["lm"], standalone="no"), "The 'standalone' parameter of load must be a bool; got 'no' (str)."),
    ("lm-evaluate-none", lambda w: ffnlp.load(w["kn"]).evaluate(None), "'path' parameter of LanguageModel.evaluate"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in RESULTS], ids=[c[0] for c in RESULTS])
def test_result_objects_check_their_arguments(world, call, message) -> None:
    with Unchanged(world["clf"], world["lm"], world["w2v"]), pytest.raises(ConfigError) as info:
        call(world)
    assert message in str(info.value)


def test_the_values_that_are_right_still_work(world) -> None:
    clf = ffnlp.load(world["clf"])
    assert len(clf.predict("a film", k=np.int64(2))) == 2
    assert len(clf.predict("a film", k=-1)) == len(clf.labels.labels)
    lm = ffnlp.load(world["lm"])
    assert lm.generate(max_tokens=3, temperature=0, seed=np.int64(1)).tokens
    assert lm.generate(max_tokens=3, temperature=0.5, stop_at_eos=np.bool_(False)).tokens
    run = ffnlp.load(world["w2v"])
    assert len(run.most_similar("the", k=np.int32(2))) == 2


SKLEARN = [
    ("epochs-str", {"epochs": "5"}, "The 'epochs' parameter of TextClassifier must be an int >= 1; got '5' (str)."),
    ("dim-zero", {"dim": 0}, "'dim' parameter of TextClassifier must be an int >= 1; got 0 (int)."),
    ("lr-nan", {"lr": math.nan}, "'lr' parameter of TextClassifier must be a finite number > 0; got nan (float)."),
    ("dropout-big", {"dropout": 1.5}, "'dropout' parameter of TextClassifier"),
    ("lowercase-str", {"lowercase": "no"}, "'lowercase' parameter of TextClassifier must be a bool; got 'no' (str)."),
    ("hidden-str", {"hidden": "64"}, "'hidden' parameter of TextClassifier must be a list of layer sizes"),
    ("hidden-zero", {"hidden": [64, 0]}, "'hidden' parameter of TextClassifier"),
    ("validation-one", {"validation_fraction": 1.0}, "'validation_fraction' parameter of TextClassifier must be a finite number >= 0 and < 1; got 1.0 (float)."),
    ("threads-str", {"threads": "many"}, "'threads' parameter of TextClassifier must be an int >= 0 or \"auto\"; got 'many' (str)."),
    ("overrides-str", {"overrides": "train.lr=1"}, "'overrides' parameter of TextClassifier"),
    ("model-unknown", {"model": "svm"}, "'model' parameter of TextClassifier must be one of"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"), [c[1:] for c in SKLEARN], ids=[c[0] for c in SKLEARN]
)
def test_the_sklearn_estimator_checks_its_parameters_when_fit_starts(params, message) -> None:
    pytest.importorskip("sklearn", reason="needs scikit-learn: pip install -e '.[dev]'")
    from ffnlp.sklearn import TextClassifier

    estimator = TextClassifier(**params)  # __init__ only stores (scikit-learn's rule)
    with pytest.raises(ConfigError) as info:
        estimator.fit(["a good film", "a bad film"], [1, 0])
    assert message in str(info.value)
    assert not hasattr(estimator, "classifier_")
