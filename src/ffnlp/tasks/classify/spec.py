"""The classify task as the task registry knows it (see :mod:`ffnlp.tasks.registry`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ffnlp.tasks.classify.config import ClassifyConfig, check_features, classifier_spec
from ffnlp.tasks.classify.data import read_split
from ffnlp.tasks.classify.metrics import MULTILABEL_FIGURES
from ffnlp.tasks.classify.result import Classifier, load
from ffnlp.tasks.classify.train import train_classifier
from ffnlp.tasks.registry import Files, TaskSpec, register_task


def choose_metric(cfg: ClassifyConfig, files: Files, multilabel: bool) -> str | None:
    """Multi-label data is scored by precision at 1 where single-label data is by accuracy."""
    monitor = str(cfg.train.monitor)
    if not monitor.startswith("dev."):
        monitor = "dev.accuracy"
    return "dev.precision_at_1" if multilabel and monitor == "dev.accuracy" else None


def dev_metrics(cfg: ClassifyConfig, multilabel: bool, tuned: Sequence[str]) -> list[str]:
    """loss, accuracy, macro_f1; multi-label: loss and the precision / recall at 1 and 5,
    micro_f1, macro_f1."""
    names = ["loss", *MULTILABEL_FIGURES] if multilabel else ["loss", "accuracy", "macro_f1"]
    return [f"dev.{name}" for name in names]


def shipped_space(cfg: ClassifyConfig) -> str:
    """pooled for a pooled classifier, classify for the others."""
    return "pooled" if cfg.model.type == "pooled" else "classify"


def unused_setting(cfg: ClassifyConfig, tuned: Sequence[str]) -> Callable[[str], str | None]:
    """A [model.X] section that the base configuration's model type does not read."""

    def problem(key: str) -> str | None:
        if not key.startswith("model.") or "model.type" in tuned:
            return None
        section = key.split(".")[1]
        model = classifier_spec(cfg.model.type)
        reads = {"init", "type", "ensemble"} | set(
            getattr(model.config, "__dataclass_fields__", {})
        )
        if section in reads:
            return None
        return (
            f"model.type = {cfg.model.type!r} does not read [model.{section}], so this "
            "parameter would change nothing; tune a base configuration (--config) of a "
            "type that reads it, or leave the key out"
        )

    return problem


def describe(model: Any) -> dict[str, Any]:
    """What ffnlp serve says of a classifier: its model type and labels."""
    return {
        "type": model.config.model.type,
        "labels": list(model.labels.labels),
        "multilabel": model.multilabel,
    }


SPEC = register_task(
    TaskSpec(
        name="classify",
        config=ClassifyConfig,
        train=train_classifier,
        load=load,
        inputs=("train", "dev", "test"),
        metric="dev.accuracy",
        direction="maximize",
        figures=("loss", "accuracy", "macro_f1"),
        commands=("eval", "predict"),
        evaluate=Classifier.evaluate,
        check=check_features,
        read_examples=read_split,
        cheap_trials=True,
        choose_metric=choose_metric,
        dev_metrics=dev_metrics,
        space=shipped_space,
        unused_setting=unused_setting,
        explain="classifier",
        endpoints=("predict",),
        describe=describe,
        result_type="Classifier",
    )
)
