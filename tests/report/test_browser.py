"""The study and repeat reports open in a real browser (headless Chromium) with every image
loaded: a copy of each page gets a script that counts the images the browser decoded, and the
count is read back from the DOM that Chromium dumps."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ffnlp.experiments.repeat import repeat
from ffnlp.report.html import write_report
from ffnlp.tasks.sample import write_sample
from tests.report.studies import make_study

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHECK = (
    "<script>window.addEventListener('load', function () {"
    "var all = Array.from(document.images);"
    "var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;"
    "var p = document.createElement('p'); p.id = 'image-check';"
    "p.textContent = ok + '/' + all.length; document.body.appendChild(p); });</script>"
)


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)})")


def loaded_images(browser: str, page: Path) -> tuple[int, int]:
    """(images the browser decoded, images on the page) for a copy of ``page`` with CHECK."""
    probe = page.with_name(page.stem + "-probe.html")
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe.write_text(text.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=10000",
         "--dump-dom", probe.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = re.search(r'<p id="image-check">(\d+)/(\d+)</p>', done.stdout)
    assert found, f"the browser gave no count (exit {done.returncode}): {done.stderr[-2000:]}"
    return int(found.group(1)), int(found.group(2))


def test_the_check_sees_a_broken_image(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><img src='data:image/png;base64,iVBORw0KGgoAAAA='></body></html>",
        encoding="utf-8",
    )
    assert loaded_images(browser, page) == (0, 1)


def test_study_and_repeat_reports_load_every_image(browser: str, tmp_path: Path) -> None:
    data = write_sample(tmp_path / "data", sizes=(200, 40, 40))
    study = make_study(tmp_path / "study", data, failed=1)
    runs = repeat(
        "classify", data["train"], dev=data["dev"], test=data["test"],
        overrides=["train.epochs=2"], seeds=[0, 1], out=tmp_path / "rep",
    )  # fmt: skip
    pages = [write_report(study), write_report(runs["run_dir"])]
    pages.append(
        study / "trials" / "0000" / "report.html"
    )  # a trial's report, linked from the study's
    for page in pages:
        ok, total = loaded_images(browser, page)
        assert total > 0 and ok == total, f"{page}: {ok} of {total} images loaded"
