"""Task registry: a task's name -> what the rest of ffnlp needs to know of it (:class:`TaskSpec`).

The mirror of :mod:`ffnlp.models.registry`. Each task package declares one ``TaskSpec`` (in its
``spec.py``, imported by its ``__init__.py``) and registers it with :func:`register_task`; the
places that handle every task (``ffnlp.load``, ``ffnlp repeat``, ``ffnlp tune``, ``ffnlp explain``,
the server, the run-folder checks) ask :func:`spec` instead of testing ``task == ...``.

A new task is one package plus one ``register_task(TaskSpec(...))`` line: its name in
:data:`BUILTIN_TASKS` for a task of ffnlp, or an import of its package for one defined elsewhere
(``tests/tasks/toy_regression`` is such a task).

The hooks a spec may leave as None are what only some tasks have (a configuration check beyond
the configuration's own, labelled data that ``tune --cv`` folds, a task's own rule for its
default metric, ...); the defaults are what a task with train/dev/test files and a ``[train]``
section monitored on dev needs.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ffnlp.errors import ConfigError

# the task packages of ffnlp (imported on first use of the registry: they register themselves)
BUILTIN_TASKS = ("classify", "lm", "w2v")

Files = Mapping[str, "Path | None"]  # a command's data options: "train", "dev", ... -> file


@dataclass(frozen=True)
class TaskSpec:
    """What the registry knows of one task."""

    name: str  # model.json's and summary.json's "task"; the CLI's command group
    config: type  # the configuration dataclass (frozen, with a [train] section)
    train: Callable[..., Any]  # the recipe: train(first input, *other inputs=, config=, ...)
    load: Callable[[Path], Any]  # a finished run folder -> the trained object
    # the recipe's data parameters, the first positional; "dev" and "test" are scored splits
    inputs: tuple[str, ...] = ("train", "dev", "test")
    metric: str = "dev.loss"  # what a study optimises when train.monitor is not a dev metric
    direction: str = "minimize"  # of ``metric``
    figures: tuple[str, ...] = ("loss",)  # the dev/test figures of its summary.json
    commands: tuple[str, ...] = ("train",)  # its CLI verbs (ffnlp NAME VERB) that read a run
    trainer: str = ""  # the recipe's public name, for messages ("" = train's __name__)
    # the figures of a trained object on data (a file, or examples in memory): tune --cv
    # scores each fold's held-out part with it; None: the object's own evaluate(data)
    evaluate: Callable[[Any, Any], dict[str, Any]] | None = None
    check: Callable[[Any], None] | None = None  # a check of a resolved config beyond its own
    tune_inputs: tuple[str, ...] = ()  # data options ffnlp tune takes beside ``inputs``
    # tune: the task's own check of its data options (files) -> problems; None: the usual one
    input_problems: Callable[[Files], list[str]] | None = None
    # data read with the [data] options of the config (--format, --encoding, --skip-invalid):
    # a file -> examples, for tune --cv folds and multi-label detection; None: files as they are
    read_examples: Callable[[Path, Any], Any] | None = None
    cheap_trials: bool = False  # tune: seconds per trial, a noisy dev set (auto seeds, rescore)
    # tune: the task's own default metric (cfg, files, multilabel) -> metric, None for the rule
    choose_metric: Callable[[Any, Files, bool], str | None] | None = None
    # tune: the dev metrics a trial reports (cfg, multilabel, tuned keys); None: from figures
    dev_metrics: Callable[[Any, bool, Sequence[str]], list[str]] | None = None
    space: Callable[[Any], str] | None = None  # tune --space auto: the shipped space's name
    # tune: why a tuned key would change nothing for this base config (cfg, tuned) -> check
    unused_setting: Callable[[Any, Sequence[str]], Callable[[str], str | None]] | None = None
    # tune: settings the data options stand for (files, cfg) -> {dotted key: value}
    input_settings: Callable[[Files, Any], dict[str, Any]] | None = None
    explain: str = ""  # the network ffnlp explain shapes draws: classifier, language_model,
    # word_vectors ("": none)
    endpoints: tuple[str, ...] = ()  # ffnlp serve: its /v1/<run>/... endpoints
    result_type: str = ""  # the class name of the trained object (what serve is given)
    # ffnlp serve: what GET /v1/models says of a trained object beside its name and endpoints
    describe: Callable[[Any], dict[str, Any]] | None = None

    @property
    def command_line(self) -> str:
        """ "ffnlp lm eval/generate": the commands that read a run of the task."""
        return f"ffnlp {self.name} {'/'.join(self.commands)}"

    @property
    def trainer_name(self) -> str:
        return self.trainer or getattr(self.train, "__name__", f"train ({self.name})")

    def score(self, result: Any, data: Any) -> dict[str, Any]:
        """The figures of the trained object ``result`` on ``data``."""
        if self.evaluate is not None:
            return self.evaluate(result, data)
        figures: dict[str, Any] = result.evaluate(data)
        return figures

    @property
    def scored_splits(self) -> bool:
        """Whether the recipe scores dev and test files (what ``repeat`` and ``--refit`` need)."""
        return "dev" in self.inputs and "test" in self.inputs

    def default_metric(self, cfg: Any, files: Files, multilabel: bool = False) -> str:
        """The summary.json key a study optimises unless ``--metric`` says: the task's own rule,
        else the dev metric the configuration monitors, else :attr:`metric`."""
        if self.choose_metric is not None:
            chosen = self.choose_metric(cfg, files, multilabel)
            if chosen is not None:
                return chosen
        monitor = str(cfg.train.monitor)
        return monitor if monitor.startswith("dev.") else self.metric

    def reported_dev_metrics(
        self, cfg: Any, multilabel: bool = False, tuned: Sequence[str] = ()
    ) -> list[str]:
        """The dev metrics a run of ``cfg`` reports (what a study's ``--metric`` may name)."""
        if self.dev_metrics is not None:
            return self.dev_metrics(cfg, multilabel, tuned)
        return [f"dev.{name}" for name in self.figures]


TASKS: dict[str, TaskSpec] = {}


def register_task(task: TaskSpec) -> TaskSpec:
    """Make ``task`` known under its name (a later registration of the name replaces it)."""
    TASKS[task.name] = task
    return task


def spec(name: str) -> TaskSpec:
    """The registered task ``name``; ConfigError with the known names otherwise."""
    found = find(name)
    if found is None:
        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown task {name!r}{hint} Known: {', '.join(names())}")
    return found


def find(name: str) -> TaskSpec | None:
    """The registered task ``name``, None when there is none. For a task of ffnlp only its own
    package is imported (`ffnlp classify train` loads neither lm nor w2v)."""
    if name in BUILTIN_TASKS:
        importlib.import_module(f"ffnlp.tasks.{name}")
    else:
        _load_builtin()
    return TASKS.get(name)


def names() -> list[str]:
    """The registered tasks' names: ffnlp's own first (in :data:`BUILTIN_TASKS` order)."""
    _load_builtin()
    return [*BUILTIN_TASKS, *sorted(set(TASKS) - set(BUILTIN_TASKS))]


def specs() -> list[TaskSpec]:
    """Every registered task, in :func:`names` order."""
    return [TASKS[name] for name in names()]


def of_result(obj: object) -> TaskSpec:
    """The task whose trained object ``obj`` is (by its class name)."""
    kind = type(obj).__name__
    for task in specs():
        if task.result_type == kind:
            return task
    raise ConfigError(f"{kind} is not the trained object of a registered task")


def listed(words: Sequence[str], last: str = "and") -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def _load_builtin() -> None:
    """Import the task packages so their register_task lines run (once: later imports are
    look-ups in sys.modules)."""
    for name in BUILTIN_TASKS:
        importlib.import_module(f"ffnlp.tasks.{name}")
