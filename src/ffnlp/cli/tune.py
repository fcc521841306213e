"""`ffnlp tune TASK`: hyper-parameter search on Optuna (thin: the study is ffnlp.tune.study)."""

import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli.common import print_result, screen, setup_logging
from ffnlp.cli.options import CONFIG_HELP, DATA, Set, data_options, settings, with_options
from ffnlp.cli.options import HelpTable as Help
from ffnlp.errors import Interrupted
from ffnlp.tasks import registry

STUDY = Help(
    {
        "--out": "Study folder (the same one continues the study).",
        "--space": "Search space: a TOML file of config keys and their distributions (see "
        "configs/spaces/), or auto: the shipped space of the task (pooled for a pooled "
        "classifier).",
        "--config": "Base configuration. " + CONFIG_HELP,
        "--train": "classify, lm: training data.",
        "--dev": "classify, lm: dev data; every trial is scored on it.",
        "--test": "classify, lm: test data, read only by --refit and --seeds, never by a trial.",
        "--corpus": "w2v: the text corpus.",
        "--similarity": "w2v: word-similarity file; a trial's score is its Spearman correlation.",
        "--cv": "classify: score each trial by K-fold cross-validation of --train (the mean dev "
        "metric over the folds) instead of on --dev.",
        "--trial-seeds": "Runs per trial, with seeds train.seed, +1, ... "
        "(DIR/trials/NNNN/seed_K/); a trial scores the mean dev metric over them, so that one "
        "seed's luck does not choose the configuration. auto: 3 for classify without --cv, 1 for "
        "lm, w2v and with --cv (a study continued: as before).",
        "--rescore": "After the search, train the K best trials (and the base configuration's) "
        "again with --rescore-seeds fresh seeds; the best configuration is the best mean over them "
        "among the candidates that beat the base on the same seeds (paired t-test, p < 0.05), else "
        "the base (the best of many noisy trials was partly lucky). auto: 5 for classify without "
        "--cv, else 0 (off). The time budget includes it.",
        "--rescore-seeds": "Fresh seeds for each re-scored trial (DIR/rescore/).",
        "--base-trial/--no-base-trial": "A new study's first trial is the base configuration "
        "(--config with --set), where the space can give its values; the study ends with it unless "
        "a trial beats it.",
        "--trials": "Trials this process runs (a rerun adds as many; 0 = none: only the results).",
        "--total-trials": "Trials of the study, all workers together: a worker starts no trial "
        "once the study holds this many that completed, were pruned, are running or wait (failed "
        "ones do not count), and waits for the other workers' running trials before it ends, so "
        "that it can run again a trial whose worker died.",
        "--timeout": "Time budget in seconds; the running trial is stopped (pruned) when it runs "
        "out. Without --trials and --timeout: 300 s.",
        "--storage": "Where the study lives (default: sqlite:///DIR/study.db, one worker). For "
        "several workers: journal:PATH (Optuna's journal file, on one machine or a shared file "
        "system) or postgresql://USER@HOST:PORT/DB (needs ffnlp[postgres]; mysql+pymysql://... "
        "with ffnlp[mysql]). An in-memory database is refused: a study must outlive the process. "
        "See docs/tuning.md.",
        "--study-name": "Study name (default: DIR's name).",
        "--seed": "Seed of the sampler (and of the --cv folds).",
        "--pruner": "median (stop a trial worse than the median of the completed ones at the same "
        "dev evaluation, from the 2nd), halving (successive halving) or none.",
        "--keep": "Trial folders: all (whole), best (only the best trial keeps its model; the "
        "others keep config, summary, metrics and plots) or summaries.",
        "--refit": "Retrain the best configuration into DIR/best and score it on --test.",
        "--refit-on": "train+dev (for the best trial's number of epochs, no early stopping) or "
        "train.",
        "--seeds": "Run the best configuration over K seeds into DIR/seeds: mean ± CI.",
        "--metric": "The dev metric to optimise, one the trials report (default: the "
        "configuration's train.monitor: dev.accuracy; dev.perplexity for lm; the --similarity "
        "Spearman for w2v); checked before the first trial.",
        "--direction": "maximize or minimize (default: from the metric).",
        "--heartbeat": "Seconds between a worker's heartbeats; a trial silent for twice as long is "
        "marked failed by the next worker (a killed process) and queued again (--retries).",
        "--retries": "Times a trial whose worker died is run again, with the same parameters under "
        "a new number (0: never).",
        "--quiet": "No per-trial lines or tables.",
        "--json": "Print the outcome as one JSON object.",
    }
)


@with_options(data_options, "data")
def study_options(
    space: Annotated[str, STUDY("--space")] = "auto",
    config: Annotated[Path | None, STUDY("--config", "-c")] = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    train: Annotated[Path | None, STUDY("--train")] = None,
    dev: Annotated[Path | None, STUDY("--dev")] = None,
    test: Annotated[Path | None, STUDY("--test")] = None,
    data: dict[str, Any] = DATA,  # with_options: --format, --encoding, --skip-invalid
    corpus: Annotated[Path | None, STUDY("--corpus")] = None,
    similarity: Annotated[Path | None, STUDY("--similarity")] = None,
    cv: Annotated[int | None, STUDY("--cv")] = None,
    trial_seeds: Annotated[str, STUDY("--trial-seeds")] = "auto",
    rescore: Annotated[str, STUDY("--rescore")] = "auto",
    rescore_seeds: Annotated[int, STUDY("--rescore-seeds")] = 5,
    base_trial: Annotated[bool, STUDY("--base-trial/--no-base-trial")] = True,
    out: Path = typer.Option(..., "--out", "-o", help=STUDY.texts["--out"]),
    trials: Annotated[int | None, STUDY("--trials")] = None,
    total_trials: Annotated[int | None, STUDY("--total-trials")] = None,
    timeout: Annotated[float | None, STUDY("--timeout")] = None,
    storage: Annotated[str | None, STUDY("--storage")] = None,
    study_name: Annotated[str | None, STUDY("--study-name")] = None,
    seed: Annotated[int, STUDY("--seed")] = 0,
    pruner: Annotated[str, STUDY("--pruner")] = "median",
    keep: Annotated[str, STUDY("--keep")] = "best",
    refit: Annotated[bool, STUDY("--refit")] = False,
    refit_on: Annotated[str, STUDY("--refit-on")] = "train+dev",
    seeds: Annotated[int, STUDY("--seeds")] = 0,
    metric: Annotated[str | None, STUDY("--metric")] = None,
    direction: Annotated[str | None, STUDY("--direction")] = None,
    heartbeat: Annotated[int, STUDY("--heartbeat")] = 10,
    retries: Annotated[int, STUDY("--retries")] = 1,
) -> dict[str, Any]:
    """The options of the study, by name (:func:`tune_options` makes them TuneOptions)."""
    return locals()


@with_options(study_options, "study")
def tune(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="classify, lm or w2v.")],
    study: dict[str, Any],
    quiet: Annotated[bool, STUDY("--quiet", "-q")] = False,
    json_: Annotated[bool, STUDY("--json")] = False,
) -> None:
    """Search hyper-parameters with Optuna (TPE, pruning); every trial is a run folder.

    Each trial trains one configuration drawn from the space and scores it on the dev data (never on --test; the mean over --trial-seeds seeds, or over --cv folds); the study is kept in DIR/study.db (or --storage: a journal file or a PostgreSQL database for workers on several machines), so the same command continues it and several processes can work on it at once, a dead worker's trial run again. A new study's trial 0 is the base configuration; at the end the best trials and the base are re-scored with fresh seeds (--rescore). DIR gets trials.csv, best.toml (rerunnable with --config), trials/NNNN/, and with --refit / --seeds best/ and seeds/.

    Example:

        ffnlp tune classify --space auto --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --timeout 1200 --refit --seeds 5 --out runs/tune_sst2
    """
    from ffnlp.tune.study import tune as run_study  # imports torch (and Optuna)

    if registry.find(task) is None:
        raise typer.BadParameter(
            f"choose one of {', '.join(registry.names())}; got {task!r}", param_hint="TASK"
        )
    setup_logging(quiet or json_)
    logging.getLogger("ffnlp").setLevel(logging.ERROR if quiet or json_ else logging.WARNING)
    with contextlib.suppress(ImportError):
        import optuna  # an optional extra; ffnlp.tune says so when it is missing

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    options = tune_options(
        task, study, ["ffnlp", *ctx.find_root().meta.get("ffnlp.argv", sys.argv[1:])]
    )
    show = not (quiet or json_)
    on_trial, on_start = (screen.tune_trial, screen.tune_start) if show else (None, None)
    try:
        with screen.study_status(show) as callbacks:
            result = run_study(options, on_trial, callbacks, on_start=on_start)
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signal if isinstance(exc, Interrupted) else signal.SIGINT
        typer.echo(
            f"Interrupted by {signal.Signals(signum).name}: the study in {options.out} keeps "
            "every finished trial; run the same command again to continue it.",
            err=True,
        )
        raise typer.Exit(128 + int(signum)) from None
    if json_ or show:
        print_result(result, json_, screen.tune)


def tune_options(task: str, study: dict[str, Any], command: list[str]) -> Any:
    """The study's options as the library's TuneOptions: the data options and --set as overrides,
    the inputs, --trial-seeds and --rescore as numbers or auto."""
    from ffnlp.tune.prepare import TuneOptions  # imports torch
    from ffnlp.tune.tasks import Inputs, reads_examples  # the tuner's tables: when a study runs

    values = dict(study)
    data = values.pop("data")
    overrides = settings(values.pop("set_"), data=data)
    if not reads_examples(task) and data:  # the [data] options of labelled files
        raise typer.BadParameter("--format, --encoding and --skip-invalid are classify options")
    names = ("train", "dev", "test", "corpus", "similarity")
    inputs = Inputs(**{name: values.pop(name) for name in names}, cv=values.pop("cv") or 0)
    values["trial_seeds"] = _auto_count(values["trial_seeds"], "--trial-seeds", 1)
    values["rescore"] = _auto_count(values["rescore"], "--rescore", 0)
    return TuneOptions(task=task, overrides=overrides, inputs=inputs, command=command, **values)


def _auto_count(text: str, option: str, least: int) -> int | str:
    """--trial-seeds, --rescore: auto or a whole number (its range checked by the study)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(
            f"auto or a whole number of at least {least}; got {text!r}", param_hint=option
        ) from None
