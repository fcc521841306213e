"""Search-space files: reading, the checks before the first trial, drawing values."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.tune import tasks
from ffnlp.tune.space import SHIPPED, SHIPPED_SPACES, check_space, parse_space, space_path
from tests.extras import needs

optuna = needs("optuna")

ROOT = Path(__file__).resolve().parents[2]


def check(
    tmp_path: Path, text: str, task: str = "classify", sets: tuple[str, ...] = ()
) -> list[str]:
    """The problems of a space file against ``task``'s default configuration (+ ``sets``)."""
    path = tmp_path / "space.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    space, problems = parse_space(path)
    given = cfgmod.parse_settings(sets)
    try:
        base = tasks.resolve(task, None, cfgmod.merge(space.fixed_settings(), given))
    except ConfigError:  # a [fixed] problem, which check_space reports with the others
        base = tasks.resolve(task, None, given)
    try:
        check_space(
            space,
            tasks.config_class(task),
            {},
            cfgmod.merge(space.fixed_settings(), given),
            tasks.config_check(task),
            tasks.unused_param(task, base, space.keys),
            problems,
        )
    except ConfigError as exc:
        assert all(str(path) in p for p in exc.problems)  # every message names the file
        return [p.split(": ", 1)[1] for p in exc.problems]
    return []


def test_an_unknown_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    problems = check(tmp_path, '["train.lrr"]\ntype = "float"\nlow = 1e-4\nhigh = 0.1\n')
    assert len(problems) == 1
    assert problems[0].startswith("unknown key 'train.lrr'; did you mean 'train.lr'?")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
        ["train.lr"]
        type = "float"
        low = 0.1
        high = 0.01

        ["train.l2"]
        type = "float"
        low = 0.0
        high = 0.1
        log = true

        ["train.batch_size"]
        type = "categorical"
        choices = []

        ["train.momentum"]
        type = "flaot"

        ["train.clip_norm"]
        type = "float"
        low = 0.0
        high = 5.0
        lg = true

        ["train.epochs"]
        type = "float"
        low = 1
        high = 5

        ["train.optimizer"]
        type = "int"
        low = 1
        high = 2

        ["train.weight_decay"]
        type = "float"
        low = 0.0
        high = 0.1
        step = 0.03
        """,
    )
    assert problems == [
        "low must be below high; got low = 0.1, high = 0.01",
        "log = true needs low > 0 (a log scale never reaches 0); got low = 0.0",
        "choices must be a non-empty list; got []",
        "type must be one of 'float', 'int', 'categorical'; got 'flaot' (did you mean 'float'?)",
        "unknown field 'lg' for type = 'float'; did you mean 'log'? Allowed: type, low, high, "
        "log, step, when",
        "step = 0.03 must divide high - low = 0.1 (the values are low, low + step, ..., high)",
        'train.epochs takes integers: use type = "int"',
        "train.optimizer takes one of 'sgd', 'adam', 'adamw', 'adagrad', 'rmsprop'; use type = "
        '"categorical" with choices from those',
    ]


def test_values_outside_an_options_range_or_choices_are_refused(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
        ["model.mlp.dropout"]
        type = "float"
        low = 0.0
        high = 1.5

        ["model.mlp.activation"]
        type = "categorical"
        choices = ["relu", "swish"]

        ["train.batch_size"]
        type = "int"
        low = 0
        high = 64
        """,
        sets=('model.type="mlp"',),
    )
    assert problems == [
        "high = 1.5 is not a value model.mlp.dropout takes: it must be < 1.0",
        'the choice "swish" is not a value model.mlp.activation takes: it must be one of '
        "'sigmoid', 'tanh', 'hardtanh', 'relu', 'leaky_relu', 'gelu', 'elu', 'identity'",
        "low = 0 is not a value train.batch_size takes: it must be >= 1",
    ]


def test_values_the_whole_configuration_refuses_are_found(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
        ["model.mlp.hidden"]
        type = "categorical"
        choices = [[], [0]]

        ["train.nesterov"]
        type = "categorical"
        choices = [false, true]
        """,
        sets=('model.type="mlp"',),
    )
    assert problems == [
        "with the choice [0]: model.mlp.hidden must hold positive layer sizes; got [0]",
        "with the choice true: train.nesterov needs optimizer = 'sgd' and momentum > 0",
    ]


def test_a_section_the_model_type_does_not_read_is_refused(tmp_path: Path) -> None:
    text = '["model.pooled.dim"]\ntype = "int"\nlow = 8\nhigh = 64\n'
    assert check(tmp_path, text) == [
        "model.type = 'logreg' does not read [model.pooled], so this parameter would change "
        "nothing; tune a base configuration (--config) of a type that reads it, or leave the key "
        "out"
    ]
    # unless the type is tuned too, or fixed to one that reads it
    fixed = '[fixed]\n"model.type" = "pooled"\n"features.kind" = "ids"\n\n' + text
    assert check(tmp_path, fixed) == []
    lm = '["kneser_ney.order"]\ntype = "int"\nlow = 2\nhigh = 5\n'
    assert check(tmp_path, lm, task="lm")[0].startswith("kind = 'ffnn' does not read")


def test_conditions_and_fixed_settings_are_checked(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
        [fixed]
        "model.type" = "mlp"
        "train.lr" = 0.1
        "model.mlp.hiden" = [8]

        ["train.momentum"]
        type = "float"
        low = 0.0
        high = 0.9
        when = { "train.optimizer" = "sgd" }

        ["train.optimizer"]
        type = "categorical"
        choices = ["adam", "sgd"]

        ["train.lr"]
        type = "float"
        low = 0.01
        high = 0.1
        when = { "train.optimizer" = "adagrad" }
        """,
    )
    assert problems == [
        "when names 'train.optimizer', which must be a categorical parameter given earlier in "
        "the file",
        "when 'train.optimizer' = 'adagrad', which is not one of its choices (\"adam\", \"sgd\")",
        "'train.lr' is both a parameter and in [fixed]; keep one of them",
        "unknown key 'model.mlp.hiden'; did you mean 'model.mlp.hidden'? Allowed here: "
        "activation, dropout, hidden, input_dropout",
    ]


def test_list_choices_go_to_optuna_as_text_and_come_back_as_lists(tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    path.write_text(
        textwrap.dedent(
            """
            ["model.mlp.hidden"]
            type = "categorical"
            choices = [[], [256], [512, 256]]

            ["train.optimizer"]
            type = "categorical"
            choices = ["adam", "sgd"]

            ["train.momentum"]
            type = "float"
            low = 0.0
            high = 0.9
            step = 0.1
            when = { "train.optimizer" = "sgd" }

            ["train.epochs"]
            type = "int"
            low = 2
            high = 32
            log = true
            """
        ),
        encoding="utf-8",
    )
    space, problems = parse_space(path)
    assert problems == []
    hidden = space.param("model.mlp.hidden")
    assert hidden.labels == ("[]", "[256]", "[512, 256]")
    assert space.param("train.optimizer").labels == ("adam", "sgd")
    trial = optuna.trial.FixedTrial(
        {"model.mlp.hidden": "[512, 256]", "train.optimizer": "adam", "train.epochs": 8}
    )
    assert space.suggest(trial) == {
        "model.mlp.hidden": [512, 256],
        "train.optimizer": "adam",
        "train.epochs": 8,
    }  # momentum is not drawn for adam
    sgd = optuna.trial.FixedTrial(
        {
            "model.mlp.hidden": "[]",
            "train.optimizer": "sgd",
            "train.momentum": 0.9,
            "train.epochs": 2,
        }
    )
    assert space.suggest(sgd)["train.momentum"] == 0.9
    assert space.decode({"model.mlp.hidden": "[256]"}) == {"model.mlp.hidden": [256]}
    assert space.spec()["train.momentum"] == {
        "type": "float",
        "low": 0.0,
        "high": 0.9,
        "step": 0.1,
        "when": {"train.optimizer": ["sgd"]},
    }


def test_a_space_file_that_is_not_toml_or_has_no_parameter(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('["train.lr"\ntype = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        parse_space(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert parse_space(empty)[1] == [
        f'{empty} has no parameter; give each tuned key a table, e.g. ["train.lr"] with type = '
        '"float", low = 1e-4, high = 0.1, log = true'
    ]
    with pytest.raises(ConfigError, match="does not exist"):
        parse_space(tmp_path / "missing.toml")


BASES = {
    "classify": "configs/sst2_ffnn.toml",
    "pooled": "configs/sst2_pooled.toml",
    "lm": "configs/ptb_lm.toml",
    "w2v": "configs/ptb_w2v.toml",
}


@pytest.mark.parametrize("name", SHIPPED_SPACES)
def test_the_shipped_spaces_fit_their_presets(name: str) -> None:
    task = "classify" if name == "pooled" else name
    base_file = ROOT / BASES[name]
    pre = tasks.resolve(task, base_file, [])
    assert tasks.shipped_space(task, pre) == name  # what --space auto picks
    space, problems = parse_space(space_path("auto", name))
    sets = space.fixed_settings()
    base = tasks.resolve(task, base_file, sets)
    data: dict[str, Any] = cfgmod.load_toml(base_file)
    check_space(
        space,
        tasks.config_class(task),
        data,
        sets,
        tasks.config_check(task),
        tasks.unused_param(task, base, space.keys),
        problems,
    )
    # the installed copy is the one in configs/spaces/
    shipped = (SHIPPED / f"{name}.toml").read_bytes()
    assert shipped == (ROOT / "configs" / "spaces" / f"{name}.toml").read_bytes()


def test_the_classify_space_suits_the_default_configuration_too() -> None:
    """The default classifier is logistic regression: the classify space fixes model.type to
    mlp, whose hidden = [] choice is logistic regression."""
    space, problems = parse_space(space_path("auto", "classify"))
    sets = space.fixed_settings()
    base = tasks.resolve("classify", None, sets)
    check_space(
        space,
        tasks.config_class("classify"),
        {},
        sets,
        tasks.config_check("classify"),
        tasks.unused_param("classify", base, space.keys),
        problems,
    )
