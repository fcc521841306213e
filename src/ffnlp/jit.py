"""Compiled kernels through Numba, and the one place that decides whether they run.

A kernel is a plain Python function over NumPy arrays and scalars, written for Numba's nopython
mode and decorated with :func:`kernel`. Nothing is imported or compiled when a module that
defines kernels is imported: the first call of :meth:`Kernel.compiled` imports Numba (about a
third of a second) and compiles the function, or loads it from Numba's on-disk cache (the
``__pycache__`` folder beside the module, or Numba's per-user cache folder where that one cannot
be written; where no folder can be written, as under a read-only service, each process
compiles them again, and one line is logged saying to set ``NUMBA_CACHE_DIR``).

Every compiled kernel has a reference path in PyTorch or NumPy beside it that computes the same
numbers; the caller asks :func:`enabled` (or :meth:`Kernel.compiled`, which returns ``None``)
and takes the reference path when compiled code cannot be had:

- Numba is not installed, or fails to import (a platform without its wheels): one line is
  logged, once per process, naming the reason and the way back;
- ``FFNLP_JIT=0`` in the environment: the reference paths everywhere (parity checks,
  debugging); nothing is logged.

Kernels release the GIL (``nogil``), so that threads started by the caller run them in parallel
(the Hogwild word2vec step, featurising chunks of a file); predict's fused kernels keep it (see
:func:`kernel`'s ``nogil``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

ENV = "FFNLP_JIT"
"""``FFNLP_JIT=0`` turns every compiled kernel off (the reference paths run instead)."""


@functools.lru_cache(maxsize=1)
def _numba() -> Any | None:
    if os.environ.get(ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    try:
        import numba  # heavy (0.3 s) and optional at run time: imported on first use only
    except Exception as exc:  # ImportError, or a broken llvmlite on an unusual platform
        log.warning(
            "compiled kernels unavailable (%s: %s); using the slower reference paths. "
            "Install numba (pip install numba) to get them back.",
            type(exc).__name__,
            exc,
        )
        return None
    return numba


_warned_no_cache: list[bool] = []  # the line below is logged once per process


def _warn_no_cache(exc: Exception) -> None:
    """Once per process: compiled code cannot be cached, so each process compiles its kernels
    (seconds at the first call of each) instead of loading them."""
    if _warned_no_cache:
        return
    _warned_no_cache.append(True)
    log.warning(
        "compiled kernels are not cached (%s); each process compiles them on first use. Set "
        "NUMBA_CACHE_DIR to a folder this user can write to keep them between processes.",
        exc,
    )


def enabled() -> bool:
    """Whether compiled kernels run in this process (Numba importable and not turned off)."""
    return _numba() is not None


def reset() -> None:
    """Forget the decision of :func:`enabled` (tests that change ``FFNLP_JIT``)."""
    _numba.cache_clear()


class Kernel(Generic[F]):
    """A function compiled by Numba on first use; see :func:`kernel`."""

    def __init__(self, fn: F, options: dict[str, Any]) -> None:
        self.python = fn
        self.options = options
        self._compiled: F | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "kernel")

    def compiled(self) -> F | None:
        """The compiled function, or ``None`` where compiled kernels are off or unavailable."""
        numba = _numba()
        if numba is None:
            return None
        if self._compiled is None:
            try:
                self._compiled = numba.njit(**self.options)(self.python)
            except RuntimeError as exc:  # no folder to cache compiled code in (read-only)
                if not self.options.get("cache"):
                    raise
                _warn_no_cache(exc)
                self._compiled = numba.njit(**{**self.options, "cache": False})(self.python)
        return self._compiled


def kernel(
    *,
    parallel: bool = False,
    fastmath: bool = False,
    error_model: str = "python",
    nogil: bool = True,
) -> Callable[[F], Kernel[F]]:
    """Declare a Numba kernel: ``@kernel()`` above a nopython-compatible function.

    ``parallel`` lets the function use ``numba.prange``; ``fastmath`` allows reassociation
    (sums in another order: only where the parity tests allow float tolerance).
    ``error_model="numpy"``: a float division by zero gives inf or nan as in NumPy instead of
    raising ZeroDivisionError; without that check in every division, loops that divide
    vectorise (twice as fast for the bag classifiers' Adam step). ``nogil=False`` keeps the GIL
    during the call: for a short call made from a thread beside a busy event loop (a server's
    micro-batch, some tens of microseconds), where releasing it lets the loop take it and the
    call's return then waits until the loop gives it back.
    """

    def wrap(fn: F) -> Kernel[F]:
        return Kernel(
            fn,
            {
                "cache": True,
                "nogil": nogil,
                "parallel": parallel,
                "fastmath": fastmath,
                "error_model": error_model,
            },
        )

    return wrap
