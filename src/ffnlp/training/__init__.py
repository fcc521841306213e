"""The shared training loop and its parts."""

from ffnlp.training.callbacks import Callback, ProgressBar
from ffnlp.training.config import InitConfig, TrainConfig
from ffnlp.training.data import BatchSource, SparseRowBatches, TensorBatches
from ffnlp.training.history import History, read_metrics
from ffnlp.training.init import initialize
from ffnlp.training.metrics import classification_metrics, confusion_matrix
from ffnlp.training.progress import ProgressLines
from ffnlp.training.trainer import Trainer, mean_loss

__all__ = [
    "BatchSource", "Callback", "History", "InitConfig", "ProgressBar", "ProgressLines",
    "SparseRowBatches",
    "TensorBatches", "TrainConfig", "Trainer", "classification_metrics", "confusion_matrix",
    "initialize", "mean_loss", "read_metrics",
]
