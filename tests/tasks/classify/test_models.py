"""How the classify task finds and builds its model: the registry, each type's own config, and
the model.json arguments of runs saved before the types owned their configs."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ffnlp.config import section
from ffnlp.errors import ConfigError
from ffnlp.models import registry
from ffnlp.models.heads import ClassifierInputs
from ffnlp.models.init import InitConfig, initialize
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.mlp import MLPConfig
from ffnlp.tasks.classify import load, resolve_config, train_classifier
from ffnlp.tasks.classify.config import ModelConfig, model_config
from ffnlp.tasks.sample import write_sample
from tests.models import toy_bag

FAST = ["train.epochs=2", "train.threads=1", "train.checkpoint=false"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("s"), sizes=(200, 40, 40))


# model.json "args" as the classify task wrote them before each model type built itself (the
# featurizer's size first, then the loss settings, then each family's options in this order)
EARLIER_ARGS = {
    "logreg": {
        "num_features": 50,
        "num_classes": 2,
        "label_smoothing": 0.1,
        "class_weight": [1.0, 3.0],
        "sparse": True,
    },
    "mlp": {
        "num_features": 50,
        "num_classes": 3,
        "label_smoothing": 0.0,
        "class_weight": None,
        "sparse": False,
        "hidden": [8],
        "activation": "tanh",
        "dropout": 0.5,
        "input_dropout": 0.2,
    },
    "pooled": {
        "num_embeddings": 50,
        "num_classes": 2,
        "label_smoothing": 0.0,
        "class_weight": None,
        "hidden": [],
        "activation": "relu",
        "dropout": 0.0,
        "input_dropout": 0.5,
        "dim": 16,
        "pooling": "mean",
        "word_dropout": 0.2,
        "sparse": True,
        "init": "uniform",
        "init_scale": 0.0,
        "freeze": False,
    },
}
EARLIER_SETTINGS = {
    "logreg": ["loss.label_smoothing=0.1", "train.sparse=true"],
    "mlp": [
        "model.mlp.hidden=[8]",
        'model.mlp.activation="tanh"',
        "model.mlp.dropout=0.5",
        "model.mlp.input_dropout=0.2",
    ],
    "pooled": [
        "model.mlp.input_dropout=0.5",
        "model.pooled.dim=16",
        "model.pooled.word_dropout=0.2",
        "train.sparse=true",
    ],
}
EARLIER_INPUTS = {
    "logreg": ClassifierInputs(50, 2, label_smoothing=0.1, class_weight=[1.0, 3.0], sparse=True),
    "mlp": ClassifierInputs(50, 3),
    "pooled": ClassifierInputs(50, 2, sparse=True),
}


@pytest.mark.parametrize("model_type", sorted(EARLIER_ARGS))
def test_earlier_model_json_args_rebuild_and_match_todays(model_type: str) -> None:
    old = EARLIER_ARGS[model_type]
    model = registry.build_model(model_type, old)
    assert model.registry_name == model_type
    cfg = resolve_config(overrides=[f'model.type="{model_type}"', *EARLIER_SETTINGS[model_type]])
    spec = registry.spec(model_type)
    new = spec.arguments(model_config(cfg.model), EARLIER_INPUTS[model_type])
    assert list(new.items()) == list(old.items())  # same keys, same order: same model.json


def test_every_classifier_section_is_a_section_of_model_config() -> None:
    hints = typing.get_type_hints(ModelConfig)
    for spec in registry.specs():
        if not spec.is_classifier:
            continue
        assert spec.config is not None, spec.name
        for f in dataclasses.fields(spec.config):
            assert hints.get(f.name) is typing.get_type_hints(spec.config)[f.name], (
                spec.name,
                f.name,
            )


def test_each_type_gets_only_its_own_sections() -> None:
    cfg = resolve_config(
        overrides=['model.type="pooled"', 'features.kind="ids"', "model.pooled.dim=8"]
    )
    own = model_config(cfg.model)
    assert [f.name for f in dataclasses.fields(own)] == ["mlp", "pooled"]
    assert own.pooled.dim == 8
    logreg = model_config(resolve_config().model)
    assert dataclasses.fields(logreg) == ()


def test_unknown_model_type_is_refused_when_the_config_is_read() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides=['model.type="lgoreg"'])
    assert str(err.value).startswith(
        "model.type must be a text classifier: logreg, mlp, pooled, toy_bag; got 'lgoreg' "
        "(did you mean 'logreg'?)"
    )
    with pytest.raises(ConfigError, match="model.type must be a text classifier: .*got 'skipgram'"):
        resolve_config(overrides=['model.type="skipgram"'])


def test_a_section_the_model_config_lacks_is_named() -> None:
    @dataclass(frozen=True)
    class WithCnn:
        cnn: MLPConfig = section(MLPConfig)

    spec = registry.ModelSpec("cnn", nn.Linear, WithCnn, ("ngrams",))
    with pytest.raises(ConfigError, match=r"reads the section\(s\) cnn, which ModelConfig lacks"):
        spec.select_config(ModelConfig())


def test_logistic_regression_stays_at_zero_whatever_model_init_says() -> None:
    model = LogisticRegression(10, 3)
    initialize(model, InitConfig(scheme="normal"))
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())


def test_a_new_model_type_trains_saves_and_loads_through_the_task(
    sample: dict[str, Path], tmp_path: Path
) -> None:
    clf = train_classifier(
        sample["train"],
        dev=sample["dev"],
        out=tmp_path / "toy",
        overrides=[*FAST, 'model.type="toy_bag"', "model.mlp.hidden=[6]", "train.lr=0.05"],
    )
    assert isinstance(clf.model, toy_bag.ToyBag) and clf.model.bag.embedding_dim == 6
    assert clf.summary["model"] == "toy_bag" and clf.summary["dev"]["accuracy"] > 0.5
    again = load(tmp_path / "toy")
    texts = ["a great film", "the plot is dull"]
    np.testing.assert_allclose(again.predict_proba(texts), clf.predict_proba(texts), rtol=1e-6)
    with pytest.raises(ConfigError, match="model.type = 'toy_bag' reads features.kind 'ngrams'"):
        train_classifier(
            sample["train"],
            out=tmp_path / "ids",
            overrides=[*FAST, 'model.type="toy_bag"', 'features.kind="ids"'],
        )
