"""ffnlp: feed-forward neural networks for NLP with PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"
