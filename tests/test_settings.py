"""Settings: typed inside ffnlp, text at the edges.

A public function takes its settings as a mapping ({"train.epochs": 5}) or as the text of --set
(["train.epochs=5"]); both give the same configuration, the same config.toml and the same
figures. Text is read by one function (config.parse_setting), TOML written by one
(config.toml_value)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import ffnlp
from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.tasks.classify import resolve_config as classify_config
from ffnlp.tasks.sample import write_sample
from tests.extras import needs
from tests.reliability.cases import assert_error, invoke

# ---------------------------------------------------------------------------------------------
# reading text, writing TOML

AWKWARD_STRINGS = ["10", "true", "[1, 2]", 'we"ird\\name', "tab\there", "line\nbreak", "é ü 中", ""]


@pytest.mark.parametrize(
    "value",
    [5, -3, 0.1, 1e-08, 2.5e20, True, False, [1, 2], ["a", "b"], [[1], [2, 3]], *AWKWARD_STRINGS],
)
def test_a_value_written_as_toml_is_read_back_as_it_was(value: object) -> None:
    key, back = cfgmod.parse_setting("train.x=" + cfgmod.toml_value(value))
    assert key == "train.x"
    assert back == value and type(back) is type(value)


def test_a_bare_word_that_is_not_toml_stays_a_string() -> None:
    assert cfgmod.parse_setting(" model.type = mlp ") == ("model.type", "mlp")
    assert cfgmod.parse_setting("data.label_separator=,") == ("data.label_separator", ",")


def test_text_without_an_equals_sign_is_named_every_one_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        cfgmod.parse_settings(["train.lr", "train.epochs=2", "model"])
    assert info.value.problems == [
        "--set expects key=value (e.g. train.lr=0.1); got 'train.lr'",
        "--set expects key=value (e.g. train.lr=0.1); got 'model'",
    ]


def test_a_key_given_again_takes_its_later_value_and_place() -> None:
    text = ["train.lr=0.1", "train={lr = 0.5, epochs = 2}", "train.lr=0.2"]
    typed = cfgmod.parse_settings(text)
    assert list(typed) == ["train", "train.lr"]
    one_by_one = classify_config(None, text)  # text applied item by item, as --set always was
    assert classify_config(None, typed) == one_by_one
    assert (one_by_one.train.lr, one_by_one.train.epochs) == (0.2, 2)
    assert cfgmod.merge({"a": 1, "b": 2}, {"a": 3}) == {"b": 2, "a": 3}


def test_typed_and_text_settings_resolve_to_the_same_configuration() -> None:
    typed = {
        "model.type": "mlp",
        "model.mlp.hidden": [16, 8],
        "model.mlp.dropout": 0.25,
        "train.lr": 1e-3,
        "train.early_stopping": False,
        "data.label_separator": 'a"b\\c',
        "train.tensorboard": "10",
    }
    text = [f"{k}={cfgmod.toml_value(v)}" for k, v in typed.items()]
    a, b = classify_config(None, typed), classify_config(None, text)
    assert a == b
    assert cfgmod.dump_toml(a) == cfgmod.dump_toml(b)
    assert a.data.label_separator == 'a"b\\c' and a.train.tensorboard == "10"
    # keyword settings (**{...}) come last, over either form
    assert classify_config(None, typed, **{"train.lr": 0.5}).train.lr == 0.5


def test_a_typed_setting_is_checked_as_a_toml_value_is() -> None:
    with pytest.raises(ConfigError) as info:
        classify_config(None, {"train.lr": "fast", "train.lrr": 0.1, "model.mlp.hidden": [0]})
    problems = info.value.problems
    assert "train.lr must be a number; got 'fast'" in problems
    assert any("unknown key 'train.lrr' (--set); did you mean 'train.lr'?" in p for p in problems)
    assert len(problems) == 3  # every problem at once


def test_settings_of_takes_a_mapping_or_key_value_strings_and_nothing_else() -> None:
    assert cfgmod.settings_of({"train.epochs": 5, "x": (1, 2)}, "overrides", "f") == {
        "train.epochs": 5,
        "x": [1, 2],  # a tuple is a list, as TOML reads it
    }
    assert cfgmod.settings_of(("train.epochs=5",), "overrides", "f") == {"train.epochs": 5}
    with pytest.raises(ConfigError, match=r"must be a list of \"key=value\" strings; got 'a=1'"):
        cfgmod.settings_of("a=1", "overrides", "f")
    with pytest.raises(ConfigError, match="must be a mapping with dotted keys"):
        cfgmod.settings_of({1: 2}, "overrides", "f")
    with pytest.raises(ConfigError, match="the setting 'train.lr' must be a finite number"):
        cfgmod.settings_of({"train.lr": object()}, "overrides", "f")


def test_a_mapping_given_is_not_changed() -> None:
    given = {"model.mlp.hidden": [4], "train": {"lr": 0.5}}
    cfgmod.settings_of(given, "overrides", "f")
    classify_config(None, given, **{"train.lr": 0.25})
    assert given == {"model.mlp.hidden": [4], "train": {"lr": 0.5}}


# ---------------------------------------------------------------------------------------------
# the public functions: both forms, same run


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("settings") / "data", sizes=(120, 30, 30))


def _same_run(a: Path, b: Path) -> None:
    assert (a / "config.toml").read_bytes() == (b / "config.toml").read_bytes()
    sa, sb = ffnlp.load(a).summary, ffnlp.load(b).summary
    for split in ("dev", "test"):
        if split in sa:
            figures = {k: v for k, v in sa[split].items() if isinstance(v, float)}
            assert figures and figures == {k: sb[split][k] for k in figures}


def test_train_classifier_takes_typed_or_text_settings_alike(data, tmp_path) -> None:
    common = {"dev": data["dev"], "test": data["test"], "seed": 3}
    ffnlp.train_classifier(
        data["train"],
        overrides=["train.epochs=2", 'model.type="mlp"', "model.mlp.hidden=[8]"],
        out=tmp_path / "text",
        **common,
    )
    ffnlp.train_classifier(
        data["train"],
        overrides={"train.epochs": 2, "model.type": "mlp", "model.mlp.hidden": [8]},
        out=tmp_path / "typed",
        **common,
    )
    _same_run(tmp_path / "text", tmp_path / "typed")
    assert cfgmod.load_toml(tmp_path / "typed" / "config.toml")["train"]["seed"] == 3


def test_train_lm_and_word2vec_take_typed_or_text_settings_alike(data, tmp_path) -> None:
    lm = {"model.embedding_dim": 8, "model.hidden_sizes": [8], "model.context_size": 2}
    lm |= {"train.epochs": 1, "train.threads": 1, "samples": 0}
    for form, sets in (
        ("typed", lm),
        ("text", [f"{k}={cfgmod.toml_value(v)}" for k, v in lm.items()]),
    ):
        ffnlp.train_lm(
            data["corpus"], dev=data["dev"], overrides=sets, out=tmp_path / f"lm_{form}", seed=4
        )
    _same_run(tmp_path / "lm_text", tmp_path / "lm_typed")
    w2v = {"model.dim": 8, "model.min_count": 1, "train.epochs": 1, "model.workers": 1}
    for form, sets in (("typed", w2v), ("text", [f"{k}={v}" for k, v in w2v.items()])):
        ffnlp.train_word2vec(data["corpus"], overrides=sets, out=tmp_path / f"w2v_{form}")
    assert (tmp_path / "w2v_text" / "config.toml").read_bytes() == (
        tmp_path / "w2v_typed" / "config.toml"
    ).read_bytes()


def test_repeat_and_cross_validation_take_typed_settings(data, tmp_path) -> None:
    from ffnlp.experiments.cv import cross_validate
    from ffnlp.experiments.repeat import repeat

    result = repeat(
        "classify",
        data["train"],
        dev=data["dev"],
        overrides={"train.epochs": 1},
        seeds=[5, 6],
        out=tmp_path / "rep",
    )
    text = repeat(
        "classify",
        data["train"],
        dev=data["dev"],
        overrides=["train.epochs=1"],
        seeds=[5, 6],
        out=tmp_path / "rep_text",
    )
    assert result["repeat"]["dev"] == text["repeat"]["dev"]
    seeds = [cfgmod.load_toml(tmp_path / "rep" / f"seed_{s}" / "config.toml") for s in (5, 6)]
    assert [(c["train"]["seed"], c["train"]["epochs"]) for c in seeds] == [(5, 1), (6, 1)]
    cv = cross_validate(data["train"], folds=2, overrides={"train.epochs": 1}, out=tmp_path / "cv")
    cv_text = cross_validate(
        data["train"], folds=2, overrides=["train.epochs=1"], out=tmp_path / "cvt"
    )
    assert cv["cv"]["accuracy"]["values"] == cv_text["cv"]["accuracy"]["values"]


def test_the_sklearn_estimator_takes_typed_or_text_overrides(data) -> None:
    needs("sklearn")
    from ffnlp.sklearn import TextClassifier
    from ffnlp.text.readers import read_labeled

    train = read_labeled(data["train"])
    fast = {"epochs": 2, "dim": 8, "threads": 1}
    a = TextClassifier(**fast, overrides={"features.buckets": 500}).fit(train.texts, train.labels)
    b = TextClassifier(**fast, overrides=["features.buckets=500"]).fit(train.texts, train.labels)
    assert a.classifier_.config == b.classifier_.config
    assert a.classifier_.config.features.buckets == 500
    assert (a.predict_proba(train.texts[:10]) == b.predict_proba(train.texts[:10])).all()


# ---------------------------------------------------------------------------------------------
# the command line: options that stand for settings are typed, not pasted into text


def test_an_option_value_with_a_quote_is_a_value_not_toml(data, tmp_path) -> None:
    result = invoke(["classify", "train", "--train", data["train"], "--format", 'csv"',
                     "--out", tmp_path / "r", "--quiet"])  # fmt: skip
    assert_error(result, "data.format must be one of", """got 'csv"'""")


def test_lm_seed_reaches_the_recipe_as_the_classifier_seed_does(data, tmp_path) -> None:
    tiny = ["--set", "model.embedding_dim=8", "--set", "model.hidden_sizes=[8]", "--set",
            "model.context_size=2", "--set", "train.epochs=1", "--set", "samples=0", "--quiet"]  # fmt: skip
    result = invoke(["lm", "train", "--train", data["corpus"], *tiny, "--seed", "7",
                     "--set", "train.seed=1", "--out", tmp_path / "lm"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cfgmod.load_toml(tmp_path / "lm" / "config.toml")["train"]["seed"] == 7
    bad = invoke(["lm", "train", "--train", data["corpus"], *tiny, "--seed", "-1",
                  "--out", tmp_path / "lm_bad"])  # fmt: skip
    assert_error(bad, "train.seed must be >= 0; got -1")


def test_nan_from_python_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="the setting 'train.lr' must be a finite number"):
        classify_config(None, (), **{"train.lr": math.nan})
    with pytest.raises(ConfigError, match=r"train.lr must be a number \(not NaN\)"):
        classify_config(None, {"train.lr": math.nan})
