"""bench/lm_lee.py's split of the Lee corpus: the parts docs/lm.md and docs/results.md describe."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.conftest import ROOT, shared_data


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lm_lee", ROOT / "bench" / "lm_lee.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lee_split_is_the_documented_one(tmp_path: Path) -> None:
    corpus = shared_data("lee_corpus/lee_background.cor")
    parts = _bench().write_splits(corpus, tmp_path)
    lines = {k: p.read_text(encoding="utf-8").splitlines() for k, p in parts.items()}
    words = {k: sum(len(line.split()) for line in v) for k, v in lines.items()}
    assert words == {"train": 56129, "dev": 6899, "test": 4693}  # the figures in the docs
    assert lines["train"][0].startswith("hundreds of people have been forced to vacate")
    # lowercased, one sentence a line, apostrophes kept inside words, punctuation apart
    assert all(line == line.lower() and line.strip() for v in lines.values() for line in v)
    assert any("year's" in line.split() for line in lines["train"])
