"""Tiny synthetic data for the tuner's tests, and a helper that runs a study in-process."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ffnlp.tune.prepare import TuneOptions
from ffnlp.tune.tasks import Inputs
from tests.extras import reason
from tests.tune.postgres import Server, server

POSITIVE = ["good", "great", "fun", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "dull", "boring", "poor"]
FILLER = ["the", "film", "a", "movie", "is", "was", "plot", "acting", "and", "very"]
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park"]
GROUPS = [
    ["king", "queen", "prince", "princess"],
    ["car", "bus", "train", "truck"],
    ["red", "blue", "green", "yellow"],
]
# a small classifier that trains in well under a second per trial
SMALL_CLASSIFIER = ['model.type="mlp"', "train.epochs=3", "train.threads=1", "train.batch_size=32"]
SMALL_LM = [
    "model.embedding_dim=8",
    "model.hidden_sizes=[16]",
    "train.epochs=2",
    "train.batch_size=64",
    "train.threads=1",
    "samples=0",
]
SMALL_W2V = [
    "model.min_count=1",
    "train.epochs=2",
    "train.batch_size=64",
    "model.workers=1",
    "corpus.prefetch=false",
]
CLASSIFY_SPACE = """
["train.lr"]
type = "float"
low = 1e-3
high = 0.3
log = true

["model.mlp.hidden"]
type = "categorical"
choices = [[], [8], [16, 8]]

["model.mlp.activation"]
type = "categorical"
choices = ["relu", "tanh"]
"""


def _review(rng: random.Random, label: str) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
    noisy = rng.random() < 0.15  # some wrong labels: no configuration is perfect
    return f"{int(label != noisy)} {' '.join(words)}"


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_data(tmp_path_factory.mktemp("tune_data"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A real PostgreSQL server for the session (see tests/tune/postgres.py); skips, saying
    why, where its programs are not installed."""
    pytest.importorskip("psycopg", reason=reason("psycopg"))
    with server() as found:
        if isinstance(found, str):
            pytest.skip(found)
        yield found


def write_data(root: Path) -> dict[str, Path]:
    """classify (train/dev/test), lm (lm_train/lm_dev/lm_test), w2v (corpus, similarity), and
    a 3-parameter classify space."""
    rng = random.Random(0)
    paths: dict[str, Path] = {}
    for name, n in (("train", 200), ("dev", 60), ("test", 60)):
        lines = [_review(rng, label=bool(i % 2)) for i in range(n)]
        paths[name] = root / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name, n in (("lm_train", 120), ("lm_dev", 20), ("lm_test", 20)):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]
        paths[name] = root / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    sentences = []
    for _ in range(300):
        group = rng.choice(GROUPS)
        words = [rng.choice(group) if rng.random() < 0.7 else rng.choice(FILLER) for _ in range(8)]
        sentences.append(" ".join(words))
    paths["corpus"] = root / "corpus.txt"
    paths["corpus"].write_text("\n".join(sentences) + "\n", encoding="utf-8")
    pairs = [(g[i], g[j], 8.0 + i / 4) for g in GROUPS for i in range(4) for j in range(i + 1, 4)]
    pairs += [(a, b, 1.0 + len(a) / 10) for a in GROUPS[0] for b in GROUPS[1][:2]]
    paths["similarity"] = root / "sim.txt"
    paths["similarity"].write_text(
        "\n".join(f"{a}\t{b}\t{s:.2f}" for a, b, s in pairs) + "\n", encoding="utf-8"
    )
    paths["space"] = root / "space.toml"
    paths["space"].write_text(CLASSIFY_SPACE, encoding="utf-8")
    return paths


def classify_options(data: dict[str, Path], out: Path, **changes: Any) -> TuneOptions:
    """A small classify study: 3 trials of the 3-parameter space, scored on dev, one run per
    trial (--trial-seeds 1: the tests of several seeds per trial say so), no re-scoring."""
    inputs = changes.pop("inputs", Inputs(train=data["train"], dev=data["dev"]))
    options: dict[str, Any] = {
        "task": "classify",
        "out": out,
        "space": data["space"],
        "overrides": list(SMALL_CLASSIFIER),
        "inputs": inputs,
        "trials": 3,
        "keep": "all",
        "pruner": "none",  # every trial runs to its end (pruning has its own test)
        "trial_seeds": 1,
        "rescore": 0,  # the re-scoring has its own tests
    }
    options.update(changes)
    return TuneOptions(**options)
