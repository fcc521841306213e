"""A scikit-learn estimator over ffnlp's text classifiers: ``TextClassifier``.

``__init__`` only stores its arguments; ``fit`` does the work and sets the learned state (names
ending in ``_``); ``clone``, ``cross_val_score``, ``GridSearchCV`` and ``Pipeline`` work::

    from sklearn.model_selection import GridSearchCV
    from ffnlp.sklearn import TextClassifier

    search = GridSearchCV(TextClassifier(epochs=5), {"dim": [50, 100], "word_dropout": [0.0, 0.2]}, cv=5)
    search.fit(texts, labels)          # texts: list of str; labels: any hashable values

Every option of the classify configuration is reachable: the common ones are parameters here, the
rest go through ``config`` (a TOML path or dict) and ``overrides`` (settings: a dict such as
``{"features.buckets": 1000}``, or ``"section.key=value"`` strings), applied in that order (config
file, then these parameters, then overrides).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ffnlp import config as cfgmod
from ffnlp.errors import DataError
from ffnlp.params import check_bool, check_int, check_number, check_str, fail


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Text in, labels out: logistic regression, an MLP over n-grams, or a pooled-embedding network.

    Parameters
    ----------
    model : "pooled" (DAN / fastText family), "mlp" (feed-forward over tf-idf n-grams) or "logreg".
    ngrams : largest word n-gram order (1 = words only).
    dim : embedding dimension (pooled).
    hidden : sizes of the hidden layers ([] = none).
    activation, dropout, word_dropout, pooling : see [model.mlp] and [model.pooled].
    minn, maxn : character n-grams of lengths minn..maxn of each word added to its bag (pooled;
        maxn = 0: none), as fastText's -minn / -maxn: misspelt and unseen words get vectors.
    optimizer, lr, epochs, batch_size : see [train].
    validation_fraction : share of the training data held out (stratified) for early stopping on
        its accuracy; 0 trains for ``epochs`` and keeps the last weights.
    lowercase : lowercase the texts; tokenizer : "regex" (words and punctuation) or "whitespace".
    seed, threads : reproducibility and CPU threads ("auto": 1 for small models, all physical
        cores for large matrix products; 0 = all cores).
    config : a TOML path or a dict with the full configuration to start from.
    overrides : settings applied last: a dict of dotted keys and values
        (``{"train.l2": 1e-4}``) or "section.key=value" strings (``["train.l2=1e-4"]``).
    """

    def __init__(
        self,
        model: str = "pooled",
        ngrams: int = 2,
        dim: int = 100,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        word_dropout: float = 0.0,
        pooling: str = "mean",
        minn: int = 3,
        maxn: int = 0,
        optimizer: str = "adam",
        lr: float = 0.005,
        epochs: int = 5,
        batch_size: int = 32,
        validation_fraction: float = 0.0,
        lowercase: bool = False,
        tokenizer: str = "regex",
        seed: int = 13,
        threads: int | str = "auto",
        config: Any = None,
        overrides: Mapping[str, Any] | Sequence[str] = (),
    ) -> None:
        self.model = model
        self.ngrams = ngrams
        self.dim = dim
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.pooling = pooling
        self.minn = minn
        self.maxn = maxn
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.lowercase = lowercase
        self.tokenizer = tokenizer
        self.seed = seed
        self.threads = threads
        self.config = config
        self.overrides = overrides

    # ------------------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        from ffnlp.models.registry import specs

        features = {s.name: s.features[0] for s in specs() if s.is_classifier}
        self._check_parameters(tuple(features))
        sets = {
            "data.tokenizer": self.tokenizer,
            "data.lowercase": self.lowercase,
            "model.type": self.model,
            "features.kind": features[self.model],  # the kind the model type reads first
            "features.ngram_range": [1, int(self.ngrams)],
            "model.mlp.hidden": [int(h) for h in self.hidden],
            "model.mlp.activation": self.activation,
            "model.mlp.dropout": float(self.dropout),
            "train.optimizer": self.optimizer,
            "train.lr": float(self.lr),
            "train.epochs": int(self.epochs),
            "train.batch_size": int(self.batch_size),
            "train.seed": int(self.seed),
            "train.threads": self.threads if self.threads == "auto" else int(self.threads),
            "train.checkpoint": False,
            "train.monitor": "dev.accuracy",
            "train.early_stopping": self.validation_fraction > 0,
        }
        if self.model == "pooled":
            sets.update(
                {
                    "model.pooled.dim": int(self.dim),
                    "model.pooled.word_dropout": float(self.word_dropout),
                    "model.pooled.pooling": self.pooling,
                    "features.minn": int(self.minn),
                    "features.maxn": int(self.maxn),
                    "train.sparse": self.pooling in ("mean", "sum")
                    and self.optimizer in ("adam", "sgd", "adagrad"),
                }
            )
        return cfgmod.merge(sets, cfgmod.settings_of(self.overrides, "overrides", "TextClassifier"))

    def _check_parameters(self, models: tuple[str, ...]) -> None:
        """Each parameter of the right type and range (a ConfigError naming it otherwise), as
        scikit-learn estimators check theirs when ``fit`` starts; the values themselves are
        checked again with the configuration they become."""
        owner = "TextClassifier"
        check_str(self.model, "model", owner, choices=models)
        for name in ("ngrams", "dim", "epochs", "batch_size"):
            check_int(getattr(self, name), name, owner, ge=1)
        for name in ("minn", "maxn", "seed"):
            check_int(getattr(self, name), name, owner, ge=0)
        for name in ("dropout", "word_dropout"):
            check_number(getattr(self, name), name, owner, ge=0, le=1)
        check_number(self.lr, "lr", owner, gt=0)
        check_number(
            self.validation_fraction,
            "validation_fraction",
            owner,
            ge=0,
            lt=1,
        )
        check_bool(self.lowercase, "lowercase", owner)
        for name in ("activation", "pooling", "optimizer", "tokenizer"):
            check_str(getattr(self, name), name, owner)
        hidden = self.hidden
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Iterable):
            raise fail("hidden", owner, "a list of layer sizes (ints >= 1)", hidden)
        for size in hidden:
            check_int(size, "hidden", owner, ge=1, must="a list of layer sizes (ints >= 1)")
        if self.threads != "auto":
            check_int(self.threads, "threads", owner, ge=0, must='an int >= 0 or "auto"')

    def fit(self, X: Sequence[str], y: Sequence[Any]) -> TextClassifier:
        from ffnlp.experiments.cv import split_off, subset
        from ffnlp.tasks.classify import train_classifier
        from ffnlp.text.readers import LabeledData

        settings = self._settings()  # the parameters checked before anything is done
        texts = _texts(X)
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(texts):
            raise ValueError(
                f"y must be one label per text: got {y_arr.shape} labels for {len(texts)} texts"
            )
        self.classes_ = np.unique(y_arr)
        if len(self.classes_) < 2:
            raise DataError(
                f"every training example has the label {self.classes_[0]!r}; a classifier needs at least two classes"
            )
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        codes = [str(index[v]) for v in y_arr.tolist()]  # labels travel as strings: "0", "1", ...
        data = LabeledData(texts=texts, labels=codes, path=_InMemory())  # type: ignore[arg-type]
        dev = None
        if self.validation_fraction > 0:
            rest, held = split_off(
                codes, np.arange(len(codes)), self.validation_fraction, self.seed
            )
            data, dev = subset(data, rest), subset(data, held)
        with tempfile.TemporaryDirectory(prefix="ffnlp-sklearn-") as tmp:
            clf = train_classifier(data, dev=dev, config=self.config, overrides=settings, out=tmp)
        self.classifier_ = clf
        # columns of the ffnlp model (its label order) -> positions in classes_
        self.column_order_ = np.asarray(
            [clf.labels.labels.index(str(i)) for i in range(len(self.classes_))]
        )
        self.n_features_in_ = 1
        self.history_ = clf.summary
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """(n, n_classes) probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict_proba(_texts(X))[:, self.column_order_]

    def predict(self, X: Sequence[str]) -> np.ndarray:
        probs = self.predict_proba(X)  # raises NotFittedError before fit
        return self.classes_[probs.argmax(axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


class _InMemory(str):
    """The 'path' of data that never was a file (shown in messages)."""

    def __new__(cls) -> _InMemory:
        return super().__new__(cls, "<in-memory texts>")


def _texts(X: Any) -> list[str]:
    if isinstance(X, str):
        raise ValueError("X must be a sequence of texts, not one string; wrap it in a list")
    texts = list(X)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"X must hold strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return texts
