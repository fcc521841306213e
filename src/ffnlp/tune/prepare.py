"""Before the first trial: every option checked, the base configuration and the space resolved
and checked against each other, the metric settled, the --cv folds made.

:func:`prepare` turns :class:`TuneOptions` (the options of ``ffnlp tune``) into the
:class:`~ffnlp.tune.objective.Plan` every trial follows and the content of ``tune.json``; it
writes nothing, so a study refused here leaves no folder behind.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, DataError
from ffnlp.folders.layout import TUNE_JSON
from ffnlp.outputs import check_output_dir
from ffnlp.tune import tasks
from ffnlp.tune.objective import Fold, Plan
from ffnlp.tune.space import Space, check_space, parse_space, space_path
from ffnlp.version import __version__

DIRECTIONS = ("maximize", "minimize")
AUTO_TRIAL_SEEDS = 3  # --trial-seeds auto for classify without --cv
CV_DEV_FRACTION = 0.1  # --cv: the share of each round's training part that stops it early
AUTO_RESCORE = 5  # --rescore auto for classify without --cv: front-runners re-scored
AUTO_RESCORE_SEEDS = 5  # fresh seeds each
logger = logging.getLogger(__name__)
# data options that decide how --train is read: with --cv it is read once, so not tunable
READ_KEYS = (
    "data.format",
    "data.encoding",
    "data.text_column",
    "data.label_column",
    "data.label_separator",
    "data.skip_invalid",
)


@dataclass
class TuneOptions:
    """The options of ``ffnlp tune`` (see ``ffnlp tune --help``)."""

    task: str
    out: Path
    space: str | Path = "auto"
    config: Path | None = None
    overrides: cfgmod.Settings | list[str] = field(default_factory=list)  # --set: typed or text
    inputs: tasks.Inputs = field(default_factory=tasks.Inputs)
    trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    seed: int = 0
    pruner: str = "median"
    keep: str = "best"
    refit: bool = False
    refit_on: str = "train+dev"
    seeds: int = 0
    trial_seeds: int | str = "auto"  # runs per trial (seeds train.seed, +1, ...); auto: see below
    metric: str | None = None
    direction: str | None = None
    base_trial: bool = True  # a new study's first trial is the base configuration
    rescore: int | str = "auto"  # front-runners re-scored with fresh seeds; auto: see below
    rescore_seeds: int = AUTO_RESCORE_SEEDS
    heartbeat: int = 10  # seconds between a worker's heartbeats; silent for 2x: dead
    retries: int = 1  # times a dead worker's trial is queued again
    total_trials: int | None = None  # the study's trials, all workers together
    command: list[str] = field(default_factory=list)


def prepare(options: TuneOptions) -> tuple[Plan, dict[str, Any]]:
    """Check every option, the space against the task's configuration, the metric; read the
    data that --cv folds. The plan of the trials and tune.json's content; nothing is written."""
    o = options
    tasks.check_task(o.task)
    _check_options(o)
    check_output_dir(o.out, "--out", links=False)
    if o.storage is not None:
        check_storage(o.storage)
    trial_seeds, why = resolve_trial_seeds(o.task, o.inputs, o.trial_seeds, o.out)
    logger.info("each trial trains %d seed(s): %s", trial_seeds, why)
    given = cfgmod.settings_of(o.overrides, "overrides", "TuneOptions")
    pre = tasks.resolve(o.task, o.config, given)
    space, space_problems = parse_space(space_path(o.space, tasks.shipped_space(o.task, pre)))
    clash = sorted(set(given) & set(space.keys))
    if clash:
        raise ConfigError(
            f"--set {clash[0]} fixes a parameter that the space {space.source} tunes; leave "
            "out one of them"
        )
    monitored = sorted({"train.monitor", "train.monitor_mode"} & set(space.keys))
    if monitored:
        raise ConfigError(
            f"{space.source}: {monitored[0]} cannot be tuned: every trial monitors the metric "
            "the study optimises (--metric, --direction)"
        )
    sets = cfgmod.merge(space.fixed_settings(), tasks.input_settings(o.task, o.inputs, pre), given)
    try:
        base = tasks.resolve(o.task, o.config, sets)
    except ConfigError as exc:  # a [fixed] value the configuration refuses
        everything = space_problems + [f"{space.source} [fixed]: {p}" for p in exc.problems]
        cfgmod.raise_problems(everything, f"in the search space {space.source}")
        raise
    examples = None
    if tasks.reads_examples(o.task):
        assert o.inputs.train is not None
        examples = tasks.read_labelled(o.task, o.inputs.train, base)
    multilabel = bool(examples is not None and examples.multilabel)
    metric = o.metric or tasks.default_metric(o.task, base, o.inputs, multilabel)
    tasks.check_metric(
        metric,
        tasks.dev_metrics(o.task, base, multilabel, space.keys),
        o.task,
        "--metric" if o.metric else "the metric (train.monitor; choose another with --metric)",
    )
    direction = o.direction or tasks.direction_of(metric)
    sets = cfgmod.merge(sets, {"train.monitor": metric})
    if direction != tasks.direction_of(metric):
        sets = cfgmod.merge(sets, {"train.monitor_mode": direction[:3]})
    base_data = cfgmod.load_config_file(o.config) if o.config is not None else {}
    check_space(
        space,
        tasks.config_class(o.task),
        base_data,
        sets,
        tasks.config_check(o.task),
        tasks.unused_param(o.task, base, space.keys),
        space_problems,
    )
    _check_seed_range(space, base, trial_seeds, resolve_rescore(o.task, o.inputs, o.rescore), o)
    folds = None
    if o.inputs.cv:
        assert examples is not None
        folds = _folds(examples, o.inputs.cv, o.seed, space)
    out = Path(o.out).resolve()
    plan = Plan(o.task, space, o.config, sets, o.inputs, metric, direction, out, folds=folds)
    plan.trial_seeds = trial_seeds
    plan.rescore = resolve_rescore(o.task, o.inputs, o.rescore)
    plan.rescore_seeds = o.rescore_seeds
    plan.total_trials = o.total_trials
    meta = _meta(o, plan, space, tasks.resolve(o.task, o.config, sets))
    meta.update(trial_seeds=trial_seeds, trial_seeds_reason=why)
    meta["rescore"] = {"candidates": plan.rescore, "seeds": plan.rescore_seeds}
    return plan, meta


def resolve_trial_seeds(
    task: str, inputs: tasks.Inputs, requested: int | str, out: Path | None = None
) -> tuple[int, str]:
    """How many seeds each trial trains (``--trial-seeds``), and why. ``auto``: what a study
    continued in ``out`` has used so far, else 3 for classify without --cv (cheap trials scored
    on a small, noisy dev set, where one seed's luck would choose the configuration) and 1 for
    lm, w2v and with --cv (longer trials; the folds already average)."""
    if requested != "auto":
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ConfigError(
                f"--trial-seeds must be auto or a whole number of at least 1; got {requested!r}"
            )
        if inputs.cv and requested > 1:
            raise ConfigError(
                f"--trial-seeds {requested} with --cv: each trial already averages its "
                f"{inputs.cv} folds; leave out --trial-seeds (auto: 1 with --cv) or --cv"
            )
        return requested, f"--trial-seeds {requested}"
    before = _trial_seeds_so_far(out)
    if before is not None:
        return before, f"auto: {before}, as in the trials of the study continued in {out}"
    if tasks.cheap_trials(task) and not inputs.cv:
        return AUTO_TRIAL_SEEDS, (
            f"auto: {AUTO_TRIAL_SEEDS} for {task} without --cv (cheap trials scored on a "
            "small, noisy dev set: the mean over seeds keeps one seed's luck from choosing)"
        )
    if inputs.cv:
        return 1, "auto: 1 with --cv (the folds already average each trial)"
    return 1, f"auto: 1 for {task} (longer trials with steadier dev figures)"


def resolve_rescore(task: str, inputs: tasks.Inputs, requested: int | str) -> int:
    """How many front-runners are re-scored with fresh seeds (``--rescore``). ``auto``: 5 for
    classify without --cv (cheap trials, a noisy dev set, hundreds of trials to pick from),
    0 for lm, w2v (trials of minutes) and with --cv."""
    if requested != "auto":
        return int(requested)
    return AUTO_RESCORE if tasks.cheap_trials(task) and not inputs.cv else 0


def _trial_seeds_so_far(out: Path | None) -> int | None:
    """The seeds per trial of the study in ``out`` (1 for a study from before --trial-seeds);
    None when there is none (or its tune.json cannot be read: the folder check says so)."""
    path = Path(out) / TUNE_JSON if out is not None else None
    if path is None or not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = old.get("trial_seeds", 1) if isinstance(old, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _check_options(o: TuneOptions) -> None:
    from ffnlp.text.readers import input_problems
    from ffnlp.tune.pruning import PRUNERS
    from ffnlp.tune.results import KEEPS, REFIT_ON

    problems = tasks.input_problems(o.task, o.inputs)
    for option, value, allowed in (
        ("--pruner", o.pruner, PRUNERS),
        ("--keep", o.keep, KEEPS),
        ("--refit-on", o.refit_on, REFIT_ON),
    ):
        if value not in allowed:
            problems.append(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    if o.direction is not None and o.direction not in DIRECTIONS:
        problems.append(f"--direction must be maximize or minimize; got {o.direction!r}")
    if o.trials is not None and o.trials < 0:
        problems.append(f"--trials must be 0 or more; got {o.trials}")
    if o.timeout is not None and not o.timeout > 0:
        problems.append(f"--timeout must be a positive number of seconds; got {o.timeout}")
    if o.seeds < 0:
        problems.append(f"--seeds must be 0 or more; got {o.seeds}")
    if isinstance(o.seed, bool) or not isinstance(o.seed, int) or o.seed < 0:
        problems.append(f"--seed must be a whole number, 0 or more; got {o.seed!r}")
    if o.heartbeat < 1:
        problems.append(f"--heartbeat must be at least 1 second; got {o.heartbeat}")
    if o.retries < 0:
        problems.append(f"--retries must be 0 or more; got {o.retries}")
    if o.total_trials is not None and o.total_trials < 1:
        problems.append(f"--total-trials must be at least 1; got {o.total_trials}")
    if not tasks.can_test(o.task) and (o.refit or o.seeds):
        problems.append(
            "--refit and --seeds retrain the best configuration and score it on --test, which "
            f"{o.task} does not have; the best run is in DIR/trials (kept whole with --keep best)"
        )
    if o.rescore != "auto" and (
        isinstance(o.rescore, bool) or not isinstance(o.rescore, int) or o.rescore < 0
    ):
        problems.append(f"--rescore must be auto or a whole number, 0 or more; got {o.rescore!r}")
    elif o.rescore not in ("auto", 0) and o.inputs.cv:
        problems.append(
            "--rescore trains the front-runners with fresh seeds on --dev, which --cv does not "
            "have (its folds already average each trial); leave out --rescore or --cv"
        )
    if o.rescore_seeds < 1:
        problems.append(f"--rescore-seeds must be at least 1; got {o.rescore_seeds}")
    if o.inputs.cv and o.seeds and o.inputs.test is None:
        problems.append("--seeds with --cv scores the seeds on --test: pass --test")
    cfgmod.raise_problems(problems, "in the options of ffnlp tune")
    files = input_problems(dict(o.inputs.files()))
    cfgmod.raise_problems(files, "with the input files", error=DataError)


def check_storage(url: str) -> None:
    """``--storage URL``: a database URL whose study outlives this process. An in-memory SQLite
    database is refused (the study, which later runs continue and ``ffnlp report`` reads, would
    vanish when the process ends, and the workers could not share it); a SQLite file needs an
    existing folder, and is not a folder or a symbolic link itself. A journal file
    (``journal:PATH``) is checked by :func:`ffnlp.tune.storage.parse`."""
    if url.strip().startswith("journal:"):
        return
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # Optuna's dependency: its absence is said by require_optuna
        return
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"--storage {url!r} is not a database URL; give one like "
            "sqlite:///path/to/study.db or postgresql://user@host/db"
        ) from None
    if not parsed.drivername.startswith("sqlite"):
        return
    database = parsed.database or ""
    mode = str(parsed.query.get("mode", ""))
    if database in ("", ":memory:") or database.startswith("file::memory:") or mode == "memory":
        raise ConfigError(
            f"--storage {url} is an in-memory database, which ends with this process; a study "
            "must last (a later run continues it, ffnlp report reads it): leave out --storage "
            "(DIR/study.db) or name a file, like sqlite:///path/to/study.db"
        )
    path = Path(database.removeprefix("file:").split("?", 1)[0])
    if path.is_symlink():
        raise ConfigError(
            f"--storage {url}: {path} is a symbolic link; ffnlp does not write through links: "
            "name the database file itself"
        )
    if path.is_dir():
        raise ConfigError(f"--storage {url}: {path} is a folder; name a database file in it")
    if not path.parent.is_dir():
        raise ConfigError(
            f"--storage {url}: the folder {path.parent} does not exist; make it first, or name "
            "a file in an existing folder"
        )


def _check_seed_range(
    space: Space, base: Any, trial_seeds: int, rescore: int, o: TuneOptions
) -> None:
    """The seeds the study trains (train.seed, +1, ... for --trial-seeds, then the fresh ones of
    --rescore) stay within what a seed can be."""
    from ffnlp.training.config import MAX_SEED

    highest = int(base.train.seed)
    for p in space.params:
        if p.key == "train.seed":
            values = [v for v in p.values_to_check() if isinstance(v, int)]
            highest = max([highest, *values])
    last = highest + trial_seeds - 1 + (o.rescore_seeds if rescore else 0)
    if last > MAX_SEED:
        raise ConfigError(
            f"train.seed {highest} leaves no room for the study's seeds (train.seed + "
            f"{last - highest}, for --trial-seeds and --rescore-seeds); a seed is at most "
            f"{MAX_SEED}: choose a smaller train.seed"
        )


def _folds(examples: Any, k: int, seed: int, space: Space) -> list[Fold]:
    """The k stratified folds of --train, each with a stratified tenth of its training part
    held out as its dev data (as ``ffnlp classify cv`` does)."""
    import numpy as np

    from ffnlp.experiments.cv import split_off, strata, stratified_folds, subset

    read = [key for key in space.keys if key in READ_KEYS]
    if read:
        raise ConfigError(
            f"{space.source}: with --cv, --train is read once with the base configuration's "
            f"[data] options, so {read[0]} cannot be tuned; fix it with --set or --config"
        )
    keys = strata(examples)
    smallest = min(keys.count(label) for label in set(keys))
    if smallest < k and not examples.multilabel:
        raise DataError(
            f"{examples.path}: a class has only {smallest} example(s), fewer than the {k} folds "
            f"of --cv; use at most {smallest} folds"
        )
    everything = np.arange(len(examples))
    folds = []
    for i, held_out in enumerate(stratified_folds(keys, k, seed)):
        rest, dev = split_off(keys, np.setdiff1d(everything, held_out), CV_DEV_FRACTION, seed + i)
        folds.append(
            Fold(subset(examples, rest), subset(examples, dev), subset(examples, held_out))
        )
    return folds


def _meta(o: TuneOptions, plan: Plan, space: Space, base: Any) -> dict[str, Any]:
    """tune.json's content."""
    from ffnlp.tune.pruning import pruner_settings
    from ffnlp.tune.sampling import TrialSeededTPE
    from ffnlp.tune.storage import parse

    out = plan.out
    storage = parse(o.storage, out).shown  # checked here: a bad --storage writes nothing
    inputs = {k.lstrip("-"): str(v) for k, v in plan.inputs.files().items() if v is not None}
    scored = {k: v for k, v in inputs.items() if k != "test"}  # a later session may add --test
    return {
        "kind": "study",
        "task": o.task,
        "metric": plan.metric,
        "direction": plan.direction,
        "study_name": o.study_name or out.name,
        "storage": storage,
        "storage_given": o.storage is not None,
        "space": space.spec(),
        "space_file": str(space.source),
        "base_config": str(o.config) if o.config is not None else None,
        "base": cfgmod.to_dict(base),
        "settings": cfgmod.settings_of(o.overrides, "overrides", "TuneOptions"),
        "inputs": inputs,
        "scored_on": scored,
        "cv": plan.inputs.cv,
        "sampler": TrialSeededTPE(o.seed).settings(),
        "pruner": pruner_settings(o.pruner),
        "command": list(o.command),
        "ffnlp_version": __version__,
    }
