"""The compiled head (models/kernels/dense_head.py) against NumpyForward's NumPy steps and the
PyTorch modules: every covered activation, zero to two layers after the sums, the three heads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ffnlp import jit
from ffnlp.models import numpy_forward
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.kernels import dense_head
from ffnlp.models.logreg import LogisticRegression
from ffnlp.models.pooled import PooledEmbeddingClassifier

needs_jit = pytest.mark.skipif(not jit.enabled(), reason="numba off (FFNLP_JIT=0) or missing")

F = 30  # rows of the first layer's table


def _network(kind: str, classes: int, multilabel: bool, hidden: list[int], activation: str) -> Any:
    torch.manual_seed(len(hidden) * 10 + classes)
    if kind == "logreg":
        return LogisticRegression(F, classes, multilabel=multilabel)
    if kind == "mlp":
        return FeatureMLP(F, classes, hidden=hidden, activation=activation, multilabel=multilabel)
    return PooledEmbeddingClassifier(
        F, classes, dim=8, hidden=hidden, activation=activation, multilabel=multilabel
    )


def _forward(module: Any, kind: str, classes: int, multilabel: bool, activation: str) -> Any:
    with torch.no_grad():  # weights large enough that the activations' bends matter
        for p in module.parameters():
            p.mul_(3.0)
    arrays = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    args = {"activation": activation, "pooling": "mean"}
    forward = numpy_forward.build(kind, arrays, args, classes, multilabel)
    assert forward is not None
    return forward


CASES = [
    ("logreg", []),
    ("mlp", [7]),
    ("mlp", [7, 5]),
    ("pooled", []),  # the output layer moved in front of the mean (projected)
    ("pooled", [6]),
]


@needs_jit
@pytest.mark.parametrize(("kind", "hidden"), CASES)
@pytest.mark.parametrize("activation", sorted(dense_head.ACTIVATION_CODES))
@pytest.mark.parametrize(("classes", "multilabel"), [(2, False), (4, False), (3, True)])
def test_the_compiled_head_gives_the_numpy_steps_probabilities(
    kind: str, hidden: list[int], activation: str, classes: int, multilabel: bool
) -> None:
    module = _network(kind, classes, multilabel, hidden, activation)
    forward = _forward(module, kind, classes, multilabel, activation)
    table, _ = forward.summed()
    rng = np.random.default_rng(classes)
    sums = rng.standard_normal((37, table.shape[1])).astype(np.float32) * 2
    sums[3] = 0.0  # an empty text: zero sums
    sums[5] = 40.0  # saturating logits: a sigmoid or softmax at its ends
    want = forward.probabilities(forward.from_sums(sums.copy()))
    forward.compiled = True
    assert forward._head_plan() is not None
    got = forward.probabilities_of_sums(sums.copy())
    assert got.dtype == np.float32 and got.shape == want.shape
    # logits of tens (weights scaled up) carry float32 rounding of a few 1e-6 either way
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert (got.argmax(1) == want.argmax(1)).all()
    # each row's best column and its probability from the same call: argmax's (the first of
    # equal maxima: saturated rows tie at 1.0)
    found = forward.best_of_sums(sums.copy())
    assert found is not None
    assert found[0] == got.argmax(1).tolist()
    assert found[1] == got[np.arange(len(got)), got.argmax(1)].tolist()
    # and what the PyTorch module gives in evaluation mode, from the same sums
    if kind == "mlp":
        module.eval()
        with torch.no_grad():
            h = torch.from_numpy(sums) + module.input_bias
            torch_logits = module.rest(h)
            torch_probs = module.head.probabilities(torch_logits).numpy()
        np.testing.assert_allclose(got, torch_probs, rtol=0, atol=1e-5)


@needs_jit
def test_an_activation_the_kernel_lacks_takes_the_numpy_steps() -> None:
    module = _network("mlp", 3, False, [7], "tanh")
    forward = _forward(module, "mlp", 3, False, "tanh")
    forward.compiled = True
    assert forward._head_plan() is None
    sums = np.random.default_rng(0).standard_normal((4, 7)).astype(np.float32)
    assert forward.best_of_sums(sums.copy()) is None  # the caller takes the NumPy steps
    want = forward.probabilities(forward.from_sums(sums.copy()))
    assert np.array_equal(forward.probabilities_of_sums(sums.copy()), want)


@needs_jit
def test_sums_of_another_shape_or_type_take_the_numpy_steps() -> None:
    module = _network("mlp", 2, False, [7], "relu")
    forward = _forward(module, "mlp", 2, False, "relu")
    forward.compiled = True
    wide = np.zeros((2, 9), dtype=np.float32)  # not the first layer's width
    with pytest.raises(ValueError):  # NumPy's own error, not a read past the weights
        forward.probabilities_of_sums(wide)
    doubles = np.random.default_rng(1).standard_normal((3, 7))
    want = forward.probabilities(forward.from_sums(doubles.copy()))
    assert np.array_equal(forward.probabilities_of_sums(doubles.copy()), want)


def test_nan_sums_stay_nan_in_every_head() -> None:
    """A NaN in the sums (a broken weight) is not hidden as a confident probability."""
    if not jit.enabled():
        pytest.skip("numba off (FFNLP_JIT=0) or missing")
    for classes, multilabel in ((2, False), (4, False), (3, True)):
        module = _network("mlp", classes, multilabel, [7], "relu")
        forward = _forward(module, "mlp", classes, multilabel, "relu")
        forward.compiled = True
        sums = np.full((1, 7), np.nan, dtype=np.float32)
        assert np.isnan(forward.probabilities_of_sums(sums)).all()
