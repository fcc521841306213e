"""The w2v task as the task registry knows it (see :mod:`ffnlp.tasks.registry`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ffnlp.tasks.registry import Files, TaskSpec, register_task
from ffnlp.tasks.w2v.config import W2VConfig
from ffnlp.tasks.w2v.result import load
from ffnlp.tasks.w2v.train import train_word2vec


def input_problems(files: Files) -> list[str]:
    """What ``ffnlp tune w2v`` needs: the corpus, and the similarity file that scores a trial."""
    problems = []
    if files.get("corpus") is None:
        problems.append("ffnlp tune w2v needs --corpus (the text to train the vectors on)")
    if files.get("similarity") is None:
        problems.append(
            "ffnlp tune w2v scores each trial by the Spearman correlation of its vectors "
            "with human similarity judgements: pass --similarity FILE (e.g. "
            "../shared/data/word_similarity/wordsim353.tsv)"
        )
    return problems


def choose_metric(cfg: W2VConfig, files: Files, multilabel: bool) -> str:
    """The Spearman correlation with the --similarity file."""
    similarity = files.get("similarity")
    assert similarity is not None  # input_problems refused a study without it
    return f"dev.spearman_{Path(similarity).stem}"


def dev_metrics(cfg: W2VConfig, multilabel: bool, tuned: Any) -> list[str]:
    """spearman_<stem> of each similarity file (a fastText model, or one whose ``model.type``
    is tuned, also spearman_subwords_<stem>)."""
    stems = [Path(f).stem for f in cfg.evaluation.similarity]
    names = [f"spearman_{stem}" for stem in stems]
    if cfg.model.type == "fasttext" or "model.type" in tuned:
        names += [f"spearman_subwords_{stem}" for stem in stems]
    return [f"dev.{name}" for name in names]


def input_settings(files: Files, cfg: W2VConfig) -> dict[str, Any]:
    """The --similarity file is evaluated after every epoch (first, so that it is the one
    monitored; the configuration's other files stay)."""
    similarity = files.get("similarity")
    if similarity is None:
        return {}
    evaluated = [str(similarity)]
    evaluated += [f for f in cfg.evaluation.similarity if Path(f) != Path(similarity)]
    return {"evaluation.similarity": evaluated}


def describe(model: Any) -> dict[str, Any]:
    """What ffnlp serve says of word vectors: the model type, vocabulary size, dimension."""
    return {
        "type": model.config.model.type,
        "vocab_size": len(model.vocab),
        "dim": int(model.wv.dim),
    }


SPEC = register_task(
    TaskSpec(
        name="w2v",
        config=W2VConfig,
        train=train_word2vec,
        load=load,
        inputs=("corpus",),
        tune_inputs=("similarity",),
        metric="dev.spearman",
        direction="maximize",
        figures=(),
        commands=("eval", "neighbors", "export"),
        input_problems=input_problems,
        choose_metric=choose_metric,
        dev_metrics=dev_metrics,
        space=lambda cfg: "w2v",
        input_settings=input_settings,
        explain="word_vectors",
        endpoints=("neighbors", "vector"),
        describe=describe,
        result_type="Word2VecRun",
    )
)
