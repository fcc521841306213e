"""ffnlp: feed-forward neural networks for NLP with PyTorch.

The public API:

- ``train_classifier(train, dev=None, test=None, config=None, overrides=(), out=None, seed=None)``
  -> a trained :class:`Classifier` with ``predict(texts, k=1)``, ``predict_proba``, ``test(path)``;
- ``load(run_dir)`` -> the model saved in a run directory;
- ``TextClassifier``: a scikit-learn estimator (``from ffnlp import TextClassifier``);
- the errors ffnlp raises: ``FfnlpError`` and its subclasses.
"""

from __future__ import annotations

from typing import Any

from ffnlp.errors import (
    ConfigError,
    DataError,
    FfnlpError,
    ModelFileError,
    NotFittedError,
    TrainingError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataError", "FfnlpError", "ModelFileError", "NotFittedError", "TrainingError",
    "TextClassifier", "__version__", "load", "train_classifier",
]


def train_classifier(*args: Any, **kwargs: Any) -> Any:
    """Train a text classifier; see :func:`ffnlp.tasks.classify.train_classifier`."""
    from ffnlp.tasks.classify import train_classifier as _train

    return _train(*args, **kwargs)


def load(run_dir: Any) -> Any:
    """Load the model of a run directory (classifier, language model or word vectors)."""
    from ffnlp.models.io import read_arch

    task = read_arch(run_dir)["task"]
    if task == "classify":
        from ffnlp.tasks.classify import load as _load
    elif task == "lm":
        from ffnlp.tasks.lm import load as _load  # type: ignore[no-redef]
    elif task == "w2v":
        from ffnlp.tasks.w2v import load as _load  # type: ignore[no-redef]
    else:  # pragma: no cover - written by a newer ffnlp
        raise ModelFileError(f"{run_dir}: unknown task {task!r} in model.json")
    return _load(run_dir)


def __getattr__(name: str) -> Any:
    if name == "TextClassifier":  # imports scikit-learn only when asked for
        from ffnlp.sklearn import TextClassifier

        return TextClassifier
    raise AttributeError(f"module 'ffnlp' has no attribute {name!r}")
