"""The page at GET / in a real browser (headless Chromium): it asks the server and shows the
answer. ``/?run=NAME&text=TEXT`` fills the form and asks at once; the DOM the browser dumps
afterwards holds the labels and probabilities (or the neighbours, or the continuation)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

import ffnlp
from tests.serve.conftest import HOST, Server

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)})")


def page_after_asking(browser: str, server: Server, run: str, text: str) -> str:
    query = urllib.parse.urlencode({"run": run, "text": text})
    done = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=15000",
         "--dump-dom", f"http://{HOST}:{server.port}/?{query}"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    found = re.search(r'<div id="result" data-state="(\w+)">', done.stdout)
    assert found, f"no result in the page (exit {done.returncode}): {done.stderr[-2000:]}"
    assert found.group(1) == "done", done.stdout[-3000:]
    return done.stdout


def rows(dom: str) -> list[tuple[str, float]]:
    cells = re.findall(
        r'<tr class="answer"><td class="name">(.*?)</td><td class="num value">([-0-9.]+)</td>', dom
    )
    return [(html.unescape(name), float(value)) for name, value in cells]


def test_a_person_sees_the_labels_and_probabilities(
    browser: str, server: Server, served_runs: dict[str, Path]
) -> None:
    text = "a gripping , funny film"
    shown = rows(page_after_asking(browser, server, "clf", text))
    expected = ffnlp.load(served_runs["clf"]).predict(text, k=2)
    assert [label for label, _ in shown] == [label for label, _ in expected]
    assert [p for _, p in shown] == pytest.approx([p for _, p in expected], abs=5e-5)


def test_the_neighbours_and_a_continuation(
    browser: str, server: Server, served_runs: dict[str, Path]
) -> None:
    shown = rows(page_after_asking(browser, server, "vec", "good"))
    expected = ffnlp.load(served_runs["vec"]).most_similar("good", 3)
    assert [w for w, _ in shown] == [w for w, _ in expected]
    dom = page_after_asking(browser, server, "lm", "the film")
    continuation = re.search(r'<p id="continuation">(.*?)</p>', dom, re.S)
    assert continuation and continuation.group(1).startswith("the film ")


def test_an_error_is_shown_not_thrown(browser: str, server: Server) -> None:
    query = urllib.parse.urlencode({"run": "vec", "text": "zzzunseen"})
    done = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=15000",
         "--dump-dom", f"http://{HOST}:{server.port}/?{query}"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert '<div id="result" data-state="error">' in done.stdout, done.stdout[-3000:]
    error = re.search(r'<p id="error">(.*?)</p>', done.stdout, re.S)
    assert error and "zzzunseen" in error.group(1)
