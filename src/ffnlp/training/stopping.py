"""Early stopping as a pure function of the monitored values: (stop, reason)."""

from __future__ import annotations


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
