"""The callbacks a TrainConfig installs: weight averaging, the best weights, checkpoints, training
diagnostics and the TensorBoard logger, in the order they must run."""

from __future__ import annotations

import torch

from ffnlp.training.averaging import WeightAveraging
from ffnlp.training.best_weights import BestWeights
from ffnlp.training.callbacks import Callback
from ffnlp.training.checkpoint import CheckpointWriter
from ffnlp.training.config import TrainConfig
from ffnlp.training.diagnostics import TrainingDiagnostics
from ffnlp.training.tensorboard import TensorBoardLogger


def configured_callbacks(config: TrainConfig, params: list[torch.Tensor]) -> list[Callback]:
    """The callbacks ``config`` asks for, over the trainable ``params``.

    In this order: at the end of a fit the best weights replace the average; during an evaluation
    the best snapshot is taken before the average makes way for the raw weights."""
    averaging = [WeightAveraging(params, config.ema_decay)] if config.ema_decay > 0 else []
    best = [BestWeights()] if config.restore_best else []
    # nothing at all when off: no hooks on the model, no copies of its weights
    diagnostics = [TrainingDiagnostics()] if config.diagnostics else []
    # last: it logs each record as the other callbacks have completed it
    tensorboard = [TensorBoardLogger(config.tensorboard)] if config.tensorboard else []
    return [
        *averaging,
        *best,
        CheckpointWriter(every_epoch=config.checkpoint),
        *diagnostics,
        *tensorboard,
    ]
