"""ffnlp: feed-forward neural networks for NLP with PyTorch.

The public API, one function per task and one loader:

- :func:`train_classifier` -> a :class:`Classifier` (``predict(texts, k=1)``, ``predict_proba``,
  ``test(path)``, ``save``);
- :func:`train_lm` -> a :class:`LanguageModel` (feed-forward or Kneser-Ney: ``perplexity``,
  ``generate``);
- :func:`train_word2vec` -> a :class:`Word2VecRun` (``most_similar``, ``evaluate``, ``export``);
- :func:`load` -> whichever of the three a run directory holds;
- ``TextClassifier``: a scikit-learn estimator;
- the errors ffnlp raises: :class:`FfnlpError` and its subclasses.

Importing ``ffnlp`` is cheap: the names above are the real functions and classes of
``ffnlp.tasks.*``, imported (with PyTorch) the first time one is used.
"""

from __future__ import annotations

import importlib
import os as _os
import sys as _sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# OpenMP threads that wait for work sleep at once instead of spinning on their core (which, on a
# machine shared with other work, takes the core from whoever else needs it). OpenMP reads this
# when torch loads it, so it is set here, before ffnlp imports torch, and only when the user has
# not chosen: OMP_WAIT_POLICY=ACTIVE (or anything else) in the environment wins.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ffnlp.errors import (
    ConfigError,
    DataError,
    FfnlpError,
    Interrupted,
    ModelFileError,
    NotFittedError,
    OutputError,
    TrainingError,
)

if TYPE_CHECKING:  # the type checker sees the real signatures; at run time __getattr__ loads them
    from ffnlp.sklearn import TextClassifier
    from ffnlp.tasks.classify import Classifier, train_classifier
    from ffnlp.tasks.lm import LanguageModel, train_lm
    from ffnlp.tasks.w2v import Word2VecRun, train_word2vec

from ffnlp.version import __version__  # noqa: E402

__all__ = [
    "Classifier",
    "ConfigError",
    "DataError",
    "FfnlpError",
    "Interrupted",
    "LanguageModel",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
    "TextClassifier",
    "TrainingError",
    "Word2VecRun",
    "__version__",
    "load",
    "train_classifier",
    "train_lm",
    "train_word2vec",
]

# public name -> the module that defines it (imported on first use)
_LAZY = {
    "train_classifier": "ffnlp.tasks.classify",
    "Classifier": "ffnlp.tasks.classify",
    "train_lm": "ffnlp.tasks.lm",
    "LanguageModel": "ffnlp.tasks.lm",
    "train_word2vec": "ffnlp.tasks.w2v",
    "Word2VecRun": "ffnlp.tasks.w2v",
    "TextClassifier": "ffnlp.sklearn",  # and scikit-learn only when asked for
}


def load(run_dir: str | Path) -> Classifier | LanguageModel | Word2VecRun:
    """The trained object a run directory holds: a :class:`Classifier`, a
    :class:`LanguageModel` or a :class:`Word2VecRun`, told by the task named in its model.json.
    A file (not a folder) is read as an ARPA n-gram model: a :class:`LanguageModel`.

    >>> clf = ffnlp.load("runs/sst2_logreg")          # doctest: +SKIP
    >>> clf.predict("a gripping , funny film")        # doctest: +SKIP
    """
    from ffnlp.folders.folder import read_arch, run_path
    from ffnlp.tasks import registry

    run_dir = run_path(run_dir)
    if run_dir.is_file():
        from ffnlp.tasks.lm import load as load_lm

        return load_lm(run_dir)

    task = read_arch(run_dir)["task"]
    spec = registry.find(task)  # model.json's "task" -> what loads such a run
    if spec is None:
        raise ModelFileError(
            f"{run_dir}: unknown task {task!r} in model.json (written by a newer ffnlp?)"
        )
    result: Classifier | LanguageModel | Word2VecRun = spec.load(run_dir)
    return result


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'ffnlp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
