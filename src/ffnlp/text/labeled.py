"""What a reader of labelled data returns: :class:`LabeledData`, the examples of one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_REPORTED_SKIPS = 10  # how many skipped line numbers / messages LabeledData keeps


@dataclass
class LabeledData:
    """Examples read from one file: ``texts[i]`` has label ``labels[i]`` (both strings).

    Multi-label data (an example with several labels, or labels written as a list) also has
    ``label_sets[i]``, every label of example i; ``labels[i]`` is then its first one.
    """

    texts: list[str]
    labels: list[str]
    path: Path
    skipped: int = 0  # malformed lines skipped (only with skip_invalid=True)
    skipped_lines: list[int] = field(default_factory=list)  # the first few of them (1-based)
    format: str = "label-text"  # the format actually used (never "auto")
    problems: list[str] = field(default_factory=list)  # messages for the first few skipped lines
    label_sets: list[tuple[str, ...]] | None = None  # multi-label data: each example's labels
    lines: list[int] = field(default_factory=list)  # line of each example (1-based; [] if unknown)

    def where(self, i: int) -> str:
        """``FILE:LINE`` of example ``i`` (``FILE`` alone when the line is unknown)."""
        return f"{self.path}:{self.lines[i]}" if i < len(self.lines) else str(self.path)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multilabel(self) -> bool:
        """Whether the file held several labels on a line, or labels written as a list."""
        return self.label_sets is not None

    def label_lists(self) -> list[tuple[str, ...]]:
        """Every example's labels: ``label_sets``, or one label each for single-label data."""
        if self.label_sets is not None:
            return self.label_sets
        return [(label,) for label in self.labels]
