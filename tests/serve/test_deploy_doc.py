"""The service recipes of docs/deploy.md, run as written: the systemd unit's ``ExecStart`` and
the container's ``CMD`` and ``HEALTHCHECK``, each against tiny runs copied to the folders the
recipe names, on a free port of 127.0.0.1; then SIGTERM (what ``systemctl stop`` and ``docker
stop`` send) and a clean exit. The unit file is also checked by ``systemd-analyze verify`` where
that runs.

Only what cannot be had on a test machine is replaced, each replacement asserted first: the
installed ``ffnlp`` script by ``python -m ffnlp``, the recipe's folders by temporary ones, port
8000 by a free port, and the container's ``--host 0.0.0.0`` by 127.0.0.1 (tests listen on
loopback only)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.serve.conftest import HOST, Server, free_port, wait_until_healthy

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")

DOC = ROOT / "docs" / "deploy.md"
SERVED = {"sst2_pooled": "clf", "ptb_lm": "lm"}  # the recipe's run names -> the tiny runs


def _block(language: str) -> str:
    found = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(found) == 1, f"docs/deploy.md should hold one {language} block"
    return str(found[0])


def _values(text: str, key: str) -> list[str]:
    """Every value of the unit's ``Key=`` lines, or the Dockerfile's ``KEY`` instructions."""
    pattern = rf"^{key} (.*)$" if key.isupper() else rf"^{key}=(.*)$"
    return [m.strip() for m in re.findall(pattern, text, re.M)]


def _swap_port(argv: list[str], port: int) -> list[str]:
    at = argv.index("--port")
    assert argv[at + 1] == "8000"
    return [*argv[: at + 1], str(port), *argv[at + 2 :]]


def _run(argv: list[str], cwd: Path, env: dict[str, str], port: int, log: Path) -> Server:
    """Start ``argv`` (whose first word is ``ffnlp``) and wait until /health answers."""
    command = [sys.executable, "-m", "ffnlp", *argv[1:]]
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        )
    return wait_until_healthy(Server(process, port, log), timeout=240)


def _stopped_cleanly(server: Server) -> None:
    """SIGTERM: uvicorn finishes, and the process ends 0 or by the signal it caught (a clean
    stop for systemd and docker), with no traceback in its log."""
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=60)
    output = server.output()
    assert code in (0, -signal.SIGTERM), output
    assert "Traceback" not in output and "Finished server process" in output, output


def _predicts(server: Server) -> None:
    status, answer = server.post("/v1/sst2_pooled/predict", {"text": "a gripping , funny film"})
    assert status == 200 and answer["label"] is not None, answer


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_the_systemd_unit_s_command_serves_and_stops(
    served_runs: dict[str, Path], tmp_path: Path
) -> None:
    unit = _block("ini")
    (exec_start,) = _values(unit, "ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0] == "/srv/ffnlp/venv/bin/ffnlp" and argv[1] == "serve"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"  # the unit listens on loopback
    assert _values(unit, "WorkingDirectory") == ["/srv/ffnlp"]
    home = tmp_path / "srv-ffnlp"
    runs = [a for a in argv[2:] if a.startswith("runs/")]
    assert runs == ["runs/sst2_pooled", "runs/ptb_lm"]
    for run in runs:
        shutil.copytree(served_runs[SERVED[Path(run).name]], home / run)
    env = dict(v.split("=", 1) for line in _values(unit, "Environment") for v in line.split())
    assert env.get("NUMBA_CACHE_DIR", "").startswith("/var/cache/ffnlp")  # CacheDirectory=ffnlp
    assert _values(unit, "CacheDirectory") == ["ffnlp"]
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache" / "numba")  # systemd would make the folder
    port = free_port()
    server = _run(_swap_port(argv, port), home, env, port, tmp_path / "unit.log")
    try:
        _, health = server.request("GET", "/health")
        assert health["runs"] == ["sst2_pooled", "ptb_lm"]
        _predicts(server)
    finally:
        _stopped_cleanly(server)
    assert _values(unit, "KillSignal") == ["SIGTERM"]


def test_the_unit_file_passes_systemd_analyze(tmp_path: Path) -> None:
    """``systemd-analyze verify`` reads the unit with every directive known (the executable
    path is the installed ffnlp script here, as the unit's would be on the server)."""
    analyze = shutil.which("systemd-analyze")
    script = Path(sys.executable).parent / "ffnlp"
    if analyze is None or not script.is_file():
        pytest.skip("systemd-analyze or an installed ffnlp script is not available here")
    unit = _block("ini").replace("/srv/ffnlp/venv/bin/ffnlp", str(script))
    path = tmp_path / "ffnlp-serve.service"
    path.write_text(unit, encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 and "Failed to" in done.stderr and "bus" in done.stderr.lower():
        pytest.skip(f"systemd-analyze cannot run here: {done.stderr.strip()}")
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_the_container_s_command_serves_and_stops(
    served_runs: dict[str, Path], tmp_path: Path
) -> None:
    dockerfile = _block("dockerfile")
    (cmd,) = _values(dockerfile, "CMD")
    argv = json.loads(cmd)
    assert argv[:2] == ["ffnlp", "serve"]
    copies = [line.split() for line in _values(dockerfile, "COPY") if line.startswith("runs/")]
    assert copies == [["runs/sst2_pooled", "/runs/sst2_pooled"]]
    root = tmp_path / "container"
    shutil.copytree(served_runs["clf"], root / "runs" / "sst2_pooled")
    argv = [str(root / a.lstrip("/")) if a.startswith("/runs/") else a for a in argv]
    host = argv.index("--host") + 1
    assert argv[host] == "0.0.0.0"
    argv[host] = HOST  # the image listens on every interface of its own network; tests on loopback
    env = dict(v.split("=", 1) for line in _values(dockerfile, "ENV") for v in line.split())
    port = free_port()
    server = _run(_swap_port(argv, port), root, env, port, tmp_path / "container.log")
    try:
        _predicts(server)
        (healthcheck,) = _values(dockerfile, "HEALTHCHECK")
        probe = shlex.split(healthcheck.removeprefix("CMD "))
        assert probe[0] == "python" and "127.0.0.1:8000" in probe[2]
        probe = [sys.executable, probe[1], probe[2].replace(":8000", f":{port}")]
        assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    finally:
        _stopped_cleanly(server)
