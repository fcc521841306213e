"""The shared training loop and its parts."""

from ffnlp.training.callbacks import Callback, ProgressBar
from ffnlp.training.config import TrainConfig
from ffnlp.training.data import BatchSource, SparseRowBatches, TensorBatches
from ffnlp.training.history import History, read_metrics
from ffnlp.training.metrics import mean_loss
from ffnlp.training.progress import ProgressLines
from ffnlp.training.steps import AutogradStep, Step, UpdateStep, update_step_if_allowed
from ffnlp.training.trainer import Trainer

__all__ = [
    "AutogradStep",
    "BatchSource",
    "Callback",
    "History",
    "ProgressBar",
    "ProgressLines",
    "SparseRowBatches",
    "Step",
    "TensorBatches",
    "TrainConfig",
    "Trainer",
    "UpdateStep",
    "mean_loss",
    "read_metrics",
    "update_step_if_allowed",
]
