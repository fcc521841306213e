"""Tests of optional parts skip, naming the extra that installs what they need.

`pip install -e .` plus pytest gives a suite with no collection error: every test that needs a library
of an optional extra (or a test-only library of the dev extra) skips and says which extra to install.
`pip install -e ".[dev]"` (the README's install command) installs them all, so that nothing skips
there but for missing data.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

# the extra of pyproject.toml that installs each optional top-level module the tests import
EXTRA_OF = {
    "optuna": "tune",
    "psycopg": "postgres",
    "tensorboard": "tensorboard",
    "pyarrow": "parquet",
    "sklearn": "sklearn",
    "hypothesis": "dev",
    "gensim": "dev",
    "fasttext": "dev",
    "kenlm": "dev",
}


def reason(module: str) -> str:
    """The skip reason for a missing module: which extra brings it, and the command."""
    top = module.split(".")[0]
    extra = EXTRA_OF[top]
    return f"needs {top}, from the '{extra}' extra: pip install -e '.[{extra}]'"


def needs(module: str) -> ModuleType:
    """Import `module`, or skip the calling test (or module) naming the extra to install."""
    return pytest.importorskip(module, reason=reason(module))


def has(module: str) -> bool:
    """Whether `module` can be imported (for skipif marks)."""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def needs_mark(module: str) -> pytest.MarkDecorator:
    """A skipif mark for a test that reaches `module` through ffnlp (a command, a recipe)."""
    return pytest.mark.skipif(not has(module), reason=reason(module))
