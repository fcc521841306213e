"""The one activation table: shared by every model, each entry a module and an init gain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ffnlp.config import build
from ffnlp.errors import ConfigError
from ffnlp.models import feature_mlp, lm, mlp
from ffnlp.models.activations import ACTIVATIONS
from ffnlp.models.lm import FeedForwardLM, FFLMConfig
from ffnlp.models.mlp import MLP, MLPConfig


def test_every_model_uses_the_same_table() -> None:
    assert lm.ACTIVATIONS is ACTIVATIONS
    assert mlp.ACTIVATIONS is ACTIVATIONS
    assert feature_mlp.ACTIVATIONS is ACTIVATIONS
    # and the configs offer all of it, in the same order
    names = tuple(ACTIVATIONS)
    assert build(MLPConfig, {"activation": "identity"}).activation == "identity"
    assert build(FFLMConfig, {"activation": "hardtanh"}).activation == "hardtanh"
    for config in (MLPConfig, FFLMConfig):
        with pytest.raises(ConfigError, match="one of " + ", ".join(repr(n) for n in names)):
            build(config, {"activation": "swish"})


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_entry_makes_a_fresh_module_with_a_known_gain(name: str) -> None:
    spec = ACTIVATIONS[name]
    first, second = spec.make(), spec.make()
    assert isinstance(first, nn.Module) and first is not second
    assert nn.init.calculate_gain(spec.gain, 0.01 if spec.gain == "leaky_relu" else None) > 0


def test_identity_mlp_collapses_to_one_linear_map() -> None:
    """With no non-linearity, stacked layers are one affine map: W2 (W1 x + b1) + b2."""
    torch.manual_seed(0)
    net = MLP(5, 3, hidden=[7, 4], activation="identity", init="normal", init_std=0.5)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    assert not any(isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid)) for m in net.modules())
    with torch.no_grad():
        for layer in linears:
            layer.bias.normal_()
    w, b = torch.eye(5), torch.zeros(5)
    for layer in linears:  # compose the affine maps by hand
        w, b = layer.weight @ w, layer.weight @ b + layer.bias
    x = torch.randn(10, 5)
    torch.testing.assert_close(net(x), x @ w.t() + b)


def test_identity_mlp_gets_a_linear_gain_and_the_lm_takes_identity_too() -> None:
    torch.manual_seed(0)
    net = MLP(400, 2, hidden=[400], activation="identity")  # default init: Xavier-uniform
    bound = (6 / 800) ** 0.5  # gain 1
    first = net.layers[0].weight
    assert first.abs().max() <= bound + 1e-6 and first.abs().max() > 0.95 * bound
    model = FeedForwardLM(20, {"context_size": 2, "embedding_dim": 4, "activation": "identity"})
    assert isinstance(model.hidden[1], nn.Identity)
