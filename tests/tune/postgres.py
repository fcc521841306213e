"""A real PostgreSQL server for the tests, started in a temporary folder and stopped at the end.

The server's own programs (initdb, pg_ctl: Debian's ``postgresql`` package, which .ci/run
installs) are looked for on PATH and in /usr/lib/postgresql/*/bin; where there are none, the
tests that need the server skip, saying so. The server listens on 127.0.0.1 only (a free port),
its socket in the temporary folder, with trust authentication for the user ``ffnlp``. PostgreSQL
refuses to run as root: under root, the server runs as the ``postgres`` user (or ``nobody``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "ffnlp"
INSTALL = "apt-get install postgresql (.ci/run installs it)"


def binaries() -> tuple[Path, Path] | str:
    """(initdb, pg_ctl), or why there are none."""
    for folder in [None, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        initdb = shutil.which("initdb", path=folder)
        pg_ctl = shutil.which("pg_ctl", path=folder)
        if initdb and pg_ctl:
            return Path(initdb), Path(pg_ctl)
    return f"needs PostgreSQL's server programs (initdb, pg_ctl), not found: {INSTALL}"


def _runner() -> list[str] | str:
    """The prefix that runs a server program as an unprivileged user, or why none can."""
    if os.getuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        return "PostgreSQL refuses root and runuser is missing to run it as another user"
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return [runuser, "-u", name, "--"]
    return "PostgreSQL refuses root and there is no postgres or nobody user to run it"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running server: ``url(db)`` for a database made by ``create(db)``."""

    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create(self, database: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        return self.url(database)


@contextlib.contextmanager
def server() -> Iterator[Server | str]:
    """A started server (stopped and removed on exit), or why none can be (no server programs,
    or no user but root to run them); a server that fails to start raises."""
    found = binaries()
    prefix = _runner()
    if isinstance(found, str) or isinstance(prefix, str):
        yield found if isinstance(found, str) else str(prefix)
        return
    initdb, pg_ctl = found
    # not pytest's tmp_path: its folders are private to root, and the server may run as another
    # user
    root = Path(tempfile.mkdtemp(prefix="ffnlp-pg-"))
    if prefix:
        shutil.chown(root, user=prefix[2])
    data, log = root / "data", root / "server.log"

    def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *map(str, argv)], capture_output=True, text=True, timeout=120, check=False
        )

    started = False
    try:
        made = run(initdb, "-D", data, "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()[-500:]}")
        for _ in range(3):  # a port found free may be taken before the server binds it
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off"
            )
            start = run(pg_ctl, "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
            if start.returncode == 0:
                started = True
                break
        if not started:
            text = log.read_text(errors="replace")[-500:] if log.is_file() else start.stderr
            raise RuntimeError(f"the PostgreSQL server did not start: {text.strip()}")
        yield Server(port)
    finally:
        if started:
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
