"""Which precision training's matrix products run in: ``precision = "auto"`` resolved once a run.

bf16 products are about twice as fast as fp32 only where the hardware multiplies bf16 natively:
a CPU with AVX512-BF16 or AMX (the ``avx512_bf16`` / ``amx_bf16`` flags of ``/proc/cpuinfo``),
or a CUDA device of compute capability 8.0 or more (and ROCm devices). Elsewhere the library
converts and multiplies in fp32 behind the scenes, which costs more than fp32 alone: one epoch of
the PTB language model ran at 634 examples/s in bf16 and 1,554 in fp32 on a Xeon with AVX-512
but no AVX512-BF16. So "auto" is bf16 where it is native and fp32 everywhere else (on a CPU
outside Linux, whose flags are not read here: fp32). An explicit "bf16" is obeyed, with a
warning where it is not native.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 flags of native bf16 products
SLOW_BF16_NOTE = (
    "without them bf16 products are emulated and usually slower than fp32 (measured: 634 "
    "against 1,554 examples/s for the PTB language model on such a CPU)"
)


@dataclass(frozen=True)
class PrecisionChoice:
    """What a run was asked for (``setting``), what it uses (``used``: fp32 or bf16) and why."""

    setting: str
    used: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"setting": self.setting, "used": self.used, "reason": self.reason}


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU flags in the text of ``/proc/cpuinfo`` (the first processor's ``flags`` line, or
    ``Features`` on ARM; every core of a machine has the same)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def read_cpu_flags(path: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """This machine's CPU flags; None where they cannot be read (not Linux, no such file)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return parse_cpu_flags(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def native_cpu_bf16(flags: frozenset[str] | None) -> str | None:
    """The flag that says the CPU multiplies bf16 natively, or None."""
    if flags is None:
        return None
    return next((f for f in BF16_CPU_FLAGS if f in flags), None)


def cuda_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether a CUDA (or ROCm) device has bf16 units, and its description."""
    if torch.version.hip:
        return True, f"ROCm device {torch.cuda.get_device_name(device)}"
    props = torch.cuda.get_device_properties(device)
    name = f"CUDA device {props.name} (compute capability {props.major}.{props.minor})"
    return props.major >= 8, name


def choose_precision(
    setting: str,
    device: torch.device | str = "cpu",
    cpu_flags: Callable[[], frozenset[str] | None] = read_cpu_flags,
    cuda_support: Callable[[torch.device], tuple[bool, str]] = cuda_bf16,
) -> PrecisionChoice:
    """Resolve ``setting`` ("auto", "fp32" or "bf16") for training on ``device``; logs the
    choice, and warns when "bf16" is asked for where it is not native. ``cpu_flags`` and
    ``cuda_support`` read the hardware (replaceable in tests)."""
    device = torch.device(device)
    if device.type == "cuda":
        native, what = cuda_support(device)
        found = f"{what} {'has' if native else 'has no'} bf16 units"
    elif device.type == "cpu":
        flags = cpu_flags()
        flag = native_cpu_bf16(flags)
        native = flag is not None
        if flags is None:
            found = "the CPU flags cannot be read on this system"
        elif native:
            found = f"the CPU has {flag}"
        else:
            found = f"the CPU has neither {' nor '.join(BF16_CPU_FLAGS)}"
    else:
        native, found = False, f"no bf16 check for {device.type} devices"
    if setting == "auto":
        choice = PrecisionChoice(setting, "bf16" if native else "fp32", found)
    else:
        choice = PrecisionChoice(setting, setting, f"set explicitly; {found}")
    if setting == "bf16" and not native and device.type == "cpu":
        log.warning(
            "model.precision = 'bf16' but %s: %s. Set model.precision = 'auto' (or 'fp32').",
            found,
            SLOW_BF16_NOTE,
        )
    else:
        log.info("precision: %s (%s: %s)", choice.used, setting, choice.reason)
    return choice
