"""Property-based fuzzing (Hypothesis) of ARPA files, run folders and study folders as the report
reads them: random strings, numbers and values of the wrong type in every field of every file.

- an ARPA file is read, scored and sampled from, or refused with an FfnlpError; a file that is
  read scores no NaN;
- a report is written, or refused with an FfnlpError; a page that is written parses as HTML,
  holds only the builder's elements and attributes, and has the same elements as the page of
  the same files with every HTML character replaced by a harmless one (so no element or
  attribute came from a file).

The default suite runs each property on a few dozen examples; the ``slow`` variants run 10,000
(``pytest -m slow tests/fuzz/test_reports.py``). The slow study property draws no plots (the
page is what is fuzzed; the plots of hostile numbers are fuzzed in the fast one).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ffnlp.errors import FfnlpError
from tests.extras import needs
from tests.report.pages import DEFANG, defanged, structure

hypothesis = needs("hypothesis")
HealthCheck, given, settings = hypothesis.HealthCheck, hypothesis.given, hypothesis.settings
st = needs("hypothesis.strategies")

FAST, SLOW = 40, 10_000
FAST_ARPA = 200
FAST_STUDY = 15  # each draws its plots
SPECIALS = "".join(
    DEFANG.values()
)  # the replacements: never drawn, so the translation is one-to-one

PIECES = [
    "<", ">", "&", '"', "'", "=", "/", "<script>", "</td>", "<img src=x onerror=alert(1)>",
    "&amp;", "&lt;", "<!--", "-->", "javascript:", " ", "\n", "\x00", "é", "\ud800", "0", "1.5",
    "nan", "-", "$x$", "]]>", "</pre>", "<a href='x'>", "\\",
]  # fmt: skip

texts = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(st.characters(blacklist_characters=SPECIALS), max_size=4),
    ),
    max_size=6,
).map("".join)
finite = st.one_of(st.integers(0, 10**6), st.floats(0, 1), st.floats(-1e6, 1e6))
numbers = st.one_of(
    finite,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.sampled_from([10**400, -0.0, 1e308, 2**53, 2**63]),
)
counts = st.integers(0, 10**6)
wrong = st.one_of(
    texts,
    st.none(),
    st.booleans(),
    st.lists(st.one_of(finite, texts), max_size=3),
    st.dictionaries(texts, finite, max_size=2),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


class Leaf:
    """Draws a field's value: usually of its right kind, sometimes (``rate`` in 100) anything."""

    def __init__(self, draw: st.DrawFn, rate: int) -> None:
        self.draw, self.rate = draw, rate

    def __call__(self, right: st.SearchStrategy[Any]) -> Any:
        if self.draw(st.integers(0, 99)) < self.rate:
            return self.draw(wrong)
        return self.draw(right)


# ---------------------------------------------------------------------------------------------
# ARPA files

WORDS = ["<s>", "</s>", "<unk>", "a", "b", "c", "<x>", "é"]
NUMBERS = ["-99", "0", "-0.5", "-1.25", "nan", "NaN", "inf", "-inf", "-Infinity", "1e400",
           "-1e400", "0.3", "1e-320", "-1e308", "x", "0x10", ""]  # fmt: skip


@st.composite
def arpa_files(draw: st.DrawFn) -> str:
    """An ARPA file: half the time with sound numbers and n-grams whose prefixes are listed (so
    that many are read and scored), otherwise anything in any field."""
    order = draw(st.integers(1, 3))
    sound = draw(st.booleans())
    good = st.floats(-50, 0).map(repr) | st.sampled_from(["-99", "0", "-0.5", "-1e-320"])
    number = good if sound else st.one_of(st.sampled_from(NUMBERS), good)
    vocab = ["</s>", "<s>", *draw(st.lists(st.sampled_from(WORDS[2:]), max_size=5, unique=True))]
    sections: list[list[tuple[str, list[str], str | None]]] = []
    listed: list[list[str]] = [[w] for w in vocab]
    for n in range(1, order + 1):
        if sound:
            grams = listed if n == 1 else draw(
                st.lists(st.sampled_from(listed).flatmap(
                    lambda g: st.sampled_from(vocab).map(lambda w, g=g: [*g, w])),
                    max_size=6, unique_by=tuple)
            ) if listed else []  # fmt: skip
        else:
            grams = draw(st.lists(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n),
                                  max_size=8))  # fmt: skip
        entries = [(draw(number), g, draw(st.one_of(st.none(), number))) for g in grams]
        sections.append(entries)
        listed = [g for _, g, _ in entries if "</s>" not in g]
    if not sound and draw(st.booleans()):
        sections[0] = [("-1", ["</s>"], None), ("-1", ["<s>"], "-0.5"), *sections[0]]
    wrong_count = not sound and draw(st.integers(0, 9)) == 0
    announced = [len(s) + (draw(st.integers(-1, 1)) if wrong_count else 0) for s in sections]
    lines = ["\\data\\", *(f"ngram {n}={c}" for n, c in enumerate(announced, start=1)), ""]
    for n, entries in enumerate(sections, start=1):
        lines.append(f"\\{n}-grams:")
        for prob, words, bow in entries:
            lines.append("\t".join([prob, " ".join(words), *([bow] if bow is not None else [])]))
        lines.append("")
    if sound or draw(st.integers(0, 19)):
        lines.append("\\end\\")
    return "\n".join(lines) + "\n"


def _fuzz_arpa(examples: int) -> tuple[int, int]:
    """(examples run, files read) of the ARPA property."""
    from ffnlp.tasks.lm import load_arpa

    folder = Path(tempfile.mkdtemp(prefix="ffnlp-fuzz-arpa-"))
    calls, read = [0], [0]
    text = folder / "text.txt"
    text.write_text("a b c\nb <x> a zzz\n\n", encoding="utf-8")

    @_settings(examples)
    @given(content=arpa_files())
    def property(content: str) -> None:
        calls[0] += 1
        path = folder / "model.arpa"
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        try:
            lm = load_arpa(path)
        except FfnlpError:
            return
        read[0] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # -1e308 + -1e308 overflows to -inf
            with contextlib.suppress(FfnlpError):
                scores = lm.own_log_probs(lm.encode(text))
                assert not any(math.isnan(float(s)) for s in scores)
                perplexity = lm.evaluate(text)["perplexity"]
                assert not math.isnan(perplexity)
            with contextlib.suppress(FfnlpError):
                lm.generate("a", max_tokens=3, seed=0)

    try:
        property()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return calls[0], read[0]


def test_arpa_files_raise_only_ffnlp_errors_and_score_no_nan() -> None:
    calls, read = _fuzz_arpa(FAST_ARPA)
    assert calls >= FAST_ARPA and read > 0


@pytest.mark.slow
def test_arpa_files_raise_only_ffnlp_errors_and_score_no_nan_10000() -> None:
    calls, read = _fuzz_arpa(SLOW)
    print(f"ARPA: {calls} files, {read} read")
    assert calls >= SLOW and read > 0


# ---------------------------------------------------------------------------------------------
# run folders (a run, a repeat folder) as the report reads them

Files = dict[str, bytes]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


@st.composite
def scores(draw: st.DrawFn, leaf: Leaf, labels: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"loss": leaf(numbers), "accuracy": leaf(numbers)}
    for name in draw(st.lists(texts, max_size=2)):
        out[name] = leaf(st.one_of(numbers, texts))
    if draw(st.booleans()):
        out["per_class"] = {
            str(lab): leaf(
                st.fixed_dictionaries(
                    {
                        "precision": st.one_of(finite, st.none()),
                        "recall": finite,
                        "f1": numbers,
                        "support": counts,
                    }
                )
            )
            for lab in labels
        }
    if draw(st.booleans()):
        k = len(labels)
        out["confusion"] = leaf(
            st.lists(st.lists(counts, min_size=k, max_size=k), min_size=k, max_size=k)
        )
    return out


@st.composite
def records(draw: st.DrawFn, leaf: Leaf) -> bytes:
    lines = []
    for i in range(draw(st.integers(0, 4))):
        record = {
            "event": leaf(st.sampled_from(["epoch", "step", "eval"])),
            "epoch": leaf(st.integers(0, 50)),
            "step": leaf(st.integers(0, 10**6).map(lambda s, i=i: s + i)),
            "train": leaf(st.fixed_dictionaries({"loss": numbers})),
            "dev": leaf(
                st.dictionaries(st.sampled_from(["loss", "accuracy"]) | texts, numbers, max_size=3)
            ),  # fmt: skip
            "lr": leaf(numbers),
            "examples_per_second": leaf(numbers),
        }
        for key in draw(st.sets(st.sampled_from(list(record)), max_size=2)):
            del record[key]
        lines.append(_json(record))
    if draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.sampled_from([b"{", b"[1]", b"\xff\xfe", b"nan", b'"x"'])))
    return b"\n".join(lines) + b"\n"


@st.composite
def summary(draw: st.DrawFn, leaf: Leaf, task: str) -> dict[str, Any]:
    labels = leaf(st.lists(st.one_of(texts, finite), min_size=1, max_size=3, unique_by=str))
    out: dict[str, Any] = {"task": task, "labels": labels}
    label_list = labels if isinstance(labels, list) else ["x"]
    for split in draw(st.sets(st.sampled_from(["train", "dev", "test"]))):
        out[split] = leaf(scores(leaf, label_list))
    for key in draw(st.lists(texts, max_size=3)):
        out[key] = leaf(st.one_of(texts, numbers))
    if draw(st.booleans()):
        out["warnings"] = leaf(st.lists(st.one_of(texts, finite), max_size=2))
    if draw(st.booleans()):
        out["samples"] = leaf(st.lists(texts, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        out["multilabel"] = leaf(st.booleans())
    return out


@st.composite
def run_folder(draw: st.DrawFn) -> Files:
    """The files of a run (or, one time in four, of a repeat folder and its seeds' runs)."""
    leaf = Leaf(draw, draw(st.sampled_from([0, 0, 2, 20])))
    files: Files = {}
    group = draw(st.integers(0, 3)) == 0
    top = draw(summary(leaf, "classify-repeat" if group else leaf(st.just("classify"))))
    if group:
        seeds = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
        top["runs"] = [
            {"seed": leaf(st.just(s)), "dev": leaf(st.fixed_dictionaries({"accuracy": numbers})),
             "epochs": leaf(st.integers(0, 9))}
            for s in seeds
        ]  # fmt: skip
        top["seeds"] = seeds
        for s in seeds:
            if draw(st.booleans()):
                files[f"seed_{s}/summary.json"] = _json(draw(summary(leaf, "classify")))
                files[f"seed_{s}/metrics.jsonl"] = draw(records(leaf))
                files[f"seed_{s}/config.toml"] = draw(texts).encode("utf-8", "surrogatepass")
    files["summary.json"] = _json(top)
    if draw(st.booleans()):
        files["metrics.jsonl"] = draw(records(leaf))
    if draw(st.booleans()):
        files["config.toml"] = draw(texts).encode("utf-8", "surrogatepass")
    for name in draw(st.lists(texts.filter(lambda t: "/" not in t and "\x00" not in t),
                              max_size=2)):  # fmt: skip
        files[f"plots/{name}.png"] = draw(st.binary(max_size=20))
    return files


def _defang_files(files: Files) -> Files:
    out: Files = {}
    for name, content in files.items():
        parts = name.split("/")
        name = "/".join(p.translate(DEFANG) if p.endswith(".png") else p for p in parts)
        if name.endswith((".json", ".jsonl")):
            lines = []
            for line in content.split(b"\n"):
                try:
                    value = json.loads(line.decode("utf-8", "surrogatepass"))
                except (ValueError, UnicodeDecodeError):
                    lines.append(line)
                else:
                    lines.append(_json(defanged(value)))
            content = b"\n".join(lines)
        elif name.endswith(".csv"):  # each cell, not the quoting
            text = content.decode("utf-8", "surrogatepass")
            lines: list[str] = []
            csv.writer(_Lines(lines)).writerows(
                [defanged(row) for row in csv.reader(io.StringIO(text, newline=""))]
            )
            content = "".join(lines).encode("utf-8", "surrogatepass")
        elif name.endswith(".toml"):
            content = (
                content.decode("utf-8", "surrogatepass")
                .translate(DEFANG)
                .encode("utf-8", "surrogatepass")
            )
        out[name] = content
    return out


def _write(folder: Path, files: Files) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(content)
        except (OSError, UnicodeEncodeError):  # a name no file can have: not what is fuzzed
            continue


def _pages(folder: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(folder.rglob("report.html"))]


def report_property(folder: Path, files: Files, report: Callable[[Path], Any]) -> bool:
    """Report ``files`` and their defanged copy; True when a page was written. Only
    FfnlpError may be raised, and both pages must have the same builder-made elements."""
    from ffnlp.report.html import write_report

    pages = []
    for i, content in enumerate((files, _defang_files(files))):
        where = folder / f"f{i}"
        _write(where, content)
        try:
            report(where) if report is not None else write_report(where)
        except FfnlpError:
            pages.append(None)
            continue
        pages.append(_pages(where))
    hostile, tame = pages
    assert (hostile is None) == (tame is None), "only one of the two folders was reported"
    if hostile is None or tame is None:
        return False
    assert len(hostile) == len(tame)
    for a, b in zip(hostile, tame, strict=True):
        assert structure(a) == structure(b)
    return True


def _fuzz_run_reports(examples: int) -> tuple[int, int]:
    from ffnlp.report.html import write_report

    folder = Path(tempfile.mkdtemp(prefix="ffnlp-fuzz-report-"))
    calls, pages = [0], [0]

    @_settings(examples)
    @given(files=run_folder())
    def property(files: Files) -> None:
        calls[0] += 1
        pages[0] += report_property(folder, files, write_report)

    try:
        property()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return calls[0], pages[0]


def test_run_reports_escape_everything_and_raise_only_ffnlp_errors() -> None:
    calls, pages = _fuzz_run_reports(FAST)
    assert calls >= FAST and pages > 0


@pytest.mark.slow
def test_run_reports_escape_everything_and_raise_only_ffnlp_errors_10000() -> None:
    calls, pages = _fuzz_run_reports(SLOW)
    print(f"run reports: {calls} folders, {pages} pages written")
    assert calls >= SLOW and pages > 0


# ---------------------------------------------------------------------------------------------
# study folders (read from trials.csv: a report opens no storage of its own accord)

STATES = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "TrialState.COMPLETE", "complete", "x"]


@st.composite
def study_folder(draw: st.DrawFn) -> Files:
    leaf = Leaf(draw, draw(st.sampled_from([0, 0, 2, 20])))
    params = draw(st.lists(st.one_of(st.sampled_from(["train.lr", "model.dim"]), texts),
                           max_size=3, unique=True))  # fmt: skip
    info = {
        "kind": "study",
        "task": leaf(st.one_of(st.just("classify"), texts)),
        "metric": leaf(st.one_of(st.just("dev.accuracy"), texts)),
        "direction": leaf(st.sampled_from(["maximize", "minimize"]) | texts),
        "study_name": leaf(texts),
        "storage": leaf(st.just("sqlite:////nonexistent/never-opened.db") | texts),
        "command": leaf(st.lists(texts, max_size=3)),
        "space": leaf(st.dictionaries(texts, st.one_of(texts, st.fixed_dictionaries(
            {"type": texts, "low": numbers, "log": st.booleans() | texts})), max_size=2)),
    }  # fmt: skip
    files: Files = {"tune.json": _json(info)}
    numbers_text = st.one_of(finite.map(repr), st.sampled_from(["nan", "inf", "-inf", "", "9" * 30]), texts)  # fmt: skip
    trials = draw(st.lists(st.integers(0, 30), max_size=5, unique=True))
    rows = [["number", "state", "value", "seconds", *(f"params_{p}" for p in params)]]
    for number in trials:
        rows.append(
            [
                str(number) if draw(st.integers(0, 19)) else draw(texts),
                draw(st.sampled_from(STATES)),
                draw(numbers_text),
                draw(numbers_text),
                *(draw(st.one_of(numbers_text, texts)) for _ in params),
            ]
        )
        if draw(st.booleans()):
            base = f"trials/{number:04d}"
            files[f"{base}/summary.json"] = _json(draw(summary(leaf, "classify")))
            files[f"{base}/metrics.jsonl"] = draw(records(leaf))
    if draw(st.integers(0, 9)):
        written: list[str] = []
        csv.writer(_Lines(written)).writerows(rows)
        files["trials.csv"] = "".join(written).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        candidates = [
            {
                "number": leaf(st.sampled_from(trials or [0])),
                "base": leaf(st.booleans()),
                "search_value": leaf(numbers),
                "search_seeds": leaf(st.integers(0, 9)),
                "values": leaf(st.lists(numbers, max_size=3)),
                "value": leaf(numbers),
                "all_seeds": leaf(numbers),
                "p_vs_base": leaf(st.none() | numbers),
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
        files["rescore.json"] = _json(
            {
                "metric": leaf(texts),
                "why": leaf(texts),
                "best": leaf(st.one_of(st.sampled_from(trials or [0]), st.none())),
                "candidates": leaf(st.just(candidates)),
            }
        )
    if draw(st.booleans()):
        files["best.toml"] = draw(texts).encode("utf-8", "surrogatepass")
    return files


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.append(text)


@contextlib.contextmanager
def no_plots() -> Iterator[None]:
    """The study page without drawing (an empty PNG for every plot) nor Optuna's importances."""
    from ffnlp.report import study, studyplots

    png = b"\x89PNG\r\n\x1a\n"
    saved = {
        name: getattr(studyplots, name) for name in dir(studyplots) if name.startswith("plot_")
    }
    saved_importances = study.param_importances
    try:
        for name in saved:
            setattr(studyplots, name, lambda *args, **kwargs: png)
        study.param_importances = lambda s: (None, "not computed while fuzzing")  # type: ignore[assignment]
        yield
    finally:
        for name, value in saved.items():
            setattr(studyplots, name, value)
        study.param_importances = saved_importances  # type: ignore[assignment]


def _fuzz_study_reports(examples: int, plots: bool) -> tuple[int, int]:
    from ffnlp.report.html import write_report

    folder = Path(tempfile.mkdtemp(prefix="ffnlp-fuzz-study-"))
    calls, pages = [0], [0]

    @_settings(examples)
    @given(files=study_folder())
    def property(files: Files) -> None:
        calls[0] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib and NumPy on nan and inf values
            pages[0] += report_property(folder, files, write_report)

    try:
        with contextlib.nullcontext() if plots else no_plots():
            property()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return calls[0], pages[0]


def _until_a_page(examples: int, plots: bool, rounds: int = 4) -> tuple[int, int]:
    """Rounds of ``examples`` random study folders until one of them gave a page: most drawn
    folders are refused with an FfnlpError (about two in three), so that one round of 15 wrote
    no page about once in a few hundred runs, and the check that pages are written failed by
    chance; four rounds make that far rarer than one in a billion, and each round checks every
    folder it drew."""
    calls = pages = 0
    for _ in range(rounds):
        more_calls, more_pages = _fuzz_study_reports(examples, plots=plots)
        calls, pages = calls + more_calls, pages + more_pages
        if pages:
            break
    return calls, pages


def test_study_reports_escape_everything_and_raise_only_ffnlp_errors() -> None:
    calls, pages = _until_a_page(FAST_STUDY, plots=True)
    assert calls >= FAST_STUDY and pages > 0


def test_study_reports_without_plots_escape_everything() -> None:
    calls, pages = _until_a_page(FAST, plots=False)
    assert calls >= FAST and pages > 0


@pytest.mark.slow
def test_study_reports_escape_everything_and_raise_only_ffnlp_errors_10000() -> None:
    calls, pages = _fuzz_study_reports(SLOW, plots=False)
    print(f"study reports: {calls} folders, {pages} pages written")
    assert calls >= SLOW and pages > 0
