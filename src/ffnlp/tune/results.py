"""What a study leaves in its folder besides the trials: trials.csv, best.toml, the trial folders
pruned to their summaries (``--keep``), the refit of the best configuration (``DIR/best/``) and
its seeds (``DIR/seeds/``).

The refit (``--refit``) trains the best configuration once more and scores it on the test data,
the first and only time a study reads it. On train+dev (the default) there is no dev data left to
stop on, so the refit trains for the number of epochs at which the best trial's dev metric peaked
(rounded to a whole epoch; with ``--cv`` or ``--trial-seeds``, the mean over its folds or seeds)
with no early stopping; on train only, it is the best trial's run again (with several seeds per
trial, its first seed's: the configuration's train.seed), early stopping on dev included, with
the test scores added.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.fileio import write_atomic
from ffnlp.folders.layout import (
    BEST_DIR,
    BEST_TOML,
    RESCORE_DIR,
    RUN_SUMMARY_FILES,
    SEEDS_DIR,
    SUMMARY,
    TRIALS_CSV,
    TRIALS_DIR,
)
from ffnlp.tune import tasks
from ffnlp.tune.objective import Fold, Plan, run_dir_of

if TYPE_CHECKING:
    import optuna

    from ffnlp.text.readers import LabeledData
    from ffnlp.training.callbacks import Callback

KEEPS = ("all", "best", "summaries")
REFIT_ON = ("train+dev", "train")
# what a trial folder keeps when it is pruned to its summary
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def best_trial(
    study: optuna.study.Study, out: Path | None = None
) -> optuna.trial.FrozenTrial | None:
    """The best configuration's trial (None before one completes): with ``out``, the one the
    study's last re-scoring chose (DIR/rescore.json) when there is one; else the completed
    trial with the best value."""
    from optuna.trial import TrialState

    from ffnlp.tune.rescore import chosen_number

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    number = chosen_number(out) if out is not None else None
    for t in done if number is not None else ():
        if t.number == number:
            return t
    return study.best_trial


# ------------------------------------------------------------------------------------ tables


def trials_csv(trials: Sequence[optuna.trial.FrozenTrial], keys: Sequence[str]) -> str:
    """One row per trial: number, state, value, seconds, then params_<key> for each parameter
    (the space's first, in its order; a parameter a trial did not draw is left empty)."""
    names = list(keys) + sorted({k for t in trials for k in t.params} - set(keys))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "state", "value", "seconds", *(f"params_{k}" for k in names)])
    for t in sorted(trials, key=lambda t: t.number):
        seconds = t.user_attrs.get("seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        writer.writerow(
            [
                t.number,
                t.state.name,
                "" if t.value is None else repr(float(t.value)),
                "" if seconds is None else f"{float(seconds):.3f}",
                *("" if k not in t.params else _cell(t.params[k]) for k in names),
            ]
        )
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def best_toml(trial: optuna.trial.FrozenTrial, study_name: str, metric: str) -> str:
    """The best trial's complete configuration, with a header saying where it comes from."""
    header = (
        f"# The best configuration of the study {study_name!r}: trial {trial.number} "
        f"({run_dir_of(trial.number)}), {metric} = {trial.value:.6g}.\n"
        "# Rerun it with the train command's --config (the same data options as the study).\n\n"
    )
    return header + cfgmod.dump_toml(trial.user_attrs["config"])


def write_tables(study: optuna.study.Study, plan: Plan) -> None:
    """trials.csv, and best.toml once a trial has completed (both rewritten after each trial,
    so that a study stopped at any moment has them)."""
    trials = study.get_trials(deepcopy=False)
    write_atomic(plan.out / TRIALS_CSV, trials_csv(trials, plan.space.keys))
    best = best_trial(study, plan.out)
    if best is not None and "config" in best.user_attrs:
        write_atomic(plan.out / BEST_TOML, best_toml(best, study.study_name, plan.metric))


# -------------------------------------------------------------------------------- clean-up


def apply_keep(study: optuna.study.Study, out: Path, keep: str, spare: Sequence[int] = ()) -> None:
    """``--keep``: all (every trial folder whole), best (only the best trial keeps its model;
    the others are pruned to their summary) or summaries (every trial pruned to its summary).
    Only finished trials are touched (another worker may be writing a running one). With
    best, the trials in ``spare`` (the front-runners the re-scoring may choose) stay whole too.
    The re-scoring's runs only score their seeds: they keep their summaries."""
    if keep == "all":
        return
    best = best_trial(study, out) if keep == "best" else None
    whole = {best.number, *spare} if best is not None else set()
    for t in study.get_trials(deepcopy=False):
        if t.state.name in FINISHED and t.number not in whole:
            folder = out / run_dir_of(t.number)
            if folder.is_dir():
                reduce_to_summary(folder)
    for folder in sorted((out / RESCORE_DIR).glob("*/seed_*")):
        if (folder / SUMMARY).is_file():
            reduce_to_summary(folder)


def reduce_to_summary(folder: Path) -> None:
    """Delete what a run folder holds besides its configuration, summary, metrics and plots
    (weights, vocabulary, checkpoints); the folds or seeds of a trial of several runs the same
    way."""
    for entry in folder.iterdir():
        if entry.name in RUN_SUMMARY_FILES:
            continue
        if entry.is_dir() and not entry.is_symlink() and entry.name.startswith(("fold_", "seed_")):
            reduce_to_summary(entry)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def remove_debris(study: optuna.study.Study, out: Path) -> list[int]:
    """What failed trials left: the hidden folder of a run that was killed (SIGKILL, power
    loss), a trial folder that never got its summary. Returns the trial numbers cleaned."""
    cleaned: list[int] = []
    trials_dir = out / TRIALS_DIR
    if not trials_dir.is_dir():
        return cleaned
    for t in study.get_trials(deepcopy=False):
        if t.state.name != "FAIL":
            continue
        name = f"{t.number:04d}"
        found = False
        for hidden in trials_dir.glob(f".{name}.tmp-*"):
            shutil.rmtree(hidden, ignore_errors=True)
            found = True
        folder = trials_dir / name
        if folder.is_dir() and not (folder / SUMMARY).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            found = True
        if (trials_dir / f".{name}.lock").exists():
            found = _remove_lock(folder) or found
        if found:
            cleaned.append(t.number)
    return cleaned


def _remove_lock(folder: Path) -> bool:
    """Remove the run lock a killed process left beside ``folder`` (unless someone holds it)."""
    from ffnlp.errors import OutputError
    from ffnlp.folders.transaction import RunLock

    lock = RunLock(folder)
    try:
        lock.acquire()
    except OutputError:  # held: not debris
        return False
    lock.release()  # which removes the file
    return True


# ------------------------------------------------------------------------------ refit, seeds


def refit_config(trial: optuna.trial.FrozenTrial, plan: Plan, refit_on: str) -> dict[str, Any]:
    """The configuration the refit trains: the best trial's, with a fixed number of epochs when
    no dev data is left to stop on (train+dev, or --cv)."""
    cfg = dict(trial.user_attrs["config"])
    if refit_on == "train" and plan.folds is None:
        return cfg
    epochs = max(1, round(float(trial.user_attrs.get("best_epochs") or cfg["train"]["epochs"])))
    train = dict(cfg["train"])
    train.update(epochs=epochs, early_stopping=False, restore_best=False)
    cfg["train"] = train
    return cfg


def refit(
    trial: optuna.trial.FrozenTrial,
    plan: Plan,
    refit_on: str,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train the best configuration into ``DIR/best`` (replacing an earlier refit) and score it
    on --test; what it did and its figures."""
    if not tasks.can_test(plan.task):
        raise ConfigError(
            f"--refit retrains on train+dev and scores on test, which {plan.task} does not have; "
            f"the best run is {run_dir_of(trial.number)} (--keep best keeps its vectors)"
        )
    cfg = refit_config(trial, plan, refit_on)
    train, dev, cleanup = _refit_data(plan, cfg, refit_on)
    try:
        summary = tasks.train(
            plan.task,
            cfg,
            plan.out / BEST_DIR,
            callbacks,
            train=train,
            dev=dev,
            test=plan.inputs.test,
            force=True,
        )
    finally:
        if cleanup is not None:
            cleanup.unlink(missing_ok=True)
    on = "train" if plan.folds is not None else refit_on
    out: dict[str, Any] = {
        "run_dir": BEST_DIR,
        "trial": trial.number,
        "on": on,
        "epochs": summary.get("epochs"),
    }
    for split in ("dev", "test"):
        if isinstance(summary.get(split), dict):
            out[split] = _numbers(summary[split])
    return out


def _refit_data(plan: Plan, cfg: dict[str, Any], refit_on: str) -> tuple[Any, Any, Path | None]:
    """(train, dev, a temporary file to delete) of the refit."""
    inputs = plan.inputs
    if plan.folds is not None:  # cross-validation: all of --train, no dev
        return _all_examples(plan.folds), None, None
    if refit_on == "train":
        return inputs.train, inputs.dev, None
    assert inputs.train is not None and inputs.dev is not None
    if tasks.reads_examples(plan.task):
        resolved = tasks.resolve(plan.task, cfg, {})
        train = tasks.read_labelled(plan.task, inputs.train, resolved)
        dev = tasks.read_labelled(plan.task, inputs.dev, resolved)
        return _joined(train, dev), None, None
    joined = plan.out / ".refit-train+dev.txt"  # lm: one corpus, train then dev
    _concatenate([inputs.train, inputs.dev], joined, cfg.get("data", {}).get("encoding", "utf-8"))
    return joined, None, joined


def _joined(a: LabeledData, b: LabeledData) -> LabeledData:
    from ffnlp.text.readers import LabeledData

    sets = None
    if a.label_sets is not None or b.label_sets is not None:
        sets = a.label_lists() + b.label_lists()
    return LabeledData(
        texts=a.texts + b.texts,
        labels=a.labels + b.labels,
        path=Path(f"{a.path}+{b.path.name}"),
        format=a.format,
        label_sets=sets,
    )


def _all_examples(folds: list[Fold]) -> LabeledData:
    """Every example of a cross-validation (the held-out parts of the folds cover them all
    once)."""
    parts = [fold.held_out for fold in folds]
    joined = parts[0]
    for part in parts[1:]:
        joined = _joined(joined, part)
    return joined


def _concatenate(files: Sequence[Path], target: Path, encoding: str) -> None:
    from ffnlp.text.readers import read_lines

    with target.open("w", encoding="utf-8") as fh:
        for path in files:
            for _, line in read_lines(path, encoding=encoding):
                fh.write(line + "\n")


def seeds(
    trial: optuna.trial.FrozenTrial,
    plan: Plan,
    count: int,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """The best configuration over ``count`` seeds (0 .. count-1) into ``DIR/seeds``, as
    ``ffnlp repeat`` runs them (with --cv: the refit's configuration on all of --train); the
    aggregate, with the tuned metric's mean, sd and 95% CI."""
    from ffnlp.experiments.repeat import repeat

    if not tasks.can_test(plan.task):
        raise ConfigError(f"--seeds runs the tasks {tasks.testable()} (as ffnlp repeat does)")
    folder = plan.out / SEEDS_DIR
    if folder.is_dir() and (folder / SUMMARY).is_file():
        shutil.rmtree(folder)  # an earlier session's seeds: of what was the best then
    if plan.folds is not None:
        cfg = refit_config(trial, plan, "train+dev")
        train: Any = _all_examples(plan.folds)
        dev = None
    else:
        cfg = dict(trial.user_attrs["config"])
        train, dev = plan.inputs.train, plan.inputs.dev
    result = repeat(
        plan.task,
        train,
        dev=dev,
        test=plan.inputs.test,
        config=cfg,
        seeds=list(range(count)),
        out=folder,
        callbacks=callbacks,
    )
    name = plan.metric_name
    split = "test" if plan.inputs.test is not None else "dev"
    figure = result["repeat"].get(split, {}).get(name)
    out: dict[str, Any] = {"run_dir": SEEDS_DIR, "seeds": count, "split": split}
    if figure is not None:
        out.update(
            metric=f"{split}.{name}",
            mean=figure["mean"],
            sd=figure["sd"],
            ci95=figure["ci95"],
            values=figure["values"],
        )
    return out


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
