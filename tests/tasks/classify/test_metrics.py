"""Classification metrics against scikit-learn's."""

from __future__ import annotations

import pytest
import torch

from ffnlp.tasks.classify.metrics import classification_metrics
from tests.extras import needs

sk_metrics = needs("sklearn.metrics")
precision_recall_fscore_support = sk_metrics.precision_recall_fscore_support


def test_metrics_match_scikit_learn() -> None:
    g = torch.Generator().manual_seed(1)
    gold, pred = torch.randint(0, 3, (200,), generator=g), torch.randint(0, 3, (200,), generator=g)
    m = classification_metrics(gold, pred, ["a", "b", "c"])
    p, r, f, s = precision_recall_fscore_support(gold.numpy(), pred.numpy(), zero_division=0)
    assert [m["per_class"][c]["precision"] for c in "abc"] == pytest.approx(list(p))
    assert [m["per_class"][c]["f1"] for c in "abc"] == pytest.approx(list(f))
    assert m["macro_f1"] == pytest.approx(float(f.mean()))
    assert m["accuracy"] == pytest.approx(float((gold == pred).double().mean()))
    assert sum(map(sum, m["confusion"])) == 200
