"""Ctrl-C and SIGTERM as a flag: the loop finishes its step, a checkpoint is written, the run stops."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any, Protocol


class Interruptible(Protocol):
    interrupted: bool


@contextlib.contextmanager
def interrupts_as_flag(target: Interruptible) -> Iterator[None]:
    """Inside: SIGINT and SIGTERM set ``target.interrupted``; one arriving when it is set already
    (a second Ctrl-C) raises KeyboardInterrupt at once. Outside the main thread signals are left
    alone (Python lets only the main thread install handlers)."""

    def handler(signum: int, frame: Any) -> None:
        if target.interrupted:
            raise KeyboardInterrupt
        target.interrupted = True

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
