"""`ffnlp classify train|eval|predict|vectors|cv|lr-find`: thin wrappers over ffnlp.tasks.classify.

The task's modules import torch: each command imports them when it runs, so that `ffnlp --help`
and `classify predict` (NumPy alone, ffnlp.tasks.fastpredict) start quickly.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli import common
from ffnlp.cli import options as opt
from ffnlp.cli.common import print_json, print_result, screen
from ffnlp.report.console import prediction_line, vector_line

app = opt.group(help="Text classifiers: train, eval, predict, cv.")

TRAIN, EVAL, PREDICT, VECTORS, CV = opt.help_tables(
    train={
        "--train": "Training data (LABEL text lines, fastText, CSV/TSV, JSONL; .gz ok; Parquet, "
        "Arrow, a datasets folder).",
        "--dev": "Dev data: early stopping and the best epoch are chosen on it.",
        "--test": "Test data: evaluated once at the end.",
        "--ensemble": "Train K models, each from its own seed, and save one model that "
        "averages their probabilities (model.ensemble = K; K times the training time).",
    },
    eval={
        "--data": "Labelled data to evaluate on.",
        "--format": "Input format (default: the run's).",
        "--encoding": "Encoding (default: the run's).",
    },
    predict={
        "--k": "How many labels to consider per text (-1 = all).",
        "--threshold": "Only labels with at least this probability, 0..1 (default: the run's: 0 "
        "for one label per text; task.threshold or the tuned per-label thresholds for "
        "multi-label runs).",
        "--encoding": "Encoding of the input (file or standard input).",
        "--batch-size": "Texts read and predicted at a time (memory stays that of one batch).",
        "--json": "One JSON object per line: text, label, prob, top.",
    },
    vectors={
        "--layer": "pooled (the pooled embedding of a pooled model), hidden (the last hidden "
        "layer), or auto (pooled when the model pools).",
        "--encoding": "Encoding of the input (file or stdin).",
        "--batch-size": "Texts read at a time.",
        "--words": "Each input line is one word: print its word vector, the mean of its rows of "
        "a pooled model's table (its own, and its character n-grams' with features.maxn > 0), "
        "like fastText's print-word-vectors.",
        "--json": "One JSON object per line: text (--words: word), vector.",
    },
    cv={
        "--data": "Labelled data with no split (e.g. MR's rt-polarity.all).",
        "--folds": "Number of stratified folds.",
        "--out": "Directory for summary.json and one run per fold.",
        "--seed": "Seed of the folds and of training (default: train.seed).",
        "--dev-fraction": "Share of each training fold held out for early stopping (0 = none).",
        "--keep-models": "Keep each fold's model weights.",
        "--tensorboard": "Folder for TensorBoard: each fold's scalars in DIR/fold_K (needs pip "
        "install 'ffnlp[tensorboard]').",
        "--init-from": "Every fold continues this finished classify run on its training part (its "
        "configuration is the base; --config and --set apply over it). See docs/continue.md.",
        "--quiet": "No per-fold lines or progress.",
        "--json": "Print summary.json to stdout.",
    },
)


@app.command("train")
@opt.with_options(opt.RunOptions)
@opt.with_options(opt.data_options, "data")
def train(
    train_file: Annotated[Path | None, TRAIN("--train")] = None,
    dev: Annotated[Path | None, TRAIN("--dev")] = None,
    test: Annotated[Path | None, TRAIN("--test")] = None,
    config: opt.Config = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, opt.run_dir_option("classify")] = None,
    seed: opt.Seed = None,
    seeds: opt.Seeds = None,
    ensemble: Annotated[int | None, TRAIN("--ensemble")] = None,
    data: dict[str, Any] = opt.DATA,  # with_options: --format, --encoding, --skip-invalid
    run: opt.RunOptions = opt.RUN,  # with_options: the options every `train` command ends with
) -> None:
    """Train a text classifier and write a run directory.

    Example:

        ffnlp classify train --config sst2_logreg --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2
    """
    if ensemble is not None:  # as --set model.ensemble=K (checked with the configuration)
        set_ = [*set_, f"model.ensemble={ensemble}"]
    inputs = (train_file, dev, test)
    common.train("classify", inputs, run, config, set_, out, seed, seeds, data=data)


@app.command("eval")
def evaluate(
    run: opt.ClassifierRun,
    data: Annotated[Path, EVAL("--data")],
    fmt: Annotated[str | None, EVAL("--format")] = None,
    encoding: Annotated[str | None, EVAL("--encoding")] = None,
    json_: opt.Json = False,
) -> None:
    """Evaluate a trained classifier on labelled data.

    Example:

        ffnlp classify eval runs/sst2 --data ../shared/data/sst2/stsa.binary.test --json
    """
    from ffnlp.tasks.classify import load  # imports torch

    clf = load(run)
    opts = {k: v for k, v in (("format", fmt), ("encoding", encoding)) if v}
    metrics = clf.test(data, **opts)
    title = f"{run} on {data}"
    print_result(metrics, json_, lambda m: screen.classify_eval(title, m, clf.multilabel))


@app.command("predict")
def predict(
    run: opt.ClassifierRun,
    input_: opt.Input = "-",
    k: Annotated[int, PREDICT("--k")] = 1,
    threshold: Annotated[float | None, PREDICT("--threshold")] = None,
    encoding: Annotated[str, PREDICT("--encoding")] = "utf-8",
    batch_size: Annotated[int, PREDICT("--batch-size", min=1)] = 1000,
    json_: Annotated[bool, PREDICT("--json")] = False,
) -> None:
    """Predict labels for raw texts, one a line, streamed in batches (any input size).

    A multi-label run gives every label among the top --k whose probability reaches the
    threshold (possibly none); its probabilities are independent and need not sum to 1.

    logreg, mlp and pooled runs over word n-gram or id features are predicted in NumPy without
    PyTorch (quick to start); others (character n-grams too), or FFNLP_FAST_PREDICT=0, with it.

    Example:

        echo "a gripping , funny film" | ffnlp classify predict runs/sst2 --k 2 --json

        echo "how long to rest a steak" | ffnlp classify predict runs/cooking --k 5 --threshold 0.3
    """
    from ffnlp.tasks.fastpredict import check_threshold, open_run, predict_batches  # numpy
    from ffnlp.text.readers import input_name, nonempty, read_input_lines  # imports numpy

    if threshold is not None:
        check_threshold(threshold)  # before reading a whole input
    if k < 1 and k != -1:
        raise typer.BadParameter("--k must be at least 1, or -1 for every label", param_hint="--k")
    clf: Any = open_run(run)  # NumPy, without PyTorch (start-up in a fraction of a second)
    if clf is None:  # a run it does not cover, or FFNLP_FAST_PREDICT=0
        from ffnlp.tasks.classify import load  # imports torch: only for the runs NumPy can't do

        clf = load(run)
    lines = read_input_lines(input_, encoding)
    batches = predict_batches(clf, lines, k, threshold, batch_size)
    for batch in nonempty(batches, f"{input_name(input_)} has no text to classify"):
        typer.echo("\n".join(prediction_line(text, top, json_) for text, top in batch))


@app.command("vectors")
def vectors(
    run: opt.ClassifierRun,
    input_: opt.Input = "-",
    layer: Annotated[str, VECTORS("--layer")] = "auto",
    encoding: Annotated[str, VECTORS("--encoding")] = "utf-8",
    batch_size: Annotated[int, VECTORS("--batch-size", min=1)] = 1000,
    words: Annotated[bool, VECTORS("--words")] = False,
    json_: Annotated[bool, VECTORS("--json")] = False,
) -> None:
    """Print each input line's vector inside the model, one a line (fastText's print-sentence-vectors;
    with --words, print-word-vectors).

    Example:

        echo "a gripping , funny film" | ffnlp classify vectors runs/sst2_pooled --layer pooled
        printf 'wonderful\nwonderfull\n' | ffnlp classify vectors runs/sst2_subwords --words
    """
    from ffnlp.tasks.classify import load  # imports torch
    from ffnlp.text.readers import input_name, nonempty, read_input_lines

    if words and layer != "auto":
        raise typer.BadParameter(
            "--words reads the embedding table, not a layer: leave out --layer",
            param_hint="--layer",
        )
    clf, lines = load(run), read_input_lines(input_, encoding)
    if words:
        pairs = clf.word_vectors_stream(lines, batch_size)
    else:
        pairs = clf.vectors_stream(lines, layer, batch_size)
    for text, vector in nonempty(pairs, f"{input_name(input_)} has no text"):
        typer.echo(vector_line(text, vector, json_, "word" if words else "text"))


@app.command("cv")
@opt.with_options(opt.data_options, "data_format")
def cross_validate(
    data: Annotated[Path, CV("--data")],
    folds: Annotated[int, CV("--folds", "-k", min=2)] = 10,
    config: opt.Config = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    out: Annotated[Path | None, CV("--out", "-o")] = None,
    seed: Annotated[int | None, CV("--seed")] = None,
    dev_fraction: Annotated[float, CV("--dev-fraction")] = 0.1,
    keep_models: Annotated[bool, CV("--keep-models")] = False,
    tensorboard: Annotated[Path | None, CV("--tensorboard")] = None,
    init_from: Annotated[Path | None, CV("--init-from")] = None,
    data_format: dict[str, Any] = opt.DATA,  # with_options: --format, --encoding, --skip-invalid
    quiet: Annotated[bool, CV("--quiet", "-q")] = False,
    json_: Annotated[bool, CV("--json")] = False,
) -> None:
    """k-fold cross-validation: mean ± sd of every metric, written to DIR/summary.json.

    Example:

        ffnlp classify cv --data ../shared/data/mr/rt-polarity.all --folds 10 --config mr_ffnn --set features.lexicon.path=../shared/data/opinion_lexicon --out runs/mr_cv
    """
    from ffnlp.experiments.cv import cross_validate as run_cv  # imports torch

    common.setup_logging(quiet or json_)
    shown = not (quiet or json_)
    recipe: dict[str, Any] = {"config": config, "out": out, "seed": seed, "init_from": init_from}
    recipe |= {"dev_fraction": dev_fraction, "keep_models": keep_models, "tensorboard": tensorboard}
    recipe["overrides"] = opt.settings(set_, data=data_format)
    recipe["on_fold"] = (lambda fold, s: screen.cv_fold(fold, folds, s)) if shown else None
    result = run_cv(data, folds, **recipe, callbacks=common.progress_callbacks(not shown))
    if json_:
        print_json({k: v for k, v in result.items() if k != "config"})
    elif not quiet:
        screen.cv(folds, result)


@app.command("lr-find")
@opt.with_options(opt.Sweep, "sweep")
@opt.with_options(opt.data_options, "data")
def lr_find(
    train_file: Annotated[
        Path, typer.Option("--train", help="Training data (as for classify train).")
    ],
    config: opt.Config = None,
    set_: opt.Set = [],  # noqa: B006 (typer copies it)
    seed: opt.Seed = None,
    sweep: opt.Sweep = opt.SWEEP,  # with_options: --min-lr ... --out
    data: dict[str, Any] = opt.DATA,  # with_options: --format, --encoding, --skip-invalid
    json_: opt.SweepJson = False,
) -> None:
    """Learning-rate range test: train the configured model a few batches at a growing learning rate, plot the loss, suggest a rate.

    The model, its initialisation and the optimiser are the ones `classify train` would use with
    the same --config and --set; nothing else is written.

    Example:

        ffnlp classify lr-find --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --plot runs/sst2_lr_find.png
    """
    from ffnlp.tasks.classify.lr_find import find_lr  # imports torch

    common.lr_range_test(find_lr, train_file, sweep, json_, config, set_, seed, data)
