"""The report of an `ffnlp tune` study folder: what was searched, what was found, and how.

The page opens with the study's facts (task, metric and direction, trials by state, time, the
best value and its parameters), then the optimisation history, the parameter importances
(fANOVA, through Optuna), one slice per parameter, the parallel coordinates, the values every
trial reported while it trained (what the pruner saw), the best trial's own curves, the ten best
trials with links to their run reports, and best.toml. Every image is embedded: the page is one
file that can be mailed or archived.
"""

from __future__ import annotations

import html
import shlex
import tempfile
from pathlib import Path
from typing import Any

from ffnlp.errors import FfnlpError
from ffnlp.report import studyplots
from ffnlp.report.group import aggregate_table, group_kind, read_members
from ffnlp.report.page import document, fmt, img, link, note, own_file, own_text
from ffnlp.report.studyfolder import STATES, StudyFolder, StudyTrial, param_importances
from ffnlp.tasks.runfolder import read_summary
from ffnlp.training.history import read_metrics

TOP_TRIALS = 10
PARALLEL_MAX_PARAMS = 12  # beyond that the axes are unreadable: the most important ones


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _value(v: Any) -> str:
    """A parameter as a cell: floats to 4 significant digits (learning rates are small)."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _facts(study: StudyFolder) -> str:
    info = study.info
    counts = {s: sum(t.state == s for t in study.trials) for s in STATES}
    by_state = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    seconds = [t.seconds for t in study.trials if t.seconds is not None]
    best = study.best
    rows: list[tuple[str, str]] = [
        ("task", html.escape(str(info.get("task", "")))),
        ("metric", f"{html.escape(study.metric)} ({study.direction})"),
        ("study", html.escape(str(info.get("study_name", "")))),
        ("trials", f"{len(study.trials)}" + (f" ({by_state})" if by_state else "")),
        ("time in trials", _duration(sum(seconds)) if seconds else "—"),
        ("wall clock", _duration(study.wall_seconds)),
        ("read from", html.escape(study.source)),
    ]
    if best is not None:
        rows.append(("best value", f"{fmt(best.value)} (trial {best.number})"))
        rows.extend((f"best {html.escape(k)}", _value(v)) for k, v in sorted(best.params.items()))
    command = info.get("command")
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        rows.append(("command", f"<code>{html.escape(shlex.join(command))}</code>"))
    return "<table>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _importances(study: StudyFolder) -> tuple[str, dict[str, float] | None]:
    found, why = param_importances(study)
    if found is None:
        return note(why), None
    return img(studyplots.plot_importances(found), "parameter importances"), found


def _run_report(run_dir: Path | None) -> Path | None:
    """Write the run's own report.html and return it; None when it has none to write."""
    from ffnlp.report.html import write_report

    if run_dir is None or not own_file(run_dir, run_dir / "summary.json"):
        return None
    try:
        return write_report(run_dir)
    except FfnlpError:  # a damaged trial folder: the table says so by having no link
        return None


def _top_table(
    study: StudyFolder, params: list[str], page: Path, reports: dict[int, Path | None]
) -> str:
    top = study.ranked()[:TOP_TRIALS]
    if not top:
        return note("No trial has completed yet.")
    head = (
        "<tr><th>rank</th><th>trial</th><th>value</th><th>seconds</th>"
        + "".join(f"<th>{html.escape(p)}</th>" for p in params)
        + "<th>run</th></tr>"
    )
    rows = []
    for rank, t in enumerate(top, start=1):
        report = reports.get(t.number)
        if report is not None:
            cell = link(report, page, "report")
        elif t.run_dir is not None:
            cell = link(t.run_dir, page, "folder")
        else:
            cell = "<span class='muted'>—</span>"
        rows.append(
            f"<tr><td>{rank}</td><td>{t.number}</td><td>{fmt(t.value)}</td>"
            f"<td>{fmt(t.seconds) if t.seconds is not None else '—'}</td>"
            + "".join(f"<td>{_value(t.params.get(p, ''))}</td>" for p in params)
            + f"<td>{cell}</td></tr>"
        )
    more = len(study.complete) - len(top)
    tail = f"<p class='muted'>and {more} more complete trials.</p>" if more > 0 else ""
    return f"<table>{head}{''.join(rows)}</table>{tail}"


def _best_curves(
    study: StudyFolder, best: StudyTrial | None, page: Path, reports: dict[int, Path | None]
) -> str:
    """The best trial's run curves: the plots its run folder has (as in its own report), else
    drawn now from its metrics.jsonl."""
    from ffnlp.report.html import run_images
    from ffnlp.report.plots import plot_history

    if best is None:
        return note("No trial has completed yet: there is no best trial.")
    if best.run_dir is None:
        return note(f"The run folder of trial {best.number} is not in this study folder.")
    run_dir = best.run_dir
    report = reports.get(best.number)
    head = f"<p>Trial {best.number}, " + (
        link(report, page, "its report") + ".</p>" if report is not None else "no report.</p>"
    )
    images = run_images(run_dir)
    if images:
        return head + images
    metrics = run_dir / "metrics.jsonl"
    if not own_file(run_dir, metrics):
        return head + note(f"Trial {best.number} kept no metrics.jsonl: no curves to draw.")
    records = read_metrics(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        plot_history(records, tmp, metric=study.metric.partition(".")[2] or None)
        return head + run_images(Path(tmp))


def _extras(study: StudyFolder, page: Path) -> str:
    """The refit run (best/, with --refit) and the seeds (seeds/, with --seeds K), when present."""
    parts = []
    best_dir = study.folder / "best"
    if own_file(study.folder, best_dir / "summary.json"):
        from ffnlp.report.html import metrics_table

        summary = read_summary(best_dir, required=True)
        report = _run_report(best_dir)
        where = link(report, page, "report") if report is not None else html.escape(str(best_dir))
        parts.append(
            f"<h2 id='refit'>The best configuration retrained (best/)</h2><p>{where}</p>"
            + metrics_table(summary)
        )
    seeds_dir = study.folder / "seeds"
    if own_file(study.folder, seeds_dir / "summary.json"):
        summary = read_summary(seeds_dir, required=True)
        kind = group_kind(summary)
        if kind is not None:
            from ffnlp.report.html import write_report

            report = write_report(seeds_dir)
            members = read_members(seeds_dir, summary, kind)
            parts.append(
                f"<h2 id='seeds'>The best configuration over {len(members)} seeds (seeds/)</h2>"
                f"<p>{link(report, page, 'report')}</p>{aggregate_table(members)}"
            )
    return "".join(parts)


def _p_value(p: Any) -> str:
    return "" if not isinstance(p, (int, float)) else f"{p:.3f}"


def _rescored(study: StudyFolder) -> str:
    """The front-runners against their fresh seeds (rescore.json), or nothing."""
    table = study.rescore
    if table is None:
        return ""
    metric = html.escape(str(table.get("metric", study.metric)))
    rows = []
    for r in table["candidates"]:
        marks = [
            m
            for m, on in (("chosen", r["number"] == table.get("best")), ("base", r.get("base")))
            if on
        ]
        rows.append(
            f"<tr><td>{r['number']}</td><td>{fmt(r['search_value'])} ({r['search_seeds']})</td>"
            f"<td>{fmt(r['value'])} ({len(r['values'])})</td><td>{fmt(r['all_seeds'])}</td>"
            f"<td>{_p_value(r.get('p_vs_base'))}</td>"
            f"<td>{', '.join(marks)}</td></tr>"
        )
    return (
        f"<h2 id='rescore'>The front-runners re-scored with fresh seeds ({metric})</h2>"
        "<p>The best trials of a search are partly its luckiest; each was trained again with "
        "seeds no trial used (the same seeds for all). A candidate replaces the base "
        "configuration only when it beats it on those seeds (paired t-test, one-sided p "
        "below the threshold); the best mean among those is chosen. "
        f"Chosen: trial {table.get('best')}, {html.escape(str(table.get('why', '')))}.</p><table><tr><th>trial</th><th>search (seeds)</th>"
        f"<th>fresh seeds (chooses)</th><th>all seeds</th><th>p vs base</th><th></th></tr>{''.join(rows)}</table>"
    )


def _space(study: StudyFolder) -> str:
    space = study.info.get("space")
    if not isinstance(space, dict) or not space:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>"
        + (
            ", ".join(f"{html.escape(str(a))}={_value(b)}" for a, b in v.items())
            if isinstance(v, dict)
            else _value(v)
        )
        + "</td></tr>"
        for k, v in space.items()
    )
    return f"<h2 id='space'>Search space</h2><table><tr><th>key</th><th>distribution</th></tr>{rows}</table>"


def study_page(study: StudyFolder, page: Path) -> str:
    """The whole report of ``study``, to be written at ``page`` (links are relative to it)."""
    params = study.param_names()
    best = study.best
    done = study.complete
    notes = "".join(note(n) for n in study.notes)
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
    best_toml = own_text(study.folder, study.folder / "best.toml")
    config = (
        "<p class='muted'>Re-run with <code>--config "
        f"{html.escape(str(study.folder / 'best.toml'))}</code></p><pre>{html.escape(best_toml)}</pre>"
        if best_toml
        else note("The study folder has no best.toml yet (it is written when a trial completes).")
    )
    title = f"ffnlp tune {study.info.get('task', '')} study"
    body = f"""<h1>{html.escape(title)}: {html.escape(str(study.folder))}</h1>
{_facts(study)}{notes}
<h2 id='history'>Optimisation history</h2>{history}
<h2 id='importances'>Parameter importances</h2>{importances}
<h2 id='slices'>The objective against each parameter</h2>{slices}
<h2 id='parallel'>Parallel coordinates</h2>{parallel}
<h2 id='intermediate'>Learning curves of every trial ({pruned} pruned, in grey)</h2>{intermediate}
<h2 id='best-curves'>The best trial's training curves</h2>{_best_curves(study, best, page, reports)}
<h2 id='top'>The best {min(TOP_TRIALS, len(done))} trials</h2>{_top_table(study, params, page, reports)}
{_rescored(study)}
{_extras(study, page)}
<h2 id='best-config'>The best configuration (best.toml)</h2>{config}
{_space(study)}"""
    return document(title, body)
