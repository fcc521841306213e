"""The trained classifier: predict, test, save, load (what ``train_classifier`` and ``load`` return).

A run directory holds ``config.toml`` (the resolved configuration), ``vocab.json`` (the labels,
the fitted featurizer's state and, for a multi-label run with tuned thresholds, one threshold per
label), ``model.safetensors`` + ``model.json`` (weights, and the constructor arguments that
rebuild the model) and ``summary.json``; a run trained with test data also ``predictions.jsonl``
(see :mod:`ffnlp.tasks.classify.predictions`); a bag-of-n-grams run also ``vocab.safetensors``,
its n-gram features as arrays for predict's quick start (:mod:`ffnlp.features.ngram_file`).

A multi-label classifier (its model's head is a
:class:`~ffnlp.models.heads.MultiLabelHead`) gives independent label probabilities: ``predict``
returns every label among the top k whose probability reaches the threshold, possibly none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import ConfigError, DataError, FfnlpError, ModelFileError
from ffnlp.features import ngram_file
from ffnlp.features.fast import IdRows, NgramRows
from ffnlp.fileio import write_atomic
from ffnlp.folders.folder import read_arch, read_json, read_summary, run_path, write_config
from ffnlp.folders.layout import VOCAB
from ffnlp.models import numpy_forward, registry
from ffnlp.models.heads import ClassifierInputs
from ffnlp.models.io import load_model, save_model
from ffnlp.models.protocols import as_classifier, head_of
from ffnlp.outputs import check_output_dir
from ffnlp.params import check_int, check_number, check_path
from ffnlp.tasks import fastpredict
from ffnlp.tasks.classify.config import ClassifyConfig, resolve_config
from ffnlp.tasks.classify.data import (
    Featurizer,
    IdsFeaturizer,
    check_known_labels,
    make_featurizer,
    multi_hot,
    read_split,
)
from ffnlp.tasks.classify.evaluate import make_evaluator
from ffnlp.tasks.classify.represent import batched, represent, resolve_layer
from ffnlp.tasks.fastpredict import FastClassifier, check_threshold
from ffnlp.tasks.runfolder import expect_task, read_config
from ffnlp.text.readers import LabeledData
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab
from ffnlp.training.data import BatchSource

Prediction = list[tuple[str, float]]  # (label, probability) pairs, most probable first
LabelsOfText = str | Sequence[str]  # one label, or a multi-label example's labels
# the model classes the NumPy path computes (exactly these classes), and their model.json type
_FAST_MODELS = {
    "LogisticRegression": "logreg",
    "FeatureMLP": "mlp",
    "PooledEmbeddingClassifier": "pooled",
}


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
        self._fast_rows: tuple[tuple[int, int], NgramRows | IdRows | None] | None = None
        self._fast_forward: tuple[tuple[Any, ...], FastClassifier | None] | None = None
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
    def fast_path(self) -> FastClassifier | None:
        """This classifier on the NumPy path (:mod:`ffnlp.tasks.fastpredict`), or ``None`` where
        that path does not cover it or is turned off (``FFNLP_FAST_PREDICT=0``). The network's
        arrays are views of the model's tensors, taken again whenever a tensor is replaced or
        changed in place, so that a model whose weights change (or are swapped for
        memory-mapped ones by ``ffnlp serve``) is predicted with the weights it has."""
        if not fastpredict.enabled():
            return None
        key = (id(self.featurizer), self.featurizer.input_size)
        if self._fast_rows is None or self._fast_rows[0] != key:
            rows = None
            state = self.featurizer.to_dict()
            if _fast_members(self.model) is not None:
                rows = fastpredict.feature_rows(
                    self.config.features.kind, state, getattr(self.featurizer, "max_n", 1)
                )
            self._fast_rows = (key, rows)
        rows = self._fast_rows[1]
        if rows is None or self.model.training:
            return None
        # the same tensors, unchanged since (their version counts in-place changes) and the same
        # featuriser: the same FastClassifier, with what its forward made on first use
        # (sst2_pooled: the projected table)
        weights_key = (id(rows), id(self.tokenizer), id(self.labels), *_tensor_state(self.model))
        if self._fast_forward is not None and self._fast_forward[0] == weights_key:
            return self._fast_forward[1]
        members = _fast_members(self.model)
        if members is None or any(
            v.device.type != "cpu" for m in members for v in m.state_dict().values()
        ):
            return None
        head = head_of(as_classifier(self.model))
        args = self.model_args if len(members) == 1 and members[0] is self.model else None
        forwards = [
            numpy_forward.build(
                _FAST_MODELS[type(member).__name__],
                {k: v.detach().numpy() for k, v in member.state_dict().items()},
                args if args is not None else getattr(self.model, "member_args", {}),
                int(getattr(head, "num_classes", len(self.labels))),
                self.multilabel,
            )
            for member in members
        ]
        fast = None
        if all(f is not None for f in forwards):
            built = [f for f in forwards if f is not None]
            for forward in built:
                # PyTorch's import took longer than SciPy's: its sparse product from two texts
                # on, and the compiled loops (ffnlp.jit; Numba's import is paid once, on use)
                forward.sparse_from = 0
                forward.compiled = True
            rows.compiled = True
            fast = fastpredict.FastClassifier(
                self.tokenizer,
                rows,
                built[0],
                self.labels.labels,
                self.multilabel,
                self.thresholds,
                self.config.task.threshold,
                more=built[1:],
            )
            if not fast.fits():
                fast = None
        self._fast_forward = (weights_key, fast)
        return fast

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``self.labels.labels``; for a
        multi-label classifier each label's own probability (a row need not sum to 1)."""
        return self._probabilities(as_texts(texts))

    def _probabilities(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        fast = self.fast_path()
        if fast is not None:
            return fast.predict_proba(texts)
        self.model.eval()
        classifier = as_classifier(self.model)
        head = head_of(classifier)
        with torch.no_grad():  # (the NumPy path above needs no such switch)
            source = self.source(texts)
            out = [
                head.probabilities(classifier.logits(batch)) for batch in source.batches(4096, None)
            ]
        return torch.cat(out).numpy()

    @overload
    def predict(self, texts: str, k: int = 1, threshold: float | None = None) -> Prediction: ...

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
        k = check_int(
            k,
            "k",
            "Classifier.predict",
            ge=1,
            also=(-1,),
            must="an int >= 1 (or -1 for every label)",
        )
        if threshold is not None:
            threshold = check_number(
                threshold,
                "threshold",
                "Classifier.predict",
                ge=0,
                le=1,
                must="a number from 0 to 1 or None",
            )
        cut = self.decision_thresholds(threshold)
        batch = as_texts(texts)
        probs = self._probabilities(batch)
        if fastpredict.enabled():  # the same choice as a loop over the rows, with array operations
            results = fastpredict.top_k(probs, self.labels.labels, k, cut)
        else:
            k = probs.shape[1] if k == -1 else min(k, probs.shape[1])
            results = []
            for row in probs:
                top = np.argsort(-row, kind="stable")[:k]
                results.append(
                    [(self.labels.labels[i], float(row[i])) for i in top if row[i] >= cut[i]]
                )
        return results[0] if isinstance(texts, str) else results

    def predict_stream(
        self,
        texts: Iterable[str],
        k: int = 1,
        threshold: float | None = None,
        batch_size: int = 1000,
    ) -> Iterator[tuple[str, Prediction]]:
        """``(text, prediction)`` for every text of a stream (a file, standard input, a generator),
        read and predicted ``batch_size`` texts at a time: the memory used is that of one batch,
        whatever the stream's length, and the first answers come before the stream ends."""
        batch_size = check_int(batch_size, "batch_size", "Classifier.predict_stream", ge=1)
        for batch in batched(_stream(texts), batch_size):
            yield from zip(batch, self.predict(batch, k=k, threshold=threshold), strict=True)

    # -- representations
    def vectors(self, texts: str | Sequence[str], layer: str = "auto") -> np.ndarray:
        """The representation of each text inside the model, (N, D) float32: ``pooled`` (the
        pooled embedding of a pooled classifier) or ``hidden`` (the last hidden layer, the input
        of the output layer); ``auto`` picks ``pooled`` when the model pools. Like fastText's
        ``print-sentence-vectors``. See :mod:`ffnlp.tasks.classify.represent`."""
        layer = resolve_layer(self.model, layer)
        batch = as_texts(texts)
        source = self.source(batch)
        parts = [represent(self.model, b, layer) for b in source.batches(4096, None)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, 0), dtype=np.float32)

    def vectors_stream(
        self, texts: Iterable[str], layer: str = "auto", batch_size: int = 1000
    ) -> Iterator[tuple[str, np.ndarray]]:
        """``(text, vector)`` for every text of a stream, ``batch_size`` texts at a time."""
        batch_size = check_int(batch_size, "batch_size", "Classifier.vectors_stream", ge=1)
        layer = resolve_layer(self.model, layer)
        for batch in batched(_stream(texts), batch_size):
            yield from zip(batch, self.vectors(batch, layer), strict=True)

    def word_vectors(self, words: str | Sequence[str]) -> np.ndarray:
        """(N, D) float32: each word's vector in a pooled classifier's embedding table, the mean
        of the word's rows there: its own row when the training vocabulary has it and, with
        subwords (features.maxn > 0), the rows of its character n-grams, so a rare, misspelled
        or unseen word gets a vector too (fastText's ``get_word_vector``). A word with no row
        (outside the vocabulary, without subwords) gets zeros, as in fastText. Words are looked
        up as they are given (lowercased when data.lowercase is on), not tokenised."""
        words = as_texts(words)
        table = self._embedding_table()
        if self.tokenizer.lowercase:
            words = [w.lower() for w in words]
        featurizer = cast(IdsFeaturizer, self.featurizer)
        bags = featurizer.word_bags(words)
        with torch.no_grad():
            out = F.embedding_bag(bags.ids, table, bags.offsets, mode="mean")  # (N, D)
        return out.numpy()

    def word_vectors_stream(
        self, words: Iterable[str], batch_size: int = 1000
    ) -> Iterator[tuple[str, np.ndarray]]:
        """``(word, vector)`` for every word of a stream, ``batch_size`` words at a time."""
        batch_size = check_int(batch_size, "batch_size", "Classifier.word_vectors_stream", ge=1)
        self._embedding_table()  # a model without one says so before the stream is read
        for batch in batched(_stream(words), batch_size):
            yield from zip(batch, self.word_vectors(batch), strict=True)

    def word_vector(self, word: str) -> np.ndarray:
        """(D,) float32: one word's vector (see :meth:`word_vectors`)."""
        if not isinstance(word, str):
            raise DataError(f"word must be a string; got {type(word).__name__} ({_shown(word)})")
        return self.word_vectors([word])[0]

    def _embedding_table(self) -> torch.Tensor:
        """The (rows, D) id table of a pooled classifier over ``features.kind = "ids"``."""
        embedding = getattr(self.model, "embedding", None)
        if not isinstance(self.featurizer, IdsFeaturizer) or not isinstance(
            embedding, nn.EmbeddingBag
        ):
            raise ConfigError(
                "word vectors come from the embedding table of a pooled classifier "
                f'(model.type = "pooled", features.kind = "ids"); this run\'s model is a '
                f"{type(self.model).__name__} over features.kind = "
                f"{self.config.features.kind!r}"
            )
        return embedding.weight.detach()

    def test(self, path: str | Path, **read_options: Any) -> dict[str, Any]:
        """Metrics on a labelled file: accuracy, macro_f1, per-class P/R/F1, confusion, loss;
        multi-label: P@1/R@1/P@5/R@5 (as ``fasttext test``), micro/macro F1 at the run's
        thresholds, per-label P/R/F1, loss."""
        check_path(path, "path", "Classifier.test")
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
            check_known_labels(data, self.labels, f"the model {self.run_dir or ''}".rstrip())
            source = self.source(data.texts, data.labels)
            return make_evaluator(self.labels.labels, full=True)(self.model, source)
        y, unseen = multi_hot(data.label_lists(), self.labels)  # (N, K)
        source = self.featurizer.source(self.tokenizer.tokenize_all(data.texts), data.texts, y)
        cut = torch.from_numpy(self.decision_thresholds())
        evaluate = make_evaluator(self.labels.labels, full=True, multilabel=True, threshold=cut)
        metrics = evaluate(self.model, source)
        metrics["unseen_labels"] = unseen
        return metrics

    def source(self, texts: list[str], labels: Sequence[LabelsOfText] | None = None) -> BatchSource:
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
        """Write the classifier into ``run_dir``, which it then belongs to (``run_dir``)."""
        run_dir = check_output_dir(run_dir, "run_dir")
        self.write(run_dir)
        self.run_dir = run_dir
        return run_dir

    def write(self, run_dir: Path) -> None:
        """Write the classifier's files into ``run_dir`` (a training run writes them into its
        hidden folder; the classifier belongs to the folder the run becomes)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, self.config)
        vocab: dict[str, Any] = {
            "labels": self.labels.to_dict(),
            "features": self.featurizer.to_dict(),
        }
        if self.thresholds is not None:
            vocab["thresholds"] = self.thresholds
        vocab_bytes = json.dumps(vocab).encode("utf-8")
        write_atomic(run_dir / VOCAB, vocab_bytes, within=run_dir)
        # a bag of n-grams also as arrays, which predict reads in a fraction of the time
        binary = ngram_file.encode(vocab, vocab_bytes) if self.featurizer.kind == "ngrams" else None
        stale = run_dir / ngram_file.FILE
        if binary is not None:
            write_atomic(stale, binary, within=run_dir)
        elif stale.is_symlink() or stale.is_file():  # another run's, saved here before
            stale.unlink()
        self.featurizer.save_files(run_dir)
        save_model(self.model, run_dir, "classify", self.model_args)

    @classmethod
    def load(cls, run_dir: str | Path) -> Classifier:
        """The classifier saved in ``run_dir``, every file checked against the others: a run of
        another task, a damaged file, or a vocab.json that does not fit the model (another
        number of labels or features) is a ModelFileError naming the file."""
        run_dir = run_path(run_dir)
        expect_task(run_dir, read_arch(run_dir), "classify")
        config = read_config(run_dir, resolve_config, "classify")
        vocab_path = run_dir / VOCAB
        if not vocab_path.is_file():
            raise ModelFileError(f"{run_dir} is incomplete: vocab.json is missing")
        vocab = read_json(vocab_path)
        model, arch = load_model(run_dir, task="classify")
        classifier = as_classifier(model)  # a model.json of another kind of model says so here
        try:
            labels = LabelVocab.from_dict(vocab["labels"])
            thresholds = vocab.get("thresholds")
            featurizer = make_featurizer(config, vocab["features"], run_dir)
            featurizer_size = featurizer.input_size
        except ModelFileError as exc:
            if str(run_dir) in str(exc):
                raise
            raise ModelFileError(f"{vocab_path} is corrupted ({exc})") from None
        except (FfnlpError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ModelFileError(
                f"{vocab_path} is corrupted or does not hold what features.kind = "
                f"{config.features.kind!r} (config.toml) needs ({exc!r}); retrain the run"
            ) from None
        if thresholds is not None and not (
            isinstance(thresholds, list)
            and all(isinstance(t, (int, float)) and 0 <= t <= 1 for t in thresholds)
        ):
            raise ModelFileError(
                f"{run_dir / 'vocab.json'} is corrupted (thresholds must be a list of "
                "probabilities, one per label)"
            )
        _check_sizes(run_dir, arch, config, labels, featurizer_size, head_of(classifier))
        if config.features.kind == "ngrams":  # what predict's NumPy path reads in its place
            ngram_file.read(run_dir, vocab_path.read_bytes())
        summary = read_summary(run_dir)
        return cls(config, labels, featurizer, model, arch["args"], run_dir, summary, thresholds)


_PROBE_SIZE, _PROBE_CLASSES = 982_451_653, 3_571  # sizes no real run has: they mark the arguments


def _check_sizes(
    run_dir: Path,
    arch: dict[str, Any],
    config: ClassifyConfig,
    labels: LabelVocab,
    features: int,
    head: Any,
) -> None:
    """vocab.json against the model: as many labels as it has classes, as many features (or
    id-table rows) as it reads. Which constructor arguments carry those two sizes is found by
    asking the model type for its arguments with two marker sizes."""
    spec = registry.spec(arch["type"])
    try:
        probe = spec.arguments(
            spec.select_config(config.model),
            ClassifierInputs(input_size=_PROBE_SIZE, num_classes=_PROBE_CLASSES),
        )
    except FfnlpError:
        probe = {}
    args = arch["args"]
    problems = []
    num_classes = getattr(head, "num_classes", None)
    if num_classes is not None and num_classes != len(labels):
        problems.append(f"{len(labels)} labels but the model has {num_classes} classes")
    for key, value in probe.items():
        if value == _PROBE_SIZE and key in args and args[key] != features:
            problems.append(f"{features} features but the model reads {args[key]} ({key})")
    if problems:
        raise ModelFileError(
            f"{run_dir / 'vocab.json'} does not fit {run_dir / 'model.json'}: "
            f"{'; '.join(problems)}; the files come from different runs"
        )


def _fast_members(model: nn.Module) -> list[nn.Module] | None:
    """The networks the NumPy path computes for ``model``: the model itself when it is of a
    covered class, a seed ensemble's members when they all are; else ``None``."""
    if type(model).__name__ in _FAST_MODELS:
        return [model]
    members = (
        getattr(model, "members", None) if type(model).__name__ == "EnsembleClassifier" else None
    )
    if isinstance(members, nn.ModuleList) and all(
        type(m).__name__ in _FAST_MODELS for m in members
    ):
        return list(members)
    return None


def _tensor_state(model: nn.Module) -> list[tuple[int, int]]:
    """(data pointer, version) of every parameter of ``model`` and of its submodules: what
    changes when a tensor is replaced (another pointer) or changed in place (its version),
    for :meth:`Classifier.fast_path`'s key. A walk of the modules' own tables, without the
    names and the set of seen tensors ``parameters()`` builds (tens of microseconds a call,
    once per predicted batch: a server's cost); a tensor shared by two modules is listed
    twice, which changes nothing a key compares."""
    state = []
    todo = [model]
    while todo:
        module = todo.pop()
        for tensor in module._parameters.values():
            if tensor is not None:
                state.append((tensor.data_ptr(), tensor._version))
        todo.extend(m for m in module._modules.values() if m is not None)
    return state


def as_texts(texts: object) -> list[str]:
    """A string, or an iterable of strings, as a list; anything else is a DataError saying
    which item is not a string."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise DataError(
            f"texts must be a string or a list of strings; got {type(texts).__name__} "
            f"({_shown(texts)})"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise DataError(
                f"texts[{i}] is {type(text).__name__} ({_shown(text)}), not a string; decode "
                "bytes and replace missing values before predicting"
            )
    return out


def _stream(texts: object) -> Iterable[str]:
    """An iterable of texts, as the *_stream methods take (a string alone is not one)."""
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise DataError(
            f"texts must be an iterable of strings (a list, a file, a generator); got "
            f"{type(texts).__name__} ({_shown(texts)})"
        )
    return texts


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load(run_dir: str | Path) -> Classifier:
    """Load a trained classifier from its run directory."""
    return Classifier.load(run_dir)
