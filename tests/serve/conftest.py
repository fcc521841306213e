"""Tiny runs of the three tasks trained on the built-in sample, and ``ffnlp serve`` started on them
as a real process on a free port of 127.0.0.1 (and stopped with SIGTERM at the end)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ffnlp.tasks.sample import write_sample

HOST = "127.0.0.1"
SMALL = ["train.threads=1"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        """(status, JSON answer or text) of one request on a new connection."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            kind = response.getheader("Content-Type", "")
            if kind.startswith("application/json"):
                return response.status, json.loads(payload)
            return response.status, payload.decode("utf-8", "replace")
        finally:
            conn.close()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def healthy(self) -> bool:
        status, answer = self.request("GET", "/health")
        return status == 200 and answer["status"] == "ok"

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status: 0 once uvicorn has shut down, 0 also when it ends
        itself by the signal it caught (as newer uvicorn versions do: -SIGTERM here)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        if code == -signal.SIGTERM and "Finished server process" in self.output():
            return 0
        return code

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_server(runs: list[Path], log: Path, *options: str, timeout: float = 180) -> Server:
    """``python -m ffnlp serve RUNS --port P OPTIONS`` running and answering /health."""
    port = free_port()
    command = [sys.executable, "-m", "ffnlp", "serve", *map(str, runs), "--port", str(port)]
    with log.open("w", encoding="utf-8") as handle:  # the child writes to its own copy
        process = subprocess.Popen(
            [*command, *options],
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return wait_until_healthy(Server(process, port, log), timeout)


def wait_until_healthy(server: Server, timeout: float) -> Server:
    """``server`` once its /health answers; an AssertionError with its output if it exits or
    stays silent for ``timeout`` seconds (then it is stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise AssertionError(f"the server exited ({code}): {server.output()}")
        try:
            if server.healthy():
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server did not answer in {timeout} s: {server.output()}")


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A classifier, a feed-forward LM and word2vec vectors, each trained for seconds."""
    import ffnlp

    root = tmp_path_factory.mktemp("serve")
    sample = write_sample(root / "data", sizes=(300, 60, 60))
    runs = {"clf": root / "clf", "lm": root / "lm", "vec": root / "vec"}
    ffnlp.train_classifier(
        sample["train"], dev=sample["dev"], out=runs["clf"], overrides=["train.epochs=3", *SMALL]
    )
    ffnlp.train_lm(
        sample["train"],
        dev=sample["dev"],
        out=runs["lm"],
        overrides=[
            "data.min_count=1",
            "train.epochs=1",
            "model.embedding_dim=8",
            "model.hidden_sizes=[8]",
            *SMALL,
        ],
    )
    ffnlp.train_word2vec(
        sample["corpus"],
        out=runs["vec"],
        overrides=["model.dim=8", "model.min_count=2", "train.epochs=1", "model.workers=1", *SMALL],
    )
    return runs


@pytest.fixture(scope="session")
def server(
    served_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the three runs, with the default limits, for the whole session."""
    pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")
    pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    running = start_server(list(served_runs.values()), log)
    yield running
    code = running.stop()
    assert code == 0, running.output()
    assert "Traceback" not in running.output(), running.output()
