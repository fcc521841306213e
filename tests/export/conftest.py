"""Small trained runs of each exportable kind, shared by the export and quantisation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import ffnlp
from ffnlp.tasks.sample import write_sample

KINDS = {
    "pooled": [
        'model.type="pooled"',
        'features.kind="ids"',
        "features.ngram_range=[1,2]",
        "features.buckets=5000",
        "model.pooled.dim=16",
    ],
    "pooled_subwords_max": [
        'model.type="pooled"',
        'features.kind="ids"',
        "features.ngram_range=[1,2]",
        "features.buckets=5000",
        "features.maxn=4",
        'model.pooled.pooling="mean_max"',
        "model.pooled.dim=8",
        "model.mlp.hidden=[8]",
        'model.mlp.activation="tanh"',
    ],
    "mlp": ['model.type="mlp"', 'features.kind="ngrams"', "model.mlp.hidden=[8]"],
    "logreg": ['model.type="logreg"', 'features.kind="ngrams"'],
    "mlp_nbsvm": [
        'model.type="mlp"',
        'features.kind="ngrams"',
        'features.weighting="nbsvm"',
        "model.mlp.hidden=[8]",
    ],
}


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), sizes=(300, 60, 60))


def multilabel_file(source: Path, target: Path) -> Path:
    """The sample as fastText multi-label lines: its label, plus the tag "neg" on texts that
    say "not" and "short" on texts of under six words."""
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        label, text = line.split(" ", 1)
        tags = [f"__label__{label}"]
        tags += ["__label__neg"] if " not " in f" {text} " else []
        tags += ["__label__short"] if len(text.split()) < 6 else []
        lines.append(" ".join([*tags, text]))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def runs(sample, tmp_path_factory) -> dict[str, Path]:
    """One trained run per entry of KINDS (three epochs each), and a multi-label pooled run."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    ffnlp.train_classifier(
        multilabel_file(sample["train"], root / "ml.train"),
        out=root / "multilabel",
        overrides=[
            *KINDS["pooled"],
            "task.multilabel=true",
            'data.format="fasttext"',
            "train.epochs=3",
            "train.checkpoint=false",
            'train.monitor="train.loss"',
        ],
        seed=1,
    )
    out["multilabel"] = root / "multilabel"
    for name, sets in KINDS.items():
        ffnlp.train_classifier(
            sample["train"],
            dev=sample["dev"],
            out=root / name,
            overrides=[*sets, "train.epochs=3", "train.checkpoint=false"],
            seed=1,
        )
        out[name] = root / name
    return out


@pytest.fixture(scope="session")
def texts(sample) -> list[str]:
    lines = sample["test"].read_text(encoding="utf-8").splitlines()
    # the sample's test texts, an empty text, one of unknown words, a non-ASCII one
    return [line.split(" ", 1)[1] for line in lines] + ["", "zzz qqq", "un film très émouvant"]
