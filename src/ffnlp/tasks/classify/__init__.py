"""Text classification end to end: files -> features -> model -> Trainer -> run directory.

The CLI (``ffnlp classify ...``) and the Python API (``ffnlp.train_classifier``, ``ffnlp.load``)
both call this package, so neither holds logic of its own:

- :mod:`.config`: the configuration ([data], [features], [model], [loss], [train]);
- :mod:`.data`: reading a split, and the featurizers (bag of n-grams, ids, lexicon features);
- :mod:`.evaluate`: loss, accuracy, macro-F1 of a model on a split;
- :mod:`.explain`: what `ffnlp explain dead` and `collapse` show of a run;
- :mod:`.pretrained`: word vectors from a file into the pooled classifier's table;
- :mod:`.result`: :class:`Classifier`, the trained object (predict, test, save, load);
- :mod:`.train`: the recipe, :func:`train_classifier`.
"""

from __future__ import annotations

from ffnlp.tasks.classify.config import (
    ClassifyConfig,
    DataConfig,
    FeaturesConfig,
    LossConfig,
    ModelConfig,
    resolve_config,
)
from ffnlp.tasks.classify.data import read_split
from ffnlp.tasks.classify.result import Classifier, load
from ffnlp.tasks.classify.train import train_classifier

__all__ = [
    "SPEC",
    "ClassifyConfig",
    "Classifier",
    "DataConfig",
    "FeaturesConfig",
    "LossConfig",
    "ModelConfig",
    "load",
    "read_split",
    "resolve_config",
    "train_classifier",
]
from ffnlp.tasks.classify.spec import SPEC  # registers the task (last: it names the above)
