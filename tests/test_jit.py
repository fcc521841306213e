"""ffnlp.jit: kernels compile on first use, and the reference path is taken where they cannot."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ffnlp import jit


@jit.kernel()
def _sum_of_squares(a):  # type: ignore[no-untyped-def]
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * a[i]
    return total


def test_kernel_compiles_and_matches_python() -> None:
    if not jit.enabled():
        pytest.skip("numba is not importable here (FFNLP_JIT=0 or not installed)")
    compiled = _sum_of_squares.compiled()
    assert compiled is not None
    a = np.arange(10, dtype=np.float64)
    assert compiled(a) == _sum_of_squares.python(a) == 285.0
    assert _sum_of_squares.compiled() is compiled  # compiled once


def test_env_turns_kernels_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFNLP_JIT", "0")
    jit.reset()
    try:
        assert not jit.enabled()
        assert _sum_of_squares.compiled() is None
    finally:
        monkeypatch.delenv("FFNLP_JIT")
        jit.reset()


def test_missing_numba_logs_one_line() -> None:
    code = (
        "import sys, logging; sys.modules['numba'] = None\n"
        "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
        "from ffnlp import jit\n"
        "print(jit.enabled(), jit.enabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FFNLP_JIT"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "False False"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "compiled kernels unavailable" in lines[0] and "pip install numba" in lines[0]


def test_a_kernel_that_cannot_be_cached_is_compiled_anyway(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where Numba finds no folder to cache compiled code in (a read-only service), the kernels
    are compiled in the process, and one line says how to keep them (NUMBA_CACHE_DIR)."""
    numba = pytest.importorskip("numba")
    if not jit.enabled():
        pytest.skip("numba is not importable here (FFNLP_JIT=0 or not installed)")
    real = numba.njit

    def no_cache_folder(**options):  # type: ignore[no-untyped-def]
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(**options)

    monkeypatch.setattr(numba, "njit", no_cache_folder)
    monkeypatch.setattr(jit, "_warned_no_cache", [])
    kernels = [jit.kernel()(_sum_of_squares.python) for _ in range(2)]
    with caplog.at_level("WARNING", logger="ffnlp.jit"):
        compiled = [k.compiled() for k in kernels]
    a = np.arange(4, dtype=np.float64)
    assert [c(a) for c in compiled if c is not None] == [14.0, 14.0]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "NUMBA_CACHE_DIR" in lines[0]
