"""A signal that arrives while Python runs a finaliser is raised there and dropped ("Exception
ignored in ..."); a run must not go on as if it had never come (a study once trained on past a
Ctrl-C that landed so)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from ffnlp.training.signals import SignalExit, interrupts_as_exceptions, interrupts_as_flag

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def _default_handlers() -> Iterator[None]:
    """The handlers a fresh process has (interrupts_as_exceptions leaves anyone else's alone,
    and an earlier test of the suite may have left its own), put back as they were after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class _SignalledWhileFinalised:
    """Sends SIGINT to this process from its __del__ and waits there: the handler runs, and
    raises, inside the finaliser, where Python drops the exception."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)


class _Loop:
    interrupted = False
    interrupt_signal: int | None = None


def _drop_a_sigint() -> None:
    finalised = _SignalledWhileFinalised()
    del finalised  # the SignalExit is raised in __del__ and dropped


def test_a_dropped_signal_comes_out_at_the_end_of_the_block() -> None:
    went_on = False
    with pytest.raises(SignalExit) as raised, interrupts_as_exceptions():
        _drop_a_sigint()
        went_on = True  # the block is not stopped where the signal came
    assert went_on and raised.value.signum == signal.SIGINT


def test_a_loop_started_after_a_dropped_signal_stops_at_once() -> None:
    loop = _Loop()
    with pytest.raises(SignalExit), interrupts_as_exceptions():
        _drop_a_sigint()
        with interrupts_as_flag(loop):
            assert loop.interrupted and loop.interrupt_signal == signal.SIGINT
        raise SignalExit(signal.SIGINT)  # as a run raises when its loop was interrupted


def test_a_block_without_signals_ends_quietly_and_one_raised_comes_out_once() -> None:
    with interrupts_as_exceptions():
        pass
    with pytest.raises(SignalExit), interrupts_as_exceptions():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises here, as it should
    with interrupts_as_exceptions():  # nothing left over from the last block
        pass
