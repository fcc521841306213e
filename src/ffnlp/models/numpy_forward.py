"""The classifiers' forward pass in NumPy, for predicting without PyTorch.

Importing PyTorch takes over a second; a command that predicts a few lines spends most of its
time there. This module computes what the PyTorch modules compute in evaluation mode (dropout
off) from the arrays of the run's ``model.safetensors``:

- ``logreg``: ``EmbeddingBag(sum, per_sample_weights)`` + bias;
- ``mlp`` (:class:`~ffnlp.models.feature_mlp.FeatureMLP`): the same weighted sum into the first
  layer, + bias, then activation and the linear layers of its MLP;
- ``pooled``: mean / sum / max / mean_max of the bag's embedding rows, then the MLP;

and the heads' probabilities: sigmoid for two classes (``[1 - p, p]``), softmax for more, one
sigmoid per label for a multi-label run. Sums run in float32 as PyTorch's do (in another order:
the results agree to float rounding, which the parity tests bound). :func:`build` returns ``None``
for a model this module does not cover (another type, an activation without a NumPy form here);
the caller then takes the PyTorch path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Array = np.ndarray
SPARSE_PRODUCT_FROM = 4096  # ids in a call from which SciPy's sparse product adds the rows
# (below that, a process that has not imported SciPy yet does not: its import takes 0.2 s, more
# than a few texts' prediction; a long-lived one sets NumpyForward.sparse_from to 0)
LEAKY_SLOPE = 0.01  # ffnlp.models.activations.LEAKY_SLOPE (that module imports torch)


def _sigmoid(x: Array) -> Array:
    """1 / (1 + e^-x) in float64; a large -x gives 0 (exp overflowing to inf is expected)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def _elu(x: Array) -> Array:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: _sigmoid(x).astype(x.dtype),
    "hardtanh": lambda x: np.clip(x, -1.0, 1.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, x * np.float32(LEAKY_SLOPE)),
    "elu": _elu,
    "identity": lambda x: x,
}


def bag_sum(
    table: Array,
    ids: Array,
    offsets: Array,
    weights: Array | None = None,
    mode: str = "sum",
    sparse_from: int = SPARSE_PRODUCT_FROM,
    compiled: bool = False,
) -> Array:
    """(B, D): each bag's rows of ``table`` (ids[offsets[b]:offsets[b+1]]) added up (times
    ``weights``), averaged (``mode="mean"``) or their maximum (``"max"``); an empty bag gives
    zeros, as ``torch.nn.EmbeddingBag``. A call of several bags and at least ``sparse_from``
    ids adds them with SciPy's sparse product (the same numbers; see below); ``compiled``: a
    sum or mean by the compiled loop of :mod:`ffnlp.models.kernels.bag_sum` where
    :mod:`ffnlp.jit` allows (the same numbers, in one call)."""
    if compiled and mode != "max":
        from ffnlp.models.kernels.bag_sum import bag_sums

        kernel = bag_sums.compiled()
        if kernel is not None:
            no_weights = _NO_WEIGHTS.get(table.dtype.str)
            if no_weights is None:
                no_weights = _NO_WEIGHTS[table.dtype.str] = np.zeros(0, dtype=table.dtype)
            summed: Array = kernel(
                table, ids, offsets, no_weights if weights is None else weights, mode == "mean"
            )
            return summed
    n_bags = len(offsets) - 1
    out = np.zeros((n_bags, table.shape[1]), dtype=table.dtype)
    if len(ids) == 0 or n_bags == 0:
        return out
    lengths = np.diff(offsets)  # (B,)
    full = lengths > 0
    if mode == "max":  # a maximum is the same in any order
        out[full] = np.maximum.reduceat(table[ids], offsets[:-1][full], axis=0)
        return out
    # Each bag's rows are added left to right, one after the other, whichever way is taken
    # (SciPy's loop does so): a text's numbers do not depend on the texts predicted with it.
    if n_bags == 1 and len(ids) < SPARSE_PRODUCT_FROM:
        # one text (a server's single request): a running sum down its rows, in order by
        # definition of accumulate (a plain sum over the rows may add them pairwise)
        rows = table[ids]  # (N, D)
        if weights is not None:
            rows *= weights[:, None]
        out[0] += np.add.accumulate(rows, axis=0)[-1]  # 0 + sum: as the loops start
    elif len(ids) >= sparse_from:
        # a sparse (B, rows) matrix times the table: SciPy's loop over the non-zeros adds the
        # rows in place, with no (N, D) copy of them (its import, 0.2 s, is paid only here)
        values = np.ones(len(ids), dtype=table.dtype) if weights is None else weights
        out = sparse_product(table, ids, offsets, values)
    else:  # a few texts: position by position across the bags
        rows = table[ids]  # (N, D)
        if weights is not None:
            rows *= weights[:, None]
        longest_first = np.argsort(-lengths, kind="stable")  # (B,)
        reach = lengths[longest_first]  # (B,) descending
        starts = offsets[:-1]
        for j in range(int(reach[0])):
            has = longest_first[: int(np.searchsorted(-reach, -j, side="left"))]  # length > j
            out[has] += rows[starts[has] + j]
    if mode == "mean":
        out[full] /= lengths[full, None].astype(table.dtype)
    return out


_NO_WEIGHTS: dict[str, Array] = {}  # bag_sums' "no weights", one per table type


def sparse_product(table: Array, ids: Array, offsets: Array, values: Array) -> Array:
    """(B, D): the CSR matrix (``values``, ``ids``, ``offsets``) times ``table``, by SciPy's
    loop (csr_matvecs: each row's non-zeros in order, ``out[b] += value * table[id]``).

    The loop is called directly where it takes these arrays as they are (int64 indices, values
    of the table's type, a C-ordered table): ``csr_matrix(...) @ table`` runs the same loop
    after Python-level checks of the matrix that cost several times the loop itself on a few
    texts (a server's requests). Where SciPy has no such function, or it refuses the arrays,
    the public ``csr_matrix`` product gives the same numbers (a test checks both)."""
    n_bags, (n_rows, width) = len(offsets) - 1, table.shape
    direct = _csr_loop()
    if (
        direct is not None
        and ids.dtype == np.int64
        and offsets.dtype == np.int64
        and values.dtype == table.dtype
        and table.flags.c_contiguous
    ):
        out = np.zeros((n_bags, width), dtype=table.dtype)
        try:
            direct(n_bags, n_rows, width, offsets, ids, values, table.ravel(), out.ravel())
            return out
        except (TypeError, ValueError):  # another signature in this SciPy: the public way
            pass
    from scipy.sparse import csr_matrix

    bags = csr_matrix((values, ids, offsets), shape=(n_bags, n_rows))
    return np.asarray(bags @ table, dtype=table.dtype)


def _csr_loop() -> Callable[..., None] | None:
    """SciPy's ``csr_matvecs`` (private module, the loop of every CSR-times-dense product
    since SciPy 0.x), or ``None`` where this SciPy has none."""
    try:
        from scipy.sparse import _sparsetools
    except ImportError:
        return None
    return getattr(_sparsetools, "csr_matvecs", None)


class Linears:
    """The linear layers of an :class:`~ffnlp.models.mlp.MLP` with the activation between them."""

    def __init__(self, layers: list[tuple[Array, Array]], activation: Callable[[Array], Array]):
        self.layers = layers  # [(weight (out, in), bias (out,))]
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        for i, (weight, bias) in enumerate(self.layers):
            if i > 0:
                x = self.activation(x)
            x = x @ weight.T + bias
        return x


def _linears(arrays: Mapping[str, Array], prefix: str) -> list[tuple[Array, Array]]:
    """``prefix.layers.<i>.weight/bias`` in layer order."""
    pattern = re.compile(re.escape(prefix) + r"layers\.(\d+)\.weight\Z")
    found = sorted(int(m.group(1)) for k in arrays if (m := pattern.match(k)))
    return [
        (arrays[f"{prefix}layers.{i}.weight"], arrays[f"{prefix}layers.{i}.bias"]) for i in found
    ]


class NumpyForward:
    """``logits(ids, offsets, weights) -> (B, K')`` and ``probabilities(logits) -> (B, K)``."""

    def __init__(
        self,
        kind: str,
        arrays: Mapping[str, Array],
        args: Mapping[str, Any],
        num_classes: int,
        multilabel: bool,
    ):
        self.kind = kind
        self.num_classes = num_classes
        self.multilabel = multilabel
        self.binary = num_classes == 2 and not multilabel
        self.activation_name = str(args.get("activation", "relu"))
        activation = ACTIVATIONS[self.activation_name]
        self.activation = activation
        self.bias: Array | None = None
        self.pooling: str = args.get("pooling", "mean")
        layers: list[tuple[Array, Array]] = []
        if kind == "logreg":
            self.table = arrays["linear.weight"]  # (F, K')
            self.bias = arrays["bias"]
        elif kind == "mlp":
            self.table = arrays["input.weight"]  # (F, H1)
            self.bias = arrays["input_bias"]
            layers = _linears(arrays, "rest.2.")  # after the first layer's activation
        else:  # pooled
            self.table = arrays["embedding.weight"]  # (R, D)
            layers = _linears(arrays, "mlp.")
        self.activate_first = kind == "mlp" and bool(layers)
        self._projected: Array | None = None  # (R, K') table @ W.T, made on first use
        self._plan: tuple[Any, ...] | None = None  # _head_plan's, made on first use; (): none
        self.rest = Linears(layers, activation)
        self.rows = int(self.table.shape[0])
        self.out_size = 1 if self.binary else num_classes
        # bag_sum's sparse_from: a caller that keeps this forward for many calls (a loaded
        # Classifier, a server) sets 0, SciPy's product for every call of several texts
        self.sparse_from = SPARSE_PRODUCT_FROM
        # bag_sum's compiled loop (ffnlp.jit): likewise for a caller that keeps this forward
        # (Numba's import, a third of a second, is paid on its first call)
        self.compiled = False

    def logits(self, ids: Array, offsets: Array, weights: Array | None) -> Array:
        if self.kind == "pooled" and self.pooling in ("max", "mean_max"):
            h = bag_sum(self.table, ids, offsets, mode="max")  # (B, D)
            if self.pooling == "mean_max":
                mean = bag_sum(
                    self.table, ids, offsets, mode="mean", sparse_from=self.sparse_from,
                    compiled=self.compiled,
                )  # fmt: skip
                h = np.concatenate([mean, h], axis=1)  # (B, 2D)
            return self.rest(h)  # (B, K')
        table, mode = self.summed()
        h = bag_sum(
            table, ids, offsets, weights if self.kind != "pooled" else None, mode=mode,
            sparse_from=self.sparse_from, compiled=self.compiled,
        )  # fmt: skip
        return self.from_sums(h)

    def summed(self) -> tuple[Array, str]:
        """``(table, mode)``: the table whose rows a text's bag adds up (``"sum"``: times the
        features' values, if any) or averages (``"mean"``), the first step of :meth:`logits`
        for every model but a pooled one by maximum (``max``, ``mean_max``), which has none."""
        if self.kind != "pooled":
            return self.table, "sum"
        if self.pooling not in ("mean", "sum"):
            raise ValueError(f"a pooled model by {self.pooling} adds up no rows")
        if not self.projects():
            return self.table, self.pooling
        # the output layer moved in front of the pooling (a linear map commutes with a sum or
        # a mean): a bag adds K' numbers per id instead of D
        if self._projected is None:
            self._projected = self.table @ self.rest.layers[0][0].T  # (R, K')
        return self._projected, self.pooling

    def from_sums(self, h: Array) -> Array:
        """(B, K') logits from (B, width) sums of :meth:`summed`'s rows (changed in place)."""
        if self.kind == "pooled":
            if self.projects():
                return h + self.rest.layers[0][1]
            return self.rest(h)
        h += self.bias  # (B, H1 or K')
        if self.activate_first:
            h = self.activation(h)
        return self.rest(h)  # (B, K')

    def probabilities_of_sums(self, h: Array) -> Array:
        """(B, K) float32: ``probabilities(from_sums(h))`` (``h`` may be changed), by one
        compiled call (:func:`~ffnlp.models.kernels.dense_head.dense_probabilities`) where
        :attr:`compiled` is set and the activation is one it covers."""
        found = self._compiled_head(h)
        if found is None:
            return self.probabilities(self.from_sums(h))
        probs: Array = found[0]
        return probs

    def best_of_sums(self, h: Array) -> tuple[list[int], list[float]] | None:
        """Each text's most probable column (the first of equal maxima) and its probability,
        from (B, width) sums, as ``probabilities_of_sums`` then ``argmax`` give them, in the
        same compiled call; ``None`` where that call does not run (the caller takes
        :meth:`probabilities_of_sums`)."""
        found = self._compiled_head(h)
        if found is None:
            return None
        _, best, top = found
        return best.tolist(), top.tolist()

    def _compiled_head(self, h: Array) -> tuple[Array, Array, Array] | None:
        """``dense_probabilities(h, ...)``'s ``(probs, best, top)``, or ``None`` where it does
        not run (compiled loops off, an activation it lacks, sums of another width or type)."""
        plan = self._head_plan() if self.compiled else None
        if plan is None or h.dtype != np.float32 or h.ndim != 2 or h.shape[1] != plan[3][0]:
            return None
        from ffnlp.models.kernels import dense_head

        kernel = dense_head.dense_probabilities.compiled()
        if kernel is None:
            return None
        found: tuple[Array, Array, Array] = kernel(h, *plan)
        return found

    def _head_plan(self) -> tuple[Any, ...] | None:
        """:func:`dense_probabilities`' arguments after the sums, made once; ``None`` where it
        does not cover this network (an activation it lacks)."""
        if self._plan is not None:
            return self._plan or None
        from ffnlp.models.kernels import dense_head

        code = dense_head.ACTIVATION_CODES.get(self.activation_name)
        if code is None:
            self._plan = ()
            return None
        layers = self.rest.layers
        first_bias = self.bias
        width = int(self.table.shape[1])
        if self.projects():
            first_bias, layers, width = layers[0][1], [], self.out_size
        dims = [width] + [int(w.shape[0]) for w, _ in layers]
        none = np.zeros(0, dtype=np.float32)
        head = (
            dense_head.HEAD_BINARY
            if self.binary
            else dense_head.HEAD_MULTILABEL
            if self.multilabel
            else dense_head.HEAD_SOFTMAX
        )
        self._plan = (
            none if first_bias is None else np.ascontiguousarray(first_bias, dtype=np.float32),
            self.activate_first,
            code,
            np.asarray(dims, dtype=np.int64),
            np.concatenate([w.ravel() for w, _ in layers]).astype(np.float32) if layers else none,
            np.concatenate([b for _, b in layers]).astype(np.float32) if layers else none,
            head,
        )
        return self._plan

    def projects(self) -> bool:
        """A pooled model whose pooled vector goes straight to fewer logits than it has
        dimensions (sst2_pooled: 64 -> 1): mean or sum of the rows of ``table @ W.T``."""
        return (
            self.kind == "pooled"
            and self.pooling in ("mean", "sum")
            and len(self.rest.layers) == 1
            and self.out_size < self.table.shape[1]
        )

    def probabilities(self, logits: Array) -> Array:
        """(B, K) float32, as the heads' ``probabilities``."""
        z = logits.astype(np.float64)
        if self.binary:
            p = _sigmoid(z[:, 0]).astype(np.float32)  # (B,)
            out = np.empty((len(p), 2), dtype=np.float32)  # [1 - p, p] (np.stack, without
            np.subtract(np.float32(1), p, out=out[:, 0])  # its Python-level checks)
            out[:, 1] = p
            return out
        if self.multilabel:
            return _sigmoid(z).astype(np.float32)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def build(
    kind: str,
    arrays: Mapping[str, Array],
    args: Mapping[str, Any],
    num_classes: int,
    multilabel: bool,
) -> NumpyForward | None:
    """The NumPy forward of a ``kind`` model with these weights and model.json ``args``, or
    ``None`` when this module does not cover it (the caller takes PyTorch's path)."""
    if kind not in ("logreg", "mlp", "pooled"):
        return None
    if args.get("activation", "relu") not in ACTIVATIONS:
        return None
    if kind == "pooled" and args.get("pooling", "mean") not in ("mean", "sum", "max", "mean_max"):
        return None
    if any(a.dtype != np.float32 for a in arrays.values()):
        return None
    try:
        forward = NumpyForward(kind, arrays, args, num_classes, multilabel)
    except KeyError:
        return None
    widths_ok = _shapes_fit(forward)
    return forward if widths_ok else None


def _shapes_fit(forward: NumpyForward) -> bool:
    """Every layer's input is the previous one's output and the last gives the logits."""
    width = int(forward.table.shape[1])
    if forward.kind == "pooled" and forward.pooling == "mean_max":
        width *= 2
    if forward.bias is not None and forward.bias.shape != (width,):
        return False
    for weight, bias in forward.rest.layers:
        if weight.ndim != 2 or weight.shape[1] != width or bias.shape != (weight.shape[0],):
            return False
        width = int(weight.shape[0])
    return width == forward.out_size
