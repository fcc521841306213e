"""docs/tuning.md names real configuration keys: every dotted key it quotes exists in the
configuration of at least one task (a renamed key fails here, not in a reader's shell)."""

from __future__ import annotations

import re
from typing import Any

from ffnlp.config import to_dict
from ffnlp.tasks.classify.config import ClassifyConfig
from ffnlp.tasks.lm.config import LMConfig
from ffnlp.tasks.w2v.config import W2VConfig
from tests.conftest import ROOT

KEY = re.compile(r"`((?:train|model|features|loss|task|data|corpus|evaluation)\.[a-z0-9_.]+)`")


def _has(tree: dict[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_key_in_docs_tuning_exists() -> None:
    text = (ROOT / "docs" / "tuning.md").read_text(encoding="utf-8")
    keys = set(KEY.findall(text))
    assert len(keys) > 30  # the tables were read
    trees = [to_dict(ClassifyConfig()), to_dict(LMConfig()), to_dict(W2VConfig())]
    unknown = sorted(k for k in keys if not any(_has(tree, k) for tree in trees))
    assert unknown == []
