"""The server process: graceful SIGTERM, several workers sharing mapped weights, errors of
`ffnlp serve` before anything listens."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import ffnlp
from tests.serve.conftest import HOST, free_port, start_server

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")


def test_sigterm_lets_the_request_in_flight_finish(
    served_runs: dict[str, Path], tmp_path: Path
) -> None:
    """A request waits 1.5 s in its batch; SIGTERM comes meanwhile: the answer still comes, the
    process ends, and nothing listens any more."""
    running = start_server([served_runs["clf"]], tmp_path / "log", "--batch-wait-ms", "1000")
    answers: list[tuple[int, object]] = []
    asking = threading.Thread(
        target=lambda: answers.append(running.post("/v1/clf/predict", {"text": "a good film"}))
    )
    asking.start()
    time.sleep(0.4)
    started = time.monotonic()
    code = running.stop()
    asking.join(30)
    assert code == 0, running.output()
    assert answers and answers[0][0] == 200, (answers, running.output())
    expected = ffnlp.load(served_runs["clf"]).predict("a good film")[0][0]
    assert answers[0][1]["label"] == expected  # type: ignore[index]
    assert time.monotonic() - started < 30
    with pytest.raises(OSError):
        running.request("GET", "/health", timeout=5)


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_workers_share_the_mapped_weights(served_runs: dict[str, Path], tmp_path: Path) -> None:
    """Two worker processes both answer, and both map the same model.safetensors."""
    running = start_server([served_runs["clf"]], tmp_path / "log", "--workers", "2")
    try:
        weights = str((served_runs["clf"] / "model.safetensors").resolve())
        deadline = time.monotonic() + 120
        mapping: set[int] = set()
        while time.monotonic() < deadline and len(mapping) < 2:
            status, _ = running.post("/v1/clf/predict", {"text": "a good film"})
            assert status == 200
            children = _children(running.process.pid)
            mapping = {pid for pid in children if _maps(pid, weights)}
            time.sleep(0.5)
        assert len(mapping) == 2, (mapping, running.output())
    finally:
        assert running.stop() == 0, running.output()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _maps(pid: int, path: str) -> bool:
    try:
        return path in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _serve(*args: str) -> Any:
    """`ffnlp serve ARGS` in this process (the errors come before anything listens)."""
    import torch
    from typer.testing import CliRunner

    from ffnlp.cli.main import app

    threads = torch.get_num_threads()  # serve sets --threads for the process
    try:
        return CliRunner().invoke(app, ["serve", *args])
    finally:
        torch.set_num_threads(threads)


def test_two_runs_of_one_name_are_refused(served_runs: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "clf"
    other.parent.mkdir()
    other.symlink_to(served_runs["clf"], target_is_directory=True)
    done = _serve(str(served_runs["clf"]), str(other), "--port", str(free_port()))
    assert done.exit_code == 1
    assert done.output.startswith("Error: two runs would be served as 'clf'"), done.output
    assert "Traceback" not in done.output


def test_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    done = _serve(str(tmp_path), "--port", str(free_port()))
    assert done.exit_code == 1 and "is not an ffnlp run directory" in done.output, done.output


def test_a_port_in_use(served_runs: dict[str, Path]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        done = _serve(str(served_runs["clf"]), "--port", str(busy.getsockname()[1]))
    assert done.exit_code == 1 and "(it is in use); choose another --port" in done.output


def test_the_extra_is_named_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from ffnlp.errors import ConfigError
    from ffnlp.serve import require_extra

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs uvicorn.*pip install 'ffnlp\[serve\]'"):
        require_extra()
