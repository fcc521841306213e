"""The trained classifier: predict, test, save, load (what ``train_classifier`` and ``load`` return).

A run directory holds ``config.toml`` (the resolved configuration), ``vocab.json`` (the labels,
the fitted featurizer's state and, for a multi-label run with tuned thresholds, one threshold per
label), ``model.safetensors`` + ``model.json`` (weights, and the constructor arguments that
rebuild the model) and ``summary.json``.

A multi-label classifier (its model's head is a
:class:`~ffnlp.models.heads.MultiLabelHead`) gives independent label probabilities: ``predict``
returns every label among the top k whose probability reaches the threshold, possibly none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast, overload

import numpy as np
import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.fileio import write_atomic
from ffnlp.models.io import load_model, save_model
from ffnlp.models.protocols import as_classifier, head_of
from ffnlp.tasks.classify.config import ClassifyConfig, resolve_config
from ffnlp.tasks.classify.data import Featurizer, make_featurizer, multi_hot, read_split
from ffnlp.tasks.classify.evaluate import make_evaluator
from ffnlp.text.readers import LabeledData
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab
from ffnlp.training.data import BatchSource

Prediction = list[tuple[str, float]]  # (label, probability) pairs, most probable first
LabelsOfText = str | Sequence[str]  # one label, or a multi-label example's labels


class Classifier:
    """A trained text classifier: predict, test, save; what ``train_classifier`` and ``load`` return."""

    def __init__(
        self,
        config: ClassifyConfig,
        labels: LabelVocab,
        featurizer: Featurizer,
        model: nn.Module,
        model_args: dict[str, Any],
        run_dir: Path | None = None,
        summary: dict[str, Any] | None = None,
        thresholds: Sequence[float] | None = None,
    ):
        self.config = config
        self.labels = labels
        self.featurizer = featurizer
        self.model = model.eval()
        self.model_args = model_args
        self.run_dir = run_dir
        self.summary = summary or {}
        self.tokenizer = Tokenizer(config.data.tokenizer, lowercase=config.data.lowercase)
        head = head_of(as_classifier(self.model))
        self.multilabel: bool = bool(getattr(head, "multilabel", False))
        # multi-label, task.tune_thresholds: one decision threshold per label (tuned on dev)
        self.thresholds: list[float] | None = list(thresholds) if thresholds is not None else None
        if self.thresholds is not None and len(self.thresholds) != len(labels):
            raise ModelFileError(
                f"{len(self.thresholds)} thresholds for {len(labels)} labels; the run is corrupted"
            )

    def decision_thresholds(self, threshold: float | None = None) -> np.ndarray:
        """(K,) the probability each label needs to be predicted: ``threshold`` when given;
        else the run's own (multi-label: the tuned per-label thresholds, or task.threshold;
        single-label: 0, every label of the top k)."""
        k = len(self.labels)
        if threshold is not None:
            check_threshold(threshold)
            return np.full(k, threshold, dtype=np.float64)
        if not self.multilabel:
            return np.zeros(k, dtype=np.float64)
        if self.thresholds is not None:
            return np.asarray(self.thresholds, dtype=np.float64)
        return np.full(k, self.config.task.threshold, dtype=np.float64)

    # -- prediction
    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``self.labels.labels``; for a
        multi-label classifier each label's own probability (a row need not sum to 1)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        source = self.source(texts)
        self.model.eval()
        classifier = as_classifier(self.model)
        head = head_of(classifier)
        out = [head.probabilities(classifier.logits(batch)) for batch in source.batches(4096, None)]
        return torch.cat(out).numpy()

    @overload
    def predict(
        self, texts: str, k: int = 1, threshold: float | None = None
    ) -> Prediction: ...

    @overload
    def predict(
        self, texts: list[str] | tuple[str, ...], k: int = 1, threshold: float | None = None
    ) -> list[Prediction]: ...

    def predict(
        self, texts: str | Sequence[str], k: int = 1, threshold: float | None = None
    ) -> Prediction | list[Prediction]:
        """Top-k (label, probability) pairs per text, most probable first, those >= threshold.

        ``k = -1`` considers every label. ``threshold`` (0..1) defaults to the run's: 0 for a
        single-label classifier (always k labels); for a multi-label one task.threshold, or the
        per-label thresholds tuned on dev, so a text may get no label at all. A single string
        gives one list; a list of strings gives a list of lists.
        """
        if k < 1 and k != -1:
            raise ConfigError(f"k must be at least 1 (or -1 for every label); got {k}")
        cut = self.decision_thresholds(threshold)
        batch = [texts] if isinstance(texts, str) else list(texts)
        probs = self.predict_proba(batch)
        k = probs.shape[1] if k == -1 else min(k, probs.shape[1])
        results = []
        for row in probs:
            top = np.argsort(-row, kind="stable")[:k]
            results.append(
                [(self.labels.labels[i], float(row[i])) for i in top if row[i] >= cut[i]]
            )
        return results[0] if isinstance(texts, str) else results

    def test(self, path: str | Path, **read_options: Any) -> dict[str, Any]:
        """Metrics on a labelled file: accuracy, macro_f1, per-class P/R/F1, confusion, loss;
        multi-label: P@1/R@1/P@5/R@5 (as ``fasttext test``), micro/macro F1 at the run's
        thresholds, per-label P/R/F1, loss."""
        data = read_split(path, self.config, **read_options)
        return self.evaluate(data)

    def evaluate(self, data: LabeledData) -> dict[str, Any]:
        """Metrics on labelled data already read (see :meth:`test`).

        Multi-label: gold labels the classifier does not know are left out and counted
        (``unseen_labels``), and an example left with none is left out of the figures
        (``examples`` counts those kept), as ``fasttext test`` does."""
        if not self.multilabel:
            if data.multilabel:
                raise DataError(
                    f"{data.path} has examples with several labels (or label lists), but this "
                    "classifier was trained on single-label data (one label per example)"
                )
            source = self.source(data.texts, data.labels)
            return make_evaluator(self.labels.labels, full=True)(self.model, source)
        y, unseen = multi_hot(data.label_lists(), self.labels)  # (N, K)
        source = self.featurizer.source(self.tokenizer.tokenize_all(data.texts), data.texts, y)
        cut = torch.from_numpy(self.decision_thresholds())
        evaluate = make_evaluator(self.labels.labels, full=True, multilabel=True, threshold=cut)
        metrics = evaluate(self.model, source)
        metrics["unseen_labels"] = unseen
        return metrics

    def source(
        self, texts: list[str], labels: Sequence[LabelsOfText] | None = None
    ) -> BatchSource:
        """``texts`` tokenised and featurised as the model reads them, with ``labels`` (an
        unknown one is a DataError; multi-label: each text's labels, unknown ones left out) or,
        without them, label 0 (multi-label: no label) for every text."""
        y: torch.Tensor
        if self.multilabel:
            sets = [(x,) if isinstance(x, str) else tuple(x) for x in labels or [()] * len(texts)]
            y = multi_hot(sets, self.labels)[0]  # (N, K)
        elif labels is not None:
            y = torch.tensor(self.labels.encode(cast(Sequence[str], labels)), dtype=torch.long)
        else:
            y = torch.zeros(len(texts), dtype=torch.long)
        return self.featurizer.source(self.tokenizer.tokenize_all(texts), texts, y)

    # -- persistence
    def save(self, run_dir: str | Path) -> Path:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfgmod.save_toml(self.config, run_dir / "config.toml")
        vocab: dict[str, Any] = {
            "labels": self.labels.to_dict(),
            "features": self.featurizer.to_dict(),
        }
        if self.thresholds is not None:
            vocab["thresholds"] = self.thresholds
        write_atomic(run_dir / "vocab.json", json.dumps(vocab), within=run_dir)
        save_model(self.model, run_dir, "classify", self.model_args)
        self.run_dir = run_dir
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> Classifier:
        run_dir = Path(run_dir)
        model, arch = load_model(run_dir)
        if arch["task"] != "classify":
            raise ModelFileError(f"{run_dir} holds a {arch['task']} model, not a classifier")
        try:
            config = resolve_config(run_dir / "config.toml")
            vocab = json.loads((run_dir / "vocab.json").read_text(encoding="utf-8"))
            labels = LabelVocab.from_dict(vocab["labels"])
            featurizer = make_featurizer(config, vocab["features"])
            thresholds = vocab.get("thresholds")
        except FileNotFoundError as exc:
            raise ModelFileError(
                f"{run_dir} is incomplete: {Path(exc.filename).name} is missing"
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{run_dir / 'vocab.json'} is corrupted ({exc})") from None
        if thresholds is not None and not (
            isinstance(thresholds, list)
            and all(isinstance(t, (int, float)) and 0 <= t <= 1 for t in thresholds)
        ):
            raise ModelFileError(
                f"{run_dir / 'vocab.json'} is corrupted (thresholds must be a list of "
                "probabilities, one per label)"
            )
        as_classifier(model)  # a model.json of another kind of model says so here, not at predict
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        return cls(config, labels, featurizer, model, arch["args"], run_dir, summary, thresholds)


def check_threshold(threshold: float) -> None:
    """A decision threshold is a probability: ConfigError unless 0 <= threshold <= 1."""
    if not 0.0 <= threshold <= 1.0:  # NaN fails both comparisons
        raise ConfigError(
            f"threshold must be a probability between 0 and 1; got {threshold} (labels whose "
            "probability is at least the threshold are returned)"
        )


def load(run_dir: str | Path) -> Classifier:
    """Load a trained classifier from its run directory."""
    return Classifier.load(run_dir)
