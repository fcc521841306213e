"""Starting the server: uvicorn over :func:`ffnlp.serve.app.build_app`.

One worker (the default): the runs are loaded in this process, then uvicorn serves them.
Several (``--workers N``): every run is loaded here once to check it (a bad run is an error before
anything listens), then uvicorn starts N worker processes that each load the runs again, told
which by the ``FFNLP_SERVE_SPEC`` variable; their weights are mapped from the same files, so the
workers share one copy of them (see :func:`ffnlp.serve.runs.map_weights`), and the operating
system spreads the connections among them.

SIGTERM or Ctrl-C: uvicorn stops accepting connections, lets the requests in flight finish (for
at most ``shutdown_timeout`` seconds), then the runs' threads are stopped and the process exits 0.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal, TypedDict

from ffnlp.errors import ConfigError
from ffnlp.serve import require_extra
from ffnlp.serve.limits import Limits
from ffnlp.threads import set_threads


class _UvicornOptions(TypedDict):
    """The settings of uvicorn's server, the same for one process and for several workers."""

    host: str
    port: int
    log_level: str
    access_log: bool
    timeout_graceful_shutdown: int
    server_header: bool
    lifespan: Literal["on"]


def check_port(host: str, port: int) -> None:
    """ConfigError unless ``host:port`` can be listened on now (said before any run loads)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise ConfigError(
                f"cannot listen on {host}:{port} ({why}); choose another --port or --host"
            ) from None


def serve(
    runs: Sequence[str | Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int = 1,
    limits: Limits | None = None,
    log_requests: bool = False,
    shutdown_timeout: float = 30.0,
) -> None:
    """Serve ``runs`` over HTTP until SIGTERM / Ctrl-C (see the module's docstring)."""
    require_extra()
    import uvicorn

    from ffnlp.serve.app import SPEC_VARIABLE, build_app, load_runs
    from ffnlp.serve.runs import check_names

    limits = limits or Limits()
    if not runs:
        raise ConfigError("give at least one run directory to serve")
    if workers < 1 or threads < 1:
        raise ConfigError(f"--workers and --threads must be at least 1; got {workers}, {threads}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be from 0 to 65535; got {port}")
    check_names([Path(r) for r in runs])
    check_port(host, port)
    set_threads(threads)
    loaded = load_runs(runs, limits)  # every run checked before anything listens
    options: _UvicornOptions = {
        "host": host,
        "port": port,
        "log_level": "info",
        "access_log": log_requests,
        # uvicorn annotates an int, but waits with asyncio.timeout, which takes float seconds
        "timeout_graceful_shutdown": shutdown_timeout,  # type: ignore[typeddict-item]
        "server_header": False,
        "lifespan": "on",
    }
    if workers == 1:
        app = build_app(loaded, limits)
        uvicorn.Server(uvicorn.Config(app, **options)).run()
        return
    del loaded  # the workers load their own (mapped) copies
    os.environ[SPEC_VARIABLE] = json.dumps(
        {
            "runs": [str(Path(r).absolute()) for r in runs],
            "limits": asdict(limits),
            "threads": threads,
        }
    )
    uvicorn.run(
        "ffnlp.serve.app:app_from_environment",
        factory=True,
        workers=workers,
        **options,
    )
