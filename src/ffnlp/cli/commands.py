"""The top-level commands of `ffnlp` (demo, repeat, compare, report, tune, export, quantize) and
its small groups `config` and `presets`: thin wrappers over the library."""

import contextlib
import dataclasses
import itertools
import logging
import signal
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp import config as C
from ffnlp import presets
from ffnlp.cli.common import (
    out_console,
    print_json,
    print_result,
    progress_callbacks,
    screen,
    setup_logging,
)
from ffnlp.cli.options import (
    CONFIG_HELP,
    DATA,
    Config,
    RunOptions,
    Set,
    Tensorboard,
    command_settings,
    data_options,
    help_tables,
    settings,
    with_options,
)
from ffnlp.errors import ConfigError, Interrupted
from ffnlp.outputs import check_output_dir
from ffnlp.tasks import registry


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the sample data and the runs.")
    ] = Path("runs/demo"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """The tour: write a small sample; train a classifier, a language model and word vectors.

    Example:

        ffnlp demo --out runs/demo
    """
    from ffnlp.tasks.demo import tour  # imports torch

    check_output_dir(out, "--out")  # before the work: a file, below a file, read-only
    setup_logging(quiet)
    bars = progress_callbacks(quiet)
    out_console.rule("[bold]ffnlp demo")
    tour(out, out_console.print, out_console.rule, bars)


def report(
    run: Path = typer.Argument(
        ...,
        help="A run directory (any task), an `ffnlp repeat` or `ffnlp classify cv` folder, "
        "or an `ffnlp tune` study folder.",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Where to write the page (default DIR/report.html)."
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        help="Tune study only: the Optuna storage URL the study was run with, to read its trials "
        "from (default: the folder's own study.db, else trials.csv). The URL in tune.json is "
        "never opened on its own: a report reads only the folder's files.",
    ),
) -> None:
    """Write a self-contained HTML report (results, curves, plots, configuration) for a run.

    Repeat or cv folder: every seed's or fold's figures, mean ± sd and 95% CI, all curves on one plot.

    Tune study: optimisation history, parameter importances, slices, parallel coordinates, every trial's curves, the best trials.

    Example:

        ffnlp report runs/sst2_logreg && xdg-open runs/sst2_logreg/report.html
    """
    from ffnlp.report.html import write_report  # imports matplotlib and torch

    typer.echo(str(write_report(run, out, storage)))


COMPARE, QUANTIZE, REPEAT, STUDY = help_tables(
    compare={
        "RUN_A": "A classifier run directory, or an `ffnlp repeat` folder.",
        "RUN_B": "The other one (of the same kind).",
        "--data": "Two classifier runs: labelled data to test both on (default: the "
        "predictions.jsonl each wrote for its --test data).",
        "--metric": "Two repeat folders: the figure to compare.",
        "--bootstrap": "Two classifier runs: resamples of the paired bootstrap of B - A (0 = none; "
        "at most 1,000,000).",
        "--seed": "Seed of the bootstrap's resamples.",
        "--json": "Print the result as JSON.",
    },
    quantize={
        "RUN": "Run directory of a trained classifier.",
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
        "--json": "Print the comparison as JSON.",
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
        "--json": "Print the summary as JSON.",
    },
    study={
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
    },
)


def compare(
    run_a: Annotated[Path, COMPARE("RUN_A")],
    run_b: Annotated[Path, COMPARE("RUN_B")],
    data: Annotated[Path | None, COMPARE("--data")] = None,
    metric: Annotated[str, COMPARE("--metric")] = "test.accuracy",
    bootstrap: Annotated[int, COMPARE("--bootstrap", min=0, max=1_000_000)] = 10_000,
    seed: Annotated[int, COMPARE("--seed", min=0)] = 0,
    json_: Annotated[bool, COMPARE("--json")] = False,
) -> None:
    """Compare two runs: two classifiers on the same test examples (McNemar's exact test and a
    paired bootstrap of the accuracy and macro-F1 differences), or two `ffnlp repeat` folders
    (a permutation test over seeds).

    Two classifier runs are compared on --data, or without it on the predictions.jsonl that each
    wrote for its test data (same examples, same order).

    Example:

        ffnlp compare runs/sst2_logreg runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.test
    """
    from ffnlp.experiments.compare import compare_runs  # imports numpy

    result = compare_runs(run_a, run_b, data, metric, resamples=bootstrap, seed=seed)
    print_result(result, json_, screen.compare)


def export(
    run: Path = typer.Argument(..., help="Run directory of a trained (or quantised) classifier."),
    onnx: Path = typer.Option(
        None,
        "--onnx",
        help="Write the network as ONNX (opset 17) to this file (needs pip install 'ffnlp[export]').",
    ),
    torchscript: Path = typer.Option(
        None, "--torchscript", help="Write the network as TorchScript to this file."
    ),
    features: Path = typer.Option(
        None,
        "--features",
        help="Write the featurisation spec (JSON) here (default: the first file + .features.json).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace files that already exist."),
    json_: bool = typer.Option(False, "--json", help="Print the files written as JSON."),
) -> None:
    """Export a classifier's network (ONNX and/or TorchScript) and its featurisation (JSON).

    The network takes padded inputs, ids (batch, length) int64 and mask (pooled runs) or
    weights (n-gram runs) (batch, length) float32, both axes dynamic, and gives logits and
    probabilities (batch, labels). The JSON file says how a text becomes those inputs
    (tokeniser, vocabulary, n-gram hashing, tf-idf weights): docs/export.md describes what a
    consumer reimplements; ffnlp.export.featurize.featurize is a reference in plain Python.

    Example:

        ffnlp export runs/sst2_pooled --onnx sst2.onnx   # + sst2.onnx.features.json
    """
    from ffnlp.export.exporter import export_run  # imports torch (and ONNX when asked)

    written = export_run(run, onnx=onnx, torchscript=torchscript, features=features, force=force)
    if json_:
        print_json({key: str(path) for key, path in written.items()})
        return
    for key, path in written.items():
        out_console.print(f"{key:<12} {path}  ({path.stat().st_size:,} bytes)", highlight=False)


def quantize_options(
    run: Annotated[Path, QUANTIZE("RUN")],
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


@with_options(quantize_options, "options")
def quantize(options: dict[str, Any], json_: Annotated[bool, QUANTIZE("--json")] = False) -> None:
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
    print_result(report, json_, lambda r: screen.quantize(r, run, out))


config_app = typer.Typer(
    no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]}
)


def config_class(task: str) -> type:
    spec = registry.find(task)
    if spec is None:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(registry.names())}")
    return spec.config


@config_app.command("show")
def show_config(
    task: str = typer.Argument(..., help="classify, lm or w2v."),
    config: Path = typer.Option(
        None, "--config", "-c", help="A TOML file to resolve on top of the defaults."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="key=value overrides (repeatable)."),
) -> None:
    """Print the resolved configuration of a task as TOML (defaults, then --config, then --set).

    Example:

        ffnlp config show classify --config sst2_logreg --set train.lr=0.1
    """
    cls = config_class(task)
    data = C.load_config_file(config) if config else {}
    typer.echo(C.dump_toml(C.build(cls, data, command_settings(set_))), nl=False)


@config_app.command("reference")
def reference() -> None:
    """Print the configuration reference of every task as Markdown (docs/configuration.md).

    Example:

        ffnlp config reference > docs/configuration.md
    """
    from ffnlp.tasks.reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)


presets_app = typer.Typer(
    invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)


@presets_app.callback()
def list_presets(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the presets shipped with ffnlp: task, what each is for, its documented result and
    the data it expects. Use one with --config NAME (a file of that name in the working folder
    wins); `ffnlp presets show NAME` prints it, to copy and edit.

    Examples:

        ffnlp presets

        ffnlp classify train --config sst2_ffnn --train train.txt --dev dev.txt --test test.txt
    """
    if ctx.invoked_subcommand is not None:
        return
    found = presets.all_presets()
    if json_:
        print_json([{**dataclasses.asdict(p), "file": str(p.path)} for p in found])
        return
    typer.echo("Presets shipped with ffnlp (use one with --config NAME):\n")
    for p in found:
        typer.echo(f"{p.name}  ({p.task})")
        for label, text in (("for", p.about), ("result", p.result), ("data", p.data)):
            head = f"  {label + ':':<8}"
            typer.echo(textwrap.fill(text, 96, initial_indent=head, subsequent_indent=" " * 10))
        typer.echo("")


@presets_app.command("show")
def show_preset(
    name: str = typer.Argument(..., help="A preset's name, as `ffnlp presets` lists it."),
) -> None:
    """Print a preset's TOML file, comments included, to copy and edit.

    Example:

        ffnlp presets show sst2_ffnn > my.toml
    """
    typer.echo(presets.get(name).text(), nl=False)


def parse_seeds(text: str, first_seed: int = 0, option: str = "--seeds") -> list[int]:
    """``"5"``: five seeds from ``first_seed``; ``"0,1,2"``: those seeds. A usage error (exit 2)
    naming ``option`` when it is neither."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or any(n < 0 for n in numbers):
        raise typer.BadParameter(
            f"give a number of seeds (e.g. 5) or a list of seeds (e.g. 0,1,2); got {text!r}",
            param_hint=option,
        )
    if len(numbers) == 1:  # a count
        if numbers[0] < 1:
            raise typer.BadParameter(
                f"at least one seed is needed; got {text!r}", param_hint=option
            )
        return list(range(first_seed, first_seed + numbers[0]))
    if first_seed:
        raise typer.BadParameter(
            "--first-seed goes with a number of seeds; a list names every seed itself",
            param_hint="--first-seed",
        )
    return numbers


def repeat(
    task: Annotated[str, REPEAT("TASK")],
    train: Annotated[Path, REPEAT("--train")],
    dev: Annotated[Path | None, REPEAT("--dev")] = None,
    test: Annotated[Path | None, REPEAT("--test")] = None,
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    seeds: Annotated[str, REPEAT("--seeds")] = "5",
    first_seed: Annotated[int, REPEAT("--first-seed", min=0)] = 0,
    out: Annotated[Path | None, REPEAT("--out", "-o")] = None,
    keep_models: Annotated[bool, REPEAT("--keep-models")] = False,
    tensorboard: Tensorboard = None,
    quiet: Annotated[bool, REPEAT("--quiet", "-q")] = False,
    json_: Annotated[bool, REPEAT("--json")] = False,
) -> None:
    """Train the same configuration with several seeds; report mean ± sd and 95% CI.

    Example:

        ffnlp repeat classify --seeds 5 --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_ffnn_5seeds
    """
    sets = settings(set_)
    seed_list = parse_seeds(seeds, first_seed)
    data = (train, dev, test)
    run_repeat(task, data, config, sets, seed_list, out, keep_models, tensorboard, quiet, json_)


def train_seeds(
    task: str,
    seeds: str,
    run: RunOptions,
    data: tuple[Path, Path | None, Path | None],
    config: Path | None,
    overrides: Mapping[str, Any],
    out: Path | None,
    seed: int | None = None,
) -> None:
    """``train --seeds``: the runs of `ffnlp repeat` (the options that make a single run refused)."""
    given = {
        "--seed": seed is not None,
        "--resume": run.resume is not None,
        "--force": run.force,
        "--init-from": run.init_from is not None,
    }
    clashing = [option for option, present in given.items() if present]
    if clashing:
        raise typer.BadParameter(
            f"--seeds trains one run per seed (as `ffnlp repeat`); {clashing[0]} is for a single "
            "run: leave one of them out",
            param_hint="--seeds",
        )
    seed_list = parse_seeds(seeds)
    run_repeat(
        task, data, config, overrides, seed_list, out, False, run.tensorboard, run.quiet, run.json
    )


def run_repeat(
    task: str,
    data: tuple[Path, Path | None, Path | None],
    config: Path | None,
    overrides: Mapping[str, Any],
    seeds: list[int],
    out: Path | None,
    keep_models: bool,
    tensorboard: Path | None,
    quiet: bool,
    json_: bool,
) -> None:
    """Train once per seed and print a line per seed, then the table of mean, sd and 95% CI (or
    the summary as JSON)."""
    from ffnlp.experiments.repeat import repeat as repeat_runs  # imports torch

    setup_logging(quiet or json_)
    done = itertools.count(1)  # the runs finished

    def progress(seed: int, row: dict[str, Any]) -> None:
        if not (quiet or json_):
            screen.repeat_seed(seed, next(done), len(seeds), row)

    train, dev, test = data
    result = repeat_runs(
        task,
        train,
        dev=dev,
        test=test,
        config=config,
        overrides=overrides,
        seeds=seeds,
        out=out,
        keep_models=keep_models,
        on_run=progress,
        callbacks=progress_callbacks(quiet or json_),
        tensorboard=tensorboard,
    )
    print_result(result, json_, lambda r: screen.repeat(task, len(seeds), r))


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
