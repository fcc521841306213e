"""``find_lr`` for the classifier: the range test (:mod:`ffnlp.tasks.lr_find`) on the model
``train_classifier`` starts from (same splits reader, featurizer, model builder,
initialisation, pretrained vectors and seed).

>>> result = find_lr("train.txt", config="sst2_ffnn")   # doctest: +SKIP
>>> result["suggested_lr"]                                          # doctest: +SKIP
"""

from __future__ import annotations

from torch import nn

from ffnlp.tasks.classify.config import check_features, resolve_config
from ffnlp.tasks.classify.train import Split, fresh_model, prepare, read_splits
from ffnlp.tasks.lr_find import RangeTest
from ffnlp.tasks.run import Run
from ffnlp.training.data import BatchSource


def _model(run: Run, train: Split) -> tuple[nn.Module, BatchSource]:
    cfg = run.config
    prepared = prepare(cfg, read_splits(cfg, train, None, None))
    model, _, _ = run.seeded(fresh_model, cfg, prepared)
    return model, prepared.train


find_lr = RangeTest("classify", resolve_config, _model, check_features)
"""``find_lr(train, config=None, overrides=(), seed=None, lr_min=1e-6, lr_max=1.0, steps=100,
**settings)``: see :meth:`ffnlp.tasks.lr_find.RangeTest.__call__`."""
