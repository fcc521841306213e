"""`ffnlp tune TASK`: hyper-parameter search on Optuna (thin: the study is ffnlp.tune.study)."""

import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ffnlp.cli.common import err_console, print_json, screen, setup_logging
from ffnlp.cli.options import (
    CONFIG_HELP,
    Encoding,
    Format,
    Set,
    SkipInvalid,
    settings,
    with_options,
)
from ffnlp.errors import Interrupted
from ffnlp.tasks import registry

if TYPE_CHECKING:  # the training package imports torch: only when a study runs
    from ffnlp.training.callbacks import Callback

Space = Annotated[
    str,
    typer.Option(
        "--space",
        help="Search space: a TOML file of config keys and their distributions (see "
        "configs/spaces/), or auto: the shipped space of the task (pooled for a pooled "
        "classifier).",
    ),
]
BaseConfig = Annotated[
    Path | None, typer.Option("--config", "-c", help="Base configuration. " + CONFIG_HELP)
]
Train = Annotated[Path | None, typer.Option("--train", help="classify, lm: training data.")]
Dev = Annotated[
    Path | None, typer.Option("--dev", help="classify, lm: dev data; every trial is scored on it.")
]
Test = Annotated[
    Path | None,
    typer.Option(
        "--test",
        help="classify, lm: test data, read only by --refit and --seeds, never by a trial.",
    ),
]
Corpus = Annotated[Path | None, typer.Option("--corpus", help="w2v: the text corpus.")]
Similarity = Annotated[
    Path | None,
    typer.Option(
        "--similarity",
        help="w2v: word-similarity file; a trial's score is its Spearman correlation.",
    ),
]
Cv = Annotated[
    int | None,
    typer.Option(
        "--cv",
        help="classify: score each trial by K-fold cross-validation of --train (the mean dev "
        "metric over the folds) instead of on --dev.",
    ),
]
TrialSeeds = Annotated[
    str,
    typer.Option(
        "--trial-seeds",
        help="Runs per trial, with seeds train.seed, +1, ... (DIR/trials/NNNN/seed_K/); a trial "
        "scores the mean dev metric over them, so that one seed's luck does not choose the "
        "configuration. auto: 3 for classify without --cv, 1 for lm, w2v and with --cv (a study "
        "continued: as before).",
    ),
]
Rescore = Annotated[
    str,
    typer.Option(
        "--rescore",
        help="After the search, train the K best trials (and the base configuration's) again "
        "with --rescore-seeds fresh seeds; the best configuration is the best mean over them "
        "among the candidates that beat the base on the same seeds (paired t-test, p < 0.05), "
        "else the base (the best of many noisy trials was partly lucky). auto: 5 for classify "
        "without --cv, else 0 (off). The time budget includes it.",
    ),
]
RescoreSeeds = Annotated[
    int,
    typer.Option("--rescore-seeds", help="Fresh seeds for each re-scored trial (DIR/rescore/)."),
]
BaseTrial = Annotated[
    bool,
    typer.Option(
        "--base-trial/--no-base-trial",
        help="A new study's first trial is the base configuration (--config with --set), "
        "where the space can give its values; the study ends with it unless a trial beats it.",
    ),
]
Trials = Annotated[
    int | None,
    typer.Option(
        "--trials",
        help="Trials this process runs (a rerun adds as many; 0 = none: only the results).",
    ),
]
TotalTrials = Annotated[
    int | None,
    typer.Option(
        "--total-trials",
        help="Trials of the study, all workers together: a worker starts no trial once the "
        "study holds this many that completed, were pruned, are running or wait (failed ones "
        "do not count), and waits for the other workers' running trials before it ends, so "
        "that it can run again a trial whose worker died.",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Time budget in seconds; the running trial is stopped (pruned) when it runs out. "
        "Without --trials and --timeout: 300 s.",
    ),
]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Where the study lives (default: sqlite:///DIR/study.db, one worker). For several "
        "workers: journal:PATH (Optuna's journal file, on one machine or a shared file "
        "system) or postgresql://USER@HOST:PORT/DB (needs ffnlp[postgres]; "
        "mysql+pymysql://... with ffnlp[mysql]). An in-memory database is refused: a study "
        "must outlive the process. See docs/tuning.md.",
    ),
]
StudyName = Annotated[
    str | None, typer.Option("--study-name", help="Study name (default: DIR's name).")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sampler (and of the --cv folds).")]
Pruner = Annotated[
    str,
    typer.Option(
        "--pruner",
        help="median (stop a trial worse than the median of the completed ones at the same dev "
        "evaluation, from the 2nd), halving (successive halving) or none.",
    ),
]
Keep = Annotated[
    str,
    typer.Option(
        "--keep",
        help="Trial folders: all (whole), best (only the best trial keeps its model; the others "
        "keep config, summary, metrics and plots) or summaries.",
    ),
]
Refit = Annotated[
    bool,
    typer.Option(
        "--refit", help="Retrain the best configuration into DIR/best and score it on --test."
    ),
]
RefitOn = Annotated[
    str,
    typer.Option(
        "--refit-on",
        help="train+dev (for the best trial's number of epochs, no early stopping) or train.",
    ),
]
Seeds = Annotated[
    int,
    typer.Option(
        "--seeds", help="Run the best configuration over K seeds into DIR/seeds: mean ± CI."
    ),
]
Metric = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="The dev metric to optimise, one the trials report (default: the configuration's "
        "train.monitor: dev.accuracy; dev.perplexity for lm; the --similarity Spearman for "
        "w2v); checked before the first trial.",
    ),
]
Direction = Annotated[
    str | None, typer.Option("--direction", help="maximize or minimize (default: from the metric).")
]
Heartbeat = Annotated[
    int,
    typer.Option(
        "--heartbeat",
        help="Seconds between a worker's heartbeats; a trial silent for twice as long is "
        "marked failed by the next worker (a killed process) and queued again (--retries).",
    ),
]
Retries = Annotated[
    int,
    typer.Option(
        "--retries",
        help="Times a trial whose worker died is run again, with the same parameters under a "
        "new number (0: never).",
    ),
]


def study_options(
    space: Space = "auto",
    config: BaseConfig = None,
    set_: Set = [],  # noqa: B006 (typer copies it)
    train: Train = None,
    dev: Dev = None,
    test: Test = None,
    fmt: Format = None,
    encoding: Encoding = None,
    skip_invalid: SkipInvalid = False,
    corpus: Corpus = None,
    similarity: Similarity = None,
    cv: Cv = None,
    trial_seeds: TrialSeeds = "auto",
    rescore: Rescore = "auto",
    rescore_seeds: RescoreSeeds = 5,
    base_trial: BaseTrial = True,
    out: Path = typer.Option(
        ..., "--out", "-o", help="Study folder (the same one continues the study)."
    ),
    trials: Trials = None,
    total_trials: TotalTrials = None,
    timeout: Timeout = None,
    storage: Storage = None,
    study_name: StudyName = None,
    seed: Seed = 0,
    pruner: Pruner = "median",
    keep: Keep = "best",
    refit: Refit = False,
    refit_on: RefitOn = "train+dev",
    seeds: Seeds = 0,
    metric: Metric = None,
    direction: Direction = None,
    heartbeat: Heartbeat = 10,
    retries: Retries = 1,
) -> dict[str, Any]:
    """The options of the study, by name (:func:`tune_options` makes them TuneOptions)."""
    return locals()


@with_options(study_options, "study")
def tune(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="classify, lm or w2v.")],
    study: dict[str, Any],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No per-trial lines or tables.")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the outcome as one JSON object.")
    ] = False,
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
    display = _Display(show)
    try:
        with display.running():
            on_trial, on_start = (screen.tune_trial, screen.tune_start) if show else (None, None)
            result = run_study(options, on_trial, display.callbacks(), on_start=on_start)
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signal if isinstance(exc, Interrupted) else signal.SIGINT
        typer.echo(
            f"Interrupted by {signal.Signals(signum).name}: the study in {options.out} keeps "
            "every finished trial; run the same command again to continue it.",
            err=True,
        )
        raise typer.Exit(128 + int(signum)) from None
    if json_:
        print_json(result)
    elif show:
        screen.tune(result)


def tune_options(task: str, study: dict[str, Any], command: list[str]) -> Any:
    """The study's options as the library's TuneOptions: the data options and --set as overrides,
    the inputs, --trial-seeds and --rescore as numbers or auto."""
    from ffnlp.tune.prepare import TuneOptions  # imports torch
    from ffnlp.tune.tasks import Inputs, reads_examples  # the tuner's tables: when a study runs

    values = dict(study)
    data = (values.pop("fmt"), values.pop("encoding"), values.pop("skip_invalid"))
    overrides = settings(values.pop("set_"), data=data)
    if not reads_examples(task) and any(data):  # the [data] options of labelled files
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


class _Display:
    """On a terminal, a status line for the running trial (the finished ones: screen.tune_trial)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.status: Any = None

    @contextlib.contextmanager
    def running(self) -> Any:
        if self.show and err_console.is_terminal:
            with err_console.status("starting the study") as status:
                self.status = status
                yield
            self.status = None
        else:
            yield

    def callbacks(self) -> "list[Callback]":
        if self.status is None:
            return []
        from ffnlp.training.callbacks import Callback  # imports torch

        status = self.status

        class StatusLine(Callback):
            def on_fit_start(self, trainer: Any) -> None:
                status.update(f"training: epoch 1/{trainer.config.epochs}")

            def on_validation_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
                name = trainer.config.monitor.split(".", 1)[1]
                value = metrics.get(name)
                shown = f", dev {name} {value:.4f}" if isinstance(value, float) else ""
                status.update(
                    f"training: epoch {min(trainer.epoch + 1, trainer.config.epochs)}/"
                    f"{trainer.config.epochs}, step {trainer.step}{shown}"
                )

        return [StatusLine()]
