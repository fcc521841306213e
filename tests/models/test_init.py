"""The one table of init schemes: 'default' and its older spelling 'torch' keep the weights."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from ffnlp.config import build
from ffnlp.errors import ConfigError
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.init import INITS, SCHEMES, InitConfig, init_linear, init_weight, initialize
from ffnlp.models.mlp import MLP

SRC = Path(__file__).resolve().parents[2] / "src" / "ffnlp"


@pytest.mark.parametrize("keep", ["default", "torch"])
def test_default_and_its_alias_torch_leave_every_weight_as_it_is(keep: str) -> None:
    torch.manual_seed(0)
    net = MLP(6, 3, hidden=[5], init=keep)
    torch.manual_seed(0)
    plain = [nn.Linear(6, 5), nn.Linear(5, 3)]  # nn.Linear's own init, drawn in the same order
    for ours, theirs in zip(
        [m for m in net.modules() if isinstance(m, nn.Linear)], plain, strict=True
    ):
        torch.testing.assert_close(ours.weight, theirs.weight)
        torch.testing.assert_close(ours.bias, theirs.bias)
    model = FeatureMLP(30, 3, hidden=[8])
    before = {n: p.clone() for n, p in model.state_dict().items()}
    initialize(model, build(InitConfig, {"scheme": keep}))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_both_spellings_are_valid_config_values_and_others_are_not() -> None:
    assert (*SCHEMES, "torch") == INITS and "default" in SCHEMES
    for scheme in INITS:
        assert build(InitConfig, {"scheme": scheme}).scheme == scheme
    with pytest.raises(ConfigError, match="scheme"):
        build(InitConfig, {"scheme": "he"})


def test_an_unknown_scheme_is_a_config_error_naming_the_choices() -> None:
    message = (
        "the init scheme must be one of default, xavier_uniform, xavier_normal, kaiming_uniform, "
        "kaiming_normal, normal, zeros, torch; got 'he'"
    )
    with pytest.raises(ConfigError) as err:
        init_weight(torch.empty(3, 3), "he")
    assert str(err.value) == message
    with pytest.raises(ConfigError):
        init_linear(nn.Linear(3, 3), "he")
    with pytest.raises(ConfigError):
        MLP(3, 2, init="he")


@pytest.mark.parametrize(
    ("activation", "gain"),
    [
        ("relu", 2**0.5),
        ("gelu", 2**0.5),
        ("tanh", 5 / 3),
        ("hardtanh", 5 / 3),
        ("sigmoid", 1.0),
        ("identity", 1.0),
        ("linear", 1.0),
    ],
)
def test_xavier_takes_the_gain_of_the_activation(activation: str, gain: float) -> None:
    torch.manual_seed(0)
    w = torch.empty(300, 500)
    init_weight(w, "xavier_uniform", activation)
    bound = gain * (6 / 800) ** 0.5
    assert bound * 0.98 < w.abs().max().item() <= bound + 1e-6


def test_training_imports_nothing_from_models() -> None:
    """model.init lives with the models: the training package does not reach up into them."""
    for path in (SRC / "training").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("ffnlp.models"), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("ffnlp.models") for a in node.names), path.name
