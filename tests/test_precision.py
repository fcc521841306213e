"""precision = "auto": bf16 only where the hardware multiplies it natively."""

from __future__ import annotations

import logging

import pytest
import torch

from ffnlp import precision
from ffnlp.precision import choose_precision, parse_cpu_flags

# /proc/cpuinfo of an AVX-512 Xeon without AVX512-BF16 (abridged) and of this project's EPYC
XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni
"""
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16 vaes\n"
SAPPHIRE = "flags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes bf16 i8mm\n"


def flags_of(text: str):
    return lambda: parse_cpu_flags(text)


def test_cpu_flags_are_read_from_the_cpuinfo_text() -> None:
    assert "avx512_vnni" in parse_cpu_flags(XEON) and "avx512_bf16" not in parse_cpu_flags(XEON)
    assert parse_cpu_flags(EPYC) == {"fpu", "avx2", "avx512f", "avx512_bf16", "vaes"}
    assert "bf16" in parse_cpu_flags(ARM)
    assert parse_cpu_flags("") == frozenset()


@pytest.mark.parametrize(
    ("cpuinfo", "used", "reason"),
    [
        (EPYC, "bf16", "the CPU has avx512_bf16"),
        (SAPPHIRE, "bf16", "the CPU has avx512_bf16"),
        ("flags : avx512f amx_bf16\n", "bf16", "the CPU has amx_bf16"),
        (XEON, "fp32", "the CPU has neither avx512_bf16 nor amx_bf16"),
        (ARM, "fp32", "the CPU has neither avx512_bf16 nor amx_bf16"),
    ],
)
def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(cpuinfo: str, used: str, reason: str) -> None:
    choice = choose_precision("auto", "cpu", cpu_flags=flags_of(cpuinfo))
    assert choice.as_dict() == {"setting": "auto", "used": used, "reason": reason}


def test_auto_is_fp32_where_the_flags_cannot_be_read() -> None:
    choice = choose_precision("auto", "cpu", cpu_flags=lambda: None)
    assert (choice.used, choice.reason) == ("fp32", "the CPU flags cannot be read on this system")


def test_flags_are_not_read_outside_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision.sys, "platform", "darwin")
    assert precision.read_cpu_flags() is None


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_explicit_settings_are_obeyed_and_bf16_without_units_warns() -> None:
    # a handler on the module's own logger: the CLI's logging set-up stops propagation at "ffnlp"
    logger, seen = logging.getLogger("ffnlp.precision"), Records()
    logger.addHandler(seen)
    level = logger.level
    logger.setLevel(logging.INFO)  # whatever a quiet CLI run left on "ffnlp"
    try:
        fp32 = choose_precision("fp32", "cpu", cpu_flags=flags_of(EPYC))
        assert not [r for r in seen.records if r.levelno >= logging.WARNING]
        bf16 = choose_precision("bf16", "cpu", cpu_flags=flags_of(XEON))
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
    assert (fp32.used, bf16.used) == ("fp32", "bf16")
    assert bf16.reason == "set explicitly; the CPU has neither avx512_bf16 nor amx_bf16"
    warnings = [r.getMessage() for r in seen.records if r.levelno == logging.WARNING]
    assert warnings == [
        "model.precision = 'bf16' but the CPU has neither avx512_bf16 nor amx_bf16: without them "
        "bf16 products are emulated and usually slower than fp32 (measured: 634 against 1,554 "
        "examples/s for the PTB language model on such a CPU). Set model.precision = 'auto' (or "
        "'fp32')."
    ]


def test_cuda_devices_by_their_bf16_units() -> None:
    ampere = lambda device: (True, "CUDA device A100 (compute capability 8.0)")  # noqa: E731
    volta = lambda device: (False, "CUDA device V100 (compute capability 7.0)")  # noqa: E731
    assert choose_precision("auto", "cuda", cuda_support=ampere).as_dict() == {
        "setting": "auto",
        "used": "bf16",
        "reason": "CUDA device A100 (compute capability 8.0) has bf16 units",
    }
    assert choose_precision("auto", "cuda:0", cuda_support=volta).used == "fp32"


def test_this_machine_resolves_auto_from_its_own_flags() -> None:
    flags = precision.read_cpu_flags()
    choice = choose_precision("auto", "cpu")
    native = flags is not None and bool({"avx512_bf16", "amx_bf16"} & flags)
    assert choice.used == ("bf16" if native else "fp32")


def test_the_language_model_resolves_auto_itself_once_per_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ffnlp.models import lm as lm_module
    from ffnlp.models.lm import FeedForwardLM

    calls: list[str] = []

    def fake(setting, device, **kwargs):
        calls.append(str(device))
        return precision.PrecisionChoice(setting, "bf16", "test")

    monkeypatch.setattr(lm_module, "choose_precision", fake)
    model = FeedForwardLM(30, {"embedding_dim": 8, "hidden_sizes": [8], "context_size": 2})
    assert model.config.precision == "auto"
    batch = {"context": torch.randint(0, 30, (4, 2)), "target": torch.randint(0, 30, (4,))}
    model.loss(batch)
    model.loss(batch)
    assert calls == ["cpu"] and model.trains_in_bf16(torch.device("cpu"))
    fixed = FeedForwardLM(30, {"embedding_dim": 8, "hidden_sizes": [8], "precision": "fp32"})
    assert not fixed.trains_in_bf16(torch.device("cpu")) and calls == ["cpu"]
