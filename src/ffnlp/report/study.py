"""The report of an `ffnlp tune` study folder: what was searched, what was found, and how.

The page opens with the study's facts (task, metric and direction, trials by state, time, the
best value and its parameters), then the optimisation history, the parameter importances
(fANOVA, through Optuna), one slice per parameter, the parallel coordinates, the values every
trial reported while it trained (what the pruner saw), the best trial's own curves, the ten best
trials with links to their run reports, and best.toml. Every image is embedded: the page is one
file that can be mailed or archived.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any

from ffnlp.errors import FfnlpError
from ffnlp.folders.folder import read_summary
from ffnlp.folders.layout import BEST_DIR, BEST_TOML, METRICS, SEEDS_DIR, SUMMARY
from ffnlp.report import studyplots
from ffnlp.report.fields import check_summary, read_records
from ffnlp.report.group import aggregate_table, group_kind, read_members, write_run_report
from ffnlp.report.markup import (
    EMPTY,
    Html,
    cat,
    document,
    el,
    img,
    join,
    link,
    muted,
    note,
    number,
    table,
    text,
)
from ffnlp.report.page import own_file, own_text
from ffnlp.report.runpage import metrics_table, run_images
from ffnlp.report.studyfolder import STATES, StudyFolder, StudyTrial, param_importances

TOP_TRIALS = 10
PARALLEL_MAX_PARAMS = 12  # beyond that the axes are unreadable: the most important ones


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _value(v: Any) -> Html:
    """A parameter as a cell: floats to 4 significant digits (learning rates are small)."""
    if isinstance(v, float):
        return text(f"{v:.4g}")
    return text(v)


def _facts(study: StudyFolder) -> Html:
    info = study.info
    counts = {s: sum(t.state == s for t in study.trials) for s in STATES}
    by_state = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    seconds = [t.seconds for t in study.trials if t.seconds is not None]
    best = study.best
    rows: list[tuple[object, object]] = [
        ("task", info.get("task") or ""),
        ("metric", f"{study.metric} ({study.direction})"),
        ("study", info.get("study_name") or ""),
        ("trials", f"{len(study.trials)}" + (f" ({by_state})" if by_state else "")),
        ("time in trials", _duration(sum(seconds)) if seconds else "—"),
        ("wall clock", _duration(study.wall_seconds)),
        ("read from", study.source),
    ]
    if best is not None:
        rows.append(("best value", cat(best.value, f" (trial {best.number})")))
        rows.extend((f"best {k}", _value(v)) for k, v in sorted(best.params.items()))
    command = info.get("command")
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        rows.append(("command", el("code", shlex.join(command))))
    return table(None, rows)


def _importances(study: StudyFolder) -> tuple[Html, dict[str, float] | None]:
    found, why = param_importances(study)
    if found is None:
        return note(why), None
    return img(studyplots.plot_importances(found), "parameter importances"), found


def _run_report(run_dir: Path | None) -> Path | None:
    """Write the run's own report.html and return it; None when it has none to write."""
    if run_dir is None or not own_file(run_dir, run_dir / SUMMARY):
        return None
    try:
        return write_run_report(run_dir)
    except FfnlpError:  # a damaged trial folder: the table says so by having no link
        return None


def _top_table(
    study: StudyFolder, params: list[str], page: Path, reports: dict[int, Path | None]
) -> Html:
    top = study.ranked()[:TOP_TRIALS]
    if not top:
        return note("No trial has completed yet.")
    rows = []
    for rank, t in enumerate(top, start=1):
        report = reports.get(t.number)
        if report is not None:
            cell = link(report, page, "report")
        elif t.run_dir is not None:
            cell = link(t.run_dir, page, "folder")
        else:
            cell = el("span", "—", class_="muted")
        rows.append(
            [
                rank,
                t.number,
                t.value,
                t.seconds if t.seconds is not None else "—",
                *(_value(t.params.get(p, "")) for p in params),
                cell,
            ]
        )
    more = len(study.complete) - len(top)
    tail = muted(f"and {more} more complete trials.") if more > 0 else EMPTY
    return table(["rank", "trial", "value", "seconds", *params, "run"], rows) + tail


def _best_curves(
    study: StudyFolder, best: StudyTrial | None, page: Path, reports: dict[int, Path | None]
) -> Html:
    """The best trial's run curves: the plots its run folder has (as in its own report), else
    drawn now from its metrics.jsonl."""
    from ffnlp.report.plots import plot_history

    if best is None:
        return note("No trial has completed yet: there is no best trial.")
    if best.run_dir is None:
        return note(f"The run folder of trial {best.number} is not in this study folder.")
    run_dir = best.run_dir
    report = reports.get(best.number)
    head = el(
        "p",
        f"Trial {best.number}, ",
        cat(link(report, page, "its report"), ".") if report is not None else "no report.",
    )
    images = run_images(run_dir)
    if images:
        return head + images
    metrics = run_dir / METRICS
    if not own_file(run_dir, metrics):
        return head + note(f"Trial {best.number} kept no metrics.jsonl: no curves to draw.")
    records = read_records(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        plot_history(records, tmp, metric=study.metric.partition(".")[2] or None)
        return head + run_images(Path(tmp))


def _extras(study: StudyFolder, page: Path) -> Html:
    """The refit run (best/, with --refit) and the seeds (seeds/, with --seeds K), when present."""
    parts = []
    best_dir = study.folder / BEST_DIR
    if own_file(study.folder, best_dir / SUMMARY):
        summary = check_summary(read_summary(best_dir, required=True), best_dir / SUMMARY)
        report = _run_report(best_dir)
        where = link(report, page, "report") if report is not None else text(best_dir)
        parts.append(
            el("h2", "The best configuration retrained (best/)", id="refit")
            + el("p", where)
            + metrics_table(summary)
        )
    seeds_dir = study.folder / SEEDS_DIR
    if own_file(study.folder, seeds_dir / SUMMARY):
        summary = check_summary(read_summary(seeds_dir, required=True), seeds_dir / SUMMARY)
        kind = group_kind(summary)
        if kind is not None:
            report = write_run_report(seeds_dir)
            members = read_members(seeds_dir, summary, kind)
            parts.append(
                el("h2", f"The best configuration over {len(members)} seeds (seeds/)", id="seeds")
                + el("p", link(report, page, "report"))
                + aggregate_table(members)
            )
    return cat(*parts)


def _p_value(p: Any) -> Html:
    return number(p, ".3f") if isinstance(p, (int, float)) else EMPTY


def _rescored(study: StudyFolder) -> Html:
    """The front-runners against their fresh seeds (rescore.json), or nothing."""
    rescore = study.rescore
    if rescore is None:
        return EMPTY
    metric = rescore.get("metric", study.metric)
    rows = []
    for r in rescore["candidates"]:
        marks = [
            m
            for m, on in (("chosen", r["number"] == rescore.get("best")), ("base", r.get("base")))
            if on
        ]
        rows.append(
            [
                r["number"],
                cat(r.get("search_value", ""), f" ({r.get('search_seeds', '')})"),
                cat(r.get("value", ""), f" ({len(r.get('values') or [])})"),
                r.get("all_seeds", ""),
                _p_value(r.get("p_vs_base")),
                join(marks),
            ]
        )
    return cat(
        el("h2", f"The front-runners re-scored with fresh seeds ({metric})", id="rescore"),
        el(
            "p",
            "The best trials of a search are partly its luckiest; each was trained again with "
            "seeds no trial used (the same seeds for all). A candidate replaces the base "
            "configuration only when it beats it on those seeds (paired t-test, one-sided p "
            "below the threshold); the best mean among those is chosen. "
            f"Chosen: trial {rescore.get('best')}, {rescore.get('why', '')}.",
        ),
        table(
            ["trial", "search (seeds)", "fresh seeds (chooses)", "all seeds", "p vs base", ""],
            rows,
        ),
    )


def _space(study: StudyFolder) -> Html:
    space = study.info.get("space")
    if not isinstance(space, dict) or not space:
        return EMPTY
    rows = [
        [
            k,
            join(cat(a, "=", _value(b)) for a, b in v.items())
            if isinstance(v, dict)
            else _value(v),
        ]
        for k, v in space.items()
    ]
    return el("h2", "Search space", id="space") + table(["key", "distribution"], rows)


def study_page(study: StudyFolder, page: Path) -> str:
    """The whole report of ``study``, to be written at ``page`` (links are relative to it)."""
    params = study.param_names()
    best = study.best
    done = study.complete
    notes = cat(*(note(n) for n in study.notes))
    history = img(studyplots.plot_optimisation_history(study), "optimisation history")
    importances, ranked = _importances(study)
    if done and params:
        slices = img(studyplots.plot_slices(study, params), "slice plots")
        shown = params
        if ranked is not None and len(params) > PARALLEL_MAX_PARAMS:
            shown = list(ranked)[:PARALLEL_MAX_PARAMS]
        parallel = img(studyplots.plot_parallel_coordinates(study, shown), "parallel coordinates")
    else:
        why = "no trial has completed yet" if not done else "the study has no parameters"
        slices = note(f"No slice plots: {why}.")
        parallel = note(f"No parallel coordinates: {why}.")
    if any(t.intermediate for t in study.trials):
        intermediate = img(studyplots.plot_intermediate_values(study, best), "intermediate values")
    else:
        intermediate = note("No trial reported an intermediate value.")
    pruned = sum(t.state == "PRUNED" for t in study.trials)
    reports = {t.number: _run_report(t.run_dir) for t in study.ranked()[:TOP_TRIALS]}
    best_toml = own_text(study.folder, study.folder / BEST_TOML)
    config = (
        muted("Re-run with ", el("code", f"--config {study.folder / 'best.toml'}"))
        + el("pre", best_toml)
        if best_toml
        else note("The study folder has no best.toml yet (it is written when a trial completes).")
    )
    title = f"ffnlp tune {study.info.get('task') or ''} study"
    return document(
        title,
        el("h1", f"{title}: {study.folder}"),
        _facts(study),
        notes,
        el("h2", "Optimisation history", id="history"),
        history,
        el("h2", "Parameter importances", id="importances"),
        importances,
        el("h2", "The objective against each parameter", id="slices"),
        slices,
        el("h2", "Parallel coordinates", id="parallel"),
        parallel,
        el("h2", f"Learning curves of every trial ({pruned} pruned, in grey)", id="intermediate"),
        intermediate,
        el("h2", "The best trial's training curves", id="best-curves"),
        _best_curves(study, best, page, reports),
        el("h2", f"The best {min(TOP_TRIALS, len(done))} trials", id="top"),
        _top_table(study, params, page, reports),
        _rescored(study),
        _extras(study, page),
        el("h2", "The best configuration (best.toml)", id="best-config"),
        config,
        _space(study),
    )
