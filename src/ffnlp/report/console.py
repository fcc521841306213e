"""The results of ffnlp's commands as a person reads them on a terminal: Rich tables and lines.

:class:`ConsoleReport` prints to the consoles it is given (library code takes a sink, it does not
pick the terminal): the CLI gives it standard output and standard error; from Python,
``ConsoleReport(Console())`` prints the same tables of a trained object or a result dict (--json
prints those dicts as they are)."""

from __future__ import annotations

import contextlib
import json
import math
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the training package imports torch
    from ffnlp.training.callbacks import Callback

PER_LABEL_ROWS = 30  # multi-label eval: the most frequent labels shown (--json has them all)
TOP_ROWS = 5  # tune: the best trials shown


def _table(title: str | None, columns: dict[str, Any]) -> Table:
    """A table with these columns (name -> justify)."""
    table = Table(title=title)
    for name, justify in columns.items():
        table.add_column(name, justify=justify)
    return table


def short_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the bulky per-class and confusion entries (for tables)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}


def _pct(x: float) -> str:
    return "-" if x != x else f"{x:.1%}"


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


def prediction_line(text: str, top: list[tuple[str, float]], json_: bool) -> str:
    """One text's line of `classify predict`: its labels and probabilities, tab-separated, then the
    text; or (``json_``) one JSON object: text, label, prob, top."""
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


def vector_line(text: str, vector: Any, json_: bool, key: str = "text") -> str:
    """One line of `classify vectors`: the vector's numbers (7 significant digits), or
    (``json_``) one JSON object: ``key`` (the text, or the word) and the vector."""
    if json_:
        return json.dumps({key: text, "vector": [float(x) for x in vector]})
    return " ".join(f"{x:.7g}" for x in vector.tolist())


def preset_lines(found: Iterable[Any]) -> Iterator[str]:
    """`ffnlp presets`: a heading, then each preset's name and task, what it is for, its
    documented result and the data it expects (wrapped at 96 columns), a blank line after each."""
    yield "Presets shipped with ffnlp (use one with --config NAME):\n"
    for p in found:
        yield f"{p.name}  ({p.task})"
        for label, text in (("for", p.about), ("result", p.result), ("data", p.data)):
            head = f"  {label + ':':<8}"
            yield textwrap.fill(text, 96, initial_indent=head, subsequent_indent=" " * 10)
        yield ""


NUMPY_VS_TORCH = (
    "epoch",
    "steps",
    "loss NumPy",
    "loss PyTorch",
    "dev acc NumPy",
    "dev acc PyTorch",
)


class ConsoleReport:
    """Every table and line the commands print for a person, on ``out`` (results) and ``err``
    (the running commentary of a study)."""

    def __init__(self, out: Console, err: Console | None = None) -> None:
        self.out = out
        self.err = err if err is not None else Console(stderr=True)

    def say(self, *objects: Any, **options: Any) -> None:
        """Print on ``out`` (Rich's print and its options)."""
        self.out.print(*objects, **options)

    def lineage(self, summary: dict[str, Any]) -> None:
        """One line saying which run a continued run started from and what grew (nothing for a run
        trained from scratch)."""
        lineage = summary.get("init_from")
        if not isinstance(lineage, dict):
            return
        sizes = lineage.get("vocab") or lineage.get("input_rows") or {}
        grew = f"; rows {sizes['before']} -> {sizes['after']}" if sizes else ""
        labels = lineage.get("labels_added")
        added = f"; new labels: {', '.join(labels)}" if labels else ""
        self.say(f"continued from {lineage['run']}{grew}{added}", markup=False)

    # classify

    def classify_train(self, clf: Any) -> None:
        from ffnlp.tasks.classify.metrics import MULTILABEL_FIGURES  # loaded with the classifier

        summary = clf.summary
        figures = MULTILABEL_FIGURES if clf.multilabel else ("accuracy", "macro_f1")
        metrics = (*figures, "loss")
        table = _table(f"ffnlp classify: {clf.run_dir}", {"split": "left"})
        for metric in metrics:
            table.add_column(metric, justify="right")
        for split in ("train", "dev", "test"):
            if split in summary:
                m = summary[split]
                table.add_row(split, *(f"{m[metric]:.4f}" for metric in metrics))
        self.say(table)
        self.say(
            f"{summary['epochs']} epochs in {summary['train_seconds']:.1f} s; best epoch "
            f"{summary['best_epoch']}. {summary['stop_reason']}"
        )
        self.lineage(summary)

    def classify_eval(self, title: str, metrics: dict[str, Any], multilabel: bool) -> None:
        columns = ("precision", "recall", "f1", "support")
        table = _table(title, {"label": "left", **dict.fromkeys(columns, "right")})
        rows = list(metrics["per_class"].items())
        if multilabel and len(rows) > PER_LABEL_ROWS:
            rows = sorted(rows, key=lambda kv: -kv[1]["support"])[:PER_LABEL_ROWS]
            table.caption = f"the {PER_LABEL_ROWS} most frequent of {len(metrics['per_class'])} labels; --json has all"
        for label, m in rows:
            table.add_row(label, *(f"{m[c]:.4f}" for c in columns[:3]), str(m["support"]))
        self.say(table)
        self.say(" ".join(f"{k} {v:.4f}" for k, v in short_metrics(metrics).items()))

    def cv_fold(self, fold: int, folds: int, scores: dict[str, float]) -> None:
        first = "precision_at_1" if "precision_at_1" in scores else "accuracy"
        self.say(
            f"fold {fold}/{folds}: {first} {scores[first]:.4f}  "
            f"macro_f1 {scores['macro_f1']:.4f} ({scores['train_seconds']:.1f} s)",
            soft_wrap=True,
        )

    def cv(self, folds: int, result: dict[str, Any]) -> None:
        title = f"{folds}-fold cross-validation: {result['run_dir']}"
        table = _table(title, {"metric": "left", "mean": "right", "sd": "right"})
        for name, m in result["cv"].items():
            table.add_row(name, f"{m['mean']:.4f}", f"{m['sd']:.4f}")
        self.say(table)

    def lr_find(self, result: dict[str, Any]) -> None:
        lrs = result["lr"]
        self.say(
            f"Swept {len(lrs)} steps of {result['optimizer']} from lr {lrs[0]:.3g} to {lrs[-1]:.3g}"
            + (f" (stopped: {result['stop_reason']})." if result["stop_reason"] else ".")
        )
        self.say(
            f"Lowest smoothed loss {min(result['loss']):.4f} at lr {result['min_loss_lr']:.3g}; "
            f"a tenth of it: {result['min_over_10_lr']:.3g}; the configuration's lr: "
            f"{result['config_lr']:.3g}."
        )
        self.say(f"Plot: {result['plot']}")
        self.say(
            f"Suggested learning rate ({result['rule']}): {result['suggested_lr']:.3g}  "
            f"(--set train.lr={result['suggested_lr']:.3g})"
        )

    # lm and w2v

    def lm_train(self, lm: Any) -> None:
        summary = lm.summary
        table = _table(
            f"ffnlp lm ({summary['kind']}): {lm.run_dir}",
            {"split": "left", "perplexity": "right", "tokens": "right"},
        )
        for split in ("dev", "test"):
            if split in summary:
                s = summary[split]
                table.add_row(split, f"{s['perplexity']:.2f}", str(s["tokens"]))
        interp = summary.get("interpolated")
        blocks = [(summary.get("cache"), "{} (with the cache)")]
        if interp:
            mix = f"{{}} (mixed, λ={interp['weight']:.3f})"
            blocks += [(interp, mix), (interp.get("cache"), mix[:-1] + ", with the cache)")]
        for block, name in blocks:
            for split in ("dev", "test") if block else ():
                if split in block:
                    table.add_row(name.format(split), f"{block[split]['perplexity']:.2f}", "")
        self.say(table)
        if interp:
            self.say(f"λ: the weight of {interp['weight_of']} in the mixture", markup=False)
        self.lineage(summary)
        self.say(
            f"trained in {summary['train_seconds']:.1f} s ({summary['tokens_per_second']:.0f} tokens/s)"
            + (f"; best epoch {summary['best_epoch']}" if summary.get("best_epoch") else "")
        )
        for sample in summary.get("samples", []):
            self.say(f"  sample: {sample}", markup=False)

    def perplexity(self, run: Path, data: Path, lm: Any, metrics: dict[str, Any]) -> None:
        """`lm eval`: the perplexity of a model (or a mixture) on a corpus."""
        from ffnlp.text.corpus import EOS  # the end of a sentence, counted as a token

        mixed = (
            f" mixed with {lm.partner.run_dir} (λ={lm.weight:.3f}, the weight of "
            f"{lm.weighted_model.run_dir})"
            if lm.partner is not None
            else ""
        )
        if lm.cache_size > 0:
            mixed += f" with a cache of {lm.cache_size} words (share {lm.cache_weight:.3f}"
            if lm.cache_order > 1:  # each order's share
                mixed += ": orders 1-{} {}".format(
                    lm.cache_order, " / ".join(f"{w:.3f}" for w in lm.cache_weights)
                )
            mixed += ")"
        self.say(
            f"{run}{mixed} on {data}: perplexity {metrics['perplexity']:.2f} over "
            f"{metrics['tokens']} tokens ({metrics['sentences']} sentences, {EOS} counted; OOV rate "
            f"{metrics['oov_rate']:.2%})"
        )

    def unknown_words(self, unknown: list[str]) -> None:
        """`lm generate`: the prompt's words outside the vocabulary (on ``err``)."""
        from ffnlp.text.vocab import UNK  # the token an unknown word is read as

        if unknown:
            words = ", ".join(repr(w) for w in sorted(set(unknown)))
            self.err.print(f"note: not in the vocabulary, read as {UNK}: {words}", markup=False)

    def samples(self, rows: list[dict[str, Any]]) -> None:
        """`lm generate`: each sample's text on a line of its own, as sampled (no markup, no
        wrapping)."""
        for row in rows:
            self.out.print(row["text"], markup=False, highlight=False, emoji=False, soft_wrap=True)

    def arpa(self, arpa: Path, counts: list[int]) -> None:
        """`lm export`: the ARPA file written and its n-gram counts."""
        listed = ", ".join(f"{c:,} {n}-grams" for n, c in enumerate(counts, start=1))
        self.say(f"{arpa}: {listed}", markup=False)

    def w2v_train(self, run: Any) -> None:
        s = run.summary
        self.say(
            f"[bold]ffnlp w2v[/bold]: {s['vocab_size']} words x {run.model.dim} dims in {run.run_dir}; "
            f"{s['corpus_tokens']} tokens x {s['epochs']} epochs in {s['train_seconds']:.1f} s "
            f"= {s['words_per_second']:,.0f} words/s"
        )
        self.word_vectors(s.get("evaluation", {}))
        self.lineage(s)

    def word_vectors(self, result: dict[str, Any]) -> None:
        """Word similarity and analogies (w2v eval, and after w2v train)."""
        if result.get("similarity"):
            columns = {"file": "left", "OOV": "left"}
            columns |= dict.fromkeys(("spearman", "pairs", "coverage"), "right")
            table = _table("word similarity", columns)
            for name, r in result["similarity"].items():
                covered = f"{1 - r['oov_rate']:.1%}"
                table.add_row(name, "skipped", f"{r['spearman']:.3f}", str(r["pairs"]), covered)
                sub = r.get("oov_from_subwords")
                if sub:
                    table.add_row(
                        "", "from subwords", f"{sub['spearman']:.3f}", "", f"{sub['coverage']:.1%}"
                    )
            self.say(table)
        if result.get("analogy"):
            a = result["analogy"]
            title = (
                f"analogies ({a['questions']} answered, {a['skipped']} skipped, "
                f"top {a['restrict']} words)"
            )
            columns = {
                "section": "left",
                **dict.fromkeys(("questions", "3CosAdd", "3CosMul"), "right"),
            }
            table = _table(title, columns)
            for name, s in a["sections"].items():
                table.add_row(name, str(s["questions"]), _pct(s["3cosadd"]), _pct(s["3cosmul"]))
            table.add_row(
                "[bold]total[/bold]", str(a["questions"]), _pct(a["3cosadd"]), _pct(a["3cosmul"])
            )
            self.say(table)

    def neighbors(
        self, result: dict[str, Any], plot: Path | None = None, query: bool = False
    ) -> None:
        """`w2v neighbors`: a line per query word, or (``query``) one for the analogy query
        (``result``: :func:`ffnlp.tasks.w2v.nearest_words`'); then where --plot went."""
        if query:
            asked = " + ".join(result["positive"]) + "".join(f" - {w}" for w in result["negative"])
            result = {asked: result["neighbors"]}
        for w, ns in result.items():
            self.say(f"[bold]{w}[/bold]: " + ", ".join(f"{n} ({s:.3f})" for n, s in ns))
        if plot is not None:
            self.say(f"projection saved to {plot}")

    def centrality(self, ranked: list[tuple[str, float]]) -> None:
        """`w2v doesnt-match`: each word's cosine to the mean, after the odd one out."""
        line = ", ".join(f"{w} {s:.3f}" for w, s in ranked)
        self.say("cosine to the mean: " + line, style="dim")

    def dot_written(self, dot: Path, png: Path | None, on_err: bool = False) -> None:
        """`explain graph --dot`: the files written (on ``err`` when the result is --json)."""
        note = f"wrote {dot}" + (
            f" and {png}" if png else " (PNG skipped: Graphviz's dot is not on PATH)"
        )
        (self.err if on_err else self.out).print(
            note, markup=False, highlight=False, soft_wrap=True
        )

    # experiments: repeat, compare, tune

    def repeat_seed(self, seed: int, done: int, seeds: int, row: dict[str, Any]) -> None:
        shown = {
            s: {k: round(v, 4) for k, v in row[s].items()} for s in ("dev", "test") if s in row
        }
        self.say(
            f"seed {seed} (run {done}/{seeds}): {shown} ({row['train_seconds']:.1f} s)",
            soft_wrap=True,
        )  # one line per run, also in a log file

    def repeat(self, task: str, seeds: int, result: dict[str, Any]) -> None:
        columns = {"split": "left", "metric": "left"}
        columns |= dict.fromkeys(("mean", "sd", "95% CI"), "right")
        table = _table(f"{task}: {seeds} seeds ({result['run_dir']})", columns)
        for split in ("dev", "test", "train"):
            for name, d in result["repeat"].get(split, {}).items():
                ci = f"[{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]"
                table.add_row(split, name, f"{d['mean']:.4f}", f"{d['sd']:.4f}", ci)
        self.say(table)

    def compare(self, result: dict[str, Any]) -> None:
        a, b = result["a"], result["b"]
        if result["test"] != "mcnemar_exact":
            self.say(
                f"A {a['run']}: mean {a['mean']:.4f} over {len(a['values'])} seeds\n"
                f"B {b['run']}: mean {b['mean']:.4f} over {len(b['values'])} seeds"
            )
            self.say(f"{result['metric']}: permutation test p = {result['p_value']:.4g}")
            return
        name = result["metric"]
        self.say(f"A {a['run']}: {name} {a[name]:.4f}\nB {b['run']}: {name} {b[name]:.4f}")
        self.say(
            f"only A right on {result['only_a_right']}, only B right on {result['only_b_right']} "
            f"of {result['examples']}; McNemar exact p = {result['p_value']:.4g}"
        )
        boot = result.get("bootstrap")
        if boot is None:
            return
        self.say(
            f"paired bootstrap, B - A ({boot['resamples']:,} resamples, seed {boot['seed']}; 95% "
            "percentile interval):",
            markup=False,
            soft_wrap=True,
        )
        for figure_name, figure in boot.items():
            if isinstance(figure, dict):
                low, high = figure["ci95"]
                self.say(
                    f"  {figure_name} {figure['difference']:+.4f} [{low:+.4f}, {high:+.4f}] "
                    f"p = {figure['p_value']:.4g}",
                    markup=False,
                    soft_wrap=True,
                )

    def tune_start(self, meta: dict[str, Any]) -> None:
        """Before the first trial: how many seeds each trial trains, and why; what trial 0 is; the
        re-scoring to come."""
        count = meta["trial_seeds"]
        text = f"each trial trains {count} seed{'s' if count != 1 else ''}"
        self.err.print(f"{text} ({meta['trial_seeds_reason']})", soft_wrap=True)
        base = meta.get("base_trial")
        if base is not None:
            drawn = base["drawn"]
            self.err.print(
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
            self.err.print(
                f"then the {rescore['candidates']} best trials and the base configuration's are "
                f"re-scored with {rescore['seeds']} fresh seeds each (--rescore 0: off)",
                soft_wrap=True,
            )

    @contextlib.contextmanager
    def study_status(self, show: bool) -> Iterator[list[Callback]]:
        """While a study runs, on a terminal (``err``) and when ``show``: a status line for the
        trial being trained (the finished ones: :meth:`tune_trial`); yields the callbacks that
        update it (none elsewhere)."""
        if not (show and self.err.is_terminal):
            yield []
            return
        from ffnlp.training.callbacks import StatusLine  # imports torch

        with self.err.status("starting the study") as status:
            yield [StatusLine(status.update)]

    def tune_trial(self, line: Any) -> None:
        """One finished trial, e.g. ``trial 7  0.8135  best 0.8200 (#4)  12.3 s  lr=0.0031 ...``."""
        value = "-" if line.value is None else f"{line.value:.4f}"
        new_best = line.state == "COMPLETE" and line.number == line.best_number
        if line.state == "COMPLETE":
            shown = f"[bold green]{value}[/]" if new_best else value
        elif line.state == "PRUNED":
            shown = f"[dim]{value} {line.note}[/]"
        else:
            shown = "[red]failed[/]"
        best = (
            "" if line.best_value is None else f"best {line.best_value:.4f} (#{line.best_number})"
        )
        seconds = "" if line.seconds is None else f"{line.seconds:.1f} s"
        text = f"trial {line.number:>3}  {shown}  {best}  {seconds}  {short_params(line.params)}"
        if line.state == "FAIL":
            text += f"\n          [red]{line.note}[/]"
        self.err.print(text, soft_wrap=True, highlight=False)

    def tune(self, result: dict[str, Any]) -> None:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result["states"].items()))
        folder = Path(result["dir"])
        self.say(f"{result['trials']} trials in {folder} ({states})", soft_wrap=True)
        if result["top"]:
            columns = dict.fromkeys(("trial", result["metric"], "seconds"), "right")
            table = _table(f"top trials by {result['metric']} ({result['direction']})", columns)
            table.add_column("parameters", justify="left")
            for row in result["top"][:TOP_ROWS]:
                seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
                params = short_params(row["params"])
                table.add_row(str(row["number"]), f"{row['value']:.4f}", seconds, params)
            self.say(table)
        if result.get("rescore") is not None:
            self._rescore(result["rescore"])
        best = result.get("best")
        if best is not None:
            self.say(
                f"best: trial {best['number']} ({best['run_dir']}), {result['metric']} "
                f"{best['value']:.4f}; configuration in {folder / 'best.toml'}",
                soft_wrap=True,
            )
        refit = result.get("refit")
        if refit is not None:
            figures = ("accuracy", "macro_f1", "perplexity", "precision_at_1")
            test = refit.get("test", {})
            scores = ", ".join(f"test.{k} {v:.4f}" for k, v in test.items() if k in figures)
            self.say(
                f"refit on {refit['on']} ({refit['epochs']} epochs) in "
                f"{folder / 'best'}{': ' + scores if scores else ''}",
                soft_wrap=True,
            )
        seeds = result.get("seeds")
        if seeds is not None and "mean" in seeds:
            lo, hi = seeds["ci95"]
            self.say(
                f"{seeds['seeds']} seeds in {folder / 'seeds'}: {seeds['metric']} "
                f"{seeds['mean']:.4f} ± {seeds['sd']:.4f} (95% CI [{lo:.4f}, {hi:.4f}])",
                soft_wrap=True,
            )

    def _rescore(self, table: dict[str, Any]) -> None:
        """The front-runners' search values against their fresh seeds."""
        columns = ("trial", "search (seeds)", "fresh seeds (chooses)", "all seeds", "p vs base", "")
        shown = _table(
            f"front-runners re-scored with fresh seeds ({table['metric']})",
            {col: "right" if col else "left" for col in columns},
        )
        for row in table["candidates"]:
            marks = ["chosen"] if row["number"] == table["best"] else []
            marks += ["base"] if row["base"] else []
            shown.add_row(
                str(row["number"]),
                f"{row['search_value']:.4f} ({row['search_seeds']})",
                f"{row['value']:.4f} ({len(row['values'])})",
                f"{row['all_seeds']:.4f}",
                "" if row.get("p_vs_base") is None else f"{row['p_vs_base']:.3f}",
                ", ".join(marks),
            )
        self.say(shown)
        self.say(f"chosen: trial {table['best']}, {table['why']}", soft_wrap=True)

    # after training: quantize, export

    def files_written(self, written: dict[str, str]) -> None:
        """`ffnlp export`: each file written (by what it holds) and its size."""
        for key, path in written.items():
            size = Path(path).stat().st_size
            self.say(f"{key:<12} {path}  ({size:,} bytes)", highlight=False)

    def quantize(self, report: dict[str, Any], run: str, out: str) -> None:
        """The original and the quantised run, side by side."""
        before, after = report["original"], report["quantized"]
        table = _table(
            f"{report['method']}, rows {report['rows'][0]:,} -> {report['rows'][1]:,}",
            dict.fromkeys(("", run, out, "ratio"), "left"),
        )
        for key, label in (("model_bytes", "model files (bytes)"), ("bytes", "run folder (bytes)")):
            ratio = f"{before[key] / after[key]:.1f}x smaller"
            table.add_row(label, f"{before[key]:,}", f"{after[key]:,}", ratio)
        for split in ("dev", "test"):
            for metric in ("accuracy", "precision_at_1", "macro_f1"):
                if metric in before.get(split, {}):
                    a, b = before[split][metric], after[split][metric]
                    points = f"{100 * (b - a):+.2f} points"
                    table.add_row(f"{split} {metric}", f"{a:.4f}", f"{b:.4f}", points)
        if "texts_per_second" in before:
            a, b = before["texts_per_second"], after["texts_per_second"]
            table.add_row("predict (texts/s)", f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}x")
        self.say(table)

    # explain

    def shapes(self, title: str, report: dict[str, Any], per: str) -> None:
        """`explain shapes`: a classifier's layers, or the computation of a language model or
        word2vec written out (``report``: the command's JSON), then the cost per ``per``."""
        if "layers" in report:
            self.layer_calls(title, report["layers"])
        else:
            self.computation(title, report["lines"])
        self.cost_line(report["macs_per_example"], per)

    def dead_units(self, report: dict[str, Any]) -> None:
        """`explain dead`: how many units of each ReLU layer never fire."""
        if not report:
            self.say("This network has no ReLU layers.")
        for name, r in report.items():
            self.say(
                f"{name}: {r['dead']} of {r['units']} units never fire ({r['dead_fraction']:.1%})"
            )

    def backprop(self, result: dict[str, Any]) -> None:
        """`explain backprop`: backpropagation by hand against autograd and finite differences."""
        self.say(f"loss: NumPy {result['loss_numpy']:.8f}, torch {result['loss_torch']:.8f}")
        for i, err in enumerate(result["max_abs_diff"]):
            self.say(f"layer {i + 1}: max |dW_numpy - dW_autograd| = {err:.2e}")
        self.say(f"finite differences: worst relative error {result['finite_difference']:.2e}")

    def cost_line(self, macs: float, per: str) -> None:
        self.say(
            f"forward: {macs:,.0f} multiply-adds = {2 * macs:,.0f} FLOPs per {per} "
            "(matrix products; biases, activations and softmax left out)"
        )

    def layer_calls(self, title: str, calls: list[dict[str, Any]]) -> None:
        """A classifier's forward pass, layer by layer (each layer's fields by name)."""
        columns = ("layer", "module", "input", "output", "matrix product", "mult-adds", "params")
        table = _table(
            title, {c: "right" if c in ("mult-adds", "params") else "left" for c in columns}
        )
        for c in calls:
            table.add_row(
                Text(c["name"]),
                Text(c["kind"]),
                Text(" ".join(str(s) for s in c["inputs"])),
                Text(str(c["output"])),
                Text(c["product"]),
                f"{c['macs']:,}" if c["macs"] else "",
                f"{c['params']:,}",
            )
        self.say(table)

    def computation(self, title: str, lines: list[dict[str, Any]]) -> None:
        """A computation written out line by line (the LM, word2vec; each line's fields by name)."""
        columns = ("step", "matrix product (letters) = (numbers)", "output")
        table = _table(title, {**dict.fromkeys(columns, "left"), "mult-adds / example": "right"})
        for line in lines:  # Text: the formulas' brackets (W_in[x(t)]) are not Rich markup
            macs = f"{line['macs']:,}" if line["macs"] else ""
            table.add_row(Text(line["formula"]), Text(line["product"]), Text(line["output"]), macs)
        self.say(table)

    def graph(self, expression: str, result: Any, diff: float, fmt: Any) -> None:
        """The nodes of a computation graph, the chain rule on every edge, autograd's agreement."""
        columns = ("node", "expression", "op", "inputs", "value", "dL/dnode")
        title = f"L = {expression}: forward (inputs first), then dL/dnode"
        table = _table(
            title, {c: "right" if c in ("value", "dL/dnode") else "left" for c in columns}
        )
        for node in result.nodes:
            table.add_row(
                node.name,
                node.text,
                node.op,
                " ".join(result.nodes[i].name for i in node.inputs),
                fmt(node.value),
                "" if node.grad is None else fmt(node.grad),
            )
        self.say(table)
        self.say("Backward, last node first: the chain rule on every edge", style="bold")
        for step in result.steps:
            line = f"  {result.line(step)}    ({step.rule})"
            self.say(line, markup=False, highlight=False, soft_wrap=True)
        grads = ", ".join(f"dL/d{name} = {fmt(g)}" for name, g in result.grads().items())
        self.say(f"L = {fmt(result.output.value)}" + (f"; {grads}" if grads else ""))
        self.say(f"PyTorch autograd (float64) agrees: max |difference| = {diff:.2g}")

    def collapse(self, run: Path, report: dict[str, Any]) -> None:
        layers = report["layers"]
        self.say(f"{run}: {len(layers)} affine layer(s), input side first")
        table = _table(None, dict.fromkeys(("", "layer", "weight"), "left"))
        for i, layer in enumerate(layers, start=1):
            table.add_row(f"W{i}", layer["name"], " x ".join(str(s) for s in layer["weight"]))
        self.say(table)
        if report["pass_through"]:
            self.say(f"Identity when evaluated (left out): {', '.join(report['pass_through'])}.")
        chain = " ".join(f"W{i}" for i in range(len(layers), 0, -1))
        k, f = report["collapsed_weight"]
        self.say(
            f"Collapsed: W0 = {chain}, {k} x {f} over the {report['input']}, plus b0 ({k}): "
            f"{report['network_parameters']:,} parameters -> {report['collapsed_parameters']:,}."
        )
        if "examples" in report:
            self.say(
                f"On {report['data']} ({report['examples']} examples): max |network - collapsed| "
                f"logit difference {report['max_abs_diff']:.2e} (largest |logit| "
                f"{report['max_abs_logit']:.3g}); accuracy: network "
                f"{report['network_accuracy']:.4f}, collapsed layer {report['collapsed_accuracy']:.4f} "
                f"(same prediction on {report['agreement']:.2%})."
            )

    def numpy_vs_torch_start(self, lr: float, batch_size: int, model: str, features: int) -> None:
        self.say(
            f"{model} on {features} features, SGD lr={lr}, batch "
            f"{batch_size}: NumPy (by hand) vs PyTorch (autograd)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def numpy_vs_torch_epoch(self, record: dict[str, Any]) -> None:
        """One epoch of `explain numpy-vs-torch`, printed as it ends (the header before the first)."""
        widths = [max(len(c), 6) for c in NUMPY_VS_TORCH]
        if record["epoch"] == 1:
            header = "  ".join(f"{c:>{w}}" for c, w in zip(NUMPY_VS_TORCH, widths, strict=True))
            self.say(header, markup=False, highlight=False)
        np_, pt = record["numpy"], record["torch"]
        cells = (
            record["epoch"],
            record["steps"],
            f"{np_['loss']:.6f}",
            f"{pt['loss']:.6f}",
            f"{np_['dev_accuracy']:.2%}",
            f"{pt['dev_accuracy']:.2%}",
        )
        line = "  ".join(f"{v:>{w}}" for v, w in zip(cells, widths, strict=True))
        self.say(line, markup=False, highlight=False)

    def numpy_vs_torch(self, result: dict[str, Any], plot: Path | None) -> None:
        self.say(
            f"over {len(result['step_loss']['numpy'])} steps: max |loss NumPy - loss PyTorch| = "
            f"{result['max_step_loss_diff']:.1e}; after training, max |weight difference| = "
            f"{result['max_weight_diff']:.1e}",
            highlight=False,
            soft_wrap=True,
        )
        if plot is not None:
            self.say(f"wrote {plot}", markup=False, highlight=False, soft_wrap=True)
