"""ffnlp: feed-forward neural networks for NLP with PyTorch.

The public API:

- ``train_classifier(train, dev=None, test=None, config=None, overrides=(), out=None, seed=None)``
  -> a trained :class:`Classifier` with ``predict(texts, k=1)``, ``predict_proba``, ``test(path)``;
- ``train_lm(...)`` (feed-forward LM or Kneser-Ney) and ``train_word2vec(...)`` (skip-gram);
- ``load(run_dir)`` -> the model saved in a run directory (classifier, LM or word vectors);
- ``TextClassifier``: a scikit-learn estimator (``from ffnlp import TextClassifier``);
- the errors ffnlp raises: ``FfnlpError`` and its subclasses.
"""

from __future__ import annotations

from typing import Any

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

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataError", "FfnlpError", "Interrupted", "ModelFileError", "NotFittedError",
    "OutputError", "TrainingError",
    "TextClassifier", "__version__", "load", "train_classifier", "train_lm", "train_word2vec",
]


def train_classifier(*args: Any, **kwargs: Any) -> Any:
    """Train a text classifier; see :func:`ffnlp.tasks.classify.train_classifier`."""
    from ffnlp.tasks.classify import train_classifier as _train
    from ffnlp.tasks.run import run_recipe

    # a transaction on its run folder (a no-op wrapping once the recipe carries @run_recipe)
    return run_recipe(_train)(*args, **kwargs)


def train_lm(*args: Any, **kwargs: Any) -> Any:
    """Train a feed-forward LM or fit Kneser-Ney; see :func:`ffnlp.tasks.lm.train_lm`."""
    from ffnlp.tasks.lm import train_lm as _train

    return _train(*args, **kwargs)


def train_word2vec(*args: Any, **kwargs: Any) -> Any:
    """Train skip-gram/CBOW word vectors; see :func:`ffnlp.tasks.w2v.train_word2vec`."""
    from ffnlp.tasks.w2v import train_word2vec as _train

    return _train(*args, **kwargs)


def load(run_dir: Any) -> Any:
    """Load the model of a run directory (classifier, language model or word vectors)."""
    from ffnlp.models.io import read_arch

    task = read_arch(run_dir)["task"]
    if task == "classify":
        from ffnlp.tasks.classify import load as load_classifier

        return load_classifier(run_dir)
    if task == "lm":
        from ffnlp.tasks.lm import load as load_language_model

        return load_language_model(run_dir)
    if task == "w2v":
        from ffnlp.tasks.w2v import load as load_w2v

        return load_w2v(run_dir)
    raise ModelFileError(f"{run_dir}: unknown task {task!r} in model.json (written by a newer ffnlp?)")


def __getattr__(name: str) -> Any:
    if name == "TextClassifier":  # imports scikit-learn only when asked for
        from ffnlp.sklearn import TextClassifier

        return TextClassifier
    raise AttributeError(f"module 'ffnlp' has no attribute {name!r}")
