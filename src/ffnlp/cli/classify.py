"""`ffnlp classify train|eval|predict|vectors|cv|lr-find`: thin wrappers over ffnlp.tasks.classify."""

# Over 400 lines on purpose: six commands of one group, each only its options, one library call and the printing.

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ffnlp.cli.common import (
    CONFIG_HELP,
    DIAGNOSTICS_OPTION,
    FORCE_OPTION,
    INIT_FROM_OPTION,
    MAX_RESTARTS_OPTION,
    NPROC_OPTION,
    QUIET_OPTION,
    RESUME_OPTION,
    SEED_OPTION,
    SEEDS_OPTION,
    SET_OPTION,
    SUMMARY_JSON_OPTION,
    TENSORBOARD_OPTION,
    command_settings,
    diagnostics_settings,
    lineage_line,
    out_console,
    print_json,
    progress_callbacks,
    refuse_with_seeds,
    relaunch_as_processes,
    run_dir_option,
    setup_logging,
    short_metrics,
)
from ffnlp.cli.lr_find import JSON_OPTION as LR_FIND_JSON_OPTION
from ffnlp.cli.lr_find import MAX_LR_OPTION, MIN_LR_OPTION, PLOT_OPTION, STEPS_OPTION
from ffnlp.cli.lr_find import OUT_OPTION as LR_FIND_OUT_OPTION
from ffnlp.cli.lr_find import check_outputs as check_lr_find_outputs
from ffnlp.cli.lr_find import report as report_lr_find
from ffnlp.config import tensorboard_settings
from ffnlp.errors import DataError

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

PER_LABEL_ROWS = 30  # multi-label eval: the most frequent labels shown (--json has them all)

# the data options of every command that reads labelled files (train, cv, lr-find)
FORMAT_OPTION: Any = typer.Option(
    None,
    "--format",
    help="Input format: auto, label-text, fasttext, csv, tsv, jsonl, parquet, arrow.",
)
ENCODING_OPTION: Any = typer.Option(
    None, "--encoding", help="Encoding of the data files, e.g. latin-1."
)
SKIP_INVALID_OPTION: Any = typer.Option(
    False, "--skip-invalid", help="Skip malformed lines and report how many."
)


def _data_settings(fmt: str | None, encoding: str | None, skip_invalid: bool) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    if fmt:
        sets["data.format"] = fmt
    if encoding:
        sets["data.encoding"] = encoding
    if skip_invalid:
        sets["data.skip_invalid"] = True
    return sets


@app.command("train")
def train(
    train_file: Path = typer.Option(
        None,
        "--train",
        help="Training data (LABEL text lines, fastText, CSV/TSV, JSONL; .gz ok; Parquet, Arrow, a datasets folder).",
    ),
    dev: Path = typer.Option(
        None, "--dev", help="Dev data: early stopping and the best epoch are chosen on it."
    ),
    test: Path = typer.Option(None, "--test", help="Test data: evaluated once at the end."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    out: Path = run_dir_option("classify"),
    seed: int = SEED_OPTION,
    seeds: str = SEEDS_OPTION,
    fmt: str = FORMAT_OPTION,
    encoding: str = ENCODING_OPTION,
    skip_invalid: bool = SKIP_INVALID_OPTION,
    resume: Path = RESUME_OPTION,
    init_from: Path = INIT_FROM_OPTION,
    diagnostics: bool = DIAGNOSTICS_OPTION,
    tensorboard: Path = TENSORBOARD_OPTION,
    force: bool = FORCE_OPTION,
    quiet: bool = QUIET_OPTION,
    json_: bool = SUMMARY_JSON_OPTION,
    nproc: int = NPROC_OPTION,
    max_restarts: int = MAX_RESTARTS_OPTION,
) -> None:
    """Train a text classifier and write a run directory.

    Example:

        ffnlp classify train --config sst2_logreg --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2

        ffnlp classify train --init-from runs/sst2 --train ../shared/data/mr/rt-polarity.all --encoding latin-1 --out runs/sst2_then_mr

        ffnlp classify train --seeds 0,1,2 --config sst2_logreg --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --out runs/sst2_3seeds
    """
    from ffnlp.tasks.classify import train_classifier

    relaunch_as_processes(nproc, max_restarts)
    setup_logging(quiet or json_)
    if train_file is None:
        raise typer.BadParameter("--train is required", param_hint="--train")
    sets = command_settings(
        _data_settings(fmt, encoding, skip_invalid), set_, diagnostics_settings(diagnostics)
    )
    if seeds is not None:
        from ffnlp.cli.repeat import parse_seeds, run_repeat

        refuse_with_seeds(
            **{
                "--seed": seed is not None,
                "--resume": resume is not None,
                "--force": force,
                "--init-from": init_from is not None,
            }
        )
        seed_list = parse_seeds(seeds)
        run_repeat(
            "classify",
            train_file,
            dev,
            test,
            config,
            sets,
            seed_list,
            out,
            tensorboard=tensorboard,
            quiet=quiet,
            json_=json_,
        )
        return
    sets = command_settings(sets, tensorboard_settings(tensorboard))
    clf = train_classifier(
        train_file,
        dev=dev,
        test=test,
        config=config,
        overrides=sets,
        out=resume if resume is not None else out,
        seed=seed,
        resume=resume is not None,
        callbacks=progress_callbacks(quiet or json_),
        force=force,
        init_from=init_from,
    )
    summary = clf.summary
    if json_:
        print_json(summary)
        return
    if quiet:
        return
    table = Table(title=f"ffnlp classify: {clf.run_dir}")
    table.add_column("split")
    from ffnlp.tasks.classify.metrics import MULTILABEL_FIGURES

    figures = MULTILABEL_FIGURES if clf.multilabel else ("accuracy", "macro_f1")
    metrics = (*figures, "loss")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for split in ("train", "dev", "test"):
        if split in summary:
            m = summary[split]
            table.add_row(split, *(f"{m[metric]:.4f}" for metric in metrics))
    out_console.print(table)
    out_console.print(
        f"{summary['epochs']} epochs in {summary['train_seconds']:.1f} s; best epoch "
        f"{summary['best_epoch']}. {summary['stop_reason']}"
    )
    lineage = lineage_line(summary)
    if lineage:
        out_console.print(lineage, markup=False)


@app.command("eval")
def evaluate(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    data: Path = typer.Option(..., "--data", help="Labelled data to evaluate on."),
    fmt: str = typer.Option(None, "--format", help="Input format (default: the run's)."),
    encoding: str = typer.Option(None, "--encoding", help="Encoding (default: the run's)."),
    json_: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Evaluate a trained classifier on labelled data.

    Example:

        ffnlp classify eval runs/sst2 --data ../shared/data/sst2/stsa.binary.test --json
    """
    from ffnlp.tasks.classify import load

    clf = load(run)
    opts = {k: v for k, v in (("format", fmt), ("encoding", encoding)) if v}
    metrics = clf.test(data, **opts)
    if json_:
        print_json(metrics)
        return
    table = Table(title=f"{run} on {data}")
    table.add_column("label")
    for col in ("precision", "recall", "f1", "support"):
        table.add_column(col, justify="right")
    rows = list(metrics["per_class"].items())
    if clf.multilabel and len(rows) > PER_LABEL_ROWS:
        rows = sorted(rows, key=lambda kv: -kv[1]["support"])[:PER_LABEL_ROWS]
        table.caption = f"the {PER_LABEL_ROWS} most frequent of {len(metrics['per_class'])} labels; --json has all"
    for label, m in rows:
        table.add_row(
            label,
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
            str(m["support"]),
        )
    out_console.print(table)
    out_console.print(" ".join(f"{k} {v:.4f}" for k, v in short_metrics(metrics).items()))


@app.command("predict")
def predict(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    input_: str = typer.Option(
        "-",
        "--input",
        "-i",
        help="Text file, one text a line ('-' = stdin); lines of up to 10 MiB "
        "(FFNLP_MAX_LINE_BYTES changes the limit).",
    ),
    k: int = typer.Option(1, "--k", help="How many labels to consider per text (-1 = all)."),
    threshold: float = typer.Option(
        None,
        "--threshold",
        help="Only labels with at least this probability, 0..1 (default: the run's: 0 for one label "
        "per text; task.threshold or the tuned per-label thresholds for multi-label runs).",
    ),
    encoding: str = typer.Option(
        "utf-8", "--encoding", help="Encoding of the input (file or standard input)."
    ),
    batch_size: int = typer.Option(
        1000,
        "--batch-size",
        min=1,
        help="Texts read and predicted at a time (memory stays that of one batch).",
    ),
    json_: bool = typer.Option(
        False, "--json", help="One JSON object per line: text, label, prob, top."
    ),
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
    from ffnlp.tasks.fastpredict import check_threshold, open_run

    if threshold is not None:
        check_threshold(threshold)  # before reading a whole input
    if k < 1 and k != -1:
        raise typer.BadParameter("--k must be at least 1, or -1 for every label", param_hint="--k")
    # the NumPy path reads the run without PyTorch (start-up in a fraction of a second); a run
    # it does not cover, or FFNLP_FAST_PREDICT=0, is loaded and predicted with PyTorch
    clf: Any = open_run(run)
    if clf is None:
        from ffnlp.tasks.classify import load

        clf = load(run)
    seen = 0
    lines = _input_lines(input_, encoding)
    while batch := list(islice(lines, batch_size)):
        seen += len(batch)
        tops = clf.predict(batch, k=k, threshold=threshold)
        if json_:
            out = [
                json.dumps(
                    {
                        "text": text,
                        "label": top[0][0] if top else None,
                        "prob": top[0][1] if top else 0.0,
                        "top": [{"label": lab, "prob": p} for lab, p in top],
                    }
                )
                for text, top in zip(batch, tops, strict=True)
            ]
        else:
            out = [
                "\t".join(f"{lab}\t{p:.4f}" for lab, p in top) + f"\t{text}"
                for text, top in zip(batch, tops, strict=True)
            ]
        typer.echo("\n".join(out))  # one write per batch: the answers come while reading
    if not seen:
        raise DataError(f"{input_ if input_ != '-' else 'standard input'} has no text to classify")


@app.command("vectors")
def vectors(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    input_: str = typer.Option(
        "-",
        "--input",
        "-i",
        help="Text file, one text a line ('-' = stdin); lines of up to 10 MiB "
        "(FFNLP_MAX_LINE_BYTES changes the limit).",
    ),
    layer: str = typer.Option(
        "auto",
        "--layer",
        help="pooled (the pooled embedding of a pooled model), hidden (the last hidden layer), "
        "or auto (pooled when the model pools).",
    ),
    encoding: str = typer.Option(
        "utf-8", "--encoding", help="Encoding of the input (file or stdin)."
    ),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Texts read at a time."),
    words: bool = typer.Option(
        False,
        "--words",
        help="Each input line is one word: print its word vector, the mean of its rows of a "
        "pooled model's table (its own, and its character n-grams' with features.maxn > 0), "
        "like fastText's print-word-vectors.",
    ),
    json_: bool = typer.Option(
        False, "--json", help="One JSON object per line: text (--words: word), vector."
    ),
) -> None:
    """Print each input line's vector inside the model, one a line (fastText's print-sentence-vectors;
    with --words, print-word-vectors).

    Example:

        echo "a gripping , funny film" | ffnlp classify vectors runs/sst2_pooled --layer pooled
        printf 'wonderful\nwonderfull\n' | ffnlp classify vectors runs/sst2_subwords --words
    """
    from ffnlp.tasks.classify import load

    if words and layer != "auto":
        raise typer.BadParameter(
            "--words reads the embedding table, not a layer: leave out --layer",
            param_hint="--layer",
        )
    clf = load(run)
    seen = 0
    lines = _input_lines(input_, encoding)
    pairs = (
        clf.word_vectors_stream(lines, batch_size)
        if words
        else clf.vectors_stream(lines, layer, batch_size)
    )
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
    from ffnlp.text.readers import read_lines, read_stream_lines

    if input_ != "-":
        yield from (line for _, line in read_lines(input_, encoding=encoding))
        return
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes underneath
        yield from (line.rstrip("\r\n") for line in sys.stdin)
        return
    yield from (line for _, line in read_stream_lines(stream, "standard input", encoding))


@app.command("cv")
def cross_validate(
    data: Path = typer.Option(
        ..., "--data", help="Labelled data with no split (e.g. MR's rt-polarity.all)."
    ),
    folds: int = typer.Option(10, "--folds", "-k", min=2, help="Number of stratified folds."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    out: Path = typer.Option(
        None, "--out", "-o", help="Directory for summary.json and one run per fold."
    ),
    seed: int = typer.Option(
        None, "--seed", help="Seed of the folds and of training (default: train.seed)."
    ),
    dev_fraction: float = typer.Option(
        0.1,
        "--dev-fraction",
        help="Share of each training fold held out for early stopping (0 = none).",
    ),
    keep_models: bool = typer.Option(
        False, "--keep-models", help="Keep each fold's model weights."
    ),
    tensorboard: Path = typer.Option(
        None,
        "--tensorboard",
        help="Folder for TensorBoard: each fold's scalars in DIR/fold_K (needs pip install "
        "'ffnlp[tensorboard]').",
    ),
    init_from: Path = typer.Option(
        None,
        "--init-from",
        help="Every fold continues this finished classify run on its training part (its "
        "configuration is the base; --config and --set apply over it). See docs/continue.md.",
    ),
    fmt: str = FORMAT_OPTION,
    encoding: str = ENCODING_OPTION,
    skip_invalid: bool = SKIP_INVALID_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-fold lines or progress."),
    json_: bool = typer.Option(False, "--json", help="Print summary.json to stdout."),
) -> None:
    """k-fold cross-validation: mean ± sd of every metric, written to DIR/summary.json.

    Example:

        ffnlp classify cv --data ../shared/data/mr/rt-polarity.all --folds 10 --config mr_ffnn --set features.lexicon.path=../shared/data/opinion_lexicon --out runs/mr_cv

        ffnlp classify cv --data ../shared/data/mr/rt-polarity.all --encoding latin-1 --init-from runs/sst2_ffnn --out runs/mr_cv_from_sst2
    """
    from ffnlp.experiments.cv import cross_validate as run_cv

    setup_logging(quiet or json_)
    sets = command_settings(_data_settings(fmt, encoding, skip_invalid), set_)

    def report(fold: int, scores: dict[str, float]) -> None:
        if not (quiet or json_):
            first = "precision_at_1" if "precision_at_1" in scores else "accuracy"
            out_console.print(
                f"fold {fold}/{folds}: {first} {scores[first]:.4f}  "
                f"macro_f1 {scores['macro_f1']:.4f} ({scores['train_seconds']:.1f} s)",
                soft_wrap=True,
            )

    result = run_cv(
        data,
        folds=folds,
        config=config,
        overrides=sets,
        out=out,
        seed=seed,
        dev_fraction=dev_fraction,
        keep_models=keep_models,
        on_fold=report,
        callbacks=progress_callbacks(quiet or json_),
        tensorboard=tensorboard,
        init_from=init_from,
    )
    if json_:
        print_json({k: v for k, v in result.items() if k != "config"})
        return
    if quiet:
        return
    table = Table(title=f"{folds}-fold cross-validation: {result['run_dir']}")
    for col in ("metric", "mean", "sd"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for name, m in result["cv"].items():
        table.add_row(name, f"{m['mean']:.4f}", f"{m['sd']:.4f}")
    out_console.print(table)


@app.command("lr-find")
def lr_find(
    train_file: Path = typer.Option(..., "--train", help="Training data (as for classify train)."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    seed: int = SEED_OPTION,
    min_lr: float = MIN_LR_OPTION,
    max_lr: float = MAX_LR_OPTION,
    steps: int = STEPS_OPTION,
    plot: Path = PLOT_OPTION,
    out: Path = LR_FIND_OUT_OPTION,
    fmt: str = FORMAT_OPTION,
    encoding: str = ENCODING_OPTION,
    skip_invalid: bool = SKIP_INVALID_OPTION,
    json_: bool = LR_FIND_JSON_OPTION,
) -> None:
    """Learning-rate range test: train the configured model a few batches at a growing learning rate, plot the loss, suggest a rate.

    The model, its initialisation and the optimiser are the ones `classify train` would use with
    the same --config and --set; nothing else is written.

    Example:

        ffnlp classify lr-find --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --plot runs/sst2_lr_find.png
    """
    from ffnlp.tasks.classify.lr_find import find_lr

    setup_logging(json_)
    check_lr_find_outputs(plot, out)  # before the sweep
    result = find_lr(
        train_file,
        config=config,
        overrides=command_settings(_data_settings(fmt, encoding, skip_invalid), set_),
        seed=seed,
        lr_min=min_lr,
        lr_max=max_lr,
        steps=steps,
    )
    report_lr_find(result, plot, out, json_, f"lr range test: {config or 'default config'}")
