"""Logistic regression and an MLP in NumPy that learn, side by side with ffnlp's PyTorch models.

A training step written out with NumPy arrays (x: a minibatch of feature rows, y: its labels):

    forward    z = x W + b                     logistic regression: z is the logits
               h = act(z), then the next layer  an MLP (numpy_mlp.NumpyMLP.forward)
    loss       two classes: one logit, binary cross-entropy with logits (as ffnlp's models);
               K > 2 classes: K logits, softmax cross-entropy; the mean over the minibatch
    backward   dL/dz of the logits (below), then per layer, last first:
               dL/dW = h_prev^T dL/dz,  dL/db = sum_rows dL/dz,  dL/dh_prev = dL/dz W^T,
               dL/dz_prev = dL/dh_prev * act'(z_prev)          (numpy_mlp.NumpyMLP.backward)
    update     W <- W - lr dL/dW  (plain minibatch SGD)

:func:`train_side_by_side` trains such a network and ffnlp's PyTorch model of the same shape
(``LogisticRegression`` with no hidden layer, ``FeatureMLP`` otherwise) from the *same* initial
weights (copied from the PyTorch model), on the same minibatches in the same order (one ffnlp
``SparseRowBatches`` shuffle feeds both: PyTorch gets the sparse rows, NumPy the same rows made
dense), with ``torch.optim.SGD``, both in float64. The losses and the weights then agree to
float64 rounding (about 1e-15) step after step, and the dev accuracies exactly: anything more is a
bug in one of the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ffnlp.errors import ConfigError, DataError
from ffnlp.inspect.numpy_mlp import ACTS, NumpyMLP
from ffnlp.models.feature_mlp import FeatureMLP
from ffnlp.models.logreg import LogisticRegression
from ffnlp.training.data import SparseRowBatches

# ------------------------------------------------------------------------------- the loss (head)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow for any z


def classification_loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss over the minibatch and its gradient dL/dlogits (same shape as ``logits``).

    One logit column: binary cross-entropy with logits, l = log(1 + e^z) - y z, whose derivative is
    sigmoid(z) - y. K columns: softmax cross-entropy, l = -log softmax(z)[y], derivative
    softmax(z) - one_hot(y). Both divided by B, because the loss is the mean.
    """
    b = len(y)
    if logits.shape[1] == 1:
        z = logits[:, 0]  # (B,)
        # log(1 + e^z) - y z, written so that e^z never overflows
        losses = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - y * z
        return float(losses.mean()), ((sigmoid(z) - y) / b)[:, None]  # (B, 1)
    shifted = logits - logits.max(axis=1, keepdims=True)  # softmax is unchanged by a shift
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, K)
    delta = np.exp(log_p)  # softmax          (B, K)
    delta[np.arange(b), y] -= 1.0
    return float(-log_p[np.arange(b), y].mean()), delta / b


def predict(logits: np.ndarray) -> np.ndarray:
    """(B,) the predicted class: logit > 0 with one logit, else the largest logit."""
    return (logits[:, 0] > 0).astype(np.int64) if logits.shape[1] == 1 else logits.argmax(axis=1)


# ------------------------------------------------------------------------------------- models


class NumpyLearner(Protocol):
    def logits(self, x: np.ndarray) -> np.ndarray: ...

    def loss_and_gradients(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray]]: ...

    def parameters(self) -> list[np.ndarray]: ...


class NumpyLogisticRegression:
    """z = x W + b with W (F, K') and b (K',); K' = 1 logit for two classes."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight = np.array(weight, dtype=np.float64)  # (F, K')
        self.bias = np.array(bias, dtype=np.float64)  # (K',)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight + self.bias  # (B, F) @ (F, K') -> (B, K')

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        loss, dz = classification_loss(self.logits(x), y)  # dz: (B, K')
        return loss, [x.T @ dz, dz.sum(axis=0)]  # dW (F, K'), db (K',)

    def parameters(self) -> list[np.ndarray]:
        return [self.weight, self.bias]


class NumpyMLPClassifier:
    """An MLP (forward and backward of :class:`NumpyMLP`) with the classification loss above."""

    def __init__(
        self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], activation: str = "relu"
    ):
        self.net = NumpyMLP.from_weights(weights, biases, activation)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.net.forward(x)[0]  # (B, K')

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        logits, zs, hs = self.net.forward(x)
        loss, delta = classification_loss(logits, y)
        grads_w, grads_b = self.net.backward(zs, hs, delta)
        return loss, [g for pair in zip(grads_w, grads_b, strict=True) for g in pair]

    def parameters(self) -> list[np.ndarray]:
        return [p for pair in zip(self.net.weights, self.net.biases, strict=True) for p in pair]


def sgd_step(model: NumpyLearner, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    """One step of minibatch SGD; returns the loss before the step."""
    loss, grads = model.loss_and_gradients(x, y)
    for param, grad in zip(model.parameters(), grads, strict=True):
        param -= lr * grad  # in place: the model's own arrays
    return loss


# ------------------------------------------------------------------ the same model in PyTorch

TorchModel = LogisticRegression | FeatureMLP


def torch_model(
    num_features: int, num_classes: int, hidden: Sequence[int], activation: str
) -> TorchModel:
    """ffnlp's model: LogisticRegression (no hidden layer) or FeatureMLP, in float64."""
    if not hidden:
        return LogisticRegression(num_features, num_classes).double()
    return FeatureMLP(num_features, num_classes, hidden=hidden, activation=activation).double()


def numpy_copy(
    model: TorchModel, activation: str = "relu"
) -> NumpyLogisticRegression | NumpyMLPClassifier:
    """The NumPy network with the PyTorch model's current weights (as (in, out) matrices)."""

    def array(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().double().numpy().copy()

    if isinstance(model, LogisticRegression):
        return NumpyLogisticRegression(array(model.linear.weight), array(model.bias))  # (F, K')
    weights = [array(model.input.weight)]  # EmbeddingBag table: already (F, H1)
    biases = [array(model.input_bias)]
    for module in model.rest.modules():
        if isinstance(module, torch.nn.Linear):
            weights.append(array(module.weight).T)  # nn.Linear keeps (out, in)
            biases.append(array(module.bias))
    return NumpyMLPClassifier(weights, biases, activation)


def torch_parameters(model: TorchModel) -> list[np.ndarray]:
    """The PyTorch model's parameters in the NumPy network's order and layout."""
    return numpy_copy(model).parameters()


# -------------------------------------------------------------------------- side-by-side training


@contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch, and NumPy's BLAS when threadpoolctl is installed (it comes with scikit-learn), on
    one thread for the duration: a step here is a few small products, which extra threads only
    slow down (badly so on a busy machine)."""
    threads = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn is an optional dependency
        blas: Any = nullcontext()
    else:
        blas = threadpool_limits(1, user_api="blas")
    torch.set_num_threads(1)
    try:
        with blas:
            yield
    finally:
        torch.set_num_threads(threads)


def dense(batch: dict[str, torch.Tensor], num_features: int) -> np.ndarray:
    """A SparseRowBatches batch (ids, weights, offsets) as a dense (B, F) float64 array."""
    offsets = batch["offsets"].numpy()
    nnz = np.diff(np.append(offsets, len(batch["ids"])))  # non-zeros of each row   (B,)
    rows = np.repeat(np.arange(len(offsets)), nnz)  # the row of every non-zero   (nnz,)
    x = np.zeros((len(offsets), num_features))  # (B, F)
    x[rows, batch["ids"].numpy()] = batch["weights"].double().numpy()
    return x


@dataclass
class SideBySide:
    """What :func:`train_side_by_side` measured."""

    step_loss: dict[str, list[float]] = field(default_factory=lambda: {"numpy": [], "torch": []})
    epochs: list[dict[str, Any]] = field(default_factory=list)  # per epoch: loss, dev accuracy
    max_step_loss_diff: float = 0.0  # largest |loss_numpy - loss_torch| over all steps
    max_weight_diff: float = 0.0  # largest |w_numpy - w_torch| after training

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "step_loss": self.step_loss,
            "max_step_loss_diff": self.max_step_loss_diff,
            "max_weight_diff": self.max_weight_diff,
        }


def _accuracies(
    numpy_net: NumpyLearner, model: TorchModel, dev: SparseRowBatches, batch_size: int = 256
) -> tuple[float, float]:
    y = dev.dense["y"]
    right_np = right_torch = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(dev), batch_size):
            batch = dev.rows(torch.arange(start, min(start + batch_size, len(dev))))
            x = dense(batch, dev.n_cols)
            right_np += int((predict(numpy_net.logits(x)) == batch["y"].numpy()).sum())
            logits = model.logits({**batch, "weights": batch["weights"].double()})
            right_torch += int((model.head.predict(logits) == batch["y"]).sum())
    model.train()
    return right_np / len(y), right_torch / len(y)


def train_side_by_side(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_dev: torch.Tensor,
    y_dev: torch.Tensor,
    num_classes: int,
    hidden: Sequence[int] = (64,),
    activation: str = "relu",
    epochs: int = 5,
    lr: float = 0.5,
    batch_size: int = 8,
    seed: int = 0,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    max_steps: int | None = None,
) -> SideBySide:
    """Train the NumPy network and ffnlp's PyTorch model side by side (see the module docstring).

    ``x_train`` / ``x_dev``: (N, F) sparse CSR feature rows; ``y_*``: (N,) class ids. ``hidden``
    empty means logistic regression. ``on_epoch`` receives each epoch's record as it ends;
    ``max_steps`` stops early (for tests).
    """
    from ffnlp.runtime import seed_everything

    problems = []
    if activation not in ACTS:
        problems.append(f"--activation must be one of {', '.join(ACTS)}; got {activation!r}")
    for name, value in (("epochs", epochs), ("batch-size", batch_size)):
        if value < 1:
            problems.append(f"--{name} must be at least 1; got {value}")
    if not lr > 0:
        problems.append(f"--lr must be positive; got {lr}")
    if any(h < 1 for h in hidden):
        problems.append(f"hidden layer sizes must be at least 1; got {list(hidden)}")
    if problems:
        raise ConfigError("; ".join(problems))

    with one_thread():
        generator = seed_everything(seed)  # the model's initial weights, then the shuffling
        model = torch_model(int(x_train.shape[1]), num_classes, hidden, activation)
        numpy_net = numpy_copy(model, activation)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        train = SparseRowBatches(x_train, y=y_train)
        dev = SparseRowBatches(x_dev, y=y_dev)
        result = SideBySide()
        step = 0
        for epoch in range(1, epochs + 1):
            totals = {"numpy": 0.0, "torch": 0.0}
            seen = 0
            for batch in train.batches(batch_size, generator):
                # NumPy: the rows made dense, one hand-written step
                y = batch["y"].numpy()
                loss_np = sgd_step(numpy_net, dense(batch, train.n_cols), y, lr)
                # PyTorch: the same rows, sparse, through ffnlp's model; autograd; torch.optim.SGD
                optimizer.zero_grad()
                loss_t = model.loss({**batch, "weights": batch["weights"].double()})
                loss_t.backward()
                optimizer.step()
                for name, loss in (("numpy", loss_np), ("torch", float(loss_t.detach()))):
                    result.step_loss[name].append(loss)
                    totals[name] += loss * len(y)
                seen += len(y)
                result.max_step_loss_diff = max(
                    result.max_step_loss_diff, abs(loss_np - result.step_loss["torch"][-1])
                )
                step += 1
                if max_steps is not None and step >= max_steps:
                    break
            acc_np, acc_t = _accuracies(numpy_net, model, dev)
            record = {
                "epoch": epoch,
                "steps": step,
                "numpy": {"loss": totals["numpy"] / seen, "dev_accuracy": acc_np},
                "torch": {"loss": totals["torch"] / seen, "dev_accuracy": acc_t},
            }
            result.epochs.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if max_steps is not None and step >= max_steps:
                break
        result.max_weight_diff = max(
            float(np.abs(a - b).max())
            for a, b in zip(numpy_net.parameters(), torch_parameters(model), strict=True)
        )
        return result


# ------------------------------------------------------------------------------------- the data


@dataclass
class BagOfNgramsData:
    """Train and dev rows as tf-idf bags of word n-grams, with the labels as class ids."""

    x_train: torch.Tensor  # (N, F) sparse CSR
    y_train: torch.Tensor  # (N,)
    x_dev: torch.Tensor
    y_dev: torch.Tensor
    labels: list[str]

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


def read_bag_of_ngrams(
    train: str | Path, dev: str | Path, max_features: int = 5000, ngram_max: int = 2
) -> BagOfNgramsData:
    """Read two labelled files (any format ffnlp reads), tokenise on whitespace and turn them into
    tf-idf bags of word 1..``ngram_max``-grams, keeping the ``max_features`` most frequent."""
    from ffnlp.features.bag import BagOfNgrams
    from ffnlp.text.readers import read_labeled
    from ffnlp.text.tokenize import Tokenizer
    from ffnlp.text.vocab import LabelVocab

    if max_features < 1:
        raise ConfigError(f"--max-features must be at least 1; got {max_features}")
    train_data, dev_data = read_labeled(train), read_labeled(dev)
    tokenizer = Tokenizer()
    bag = BagOfNgrams(
        ngram_range=(1, ngram_max), weighting="tfidf", sublinear_tf=True, max_features=max_features
    )
    x_train = bag.fit_transform(tokenizer.tokenize_all(train_data.texts))
    labels = LabelVocab.build(train_data.labels)
    if len(labels) < 2:
        raise DataError(
            f"{train}: every example has the label {labels.labels[0]!r}; "
            "a classifier needs at least two classes"
        )
    return BagOfNgramsData(
        x_train=x_train,
        y_train=torch.tensor(labels.encode(train_data.labels)),
        x_dev=bag.transform(tokenizer.tokenize_all(dev_data.texts)),
        y_dev=torch.tensor(labels.encode(dev_data.labels)),
        labels=labels.labels,
    )


# ----------------------------------------------------------------------- `explain numpy-vs-torch`


def check_plot_path(plot: Path) -> None:
    """--plot: an image file that can be written, checked before any training."""
    from ffnlp.outputs import check_output_file

    if plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"--plot {plot}: name an image file ending in .png, .pdf or .svg")
    check_output_file(plot, "--plot")  # a folder, a link, read-only


def numpy_vs_torch(
    train: str | Path,
    dev: str | Path,
    max_features: int = 5000,
    hidden: int = 64,
    activation: str = "relu",
    plot: Path | None = None,
    on_start: Callable[[str, int], None] | None = None,
    **training: Any,
) -> dict[str, Any]:
    """Read ``train`` and ``dev`` as tf-idf bags of n-grams, train the NumPy network with
    ``hidden`` units (0: logistic regression) and ffnlp's PyTorch model side by side
    (:func:`train_side_by_side`, which takes ``training``), draw both loss curves into ``plot``.
    ``on_start`` hears the model's name and the number of features before the training. The
    result: {"model", "num_features", "epochs", "step_loss", ...}."""
    if plot is not None:
        check_plot_path(plot)
    data = read_bag_of_ngrams(train, dev, max_features=max_features)
    model = "logistic regression" if hidden == 0 else f"MLP ({hidden} {activation} units)"
    if on_start is not None:
        on_start(model, data.num_features)
    result = train_side_by_side(
        data.x_train,
        data.y_train,
        data.x_dev,
        data.y_dev,
        len(data.labels),
        hidden=[hidden] if hidden else [],
        activation=activation,
        **training,
    )
    if plot is not None:
        from ffnlp.report.plots import plot_loss_curves

        steps = len(result.step_loss["numpy"])
        curves: dict[str, Sequence[float]] = {"NumPy (by hand)": result.step_loss["numpy"]}
        curves["PyTorch (autograd)"] = result.step_loss["torch"]
        title = f"{model}: training loss, NumPy vs PyTorch"
        plot_loss_curves(curves, plot, title=title, window=max(1, min(100, steps // 30)))
    return {"model": model, "num_features": data.num_features, **result.to_dict()}
