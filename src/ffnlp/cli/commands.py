"""The top-level commands of `ffnlp` (demo, report, compare, export, quantize) and its small
groups `config` and `presets`: thin wrappers over the library."""

import dataclasses
import textwrap
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
from ffnlp.cli.options import HelpTable as Help
from ffnlp.cli.options import command_settings, with_options
from ffnlp.errors import ConfigError
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


COMPARE = Help(
    {
        "RUN_A": "A classifier run directory, or an `ffnlp repeat` folder.",
        "RUN_B": "The other one (of the same kind).",
        "--data": "Two classifier runs: labelled data to test both on (default: the "
        "predictions.jsonl each wrote for its --test data).",
        "--metric": "Two repeat folders: the figure to compare.",
        "--bootstrap": "Two classifier runs: resamples of the paired bootstrap of B - A (0 = none; "
        "at most 1,000,000).",
        "--seed": "Seed of the bootstrap's resamples.",
        "--json": "Print the result as JSON.",
    }
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


QUANTIZE = Help(
    {
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
    }
)


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
