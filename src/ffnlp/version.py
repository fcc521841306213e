"""The version of ffnlp (the same as pyproject.toml's), low in the layers so that any module may
name it (the ONNX exporter, a study's tune.json) without importing the public API."""

__version__ = "0.1.0"
