"""The shared training loop and its parts."""

from ffnlp.training.callbacks import Callback, ProgressBar
from ffnlp.training.config import TrainConfig
from ffnlp.training.data import BatchSource, SparseRowBatches, TensorBatches
from ffnlp.training.history import History, read_metrics
from ffnlp.training.metrics import classification_metrics, confusion_matrix
from ffnlp.training.trainer import Trainer, mean_loss

__all__ = [
    "BatchSource", "Callback", "History", "ProgressBar", "SparseRowBatches", "TensorBatches",
    "TrainConfig", "Trainer", "classification_metrics", "confusion_matrix", "mean_loss",
    "read_metrics",
]
