"""CPU-bound background processes for the benches: a busy machine, made on purpose.

``background_load(n)`` starts ``n`` processes running ``while True: pass`` for the duration of
a ``with`` block and stops them when it ends, whatever ends it: normal exit, an exception,
Ctrl-C, or SIGTERM (turned into SystemExit inside the block). On Linux the processes also
receive SIGKILL if the bench itself dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

SPIN = "while True: pass"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6").prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _terminate(*_: object) -> None:
    raise SystemExit(143)  # 128 + SIGTERM: the with block's cleanup runs


@contextlib.contextmanager
def background_load(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` busy processes (``python -c "while True: pass"``) while the block runs."""
    if n <= 0:
        yield []
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", SPIN],
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            )
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        signal.signal(signal.SIGTERM, previous)
