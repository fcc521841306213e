"""What the tuner needs to know of each task: its configuration, its data options, the metric it
is scored by, which shipped space suits it, and how to train one configuration.

The tuner holds no training code: a trial is a call of the task's recipe
(``train_classifier``, ``train_lm``, ``train_word2vec``) with the trial's configuration, a run
folder and the pruning callback, and never the test data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.fileio import write_atomic

if TYPE_CHECKING:
    from ffnlp.text.readers import LabeledData
    from ffnlp.training.callbacks import Callback
    from ffnlp.tune.space import Param

TASKS = ("classify", "lm", "w2v")
# metrics for which lower is better (as the Trainer's monitor decides)
LOWER_IS_BETTER = ("loss", "perplexity", "nll", "bpc")


@dataclass(frozen=True)
class Inputs:
    """The data a study reads (the options of the task's train command)."""

    train: Path | None = None  # classify, lm
    dev: Path | None = None  # classify (unless cv), lm
    test: Path | None = None  # classify, lm: only ever read by --refit and --seeds
    corpus: Path | None = None  # w2v
    similarity: Path | None = None  # w2v: the word-similarity file that scores a trial
    cv: int = 0  # classify: each trial is a cv-fold cross-validation of train (0 = off)

    def files(self) -> dict[str, Path | None]:
        return {
            "--train": self.train,
            "--dev": self.dev,
            "--test": self.test,
            "--corpus": self.corpus,
            "--similarity": self.similarity,
        }


def check_task(task: str) -> None:
    if task not in TASKS:
        import difflib

        close = difflib.get_close_matches(task, TASKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"ffnlp tune tunes {', '.join(TASKS)}; got {task!r}{hint}")


def input_problems(task: str, inputs: Inputs) -> list[str]:
    """The data options missing or out of place for ``task``."""
    problems: list[str] = []
    given = {k for k, v in inputs.files().items() if v is not None}
    if task == "w2v":
        if inputs.corpus is None:
            problems.append("ffnlp tune w2v needs --corpus (the text to train the vectors on)")
        if inputs.similarity is None:
            problems.append(
                "ffnlp tune w2v scores each trial by the Spearman correlation of its vectors "
                "with human similarity judgements: pass --similarity FILE (e.g. "
                "../shared/data/word_similarity/wordsim353.tsv)"
            )
        wrong = sorted(given & {"--train", "--dev", "--test"})
    else:
        if inputs.train is None:
            problems.append(f"ffnlp tune {task} needs --train")
        if inputs.cv and inputs.dev is not None:
            problems.append(
                "--cv K scores each trial on K folds of --train (each fold is the dev data once); "
                "leave out --dev, or leave out --cv to score on --dev"
            )
        elif inputs.dev is None and not inputs.cv:
            alternative = " (or --cv K: cross-validation of --train)" if task == "classify" else ""
            problems.append(
                f"ffnlp tune {task} scores each trial on dev data: pass --dev{alternative}; the "
                "test data (--test) is never used to choose"
            )
        wrong = sorted(given & {"--corpus", "--similarity"})
    if inputs.cv and task != "classify":
        problems.append(f"--cv is for classify (ffnlp tune {task} scores on --dev)")
    if inputs.cv and inputs.cv < 2:
        problems.append(f"--cv needs at least 2 folds; got {inputs.cv}")
    problems += [f"{option} is not an option of ffnlp tune {task}" for option in wrong]
    return problems


def config_class(task: str) -> type:
    if task == "classify":
        from ffnlp.tasks.classify.config import ClassifyConfig

        return ClassifyConfig
    if task == "lm":
        from ffnlp.tasks.lm.config import LMConfig

        return LMConfig
    from ffnlp.tasks.w2v.config import W2VConfig

    return W2VConfig


def config_check(task: str) -> Callable[[Any], None] | None:
    """The task's own check of a resolved configuration (beyond the config's), if any."""
    if task == "classify":
        from ffnlp.tasks.classify.config import check_features

        return check_features
    return None


def resolve(task: str, config: Any, overrides: Sequence[str]) -> Any:
    """The task's configuration: defaults -> ``config`` (file, dict or instance) -> overrides,
    with the task's own check."""
    cfg: Any = cfgmod.resolve(config_class(task), config, overrides)
    check = config_check(task)
    if check is not None:
        check(cfg)
    return cfg


def input_overrides(task: str, inputs: Inputs, config: Any) -> list[str]:
    """Settings the data options stand for: w2v's --similarity file is evaluated after every
    epoch (first, so that it is the one monitored; the configuration's other files stay)."""
    if task != "w2v" or inputs.similarity is None:
        return []
    files = [str(inputs.similarity)]
    files += [f for f in config.evaluation.similarity if Path(f) != Path(inputs.similarity)]
    return [f"evaluation.similarity={cfgmod.toml_value(files)}"]


def default_metric(task: str, cfg: Any, inputs: Inputs, multilabel: bool = False) -> str:
    """The summary.json key a study optimises unless --metric says: the metric the configuration
    monitors (classify: dev.accuracy by default, dev.precision_at_1 for multi-label data),
    dev.perplexity (lm), dev.spearman_<file> of --similarity (w2v)."""
    if task == "w2v":
        assert inputs.similarity is not None
        return f"dev.spearman_{Path(inputs.similarity).stem}"
    monitor = str(cfg.train.monitor)
    if not monitor.startswith("dev."):
        monitor = "dev.accuracy" if task == "classify" else "dev.perplexity"
    if task == "classify" and multilabel and monitor == "dev.accuracy":
        return "dev.precision_at_1"
    return monitor


def direction_of(metric: str) -> str:
    """maximize, or minimize for a loss or a perplexity (the Trainer's rule)."""
    return "minimize" if metric.split(".", 1)[1] in LOWER_IS_BETTER else "maximize"


def dev_metrics(
    task: str, cfg: Any, multilabel: bool = False, tuned: Sequence[str] = ()
) -> list[str]:
    """The dev metrics a trial of ``task`` with the base configuration ``cfg`` reports (what
    --metric may name): classify loss, accuracy, macro_f1 (multi-label: loss and the
    precision / recall at 1 and 5, micro_f1, macro_f1); lm perplexity and loss (an interpolated
    model: perplexity); w2v spearman_<stem> of each similarity file (a fastText model, or one
    whose ``model.type`` is ``tuned``, also spearman_subwords_<stem>)."""
    if task == "classify":
        from ffnlp.tasks.classify.metrics import MULTILABEL_FIGURES

        names = ["loss", *MULTILABEL_FIGURES] if multilabel else ["loss", "accuracy", "macro_f1"]
    elif task == "lm":
        names = ["perplexity"] if cfg.interpolate_with else ["perplexity", "loss"]
    else:
        stems = [Path(f).stem for f in cfg.evaluation.similarity]
        names = [f"spearman_{stem}" for stem in stems]
        if cfg.model.type == "fasttext" or "model.type" in tuned:
            names += [f"spearman_subwords_{stem}" for stem in stems]
    return [f"dev.{name}" for name in names]


def check_metric(
    metric: str, known: Sequence[str] | None = None, task: str = "", source: str = "--metric"
) -> None:
    """``metric`` names a dev metric (one of ``known``, the metrics the trials report, when
    given): a study that cannot score its trials is refused before the first. ``source``: where
    the metric came from, for the message."""
    if not metric.startswith("dev.") or metric.count(".") != 1:
        raise ConfigError(
            f"--metric must be a dev metric of summary.json, like dev.accuracy or dev.macro_f1 "
            f"(the search never looks at the test data); got {metric!r}"
        )
    if known is not None and metric not in known:
        import difflib

        close = difflib.get_close_matches(metric, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(
            f"{source} {metric}: the trials of this {task} study report "
            f"{', '.join(known) or 'no dev metric'}, not {metric}{hint}; choose one of them"
        )


def shipped_space(task: str, cfg: Any) -> str:
    """The shipped space --space auto picks: pooled for a pooled classifier."""
    if task == "classify":
        return "pooled" if cfg.model.type == "pooled" else "classify"
    return task


def unused_param(task: str, cfg: Any, tuned: Sequence[str]) -> Callable[[Param], str | None]:
    """A check of each space parameter: a problem when the base configuration would not read it
    (a [model.X] section the model type ignores, a Kneser-Ney option for a neural LM), unless
    the type itself is tuned too."""

    def problem(param: Param) -> str | None:
        key = param.key
        if task == "classify" and key.startswith("model.") and "model.type" not in tuned:
            from ffnlp.tasks.classify.config import classifier_spec

            section = key.split(".")[1]
            spec = classifier_spec(cfg.model.type)
            reads = {"init", "type"} | {
                name for name in getattr(spec.config, "__dataclass_fields__", {})
            }
            if section not in reads:
                return (
                    f"model.type = {cfg.model.type!r} does not read [model.{section}], so this "
                    "parameter would change nothing; tune a base configuration (--config) of a "
                    "type that reads it, or leave the key out"
                )
        if task == "lm" and "kind" not in tuned:
            own = "kneser_ney." if cfg.kind == "kneser_ney" else "model."
            other = "model." if cfg.kind == "kneser_ney" else "kneser_ney."
            if key.startswith(other) or (cfg.kind == "kneser_ney" and key.startswith("train.")):
                return (
                    f"kind = {cfg.kind!r} does not read {key} (it reads {own}*); leave the key "
                    "out or tune a base configuration of the other kind"
                )
        return None

    return problem


# --------------------------------------------------------------------------------- training


def read_labelled(path: Path, cfg: Any) -> LabeledData:
    """A classify data file read with the configuration's [data] options."""
    from ffnlp.tasks.classify import read_split

    return read_split(path, cfg)


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers among a summary's metrics (not the per-class tables, not the confusion)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def add_to_summary(run_dir: Path, key: str, value: Any) -> None:
    """Set ``key`` in a finished run's summary.json (rewritten atomically)."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary[key] = value
    write_atomic(path, json.dumps(summary, indent=2), within=run_dir)


def train(
    task: str,
    cfg: Any,
    out: Path,
    callbacks: Sequence[Callback],
    *,
    train: Any = None,
    dev: Any = None,
    test: Any = None,
    corpus: Path | None = None,
    held_out: Any = None,
    force: bool = False,
) -> dict[str, Any]:
    """Train ``cfg`` into the run folder ``out``; its summary. ``train`` / ``dev`` are files or
    (classify) data in memory: cross-validation folds, train+dev; ``test`` is only ever given
    by the refit and the seeds; ``corpus`` is w2v's. ``held_out`` (classify, a --cv fold's
    held-out part) is scored once training is done, into the summary's ``held_out``."""
    if task == "classify":
        from ffnlp.tasks.classify import train_classifier

        clf = train_classifier(
            train, dev=dev, test=test, config=cfg, out=out, callbacks=callbacks, force=force
        )
        summary = dict(clf.summary)
        if held_out is not None:
            summary["held_out"] = numbers(clf.evaluate(held_out))
            add_to_summary(out, "held_out", summary["held_out"])
        return summary
    if task == "lm":
        from ffnlp.tasks.lm import train_lm

        lm = train_lm(
            train, dev=dev, test=test, config=cfg, out=out, callbacks=callbacks, force=force
        )
        return dict(lm.summary)
    from ffnlp.tasks.w2v import train_word2vec

    assert corpus is not None
    run = train_word2vec(corpus, config=cfg, out=out, callbacks=callbacks, force=force)
    return dict(run.summary)
