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
from ffnlp.folders.layout import SUMMARY
from ffnlp.tasks import registry

if TYPE_CHECKING:
    from ffnlp.text.readers import LabeledData
    from ffnlp.training.callbacks import Callback
    from ffnlp.tune.space import Param

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

    def by_name(self) -> dict[str, Path | None]:
        """The data options without their dashes: "train" -> path (what a TaskSpec names)."""
        return {option.lstrip("-"): path for option, path in self.files().items()}

    def files(self) -> dict[str, Path | None]:
        return {
            "--train": self.train,
            "--dev": self.dev,
            "--test": self.test,
            "--corpus": self.corpus,
            "--similarity": self.similarity,
        }


def check_task(task: str) -> None:
    if registry.find(task) is None:
        import difflib

        known = registry.names()
        close = difflib.get_close_matches(task, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"ffnlp tune tunes {', '.join(known)}; got {task!r}{hint}")


def input_problems(task: str, inputs: Inputs) -> list[str]:
    """The data options missing or out of place for ``task``."""
    spec = registry.spec(task)
    problems: list[str] = []
    files = inputs.by_name()
    given = {f"--{k}" for k, v in files.items() if v is not None}
    if spec.input_problems is not None:
        problems += spec.input_problems(files)
    else:
        if files.get(spec.inputs[0]) is None:
            problems.append(f"ffnlp tune {task} needs --{spec.inputs[0]}")
        if inputs.cv and inputs.dev is not None:
            problems.append(
                "--cv K scores each trial on K folds of --train (each fold is the dev data once); "
                "leave out --dev, or leave out --cv to score on --dev"
            )
        elif inputs.dev is None and not inputs.cv:
            alternative = " (or --cv K: cross-validation of --train)" if _folds(spec) else ""
            problems.append(
                f"ffnlp tune {task} scores each trial on dev data: pass --dev{alternative}; the "
                "test data (--test) is never used to choose"
            )
    wrong = sorted(given - {f"--{name}" for name in (*spec.inputs, *spec.tune_inputs)})
    if inputs.cv and not _folds(spec):
        folded = registry.listed([t.name for t in registry.specs() if _folds(t)])
        problems.append(f"--cv is for {folded} (ffnlp tune {task} scores on --dev)")
    if inputs.cv and inputs.cv < 2:
        problems.append(f"--cv needs at least 2 folds; got {inputs.cv}")
    problems += [f"{option} is not an option of ffnlp tune {task}" for option in wrong]
    return problems


def _folds(spec: registry.TaskSpec) -> bool:
    """Whether ``--cv`` folds the task's training data (its examples can be read and split)."""
    return spec.read_examples is not None


def reads_examples(task: str) -> bool:
    """Whether the task's data files are read into examples (labelled data) with the
    configuration's [data] options: what --cv folds, what --format / --encoding set."""
    return _folds(registry.spec(task))


def can_test(task: str) -> bool:
    """Whether the task scores a test file (what --refit and --seeds report)."""
    return registry.spec(task).scored_splits


def testable() -> str:
    """ "classify and lm": the tasks that score a test file."""
    return registry.listed([spec.name for spec in registry.specs() if spec.scored_splits])


def cheap_trials(task: str) -> bool:
    """Whether a trial of the task takes seconds and is scored on a small, noisy dev set."""
    return registry.spec(task).cheap_trials


def config_class(task: str) -> type:
    return registry.spec(task).config


def config_check(task: str) -> Callable[[Any], None] | None:
    """The task's own check of a resolved configuration (beyond the config's), if any."""
    return registry.spec(task).check


def resolve(task: str, config: Any, settings: cfgmod.Settings) -> Any:
    """The task's configuration: defaults -> ``config`` (file, dict or instance) -> settings,
    with the task's own check."""
    cfg: Any = cfgmod.resolve(config_class(task), config, settings)
    check = config_check(task)
    if check is not None:
        check(cfg)
    return cfg


def input_settings(task: str, inputs: Inputs, config: Any) -> dict[str, Any]:
    """Settings the data options stand for (w2v's --similarity file is evaluated after every
    epoch, first, so that it is the one monitored; the configuration's other files stay)."""
    settings = registry.spec(task).input_settings
    if settings is None:
        return {}
    return dict(settings(inputs.by_name(), config))


def default_metric(task: str, cfg: Any, inputs: Inputs, multilabel: bool = False) -> str:
    """The summary.json key a study optimises unless --metric says: the metric the configuration
    monitors (classify: dev.accuracy by default, dev.precision_at_1 for multi-label data),
    dev.perplexity (lm), dev.spearman_<file> of --similarity (w2v)."""
    return registry.spec(task).default_metric(cfg, inputs.by_name(), multilabel)


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
    return registry.spec(task).reported_dev_metrics(cfg, multilabel, tuned)


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
    """The shipped space --space auto picks: pooled for a pooled classifier; the task's name
    for a task without one (whose file --space auto then says is missing)."""
    space = registry.spec(task).space
    return space(cfg) if space is not None else task


def unused_param(task: str, cfg: Any, tuned: Sequence[str]) -> Callable[[Param], str | None]:
    """A check of each space parameter: a problem when the base configuration would not read it
    (a [model.X] section the model type ignores, a Kneser-Ney option for a neural LM), unless
    the type itself is tuned too."""
    unused = registry.spec(task).unused_setting
    check = unused(cfg, tuned) if unused is not None else None

    def problem(param: Param) -> str | None:
        return check(param.key) if check is not None else None

    return problem


# --------------------------------------------------------------------------------- training


def read_labelled(task: str, path: Path, cfg: Any) -> LabeledData:
    """A data file of ``task`` read with the configuration's [data] options (classify)."""
    read = registry.spec(task).read_examples
    if read is None:
        raise ConfigError(f"the {task} task does not read its data files into examples")
    examples: LabeledData = read(path, cfg)
    return examples


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers among a summary's metrics (not the per-class tables, not the confusion)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def add_to_summary(run_dir: Path, key: str, value: Any) -> None:
    """Set ``key`` in a finished run's summary.json (rewritten atomically)."""
    path = run_dir / SUMMARY
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
    spec = registry.spec(task)
    data = {"train": train, "dev": dev, "test": test, "corpus": corpus}
    first, *rest = spec.inputs
    result = spec.train(
        data[first],
        **{name: data[name] for name in rest},
        config=cfg,
        out=out,
        callbacks=callbacks,
        force=force,
    )
    summary = dict(result.summary)
    if held_out is not None:
        summary["held_out"] = numbers(spec.score(result, held_out))
        add_to_summary(out, "held_out", summary["held_out"])
    return summary
