"""One battery of checks over every registered model type.

Each type gets a tiny case: the arguments that build it (as its model.json stores them) and a
batch in the layout its task feeds it. Classifiers get theirs from the feature kind they read,
through the classify task's own featurizers, so a new classifier type needs no case of its own;
any other new type must add one to ``OTHER_CASES`` (``test_every_registered_model_has_a_case``
fails until it does). The toy ``toy_bag`` type (tests/models/toy_bag.py) runs here with the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from ffnlp.features.subwords import SubwordTable
from ffnlp.models import registry
from ffnlp.models.heads import ClassifierInputs, output_size
from ffnlp.models.io import load_model, save_model
from ffnlp.models.protocols import as_classifier
from ffnlp.models.subword_skipgram import SubwordSkipGram
from ffnlp.tasks.classify.config import model_config, resolve_config
from ffnlp.tasks.classify.data import make_featurizer
from ffnlp.training.trainable import as_trainable
from tests.models import toy_bag
from tests.tasks.toy_regression import task as toy_regression

assert toy_bag.ToyBag.registry_name == "toy_bag"  # registered by importing its module
assert toy_regression.ToyRegressor.registry_name == "toy_regressor"  # the toy task's model

Batch = dict[str, torch.Tensor]


@dataclass
class Case:
    """How to build one model type and run it on a tiny batch."""

    task: str  # model.json's "task"
    args: dict[str, Any]  # constructor arguments, as model.json stores them
    batch: Batch
    output: Callable[[nn.Module, Batch], torch.Tensor]  # the model's forward output on the batch
    shape: tuple[int, ...]  # expected shape of that output


TEXTS = ["a good film", "a bad film", "good good fun", "dull and bad", "fun", ""]


def classifier_case(spec: registry.ModelSpec, num_classes: int, multilabel: bool = False) -> Case:
    """A classifier on six short texts, featurised as its preferred feature kind; multi-label:
    each text has one or two of the labels, as (B, K) 0/1 targets."""
    cfg = resolve_config(
        overrides=[
            f'model.type="{spec.name}"',
            f'features.kind="{spec.features[0]}"',
            "features.buckets=50",
            "model.mlp.hidden=[5]",
            "model.mlp.dropout=0.1",
            "model.pooled.dim=4",
        ]
    )
    featurizer = make_featurizer(cfg)
    tokens = [t.split() for t in TEXTS]
    featurizer.fit(tokens, TEXTS)
    y = torch.arange(len(TEXTS)) % num_classes  # (B,)
    if multilabel:
        second = (y + 1) % num_classes
        y = torch.nn.functional.one_hot(y, num_classes).bool()  # (B, K)
        y[::2] |= torch.nn.functional.one_hot(second[::2], num_classes).bool()
    batch = next(iter(featurizer.source(tokens, TEXTS, y).batches(len(TEXTS), None)))
    inputs = ClassifierInputs(
        featurizer.input_size, num_classes, label_smoothing=0.1, multilabel=multilabel
    )
    args = spec.arguments(model_config(cfg.model), inputs)
    return Case(
        "classify",
        args,
        batch,
        lambda m, b: as_classifier(m).logits(b),
        (len(TEXTS), output_size(num_classes, multilabel)),
    )


def lm_case(**options: Any) -> Case:
    """The feed-forward LM; ``options``: more of its [model] settings (FOFE, residual blocks)."""
    generator = torch.Generator().manual_seed(0)
    config = {"context_size": 3, "embedding_dim": 6, "hidden_sizes": [5], "dropout": 0.1}
    config.update(options)
    C = int(config["context_size"])
    batch = {
        "context": torch.randint(0, 20, (4, C), generator=generator),  # (B, C)
        "target": torch.randint(0, 20, (4,), generator=generator),
    }  # (B,)
    return Case(
        "lm", {"vocab_size": 20, "config": config}, batch, lambda m, b: m(b["context"]), (4, 20)
    )


def skipgram_case(cbow: bool) -> Case:
    generator = torch.Generator().manual_seed(0)
    batch = {
        "center": torch.randint(0, 20, (4,), generator=generator),  # (B,)
        "negatives": torch.randint(0, 20, (4, 3), generator=generator),
    }  # (B, N)
    if cbow:  # each centre's window words, flattened, with offsets
        batch["context"] = torch.randint(0, 20, (7,), generator=generator)
        batch["offsets"] = torch.tensor([0, 2, 3, 5])

        def output(m: nn.Module, b: Batch) -> torch.Tensor:
            targets = torch.cat([b["center"].unsqueeze(1), b["negatives"]], 1)  # (B, 1+N)
            return m(b["context"], targets, b["offsets"])
    else:
        batch["context"] = torch.randint(0, 20, (4,), generator=generator)

        def output(m: nn.Module, b: Batch) -> torch.Tensor:
            targets = torch.cat([b["context"].unsqueeze(1), b["negatives"]], 1)  # (B, 1+N)
            return m(b["center"], targets)

    args = {"vocab_size": 20, "dim": 6, "cbow": cbow, "sparse": True, "workers": 1}
    return Case("w2v", args, batch, output, (4, 4))


def fasttext_case(cbow: bool) -> Case:
    """skip-gram's case on fastText's model: 20 words and their character n-grams."""
    case = skipgram_case(cbow)
    table = SubwordTable([f"w{i}x" for i in range(20)], minn=2, maxn=3, buckets=11)
    case.args.update(SubwordSkipGram.table_arguments(table))
    return case


def toy_regression_case(hidden: int) -> Case:
    """The toy task's model (tests/tasks/toy_regression): 3 inputs -> one number."""
    generator = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(5, 3, generator=generator)  # (B, F): small, so SGD at lr 0.5 is stable
    batch = {"x": x, "y": torch.randn(5, generator=generator)}
    args = {"num_inputs": 3, "hidden": hidden}
    return Case("toy_regression", args, batch, lambda m, b: m(b), (5,))


def ensemble_case(member: str, num_classes: int, multilabel: bool = False) -> Case:
    """Two ``member`` classifiers averaged (model.ensemble = 2), on their own case's batch."""
    case = classifier_case(registry.spec(member), num_classes, multilabel)
    case.args = {"member": member, "member_args": case.args, "size": 2}
    return case


# model types that are not classifiers: name -> their cases
OTHER_CASES: dict[str, dict[str, Callable[[], Case]]] = {
    "ffnn_lm": {
        "ffnn_lm": lm_case,
        "ffnn_lm-fofe-residual": lambda: lm_case(
            history="fofe", context_size=7, fofe_exact=2, residual_blocks=2, residual_inner=9
        ),
    },
    "skipgram": {"skipgram": lambda: skipgram_case(False), "cbow": lambda: skipgram_case(True)},
    "fasttext": {
        "fasttext": lambda: fasttext_case(False),
        "fasttext-cbow": lambda: fasttext_case(True),
    },
    "ensemble": {
        "ensemble-mlp-2classes": lambda: ensemble_case("mlp", 2),
        "ensemble-logreg-3classes": lambda: ensemble_case("logreg", 3),
        "ensemble-pooled-3labels-multilabel": lambda: ensemble_case("pooled", 3, True),
    },
    "toy_regressor": {
        "toy_regressor": lambda: toy_regression_case(0),
        "toy_regressor-hidden": lambda: toy_regression_case(4),
    },
}


# the classifier types that build a multi-label head when ClassifierInputs.multilabel is set
MULTILABEL_TYPES = ("logreg", "mlp", "pooled")


def all_cases() -> list[Any]:
    params = []
    for spec in registry.specs():
        if spec.is_classifier:
            for k in (2, 3):
                params.append(
                    pytest.param(
                        spec.name,
                        lambda s=spec, k=k: classifier_case(s, k),
                        id=f"{spec.name}-{k}classes",
                    )
                )
            if spec.name in MULTILABEL_TYPES:
                for k in (2, 3):
                    params.append(
                        pytest.param(
                            spec.name,
                            lambda s=spec, k=k: classifier_case(s, k, multilabel=True),
                            id=f"{spec.name}-{k}labels-multilabel",
                        )
                    )
        for case_id, make in OTHER_CASES.get(spec.name, {}).items():
            params.append(pytest.param(spec.name, make, id=case_id))
    return params


def test_every_registered_model_has_a_case() -> None:
    names = {s.name for s in registry.specs()}
    assert {"logreg", "mlp", "pooled", "ffnn_lm", "skipgram", "toy_bag"} <= names
    without = {s.name for s in registry.specs() if not s.is_classifier} - set(OTHER_CASES)
    assert not without, f"add a case to OTHER_CASES for {sorted(without)}"


def test_every_builtin_classifier_is_multilabel_capable() -> None:
    builtin = {
        s.name
        for s in registry.specs()
        if s.is_classifier and s.cls.__module__.startswith("ffnlp.")
    }
    assert builtin == set(MULTILABEL_TYPES)
    for name in MULTILABEL_TYPES:
        model = registry.build_model(name, classifier_case(registry.spec(name), 3, True).args)
        assert as_classifier(model).head.multilabel


def build(name: str, case: Case, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return registry.build_model(name, case.args)


CASES = all_cases()


@pytest.mark.parametrize(("name", "make"), CASES)
def test_forward_shape_and_finite_loss(name: str, make: Callable[[], Case]) -> None:
    case = make()
    model = build(name, case, 0).eval()
    assert tuple(case.output(model, case.batch).shape) == case.shape
    loss = as_trainable(model).loss(case.batch)
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize(("name", "make"), CASES)
def test_gradients_reach_every_parameter(name: str, make: Callable[[], Case]) -> None:
    case = make()
    model = build(name, case, 0).train()
    as_trainable(model).loss(case.batch).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for param_name, p in trainable:
        assert p.grad is not None, f"{name}: no gradient reaches {param_name}"
        values = p.grad.coalesce().values() if p.grad.is_sparse else p.grad
        assert torch.isfinite(values).all(), f"{name}: non-finite gradient in {param_name}"
    assert any(
        (p.grad.coalesce().values() if p.grad.is_sparse else p.grad).abs().sum() > 0
        for _, p in trainable
        if p.grad is not None
    )


@pytest.mark.parametrize(("name", "make"), CASES)
def test_a_few_sgd_steps_lower_the_loss(name: str, make: Callable[[], Case]) -> None:
    case = make()
    model = build(name, case, 0)
    trainable = as_trainable(model)
    before = trainable.loss(case.batch).item()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.eval()  # no dropout: the same function each step
    for _ in range(20):
        optimizer.zero_grad()
        trainable.loss(case.batch).backward()
        optimizer.step()
    assert trainable.loss(case.batch).item() < before


@pytest.mark.parametrize(("name", "make"), CASES)
def test_save_and_load_give_the_same_outputs(
    name: str, make: Callable[[], Case], tmp_path: Path
) -> None:
    case = make()
    model = build(name, case, 0).eval()
    save_model(model, tmp_path, case.task, case.args)
    loaded, arch = load_model(tmp_path)
    assert arch == {"task": case.task, "type": name, "args": case.args}
    assert type(loaded) is type(model) and not loaded.training
    assert torch.equal(case.output(loaded, case.batch), case.output(model, case.batch))


@pytest.mark.parametrize(("name", "make"), CASES)
def test_deterministic_with_a_seed(name: str, make: Callable[[], Case]) -> None:
    case = make()
    runs = []
    for _ in range(2):
        model = build(name, case, 7).train()  # dropout on: its masks come from the seed too
        torch.manual_seed(8)
        runs.append((model.state_dict(), as_trainable(model).loss(case.batch).item()))
    (state_a, loss_a), (state_b, loss_b) = runs
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert loss_a == loss_b
