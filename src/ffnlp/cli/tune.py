"""`ffnlp tune TASK`: hyper-parameter search on Optuna (thin: the study is ffnlp.tune.study)."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ffnlp.cli.classify import ENCODING_OPTION, FORMAT_OPTION, SKIP_INVALID_OPTION, _data_settings
from ffnlp.cli.common import (
    CONFIG_HELP,
    SET_OPTION,
    command_settings,
    err_console,
    out_console,
    print_json,
    setup_logging,
)
from ffnlp.errors import Interrupted
from ffnlp.tasks import registry

if TYPE_CHECKING:
    from ffnlp.training.callbacks import Callback
    from ffnlp.tune.study import TrialLine

TOP_ROWS = 5


def tune(
    ctx: typer.Context,
    task: str = typer.Argument(..., help="classify, lm or w2v."),
    space: str = typer.Option(
        "auto",
        "--space",
        help="Search space: a TOML file of config keys and their distributions (see "
        "configs/spaces/), or auto: the shipped space of the task (pooled for a pooled "
        "classifier).",
    ),
    config: Path = typer.Option(None, "--config", "-c", help="Base configuration. " + CONFIG_HELP),
    set_: list[str] = SET_OPTION,
    train: Path = typer.Option(None, "--train", help="classify, lm: training data."),
    dev: Path = typer.Option(
        None, "--dev", help="classify, lm: dev data; every trial is scored on it."
    ),
    test: Path = typer.Option(
        None,
        "--test",
        help="classify, lm: test data, read only by --refit and --seeds, never by a trial.",
    ),
    fmt: str = FORMAT_OPTION,
    encoding: str = ENCODING_OPTION,
    skip_invalid: bool = SKIP_INVALID_OPTION,
    corpus: Path = typer.Option(None, "--corpus", help="w2v: the text corpus."),
    similarity: Path = typer.Option(
        None,
        "--similarity",
        help="w2v: word-similarity file; a trial's score is its Spearman correlation.",
    ),
    cv: int = typer.Option(
        None,
        "--cv",
        help="classify: score each trial by K-fold cross-validation of --train (the mean dev "
        "metric over the folds) instead of on --dev.",
    ),
    trial_seeds: str = typer.Option(
        "auto",
        "--trial-seeds",
        help="Runs per trial, with seeds train.seed, +1, ... (DIR/trials/NNNN/seed_K/); a trial "
        "scores the mean dev metric over them, so that one seed's luck does not choose the "
        "configuration. auto: 3 for classify without --cv, 1 for lm, w2v and with --cv (a study "
        "continued: as before).",
    ),
    rescore: str = typer.Option(
        "auto",
        "--rescore",
        help="After the search, train the K best trials (and the base configuration's) again "
        "with --rescore-seeds fresh seeds; the best configuration is the best mean over them "
        "among the candidates that beat the base on the same seeds (paired t-test, p < 0.05), "
        "else the base (the best of many noisy trials was partly lucky). auto: 5 for classify "
        "without --cv, else 0 (off). The time budget includes it.",
    ),
    rescore_seeds: int = typer.Option(
        5, "--rescore-seeds", help="Fresh seeds for each re-scored trial (DIR/rescore/)."
    ),
    base_trial: bool = typer.Option(
        True,
        "--base-trial/--no-base-trial",
        help="A new study's first trial is the base configuration (--config with --set), "
        "where the space can give its values; the study ends with it unless a trial beats it.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Study folder (the same one continues the study)."
    ),
    trials: int = typer.Option(
        None,
        "--trials",
        help="Trials this process runs (a rerun adds as many; 0 = none: only the results).",
    ),
    total_trials: int = typer.Option(
        None,
        "--total-trials",
        help="Trials of the study, all workers together: a worker starts no trial once the "
        "study holds this many that completed, were pruned, are running or wait (failed ones "
        "do not count), and waits for the other workers' running trials before it ends, so "
        "that it can run again a trial whose worker died.",
    ),
    timeout: float = typer.Option(
        None,
        "--timeout",
        help="Time budget in seconds; the running trial is stopped (pruned) when it runs out. "
        "Without --trials and --timeout: 300 s.",
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        help="Where the study lives (default: sqlite:///DIR/study.db, one worker). For several "
        "workers: journal:PATH (Optuna's journal file, on one machine or a shared file "
        "system) or postgresql://USER@HOST:PORT/DB (needs ffnlp[postgres]; "
        "mysql+pymysql://... with ffnlp[mysql]). An in-memory database is refused: a study "
        "must outlive the process. See docs/tuning.md.",
    ),
    study_name: str = typer.Option(None, "--study-name", help="Study name (default: DIR's name)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler (and of the --cv folds)."),
    pruner: str = typer.Option(
        "median",
        "--pruner",
        help="median (stop a trial worse than the median of the completed ones at the same dev "
        "evaluation, from the 2nd), halving (successive halving) or none.",
    ),
    keep: str = typer.Option(
        "best",
        "--keep",
        help="Trial folders: all (whole), best (only the best trial keeps its model; the others "
        "keep config, summary, metrics and plots) or summaries.",
    ),
    refit: bool = typer.Option(
        False,
        "--refit",
        help="Retrain the best configuration into DIR/best and score it on --test.",
    ),
    refit_on: str = typer.Option(
        "train+dev",
        "--refit-on",
        help="train+dev (for the best trial's number of epochs, no early stopping) or train.",
    ),
    seeds: int = typer.Option(
        0, "--seeds", help="Run the best configuration over K seeds into DIR/seeds: mean ± CI."
    ),
    metric: str = typer.Option(
        None,
        "--metric",
        help="The dev metric to optimise, one the trials report (default: the configuration's "
        "train.monitor: dev.accuracy; dev.perplexity for lm; the --similarity Spearman for "
        "w2v); checked before the first trial.",
    ),
    direction: str = typer.Option(
        None, "--direction", help="maximize or minimize (default: from the metric)."
    ),
    heartbeat: int = typer.Option(
        10,
        "--heartbeat",
        help="Seconds between a worker's heartbeats; a trial silent for twice as long is "
        "marked failed by the next worker (a killed process) and queued again (--retries).",
    ),
    retries: int = typer.Option(
        1,
        "--retries",
        help="Times a trial whose worker died is run again, with the same parameters under a "
        "new number (0: never).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-trial lines or tables."),
    json_: bool = typer.Option(False, "--json", help="Print the outcome as one JSON object."),
) -> None:
    """Search hyper-parameters with Optuna (TPE, pruning); every trial is a run folder.

    Each trial trains one configuration drawn from the space and scores it on the dev data (never on --test; the mean over --trial-seeds seeds, or over --cv folds); the study is kept in DIR/study.db (or --storage: a journal file or a PostgreSQL database for workers on several machines), so the same command continues it and several processes can work on it at once, a dead worker's trial run again. A new study's trial 0 is the base configuration; at the end the best trials and the base are re-scored with fresh seeds (--rescore). DIR gets trials.csv, best.toml (rerunnable with --config), trials/NNNN/, and with --refit / --seeds best/ and seeds/.

    Example:

        ffnlp tune classify --space auto --config sst2_ffnn --train ../shared/data/sst2/stsa.binary.train --dev ../shared/data/sst2/stsa.binary.dev --test ../shared/data/sst2/stsa.binary.test --timeout 1200 --refit --seeds 5 --out runs/tune_sst2
    """
    from ffnlp.tune.prepare import TuneOptions
    from ffnlp.tune.study import tune as run_study
    from ffnlp.tune.tasks import Inputs, reads_examples

    if registry.find(task) is None:
        raise typer.BadParameter(
            f"choose one of {', '.join(registry.names())}; got {task!r}", param_hint="TASK"
        )
    setup_logging(quiet or json_)
    logging.getLogger("ffnlp").setLevel(logging.ERROR if quiet or json_ else logging.WARNING)
    with contextlib.suppress(ImportError):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    sets = command_settings(set_)
    if reads_examples(task):  # the [data] options of labelled files
        sets = command_settings(_data_settings(fmt, encoding, skip_invalid), sets)
    elif fmt or encoding or skip_invalid:
        raise typer.BadParameter("--format, --encoding and --skip-invalid are classify options")
    inputs = Inputs(
        train=train, dev=dev, test=test, corpus=corpus, similarity=similarity, cv=cv or 0
    )
    options = TuneOptions(
        task=task,
        out=out,
        space=space,
        config=config,
        overrides=sets,
        inputs=inputs,
        trials=trials,
        timeout=timeout,
        storage=storage,
        study_name=study_name,
        seed=seed,
        pruner=pruner,
        keep=keep,
        refit=refit,
        refit_on=refit_on,
        seeds=seeds,
        trial_seeds=_auto_count(trial_seeds, "--trial-seeds", 1),
        rescore=_auto_count(rescore, "--rescore", 0),
        rescore_seeds=rescore_seeds,
        base_trial=base_trial,
        metric=metric,
        direction=direction,
        heartbeat=heartbeat,
        retries=retries,
        total_trials=total_trials,
        command=["ffnlp", *ctx.find_root().meta.get("ffnlp.argv", sys.argv[1:])],
    )
    show = not (quiet or json_)
    display = _Display(show)
    try:
        with display.running():
            result = run_study(
                options,
                display.trial if show else None,
                display.callbacks(),
                on_start=display.start if show else None,
            )
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signal if isinstance(exc, Interrupted) else signal.SIGINT
        typer.echo(
            f"Interrupted by {signal.Signals(signum).name}: the study in {out} keeps every "
            "finished trial; run the same command again to continue it.",
            err=True,
        )
        raise typer.Exit(128 + int(signum)) from None
    if json_:
        print_json(result)
    elif show:
        _print_result(result)


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
    """A line per finished trial; on a terminal also a status line for the running one."""

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

    def callbacks(self) -> list[Callback]:
        if self.status is None:
            return []
        from ffnlp.training.callbacks import Callback

        display = self

        class StatusLine(Callback):
            def on_fit_start(self, trainer: Any) -> None:
                display.update(f"training: epoch 1/{trainer.config.epochs}")

            def on_validation_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
                name = trainer.config.monitor.split(".", 1)[1]
                value = metrics.get(name)
                shown = f", dev {name} {value:.4f}" if isinstance(value, float) else ""
                display.update(
                    f"training: epoch {min(trainer.epoch + 1, trainer.config.epochs)}/"
                    f"{trainer.config.epochs}, step {trainer.step}{shown}"
                )

        return [StatusLine()]

    def update(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def start(self, meta: dict[str, Any]) -> None:
        """Before the first trial: how many seeds each trial trains, and why; what trial 0 is;
        the re-scoring to come."""
        count = meta["trial_seeds"]
        text = f"each trial trains {count} seed{'s' if count != 1 else ''}"
        err_console.print(f"{text} ({meta['trial_seeds_reason']})", soft_wrap=True)
        base = meta.get("base_trial")
        if base is not None:
            drawn = base["drawn"]
            err_console.print(
                "the study starts from the base configuration (trial 0)"
                + (
                    f" (drawn, the base's value being outside the space: {', '.join(drawn)})"
                    if drawn
                    else ""
                ),
                soft_wrap=True,
            )
        rescore = meta.get("rescore", {})
        if rescore.get("candidates"):
            err_console.print(
                f"then the {rescore['candidates']} best trials and the base configuration's are "
                f"re-scored with {rescore['seeds']} fresh seeds each (--rescore 0: off)",
                soft_wrap=True,
            )

    def trial(self, line: TrialLine) -> None:
        err_console.print(format_trial(line), soft_wrap=True, highlight=False)


def format_trial(line: TrialLine) -> str:
    """One finished trial, e.g. ``trial 7  0.8135  best 0.8200 (#4)  12.3 s  lr=0.0031 ...``."""
    value = "-" if line.value is None else f"{line.value:.4f}"
    new_best = line.state == "COMPLETE" and line.number == line.best_number
    if line.state == "COMPLETE":
        shown = f"[bold green]{value}[/]" if new_best else value
    elif line.state == "PRUNED":
        shown = f"[dim]{value} {line.note}[/]"
    else:
        shown = "[red]failed[/]"
    best = "" if line.best_value is None else f"best {line.best_value:.4f} (#{line.best_number})"
    seconds = "" if line.seconds is None else f"{line.seconds:.1f} s"
    text = f"trial {line.number:>3}  {shown}  {best}  {seconds}  {short_params(line.params)}"
    if line.state == "FAIL":
        text += f"\n          [red]{line.note}[/]"
    return text


def short_params(params: dict[str, Any]) -> str:
    """``lr=0.0031 hidden=[256]``: each key's last part (the whole key where two would clash)."""
    last = [k.rsplit(".", 1)[-1] for k in params]
    parts = []
    for key, name in zip(params, last, strict=True):
        shown = name if last.count(name) == 1 else key
        parts.append(f"{shown}={_short_value(params[key])}")
    return " ".join(parts)


def _short_value(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(_short_value(v) for v in value) + "]"
    return str(value)


def _print_result(result: dict[str, Any]) -> None:
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result["states"].items()))
    out_console.print(f"{result['trials']} trials in {result['dir']} ({states})", soft_wrap=True)
    if result["top"]:
        table = Table(title=f"top trials by {result['metric']} ({result['direction']})")
        for col in ("trial", result["metric"], "seconds", "parameters"):
            table.add_column(col, justify="left" if col == "parameters" else "right")
        for row in result["top"][:TOP_ROWS]:
            seconds = row["seconds"]
            table.add_row(
                str(row["number"]),
                f"{row['value']:.4f}",
                "" if seconds is None else f"{seconds:.1f}",
                short_params(row["params"]),
            )
        out_console.print(table)
    rescored = result.get("rescore")
    if rescored is not None:
        _print_rescore(rescored)
    best = result.get("best")
    if best is not None:
        out_console.print(
            f"best: trial {best['number']} ({best['run_dir']}), {result['metric']} "
            f"{best['value']:.4f}; configuration in {Path(result['dir']) / 'best.toml'}",
            soft_wrap=True,
        )
    refit = result.get("refit")
    if refit is not None:
        scores = ", ".join(
            f"{split}.{k} {v:.4f}"
            for split in ("test",)
            for k, v in refit.get(split, {}).items()
            if k in ("accuracy", "macro_f1", "perplexity", "precision_at_1")
        )
        out_console.print(
            f"refit on {refit['on']} ({refit['epochs']} epochs) in "
            f"{Path(result['dir']) / 'best'}{': ' + scores if scores else ''}",
            soft_wrap=True,
        )
    seeds = result.get("seeds")
    if seeds is not None and "mean" in seeds:
        lo, hi = seeds["ci95"]
        out_console.print(
            f"{seeds['seeds']} seeds in {Path(result['dir']) / 'seeds'}: {seeds['metric']} "
            f"{seeds['mean']:.4f} ± {seeds['sd']:.4f} (95% CI [{lo:.4f}, {hi:.4f}])",
            soft_wrap=True,
        )


def _print_rescore(table: dict[str, Any]) -> None:
    """The front-runners' search values against their fresh seeds."""
    metric = table["metric"]
    shown = Table(title=f"front-runners re-scored with fresh seeds ({metric})")
    for col in ("trial", "search (seeds)", "fresh seeds (chooses)", "all seeds", "p vs base", ""):
        shown.add_column(col, justify="right" if col else "left")
    for row in table["candidates"]:
        marks = []
        if row["number"] == table["best"]:
            marks.append("chosen")
        if row["base"]:
            marks.append("base")
        shown.add_row(
            str(row["number"]),
            f"{row['search_value']:.4f} ({row['search_seeds']})",
            f"{row['value']:.4f} ({len(row['values'])})",
            f"{row['all_seeds']:.4f}",
            "" if row.get("p_vs_base") is None else f"{row['p_vs_base']:.3f}",
            ", ".join(marks),
        )
    out_console.print(shown)
    out_console.print(f"chosen: trial {table['best']}, {table['why']}", soft_wrap=True)
