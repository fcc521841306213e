from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from ffnlp import config as C
from ffnlp.config import option, section
from ffnlp.errors import ConfigError
from ffnlp.tasks.classify import ClassifyConfig
from ffnlp.training import TrainConfig


@dataclass(frozen=True)
class Inner:
    lr: float = option(0.1, "learning rate", gt=0)
    name: str = option("adam", "optimiser", choices=("adam", "sgd"))
    sizes: list[int] = option([8], "hidden sizes")


@dataclass(frozen=True)
class Outer:
    inner: Inner = section(Inner, lr=0.5)
    epochs: int = option(3, "epochs", ge=1)


def test_defaults_come_from_the_parent_section() -> None:
    assert C.build(Outer).inner.lr == 0.5
    assert C.build(Outer, {"inner": {"name": "sgd"}}).inner.lr == 0.5


def test_overrides_win_and_parse_toml_values() -> None:
    cfg = C.build(
        Outer, {"epochs": 4}, ["inner.lr=0.01", "epochs=7", "inner.sizes=[3, 4]", "inner.name=sgd"]
    )
    assert (cfg.epochs, cfg.inner.lr, cfg.inner.sizes, cfg.inner.name) == (7, 0.01, [3, 4], "sgd")


def test_every_problem_is_reported_at_once_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as err:
        C.build(Outer, {"epoch": 3, "inner": {"lr": -1, "name": "adagrad"}})
    msg = str(err.value)
    assert msg.startswith("3 problems in the configuration:")
    assert "unknown key 'epoch'; did you mean 'epochs'?" in msg
    assert "inner.lr must be > 0; got -1" in msg
    assert "inner.name must be one of 'adam', 'sgd'; got 'adagrad'" in msg


def test_unknown_override_key_names_the_flag() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown key 'inner.lrr' \(--set\); did you mean 'inner.lr'\?"
    ):
        C.build(Outer, {}, ["inner.lrr=3"])
    with pytest.raises(ConfigError, match="--set expects key=value"):
        C.build(Outer, {}, ["inner.lr"])


def test_type_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="epochs must be an integer; got 'many'"):
        C.build(Outer, {"epochs": "many"})


@dataclass(frozen=True)
class Counts:
    workers: int | Literal["auto"] = option("auto", "a count, or auto", ge=1)
    mode: Literal["fast", "exact"] = option("fast", "one of two words")


def test_a_literal_in_a_union_takes_its_word_or_the_other_type(tmp_path) -> None:
    assert C.build(Counts).workers == "auto"
    assert C.build(Counts, {}, ["workers=4", "mode=exact"]) == Counts(workers=4, mode="exact")
    assert C.build(Counts, {"workers": "auto"}).workers == "auto"
    with pytest.raises(ConfigError) as err:
        C.build(Counts, {"workers": "many", "mode": "quick"})
    assert str(err.value).splitlines()[1:] == [
        "  - workers must be an integer or 'auto'; got 'many'",
        "  - mode must be 'fast' or 'exact'; got 'quick'",
    ]
    with pytest.raises(ConfigError, match="workers must be >= 1; got 0"):  # bounds: numbers only
        C.build(Counts, {"workers": 0})
    with pytest.raises(ConfigError, match="workers must be an integer or 'auto'; got True"):
        C.build(Counts, {"workers": True})
    for cfg in (Counts(workers=3), Counts()):
        C.save_toml(cfg, tmp_path / "counts.toml")
        assert C.build(Counts, C.load_toml(tmp_path / "counts.toml")) == cfg


def test_toml_round_trip_of_a_task_config(tmp_path) -> None:
    cfg = C.build(ClassifyConfig, {}, ["train.lr=0.2", "features.ngram_range=[1, 3]"])
    path = tmp_path / "config.toml"
    C.save_toml(cfg, path)
    again = C.build(ClassifyConfig, C.load_toml(path))
    assert again == cfg
    assert again.train.monitor == "dev.accuracy"  # the task's default, not the trainer's


def test_component_checks_run() -> None:
    with pytest.raises(ConfigError, match="nesterov needs optimizer = 'sgd' and momentum > 0"):
        C.build(TrainConfig, {"nesterov": True})


def test_bad_toml_file_names_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1\n")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        C.load_toml(bad)


def test_describe_lists_every_option_with_help() -> None:
    rows = C.describe(ClassifyConfig)
    keys = [k for k, _, _ in rows]
    assert "train.lr" in keys and "features.weighting" in keys
    assert all(h for _, _, h in rows)


def test_section_checks_name_the_full_key_once() -> None:
    with pytest.raises(ConfigError) as err:
        C.build(
            ClassifyConfig,
            {},
            ["features.ngram_range=[2, 1]", 'model.type="pooled"', "model.pooled.freeze=true"],
        )
    msg = str(err.value)
    assert "features.ngram_range must be [min_n, max_n]" in msg and "features.features" not in msg
    assert (
        "model.pooled.freeze = true needs model.pooled.pretrained" in msg
        and "model.model" not in msg
    )
