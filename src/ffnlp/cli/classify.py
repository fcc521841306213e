"""`ffnlp classify train|eval|predict|vectors|cv|lr-find`: thin wrappers over ffnlp.tasks.classify.

The task's modules import torch: each command imports them when it runs, so that `ffnlp --help`
and `classify predict` (NumPy alone, ffnlp.tasks.fastpredict) start quickly.
"""

import json
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from ffnlp.cli import lr_find as sweep
from ffnlp.cli.common import (
    begin_training,
    finish_training,
    print_json,
    progress_callbacks,
    recipe_args,
    screen,
    setup_logging,
)
from ffnlp.cli.options import (
    RUN,
    Config,
    Encoding,
    Format,
    Input,
    Json,
    RunOptions,
    Seed,
    Seeds,
    Set,
    SkipInvalid,
    run_dir_option,
    run_options,
    settings,
    with_options,
)
from ffnlp.cli.repeat import train_seeds
from ffnlp.errors import DataError

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

Run = Annotated[Path, typer.Argument(help="Run directory of a trained classifier.")]
TRAIN_HELP = "Training data (LABEL text lines, fastText, CSV/TSV, JSONL; .gz ok; Parquet, Arrow, a datasets folder)."
Train = Annotated[Path | None, typer.Option("--train", help=TRAIN_HELP)]
DEV_HELP = "Dev data: early stopping and the best epoch are chosen on it."
Dev = Annotated[Path | None, typer.Option("--dev", help=DEV_HELP)]
Test = Annotated[Path | None, typer.Option("--test", help="Test data: evaluated once at the end.")]
Out = Annotated[Path | None, run_dir_option("classify")]


@app.command("train")
@with_options(run_options)
def train(
    train_file: Train = None,
    dev: Dev = None,
    test: Test = None,
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    out: Out = None,
    seed: Seed = None,
    seeds: Seeds = None,
    fmt: Format = None,
    encoding: Encoding = None,
    skip_invalid: SkipInvalid = False,
    run: RunOptions = RUN,  # with_options: the options every `train` command ends with
) -> None:
    """Train a text classifier and write a run directory.

    Example:

        ffnlp classify train --config sst2_logreg --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2

        ffnlp classify train --init-from runs/sst2 --train ../shared/data/mr/rt-polarity.all --encoding latin-1 --out runs/sst2_then_mr

        ffnlp classify train --seeds 0,1,2 --config sst2_logreg --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_3seeds
    """
    begin_training(run)
    if train_file is None:
        raise typer.BadParameter("--train is required", param_hint="--train")
    data = (fmt, encoding, skip_invalid)
    if seeds is not None:
        overrides = settings(set_, run, data=data, one_run=False)
        return train_seeds(
            "classify", seeds, run, (train_file, dev, test), config, overrides, out, seed
        )
    from ffnlp.tasks.classify import train_classifier  # imports torch

    overrides = settings(set_, run, data=data)
    clf = train_classifier(
        train_file,
        dev=dev,
        test=test,
        config=config,
        overrides=overrides,
        seed=seed,
        **recipe_args(run, out),
    )
    finish_training(clf, run, screen.classify_train)


@app.command("eval")
def evaluate(
    run: Run,
    data: Annotated[Path, typer.Option("--data", help="Labelled data to evaluate on.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="Input format (default: the run's).")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Encoding (default: the run's).")
    ] = None,
    json_: Json = False,
) -> None:
    """Evaluate a trained classifier on labelled data.

    Example:

        ffnlp classify eval runs/sst2 --data ../shared/data/sst2/stsa.binary.test --json
    """
    from ffnlp.tasks.classify import load  # imports torch

    clf = load(run)
    opts = {k: v for k, v in (("format", fmt), ("encoding", encoding)) if v}
    metrics = clf.test(data, **opts)
    if json_:
        print_json(metrics)
    else:
        screen.classify_eval(f"{run} on {data}", metrics, clf.multilabel)


THRESHOLD_HELP = (
    "Only labels with at least this probability, 0..1 (default: the run's: 0 for one label per "
    "text; task.threshold or the tuned per-label thresholds for multi-label runs)."
)


@app.command("predict")
def predict(
    run: Run,
    input_: Input = "-",
    k: Annotated[
        int, typer.Option("--k", help="How many labels to consider per text (-1 = all).")
    ] = 1,
    threshold: Annotated[float | None, typer.Option("--threshold", help=THRESHOLD_HELP)] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="Encoding of the input (file or standard input).")
    ] = "utf-8",
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            help="Texts read and predicted at a time (memory stays that of one batch).",
        ),
    ] = 1000,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object per line: text, label, prob, top.")
    ] = False,
) -> None:
    """Predict labels for raw texts, one a line, streamed in batches (any input size).

    A multi-label run gives every label among the top --k whose probability reaches the
    threshold (possibly none); its probabilities are independent and need not sum to 1.

    logreg, mlp and pooled runs over n-gram or id features are predicted in NumPy without
    loading PyTorch (quick to start); others, or FFNLP_FAST_PREDICT=0, with PyTorch.

    Example:

        echo "a gripping , funny film" | ffnlp classify predict runs/sst2 --k 2 --json

        echo "how long to rest a steak" | ffnlp classify predict runs/cooking --k 5 --threshold 0.3
    """
    from ffnlp.tasks.fastpredict import check_threshold, open_run  # imports numpy

    if threshold is not None:
        check_threshold(threshold)  # before reading a whole input
    if k < 1 and k != -1:
        raise typer.BadParameter("--k must be at least 1, or -1 for every label", param_hint="--k")
    # the NumPy path reads the run without PyTorch (start-up in a fraction of a second); a run
    # it does not cover, or FFNLP_FAST_PREDICT=0, is loaded and predicted with PyTorch
    clf: Any = open_run(run)
    if clf is None:
        from ffnlp.tasks.classify import load  # imports torch: only for the runs NumPy can't do

        clf = load(run)
    lines = _input_lines(input_, encoding)
    seen = 0
    while batch := list(islice(lines, batch_size)):
        seen += len(batch)
        tops = clf.predict(batch, k=k, threshold=threshold)
        pairs = zip(batch, tops, strict=True)
        typer.echo("\n".join(_prediction(text, top, json_) for text, top in pairs))
    if not seen:
        raise DataError(f"{input_ if input_ != '-' else 'standard input'} has no text to classify")


def _prediction(text: str, top: list[tuple[str, float]], json_: bool) -> str:
    """One text's line of `predict`."""
    if not json_:
        return "\t".join(f"{lab}\t{p:.4f}" for lab, p in top) + f"\t{text}"
    return json.dumps(
        {
            "text": text,
            "label": top[0][0] if top else None,
            "prob": top[0][1] if top else 0.0,
            "top": [{"label": lab, "prob": p} for lab, p in top],
        }
    )


LAYER_HELP = (
    "pooled (the pooled embedding of a pooled model), hidden (the last hidden layer), or auto "
    "(pooled when the model pools)."
)
WORDS_HELP = (
    "Each input line is one word: print its word vector, the mean of its rows of a pooled "
    "model's table (its own, and its character n-grams' with features.maxn > 0), like fastText's "
    "print-word-vectors."
)


@app.command("vectors")
def vectors(
    run: Run,
    input_: Input = "-",
    layer: Annotated[str, typer.Option("--layer", help=LAYER_HELP)] = "auto",
    encoding: Annotated[
        str, typer.Option("--encoding", help="Encoding of the input (file or stdin).")
    ] = "utf-8",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Texts read at a time.")
    ] = 1000,
    words: Annotated[bool, typer.Option("--words", help=WORDS_HELP)] = False,
    json_: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per line: text (--words: word), vector."),
    ] = False,
) -> None:
    """Print each input line's vector inside the model, one a line (fastText's print-sentence-vectors;
    with --words, print-word-vectors).

    Example:

        echo "a gripping , funny film" | ffnlp classify vectors runs/sst2_pooled --layer pooled
        printf 'wonderful\nwonderfull\n' | ffnlp classify vectors runs/sst2_subwords --words
    """
    from ffnlp.tasks.classify import load  # imports torch

    if words and layer != "auto":
        raise typer.BadParameter(
            "--words reads the embedding table, not a layer: leave out --layer",
            param_hint="--layer",
        )
    clf = load(run)
    lines = _input_lines(input_, encoding)
    if words:
        pairs = clf.word_vectors_stream(lines, batch_size)
    else:
        pairs = clf.vectors_stream(lines, layer, batch_size)
    seen = 0
    for text, vector in pairs:
        seen += 1
        if json_:
            print_json({"word" if words else "text": text, "vector": [float(x) for x in vector]})
        else:
            typer.echo(" ".join(f"{x:.7g}" for x in vector.tolist()))
    if not seen:
        raise DataError(f"{input_ if input_ != '-' else 'standard input'} has no text")


def _input_lines(input_: str, encoding: str) -> Iterator[str]:
    """The lines of a file, or of standard input ('-'), read lazily; split on "\\n" only. Standard
    input is decoded exactly as a file is: the same encoding checks and messages."""
    from ffnlp.text.readers import read_lines, read_stream_lines  # imports numpy

    if input_ != "-":
        yield from (line for _, line in read_lines(input_, encoding=encoding))
        return
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes underneath
        yield from (line.rstrip("\r\n") for line in sys.stdin)
        return
    yield from (line for _, line in read_stream_lines(stream, "standard input", encoding))


CV_TENSORBOARD_HELP = (
    "Folder for TensorBoard: each fold's scalars in DIR/fold_K (needs pip install "
    "'ffnlp[tensorboard]')."
)
CV_INIT_FROM_HELP = (
    "Every fold continues this finished classify run on its training part (its configuration is "
    "the base; --config and --set apply over it). See docs/continue.md."
)


CvData = Annotated[
    Path,
    typer.Option("--data", help="Labelled data with no split (e.g. MR's rt-polarity.all)."),
]
CvFolds = Annotated[int, typer.Option("--folds", "-k", min=2, help="Number of stratified folds.")]
CvOut = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Directory for summary.json and one run per fold."),
]
CvSeed = Annotated[
    int | None,
    typer.Option("--seed", help="Seed of the folds and of training (default: train.seed)."),
]
CvDevFraction = Annotated[
    float,
    typer.Option(
        "--dev-fraction",
        help="Share of each training fold held out for early stopping (0 = none).",
    ),
]
CvKeepModels = Annotated[
    bool, typer.Option("--keep-models", help="Keep each fold's model weights.")
]
CvTensorboard = Annotated[Path | None, typer.Option("--tensorboard", help=CV_TENSORBOARD_HELP)]
CvInitFrom = Annotated[Path | None, typer.Option("--init-from", help=CV_INIT_FROM_HELP)]
CvQuiet = Annotated[bool, typer.Option("--quiet", "-q", help="No per-fold lines or progress.")]
CvJson = Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")]


@app.command("cv")
def cross_validate(
    data: CvData,
    folds: CvFolds = 10,
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    out: CvOut = None,
    seed: CvSeed = None,
    dev_fraction: CvDevFraction = 0.1,
    keep_models: CvKeepModels = False,
    tensorboard: CvTensorboard = None,
    init_from: CvInitFrom = None,
    fmt: Format = None,
    encoding: Encoding = None,
    skip_invalid: SkipInvalid = False,
    quiet: CvQuiet = False,
    json_: CvJson = False,
) -> None:
    """k-fold cross-validation: mean ± sd of every metric, written to DIR/summary.json.

    Example:

        ffnlp classify cv --data ../shared/data/mr/rt-polarity.all --folds 10 --config mr_ffnn --set features.lexicon.path=../shared/data/opinion_lexicon --out runs/mr_cv

        ffnlp classify cv --data ../shared/data/mr/rt-polarity.all --encoding latin-1 --init-from runs/sst2_ffnn --out runs/mr_cv_from_sst2
    """
    from ffnlp.experiments.cv import cross_validate as run_cv  # imports torch

    setup_logging(quiet or json_)
    shown = not (quiet or json_)
    result = run_cv(
        data,
        folds=folds,
        config=config,
        overrides=settings(set_, data=(fmt, encoding, skip_invalid)),
        out=out,
        seed=seed,
        dev_fraction=dev_fraction,
        keep_models=keep_models,
        on_fold=lambda fold, scores: screen.cv_fold(fold, folds, scores) if shown else None,
        callbacks=progress_callbacks(quiet or json_),
        tensorboard=tensorboard,
        init_from=init_from,
    )
    if json_:
        print_json({k: v for k, v in result.items() if k != "config"})
    elif not quiet:
        screen.cv(folds, result)


@app.command("lr-find")
@with_options(sweep.sweep_options, "lr_range")
def lr_find(
    train_file: Annotated[
        Path, typer.Option("--train", help="Training data (as for classify train).")
    ],
    config: Config = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    seed: Seed = None,
    lr_range: sweep.Sweep = sweep.SWEEP,  # with_options: --min-lr ... --out
    fmt: Format = None,
    encoding: Encoding = None,
    skip_invalid: SkipInvalid = False,
    json_: sweep.Json = False,
) -> None:
    """Learning-rate range test: train the configured model a few batches at a growing learning rate, plot the loss, suggest a rate.

    The model, its initialisation and the optimiser are the ones `classify train` would use with
    the same --config and --set; nothing else is written.

    Example:

        ffnlp classify lr-find --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --plot runs/sst2_lr_find.png
    """
    from ffnlp.tasks.classify.lr_find import find_lr  # imports torch

    overrides = settings(set_, data=(fmt, encoding, skip_invalid))
    sweep.run(find_lr, train_file, config, overrides, seed, lr_range, json_)
