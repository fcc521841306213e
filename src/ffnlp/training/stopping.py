"""The monitored metric: its value in an evaluation, whether it improved, and early stopping as a
pure function of its values: (stop, reason)."""

from __future__ import annotations

from typing import Any

from ffnlp.errors import TrainingError
from ffnlp.training.history import History


def monitored_value(record: dict[str, Any], monitor: str) -> float:
    """``record["dev"]["accuracy"]`` for monitor = "dev.accuracy"; a clear error when absent."""
    value = History.value(record, monitor)
    if value is None:
        dev = record.get("dev") or {}
        available = ", ".join(f"dev.{k}" for k in dev if not isinstance(dev[k], (dict, list)))
        raise TrainingError(
            f"train.monitor = {monitor!r} is not among the evaluation's metrics; "
            f"choose one of: {available}"
        )
    return value


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def early_stop_decision(
    values: list[float], mode: str, patience: int, min_delta: float, name: str = "the metric"
) -> tuple[bool, str]:
    """Stop when the last ``patience`` evaluations did not improve on the best before them.

    ``values`` are the monitored metric at every evaluation so far, oldest first.
    """
    best: float | None = None
    best_at = -1
    for i, v in enumerate(values):
        if improved(v, best, mode, min_delta):
            best, best_at = v, i
    waited = len(values) - 1 - best_at
    if best is not None and waited >= patience:
        word = "increased" if mode == "max" else "decreased"
        return True, (
            f"Stopped early: {name} has not {word} by more than {min_delta} for {waited} "
            f"evaluations; the best was {best:.4f} at evaluation {best_at + 1}."
        )
    return False, ""
