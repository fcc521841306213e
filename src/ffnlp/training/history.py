"""History: every record the trainer logs, in order; callbacks read it, metrics.jsonl mirrors it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class History:
    def __init__(self, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = list(records or [])
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self.best_value: float | None = None

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    @property
    def epochs(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["event"] == "epoch"]

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        return [r for r in self.records if "dev" in r]

    @property
    def last(self) -> dict[str, Any] | None:
        return self.records[-1] if self.records else None

    @property
    def best(self) -> dict[str, Any] | None:
        for r in self.evaluations:
            if r["step"] == self.best_step:
                return r
        return None

    @staticmethod
    def value(record: dict[str, Any], dotted: str) -> float | None:
        """``record["dev"]["accuracy"]`` for dotted = "dev.accuracy"; None when absent."""
        node: Any = record
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node) if isinstance(node, (int, float)) else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "best_value": self.best_value,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state["records"])
        self.best_epoch, self.best_step = state["best_epoch"], state["best_step"]
        self.best_value = state["best_value"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
