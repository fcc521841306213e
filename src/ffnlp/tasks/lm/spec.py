"""The lm task as the task registry knows it (see :mod:`ffnlp.tasks.registry`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ffnlp.tasks.lm.config import LMConfig
from ffnlp.tasks.lm.result import load
from ffnlp.tasks.lm.train import train_lm
from ffnlp.tasks.registry import TaskSpec, register_task


def dev_metrics(cfg: LMConfig, multilabel: bool, tuned: Sequence[str]) -> list[str]:
    """perplexity and loss (an interpolated model: perplexity, the mixture's)."""
    names = ["perplexity"] if cfg.interpolate_with else ["perplexity", "loss"]
    return [f"dev.{name}" for name in names]


def unused_setting(cfg: LMConfig, tuned: Sequence[str]) -> Callable[[str], str | None]:
    """A Kneser-Ney option for a neural LM, a neural one for Kneser-Ney (unless kind is tuned)."""

    def problem(key: str) -> str | None:
        if "kind" in tuned:
            return None
        own = "kneser_ney." if cfg.kind == "kneser_ney" else "model."
        other = "model." if cfg.kind == "kneser_ney" else "kneser_ney."
        if key.startswith(other) or (cfg.kind == "kneser_ney" and key.startswith("train.")):
            return (
                f"kind = {cfg.kind!r} does not read {key} (it reads {own}*); leave the key "
                "out or tune a base configuration of the other kind"
            )
        return None

    return problem


def describe(model: Any) -> dict[str, Any]:
    """What ffnlp serve says of a language model: its kind and vocabulary size."""
    return {"type": model.kind, "vocab_size": len(model.vocab)}


SPEC = register_task(
    TaskSpec(
        name="lm",
        config=LMConfig,
        train=train_lm,
        load=load,
        inputs=("train", "dev", "test"),
        metric="dev.perplexity",
        direction="minimize",
        figures=("perplexity", "loss"),
        commands=("eval", "generate"),
        dev_metrics=dev_metrics,
        space=lambda cfg: "lm",
        unused_setting=unused_setting,
        explain="language_model",
        endpoints=("score", "generate"),
        describe=describe,
        result_type="LanguageModel",
    )
)
