"""Ctrl-C and SIGTERM as a flag: the loop finishes its step, a checkpoint is written, the run stops.

Outside the loop (reading data, the final evaluation) the two signals are exceptions instead,
:class:`SignalExit`, so that whoever started the run can clean up or keep what can be resumed.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any, Protocol


class Interruptible(Protocol):
    interrupted: bool
    interrupt_signal: int | None


class SignalExit(KeyboardInterrupt):
    """SIGINT or SIGTERM arriving where it cannot be a flag; ``signum`` says which. A
    KeyboardInterrupt, so that ``except Exception`` does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# the signals whose SignalExit was raised inside interrupts_as_exceptions and has not come out of
# it yet: one raised where Python cannot pass an exception on (a __del__, a weakref callback,
# which print "Exception ignored" and go on) would otherwise be lost, and the run with it
_PENDING: list[int] = []


def _install(handler: Any, signals: tuple[int, ...]) -> dict[int, Any]:
    previous = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: Python lets only the main thread install handlers
        for sig, old in previous.items():
            signal.signal(sig, old)
        previous = {}
    return previous


@contextlib.contextmanager
def interrupts_as_flag(target: Interruptible) -> Iterator[None]:
    """Inside: SIGINT and SIGTERM set ``target.interrupted`` (and ``target.interrupt_signal``); one
    arriving when it is set already (a second Ctrl-C) raises :class:`SignalExit` at once. Outside
    the main thread signals are left alone."""

    def handler(signum: int, frame: Any) -> None:
        if target.interrupted:
            raise SignalExit(signum)
        target.interrupted = True
        target.interrupt_signal = signum

    previous = _install(handler, (signal.SIGINT, signal.SIGTERM))
    if _PENDING and previous:  # one arrived before the loop and was lost on the way: stop now
        target.interrupted, target.interrupt_signal = True, _PENDING[-1]
        _PENDING.clear()
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Inside: SIGTERM raises :class:`SignalExit` as SIGINT raises KeyboardInterrupt, instead of
    ending the process on the spot, so that ``finally`` blocks run. A handler someone else
    installed (not the default one) is left in place. A signal whose exception was raised where
    Python drops exceptions (a ``__del__``: "Exception ignored in ...") is not lost: a training
    loop started after it stops at once (:func:`interrupts_as_flag`), and the block raises it at
    its end."""

    def handler(signum: int, frame: Any) -> None:
        _PENDING.append(signum)
        raise SignalExit(signum)

    wanted = tuple(
        sig
        for sig in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler)
    )
    previous = _install(handler, wanted)
    _PENDING.clear()
    try:
        yield
    except BaseException:
        _PENDING.clear()  # on its way out (this one, or another error ending the block)
        raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if _PENDING:  # raised where it could not come out, and the block went on: it comes out here
        signum = _PENDING[-1]
        _PENDING.clear()
        raise SignalExit(signum)
