"""Predicting with a trained classifier in NumPy, chunk by chunk, without importing PyTorch.

:class:`FastClassifier` is what ``Classifier.predict`` / ``predict_proba`` (and so ``ffnlp
serve``) and ``ffnlp classify predict`` run when the run is one it covers: a ``logreg``, ``mlp``
or ``pooled`` model in float32 over ``features.kind = "ngrams"`` or ``"ids"`` (without character
n-grams), or a seed ensemble of such models (the mean of the members' probabilities). For a
chunk of texts (:data:`CHUNK` at a time) it tokenises and featurises every text
at once (:mod:`ffnlp.features.fast`), runs one forward pass in NumPy
(:mod:`ffnlp.models.numpy_forward`) and picks the top labels with array operations. Anything
else (lexicon features, subwords, a GELU, a float64 or quantised model file) takes the PyTorch
path, which stays the reference: the tests check that both give the same labels and the same
probabilities to float rounding.

``FFNLP_FAST_PREDICT=0`` in the environment turns this path off (the PyTorch path everywhere).

:func:`open_run` reads a run folder with NumPy and the standard library only: the command
``ffnlp classify predict`` starts in a fraction of the time PyTorch's import takes. It returns
``None`` for a run it does not cover, or one whose files do not agree with each other; the
command then loads the run with :func:`ffnlp.load`, which checks every file and names what is
wrong. A bag-of-n-grams run's features are read from its ``vocab.safetensors``
(:mod:`ffnlp.features.ngram_file`) when it has one, else from vocab.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ffnlp.errors import ConfigError
from ffnlp.features import ngram_file
from ffnlp.features.fast import IdRows, NgramLayout, NgramRows, split_chunk
from ffnlp.folders.layout import ARCH, CONFIG, VOCAB, WEIGHTS
from ffnlp.models import numpy_forward
from ffnlp.text.tokenize import KINDS, Tokenizer

ENV = "FFNLP_FAST_PREDICT"
"""``FFNLP_FAST_PREDICT=0`` makes every prediction take the PyTorch path."""

CHUNK = 2048  # texts featurised and run through the network at a time: memory stays bounded
_SUMS = ("mean", "sum")  # the pooling of a pooled network whose first step adds rows up

Prediction = list[tuple[str, float]]

# the model classes whose forward pass numpy_forward reproduces, by model.json type, with the
# constructor arguments model.json holds for them (a test checks these against the classes)
_COMMON_ARGS = ("num_classes", "label_smoothing", "class_weight", "sparse")
_MLP_ARGS = ("hidden", "activation", "dropout", "input_dropout")
MODEL_ARGS: dict[str, frozenset[str]] = {
    "logreg": frozenset(("num_features", *_COMMON_ARGS)),
    "mlp": frozenset(("num_features", *_COMMON_ARGS, *_MLP_ARGS)),
    "pooled": frozenset(
        ("num_embeddings", *_COMMON_ARGS, *_MLP_ARGS, "dim", "pooling", "word_dropout", "init")
        + ("init_scale", "freeze")
    ),
}
COVERED_TYPES = tuple(MODEL_ARGS)
# arguments a model.json may hold or leave out: the head's kind, and the training-only switch of
# the compiled step (``fused``), which changes nothing a forward pass computes
OPTIONAL_ARGS = frozenset(("multilabel", "fused"))
_SECTIONS = {"task", "data", "features", "model", "loss", "train"}  # a classifier's config.toml


def enabled() -> bool:
    """Whether the NumPy path may run (``FFNLP_FAST_PREDICT`` not set to 0/false/no/off)."""
    return os.environ.get(ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def check_threshold(threshold: float) -> None:
    """A decision threshold is a probability: ConfigError unless 0 <= threshold <= 1."""
    if not 0.0 <= threshold <= 1.0:  # NaN fails both comparisons
        raise ConfigError(
            f"threshold must be a probability between 0 and 1; got {threshold} (labels whose "
            "probability is at least the threshold are returned)"
        )


def decision_thresholds(
    n_labels: int,
    multilabel: bool,
    thresholds: Sequence[float] | None,
    task_threshold: float,
    threshold: float | None = None,
) -> np.ndarray:
    """(K,) the probability each label needs: ``threshold`` when given; else the run's own
    (multi-label: its tuned per-label thresholds, or task.threshold; single-label: 0)."""
    if threshold is not None:
        check_threshold(threshold)
        return np.full(n_labels, threshold, dtype=np.float64)
    if not multilabel:
        return np.zeros(n_labels, dtype=np.float64)
    if thresholds is not None:
        return np.asarray(thresholds, dtype=np.float64)
    return np.full(n_labels, task_threshold, dtype=np.float64)


def top_k(probs: np.ndarray, names: Sequence[str], k: int, cut: np.ndarray) -> list[Prediction]:
    """The top ``k`` (``-1``: all) (label, probability) pairs of each row of ``probs`` (N, K),
    most probable first (the first label on a tie), those at least ``cut`` (K,)."""
    n, width = probs.shape
    k = width if k == -1 else min(k, width)
    if n == 0:
        return []
    if k == 1:  # the usual case: every text's best label
        best = probs.argmax(axis=1)  # (N,) the first of equal maxima, as a stable sort
        return best_pairs(best.tolist(), probs[np.arange(n), best].tolist(), names, cut)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
    top = np.take_along_axis(probs, order, axis=1)  # (N, k)
    ok = (top >= cut[order]).tolist()
    return [
        [(names[j], q) for j, q, keep in zip(js, qs, oks, strict=True) if keep]
        for js, qs, oks in zip(order.tolist(), top.tolist(), ok, strict=True)
    ]


def best_pairs(
    columns: list[int], probs: list[float], names: Sequence[str], cut: np.ndarray
) -> list[Prediction]:
    """Each text's best label as ``top_k(..., k=1)`` gives it, from its column and
    probability: ``[(name, probability)]``, or ``[]`` below the label's ``cut``."""
    if not cut.any():
        return [[(names[j], q)] for j, q in zip(columns, probs, strict=True)]
    keep = (np.asarray(probs, dtype=np.float32) >= cut[columns]).tolist()
    return [[(names[j], q)] if ok else [] for j, q, ok in zip(columns, probs, keep, strict=True)]


def feature_rows(
    kind: str, state: Mapping[str, Any], max_n: int, layout: NgramLayout | None = None
) -> NgramRows | IdRows | None:
    """The chunk featuriser of a saved featurizer state (n-grams: with their ``layout`` when
    read from vocab.safetensors), or ``None`` where not covered."""
    if kind == "ngrams":
        rows: NgramRows | IdRows = NgramRows(dict(state), layout)
    elif kind == "ids":
        rows = IdRows(dict(state), max_n=max_n)
    else:
        return None
    return rows if rows.supported else None


class FastClassifier:
    """A classifier's prediction in NumPy: ``predict_proba(texts)`` and ``predict(texts, k,
    threshold)``, as ``Classifier``'s."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        rows: NgramRows | IdRows,
        forward: numpy_forward.NumpyForward,
        labels: Sequence[str],
        multilabel: bool,
        thresholds: Sequence[float] | None = None,
        task_threshold: float = 0.5,
        more: Sequence[numpy_forward.NumpyForward] = (),
    ):
        self.tokenizer = tokenizer
        self.features = rows
        self.forward = forward
        # a seed ensemble's members (``more``: every member but the first): the probabilities
        # are the mean of theirs, as EnsembleClassifier predicts
        self.forwards = [forward, *more]
        self.labels = list(labels)
        self.multilabel = multilabel
        self.thresholds = None if thresholds is None else list(thresholds)
        self.task_threshold = task_threshold

    def fits(self) -> bool:
        """The featuriser's width is the network's input, the labels its output."""
        rows = self.features
        if isinstance(rows, NgramRows):
            width = rows.n_features
        else:
            pruned = rows.row_map
            width = rows.n_words + rows.buckets if pruned is None else int((pruned >= 0).sum())
        return all(width == f.rows and len(self.labels) == f.num_classes for f in self.forwards)

    def logits_of_chunk(
        self, texts: Sequence[str], forward: numpy_forward.NumpyForward | None = None
    ) -> np.ndarray:
        """(B, K') logits of ``texts`` by ``forward`` (default: the first or only network)."""
        forward = self.forward if forward is None else forward
        # texts to the sums of their rows in one compiled call where the featuriser and the
        # network allow (fused_sums); else the compiled split and look-up where the featuriser
        # has them on, else split_chunk's tokens (the same numbers every way)
        sums = self.fused_sums(texts, forward)
        if sums is not None:
            return forward.from_sums(sums)
        if isinstance(self.features, NgramRows):
            cells = self.features.rows_of_texts(self.tokenizer, texts)
            if cells is None:
                cells = self.features.rows(*split_chunk(self.tokenizer, texts))
            ids, offsets, weights = cells
            return forward.logits(ids, offsets, weights)
        bags = self.features.rows_of_texts(self.tokenizer, texts)
        if bags is None:
            bags = self.features.rows(*split_chunk(self.tokenizer, texts))
        ids, offsets = bags
        return forward.logits(ids, offsets, None)

    def fused_sums(
        self, texts: Sequence[str], forward: numpy_forward.NumpyForward | None = None
    ) -> np.ndarray | None:
        """(B, width): the first step of the forward pass (:meth:`NumpyForward.summed`: each
        text's rows added up, or averaged) straight from the texts, by one compiled call of
        the featuriser (``bag_sums_of_texts``) that splits, looks up and adds; ``None`` where
        the compiled loops are off, the texts are not split by the kernels (see
        :meth:`~ffnlp.features.fast.TokenTable.encode`) or the network pools by maximum."""
        forward = self.forward if forward is None else forward
        if not forward.compiled or (forward.kind == "pooled" and forward.pooling not in _SUMS):
            return None
        table, mode = forward.summed()
        if isinstance(self.features, NgramRows):
            return self.features.bag_sums_of_texts(self.tokenizer, texts, table)
        return self.features.bag_sums_of_texts(self.tokenizer, texts, table, mode == "mean")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) float32 probabilities, columns in label order."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        parts = [
            self._chunk_probabilities(texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _chunk_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if len(self.forwards) == 1:
            return self._probabilities(texts, self.forward)
        each = [self._probabilities(texts, f) for f in self.forwards]
        mean: np.ndarray = np.stack(each).mean(axis=0, dtype=np.float32)  # (B, K)
        return mean

    def _probabilities(
        self, texts: Sequence[str], forward: numpy_forward.NumpyForward
    ) -> np.ndarray:
        """(B, K) of ``texts`` by ``forward``: from the fused sums through the compiled head
        where both run (two compiled calls for the whole chunk), else from the logits."""
        sums = self.fused_sums(texts, forward)
        if sums is not None:
            return forward.probabilities_of_sums(sums)
        return forward.probabilities(self.logits_of_chunk(texts, forward))

    def decision_thresholds(self, threshold: float | None = None) -> np.ndarray:
        return decision_thresholds(
            len(self.labels), self.multilabel, self.thresholds, self.task_threshold, threshold
        )

    def predict(
        self, texts: Sequence[str], k: int = 1, threshold: float | None = None
    ) -> list[Prediction]:
        """Top-k (label, probability) pairs of every text (see ``Classifier.predict``)."""
        if k == 1 and len(self.forwards) == 1 and not self.multilabel and 0 < len(texts) <= CHUNK:
            # a server's usual call: each text's best label from the compiled head, without
            # the (B, K) probabilities' trip through NumPy (the same labels and numbers)
            sums = self.fused_sums(texts)
            if sums is not None:
                cut = self.decision_thresholds(threshold)
                found = self.forward.best_of_sums(sums)
                if found is None:  # a head the compiled call lacks
                    every = self.forward.probabilities_of_sums(sums)
                    return top_k(every, self.labels, 1, cut)
                return best_pairs(*found, self.labels, cut)
        cut = self.decision_thresholds(threshold)
        return top_k(self.predict_proba(texts), self.labels, k, cut)


def predict_batches(
    clf: Any, texts: Iterable[str], k: int, threshold: float | None, batch_size: int
) -> Iterator[list[tuple[str, Prediction]]]:
    """The texts of a stream ``batch_size`` at a time, each with its top labels
    (``clf.predict``): memory stays that of one batch, whatever the stream's length."""
    stream = iter(texts)
    while batch := list(islice(stream, batch_size)):
        yield list(zip(batch, clf.predict(batch, k=k, threshold=threshold), strict=True))


def open_run(run_dir: str | Path) -> FastClassifier | None:
    """The run folder's classifier on the NumPy path, read without PyTorch; ``None`` when the
    path is off (:data:`ENV`), the run is not one it covers, or a file is missing, unreadable
    or disagrees with another (the caller then loads it with ``ffnlp.load``, whose checks name
    the problem)."""
    if not enabled():
        return None
    try:
        return _open(Path(run_dir))
    except Exception:  # any surprise: the checked path decides, and says what is wrong
        return None


def _open(run: Path) -> FastClassifier | None:
    from ffnlp.config import load_toml

    names = (ARCH, VOCAB, CONFIG, WEIGHTS)
    if not run.is_dir() or any(not (run / n).is_file() or (run / n).is_symlink() for n in names):
        return None
    arch = json.loads((run / ARCH).read_text(encoding="utf-8"))
    kind, args = arch.get("type"), arch.get("args")
    members = 0  # a seed ensemble's size (model.json type "ensemble"); 0: a single network
    if kind == "ensemble" and isinstance(args, dict):
        if set(args) != {"member", "member_args", "size"} or not _is_int(args["size"]):
            return None
        kind, members, args = args["member"], args["size"], args["member_args"]
        if not 1 <= members <= _MAX_MEMBERS:
            return None
    if (
        arch.get("task") != "classify"
        or kind not in COVERED_TYPES
        or set(arch)
        != {
            "task",
            "type",
            "args",
        }
    ):
        return None
    if not _plain_args(kind, args):
        return None
    config = load_toml(run / CONFIG)
    if not set(config) <= _SECTIONS:
        return None
    data, features, task = config["data"], config["features"], config.get("task", {})
    if not (
        isinstance(data.get("lowercase"), bool)
        and isinstance(features.get("ngram_range"), list)
        and all(_is_int(n) and n >= 1 for n in features["ngram_range"])
        and _is_number(task.get("threshold"))
        and 0 <= task["threshold"] <= 1
    ):
        return None
    model_type = config.get("model", {}).get("type")
    if model_type != kind or data["tokenizer"] not in KINDS:
        return None
    tokenizer = Tokenizer(data["tokenizer"], lowercase=bool(data["lowercase"]))
    vocab_bytes = (run / VOCAB).read_bytes()
    # n-gram features: their arrays in vocab.safetensors, when the run has it (read in a few
    # milliseconds, where vocab.json's names take a tenth of a second); else vocab.json's
    stored = ngram_file.read(run, vocab_bytes) if features.get("kind") == "ngrams" else None
    vocab, layout = stored if stored is not None else (json.loads(vocab_bytes), None)
    labels = vocab["labels"]["labels"]
    thresholds = vocab.get("thresholds")
    ngram_range = features["ngram_range"]
    max_n = int(ngram_range[1]) if len(ngram_range) == 2 else 1
    rows = feature_rows(features["kind"], vocab["features"], max_n, layout)
    if (
        rows is None
        or not isinstance(labels, list)
        or not all(isinstance(x, str) for x in labels)
        or len(set(labels)) != len(labels)
    ):
        return None
    arrays = map_weights(run / WEIGHTS)
    if arrays is None:
        return None
    multilabel = bool(args.get("multilabel", False))
    forwards = []
    for tensors in _member_arrays(arrays, members):
        forward = numpy_forward.build(kind, tensors, args, int(args["num_classes"]), multilabel)
        if forward is None or not _weights_fit(kind, args, tensors, forward):
            return None
        forwards.append(forward)
    if not forwards:
        return None
    if thresholds is not None and (
        not isinstance(thresholds, list)
        or len(thresholds) != len(labels)
        or not all(isinstance(t, (int, float)) and 0 <= t <= 1 for t in thresholds)
    ):
        return None
    clf = FastClassifier(
        tokenizer,
        rows,
        forwards[0],
        labels,
        multilabel,
        thresholds,
        float(task["threshold"]),
        more=forwards[1:],
    )
    return clf if clf.fits() else None


def _member_arrays(arrays: dict[str, np.ndarray], members: int) -> list[dict[str, np.ndarray]]:
    """The tensors of each network: all of them for a single one; for an ensemble of
    ``members``, those under ``members.<i>.`` for each i, without the prefix (nothing may be
    left over: else ``[]``)."""
    if members == 0:
        return [arrays]
    groups: list[dict[str, np.ndarray]] = [{} for _ in range(members)]
    for name, array in arrays.items():
        head, _, rest = name.partition(".")
        number, _, key = rest.partition(".")
        if head != "members" or not number.isdigit() or int(number) >= members or not key:
            return []
        groups[int(number)][key] = array
    return groups


# safetensors' names of the types a model file may hold here (little-endian, as it stores them)
_MAX_MEMBERS = 100  # ffnlp.models.ensemble.MAX_MEMBERS (that module imports torch)
_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}
_MAX_HEADER = 100 * 1024 * 1024


def map_weights(path: Path) -> dict[str, np.ndarray] | None:
    """The tensors of a safetensors file as read-only arrays over the file mapped into memory:
    no copy, and only the pages a prediction reads are read from disk (the rows of a table of
    ids a few texts hold). ``None`` for a file that is not laid out as safetensors writes it
    (its header, a type not listed here, tensors that do not tile the data exactly): the
    checked path then reads it and names the problem. A run's files are replaced whole
    (written to a new file, renamed), never changed in place, so the mapping stays valid."""
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            return None
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    length = int.from_bytes(mapped[:8], "little")
    if length > min(size - 8, _MAX_HEADER):
        return None
    header = json.loads(mapped[8 : 8 + length].decode("utf-8"))
    if not isinstance(header, dict):
        return None
    header.pop("__metadata__", None)
    start, arrays, spans = 8 + length, {}, []
    for name, entry in header.items():
        dtype = _DTYPES.get(str(entry.get("dtype"))) if isinstance(entry, dict) else None
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if dtype else (0, 0)
        if not (
            dtype is not None
            and isinstance(shape, list)
            and all(_is_int(d) and d >= 0 for d in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= size - start
        ):
            return None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offsets[1] - offsets[0] != count * np.dtype(dtype).itemsize:
            return None
        spans.append(tuple(offsets))
        array = np.frombuffer(mapped, dtype=dtype, count=count, offset=start + offsets[0])
        arrays[name] = array.reshape(shape)
    spans.sort()
    ends = [0] + [end for _, end in spans]
    if any(begin != end for (begin, _), end in zip(spans, ends, strict=False)) or (
        ends[-1] != size - start
    ):
        return None  # gaps, overlaps, or bytes after the last tensor
    return arrays


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _plain_args(kind: str, args: Any) -> bool:
    """model.json's ``args`` are the ones its model type takes, each of its type; anything
    else is for the checked path to name."""
    if not isinstance(args, dict):
        return False
    known = MODEL_ARGS[kind]
    if not (known <= set(args) <= known | OPTIONAL_ARGS):
        return False
    sizes = ("num_features", "num_embeddings", "num_classes", "dim")
    if not all(_is_int(args[a]) and args[a] > 0 for a in sizes if a in args):
        return False
    numbers = ("label_smoothing", "dropout", "input_dropout", "word_dropout", "init_scale")
    if not all(_is_number(args[a]) for a in numbers if a in args):
        return False
    flags = ("sparse", "freeze", "multilabel")
    if not all(isinstance(args[a], bool) for a in flags if a in args):
        return False
    hidden = args.get("hidden", [])
    weights = args["class_weight"]
    return (
        isinstance(hidden, list)
        and all(_is_int(h) and h > 0 for h in hidden)
        and (weights is None or isinstance(weights, list))
        and all(isinstance(args.get(a, ""), str) for a in ("activation", "pooling", "init"))
    )


def _weights_fit(
    kind: str, args: dict[str, Any], arrays: Mapping[str, np.ndarray], forward: Any
) -> bool:
    """model.safetensors holds exactly the tensors of the model model.json describes."""
    rows = args["num_features"] if kind != "pooled" else args["num_embeddings"]
    hidden = list(args.get("hidden", []))
    linears = len(forward.rest.layers)
    expected_linears = {"logreg": 0, "mlp": max(len(hidden), 0), "pooled": len(hidden) + 1}[kind]
    table_keys = {
        "logreg": {"linear.weight", "bias"},
        "mlp": {"input.weight", "input_bias"},
        "pooled": {"embedding.weight"},
    }[kind]
    if kind == "pooled" and forward.table.shape[1] != args["dim"]:
        return False
    if kind == "mlp" and hidden and forward.table.shape[1] != hidden[0]:
        return False
    return (
        forward.table.shape[0] == rows
        and linears == expected_linears
        and len(arrays) == len(table_keys) + 2 * linears
        and table_keys <= set(arrays)
    )
