"""The top-level commands of `ffnlp` (demo, repeat, compare, report, tune, export, quantize) and
its small groups `config` and `presets`: thin wrappers over the library."""

import contextlib
import dataclasses
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp import config as C
from ffnlp import presets
from ffnlp.cli import common
from ffnlp.cli import options as opt
from ffnlp.cli.common import screen
from ffnlp.errors import ConfigError, Interrupted
from ffnlp.outputs import check_output_dir
from ffnlp.report.console import preset_lines
from ffnlp.tasks import registry

DEMO, REPORT, EXPORT, CONFIG, PRESETS = opt.help_tables(
    demo={"--out": "Folder for the sample data and the runs.", "--quiet": "No progress bars."},
    report={
        "RUN": "A run directory (any task), an `ffnlp repeat` or `ffnlp classify cv` folder, or "
        "an `ffnlp tune` study folder.",
        "--out": "Where to write the page (default DIR/report.html).",
        "--storage": "Tune study only: the Optuna storage URL the study was run with, to read its "
        "trials from (default: the folder's own study.db, else trials.csv). The URL in tune.json "
        "is never opened on its own: a report reads only the folder's files.",
    },
    export={
        "RUN": "Run directory of a trained (or quantised) classifier.",
        "--onnx": "Write the network as ONNX (opset 17) to this file (needs pip install "
        "'ffnlp[export]').",
        "--torchscript": "Write the network as TorchScript to this file.",
        "--features": "Write the featurisation spec (JSON) here (default: the first file + "
        ".features.json).",
        "--force": "Replace files that already exist.",
    },
    config={
        "TASK": "classify, lm or w2v.",
        "--config": "A TOML file to resolve on top of the defaults.",
        "--set": "key=value overrides (repeatable).",
    },
    presets={
        "NAME": "A preset's name, as `ffnlp presets` lists it.",
    },
)


def demo(
    out: Annotated[Path, DEMO("--out", "-o")] = Path("runs/demo"),
    quiet: Annotated[bool, DEMO("--quiet", "-q")] = False,
) -> None:
    """The tour: write a small sample; train a classifier, a language model and word vectors.

    Example:

        ffnlp demo --out runs/demo
    """
    from ffnlp.tasks.demo import tour  # imports torch

    check_output_dir(out, "--out")  # before the work: a file, below a file, read-only
    common.setup_logging(quiet)
    bars = common.progress_callbacks(quiet)
    common.out_console.rule("[bold]ffnlp demo")
    tour(out, common.out_console.print, common.out_console.rule, bars)


def report(
    run: Annotated[Path, REPORT("RUN")],
    out: Annotated[Path | None, REPORT("--out", "-o")] = None,
    storage: Annotated[str | None, REPORT("--storage")] = None,
) -> None:
    """Write a self-contained HTML report (results, curves, plots, configuration) for a run.

    Repeat or cv folder: every seed's or fold's figures, mean ± sd and 95% CI, all curves on one plot.

    Tune study: optimisation history, parameter importances, slices, parallel coordinates, every trial's curves, the best trials.

    Example:

        ffnlp report runs/sst2_logreg && xdg-open runs/sst2_logreg/report.html
    """
    from ffnlp.report.html import write_report  # imports matplotlib and torch

    typer.echo(str(write_report(run, out, storage)))


COMPARE, QUANTIZE, REPEAT, STUDY = opt.help_tables(
    compare={
        "RUN_A": "A classifier run directory, or an `ffnlp repeat` folder.",
        "RUN_B": "The other one (of the same kind).",
        "--data": "Two classifier runs: labelled data to test both on (default: the "
        "predictions.jsonl each wrote for its --test data).",
        "--metric": "Two repeat folders: the figure to compare.",
        "--bootstrap": "Two classifier runs: resamples of the paired bootstrap of B - A (0 = none; "
        "at most 1,000,000).",
        "--seed": "Seed of the bootstrap's resamples.",
    },
    quantize={
        "--out": "The new, quantised run folder.",
        "--method": "int8: every matrix as int8 rows with a scale each; pq: the input table "
        "product-quantised (fastText's method), the other matrices int8.",
        "--cutoff": "Keep only this many rows of the input table (words, hash buckets or n-gram "
        "features); 0 keeps them all.",
        "--prune-by": "Which rows --cutoff keeps: norm (the largest rows, as fastText) or count "
        "(the rows read most often in --train).",
        "--retrain": "Train the pruned model again on --train (with the run's own training "
        "settings) before quantising it.",
        "--train": "Training data: for --retrain and --prune-by count.",
        "--dev": "Dev data: early stopping of --retrain, and scored before and after.",
        "--test": "Test data: both runs scored and timed on it, side by side.",
        "--epochs": "Epochs of --retrain (default: the run's train.epochs).",
        "--dsub": "pq: columns per one-byte code (fastText's -dsub).",
        "--qnorm/--no-qnorm": "pq: quantise the rows' norms apart from their directions "
        "(fastText's -qnorm).",
        "--force": "Replace the run already in --out.",
    },
    repeat={
        "TASK": "classify or lm.",
        "--train": "Training data.",
        "--dev": "Dev data.",
        "--test": "Test data.",
        "--seeds": "Seeds: a count N (seeds 0 to N-1, or from --first-seed) or a list such as "
        "0,1,2; one run each in OUT/seed_S.",
        "--first-seed": "The first seed of a count of --seeds.",
        "--out": "Folder for the runs (default runs/TASK-repeat-<date>).",
        "--keep-models": "Keep every seed's weights and checkpoint.",
        "--quiet": "No per-seed lines or progress.",
    },
    study={
        "--out": "Study folder (the same one continues the study).",
        "--space": "Search space: a TOML file of config keys and their distributions (see "
        "configs/spaces/), or auto: the shipped space of the task (pooled for a pooled "
        "classifier).",
        "--config": "Base configuration. " + opt.CONFIG_HELP,
        "--train": "classify, lm: training data.",
        "--dev": "classify, lm: dev data; every trial is scored on it.",
        "--test": "classify, lm: test data, read only by --refit and --seeds, never by a trial.",
        "--corpus": "w2v: the text corpus.",
        "--similarity": "w2v: word-similarity file; a trial's score is its Spearman correlation.",
        "--cv": "classify: score each trial by K-fold cross-validation of --train (the mean dev "
        "metric over the folds) instead of on --dev.",
        "--trial-seeds": "Runs per trial (seeds train.seed, +1, ...: DIR/trials/NNNN/seed_K/), "
        "scored by their mean dev metric. auto: 3 for classify without --cv, else 1 (a study "
        "continued: as before).",
        "--rescore": "After the search, train the K best trials and the base configuration again "
        "with --rescore-seeds fresh seeds; the best mean among those that beat the base on them "
        "(paired t-test, p < 0.05) is chosen, else the base. auto: 5 for classify without --cv, "
        "else 0 (off). Within the time budget.",
        "--rescore-seeds": "Fresh seeds for each re-scored trial (DIR/rescore/).",
        "--base-trial/--no-base-trial": "A new study's first trial is the base configuration "
        "(--config with --set); the study ends with it unless a trial beats it.",
        "--trials": "Trials this process runs (a rerun adds as many; 0 = none: only the results).",
        "--total-trials": "Trials of the study, all workers together (completed, pruned, running "
        "or waiting; failed ones do not count); a worker then waits for the others' running trials, "
        "to run again one whose worker died.",
        "--timeout": "Time budget in seconds; the running trial is stopped (pruned) when it runs "
        "out. Without --trials and --timeout: 300 s.",
        "--storage": "Where the study lives (default: sqlite:///DIR/study.db, one worker); for "
        "several workers journal:PATH (a file, local or shared) or postgresql://USER@HOST:PORT/DB "
        "(needs ffnlp[postgres]; mysql+pymysql://... with ffnlp[mysql]); never in memory. See "
        "docs/tuning.md.",
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
        "--metric": "The dev metric to optimise (default: train.monitor's: dev.accuracy; "
        "dev.perplexity for lm; the --similarity Spearman for w2v).",
        "--direction": "maximize or minimize (default: from the metric).",
        "--heartbeat": "Seconds between a worker's heartbeats; a trial silent for twice as long is "
        "marked failed by the next worker (a killed process) and queued again (--retries).",
        "--retries": "Times a trial whose worker died is run again, with the same parameters under "
        "a new number (0: never).",
        "--quiet": "No per-trial lines or tables.",
    },
)


def compare(
    run_a: Annotated[Path, COMPARE("RUN_A")],
    run_b: Annotated[Path, COMPARE("RUN_B")],
    data: Annotated[Path | None, COMPARE("--data")] = None,
    metric: Annotated[str, COMPARE("--metric")] = "test.accuracy",
    bootstrap: Annotated[int, COMPARE("--bootstrap", min=0, max=1_000_000)] = 10_000,
    seed: Annotated[int, COMPARE("--seed", min=0)] = 0,
    json_: opt.Json = False,
) -> None:
    """Compare two runs: two classifiers on the same test examples (McNemar's exact test and a
    paired bootstrap of the accuracy and macro-F1 differences), or two `ffnlp repeat` folders
    (a permutation test over seeds).

    Example:

        ffnlp compare runs/sst2_logreg runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.test
    """
    from ffnlp.experiments.compare import compare_runs  # imports numpy

    result = compare_runs(run_a, run_b, data, metric, resamples=bootstrap, seed=seed)
    common.print_result(result, json_, screen.compare)


def export(
    run: Annotated[Path, EXPORT("RUN")],
    onnx: Annotated[Path | None, EXPORT("--onnx")] = None,
    torchscript: Annotated[Path | None, EXPORT("--torchscript")] = None,
    features: Annotated[Path | None, EXPORT("--features")] = None,
    force: Annotated[bool, EXPORT("--force")] = False,
    json_: opt.Json = False,
) -> None:
    """Export a classifier's network (ONNX and/or TorchScript) and its featurisation (JSON).

    The network's inputs and outputs, and what the JSON file says of how a text becomes them
    (what a consumer reimplements; ffnlp.export.featurize.featurize is a reference): docs/export.md.

    Example:

        ffnlp export runs/sst2_pooled --onnx sst2.onnx   # + sst2.onnx.features.json
    """
    from ffnlp.export.exporter import export_run  # imports torch (and ONNX when asked)

    written = export_run(run, onnx=onnx, torchscript=torchscript, features=features, force=force)
    common.print_result(
        {key: str(path) for key, path in written.items()}, json_, screen.files_written
    )


def quantize_options(
    run: opt.ClassifierRun,
    out: Annotated[Path, QUANTIZE("--out", "-o")],
    method: Annotated[str, QUANTIZE("--method")] = "pq",
    cutoff: Annotated[int, QUANTIZE("--cutoff")] = 0,
    prune_by: Annotated[str, QUANTIZE("--prune-by")] = "norm",
    retrain: Annotated[bool, QUANTIZE("--retrain")] = False,
    train: Annotated[Path | None, QUANTIZE("--train")] = None,
    dev: Annotated[Path | None, QUANTIZE("--dev")] = None,
    test: Annotated[Path | None, QUANTIZE("--test")] = None,
    epochs: Annotated[int | None, QUANTIZE("--epochs", min=1)] = None,
    dsub: Annotated[int, QUANTIZE("--dsub", min=1)] = 2,
    qnorm: Annotated[bool, QUANTIZE("--qnorm/--no-qnorm")] = True,
    force: Annotated[bool, QUANTIZE("--force")] = False,
) -> dict[str, Any]:
    """The options of ffnlp.export.quantize.quantize_run, by its keywords' names."""
    return locals()


@opt.with_options(quantize_options, "options")
def quantize(options: dict[str, Any], json_: opt.Json = False) -> None:
    """Make a smaller copy of a classifier run: prune its vocabulary, optionally retrain,
    quantise its weights. The result is a run like any other (classify predict/eval, export,
    ffnlp.load read it); its size, scores and predict speed are shown beside the original's.

    Example:

        ffnlp quantize runs/cooking --out runs/cooking_q --cutoff 100000 --retrain \\
            --train ../shared/data/cooking/cooking.train --test ../shared/data/cooking/cooking.valid
    """
    from ffnlp.export.quantize import quantize_run  # imports torch

    report = quantize_run(**options)
    run, out = str(options["run"]), str(options["out"])
    common.print_result(report, json_, lambda r: screen.quantize(r, run, out))


config_app = opt.group(help="Show the configuration of a task, or the reference of every option.")


def config_class(task: str) -> type:
    spec = registry.find(task)
    if spec is None:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(registry.names())}")
    return spec.config


@config_app.command("show")
def show_config(
    task: Annotated[str, CONFIG("TASK")],
    config: Annotated[Path | None, CONFIG("--config", "-c")] = None,
    set_: Annotated[list[str], CONFIG("--set", "-s")] = [],  # noqa: B006 (typer copies it)
) -> None:
    """Print the resolved configuration of a task as TOML (defaults, then --config, then --set).

    Example:

        ffnlp config show classify --config sst2_logreg --set train.lr=0.1
    """
    cls = config_class(task)
    data = C.load_config_file(config) if config else {}
    typer.echo(C.dump_toml(C.build(cls, data, opt.command_settings(set_))), nl=False)


@config_app.command("reference")
def reference() -> None:
    """Print the configuration reference of every task as Markdown (docs/configuration.md).

    Example:

        ffnlp config reference > docs/configuration.md
    """
    from ffnlp.tasks.reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)


presets_app = opt.group(
    no_args_is_help=False,
    invoke_without_command=True,
    help="The presets shipped with ffnlp (--config NAME): list, show.",
)


@presets_app.callback()
def list_presets(ctx: typer.Context, json_: opt.Json = False) -> None:
    """List the presets shipped with ffnlp: task, what each is for, its documented result and
    the data it expects. Use one with --config NAME; `ffnlp presets show NAME` prints it.

    Example:

        ffnlp classify train --config sst2_ffnn --train train.txt --dev dev.txt --test test.txt
    """
    if ctx.invoked_subcommand is None:
        found = presets.all_presets()
        listed = [{**dataclasses.asdict(p), "file": str(p.path)} for p in found]
        common.print_result(listed, json_, lambda _: typer.echo("\n".join(preset_lines(found))))


@presets_app.command("show")
def show_preset(
    name: Annotated[str, PRESETS("NAME")],
) -> None:
    """Print a preset's TOML file, comments included, to copy and edit.

    Example:

        ffnlp presets show sst2_ffnn > my.toml
    """
    typer.echo(presets.get(name).text(), nl=False)


def repeat(
    task: Annotated[str, REPEAT("TASK")],
    train: Annotated[Path, REPEAT("--train")],
    dev: Annotated[Path | None, REPEAT("--dev")] = None,
    test: Annotated[Path | None, REPEAT("--test")] = None,
    config: opt.Config = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    seeds: Annotated[str, REPEAT("--seeds")] = "5",
    first_seed: Annotated[int, REPEAT("--first-seed", min=0)] = 0,
    out: Annotated[Path | None, REPEAT("--out", "-o")] = None,
    keep_models: Annotated[bool, REPEAT("--keep-models")] = False,
    tensorboard: opt.Tensorboard = None,
    quiet: Annotated[bool, REPEAT("--quiet", "-q")] = False,
    json_: opt.Json = False,
) -> None:
    """Train the same configuration with several seeds; report mean ± sd and 95% CI.

    Example:

        ffnlp repeat classify --seeds 5 --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_ffnn_5seeds
    """
    recipe = {"config": config, "overrides": opt.settings(set_), "tensorboard": tensorboard}
    runs = {"train": train, "dev": dev, "test": test, "out": out, "keep_models": keep_models}
    common.run_repeat(task, common.parse_seeds(seeds, first_seed), quiet, json_, **runs, **recipe)


@opt.with_options(opt.data_options, "data")
def study_options(
    space: Annotated[str, STUDY("--space")] = "auto",
    config: Annotated[Path | None, STUDY("--config", "-c")] = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    train: Annotated[Path | None, STUDY("--train")] = None,
    dev: Annotated[Path | None, STUDY("--dev")] = None,
    test: Annotated[Path | None, STUDY("--test")] = None,
    data: dict[str, Any] = opt.DATA,  # with_options: --format, --encoding, --skip-invalid
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


@opt.with_options(study_options, "study")
def tune(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="classify, lm or w2v.")],
    study: dict[str, Any],
    quiet: Annotated[bool, STUDY("--quiet", "-q")] = False,
    json_: opt.Json = False,
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
    common.setup_logging(quiet or json_, logging.WARNING)
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
        common.print_result(result, json_, screen.tune)


def tune_options(task: str, study: dict[str, Any], command: list[str]) -> Any:
    """The study's options as the library's TuneOptions: the data options and --set as overrides,
    the inputs, --trial-seeds and --rescore as numbers or auto."""
    from ffnlp.tune.prepare import TuneOptions  # imports torch
    from ffnlp.tune.tasks import Inputs, reads_examples  # the tuner's tables: when a study runs

    values = dict(study)
    data = values.pop("data")
    overrides = opt.settings(values.pop("set_"), data=data)
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
