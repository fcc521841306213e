"""Process-level settings: threads, the allocator."""

from __future__ import annotations

import platform

import pytest
import torch

from ffnlp import runtime, threads


def test_set_threads_sets_torch_threads_and_zero_means_every_core() -> None:
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(1) == 1 and torch.get_num_threads() == 1
        assert threads.set_threads(0) == threads.available_cores()
    finally:
        torch.set_num_threads(before)


def test_keep_freed_memory_can_be_switched_off(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "_ALLOCATOR_TUNED", [False])
    monkeypatch.setenv("FFNLP_MALLOC_TUNING", "0")
    assert runtime.keep_freed_memory() is False
    assert runtime._ALLOCATOR_TUNED == [False]


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_keep_freed_memory_applies_on_glibc(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "_ALLOCATOR_TUNED", [False])
    monkeypatch.delenv("FFNLP_MALLOC_TUNING", raising=False)
    assert runtime.keep_freed_memory() is True
    assert runtime.keep_freed_memory() is True  # once per process; the second call is free


def test_prepare_process_sets_threads_and_the_allocator_and_the_trainer_does_neither(
    monkeypatch,
) -> None:
    from ffnlp import config as C
    from ffnlp.training import TrainConfig, Trainer
    from tests.training.test_optim import Linear, toy

    tuned: list[bool] = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: tuned.append(True) or True)
    before = torch.get_num_threads()
    try:
        assert runtime.prepare_process(1) == 1 and torch.get_num_threads() == 1 and tuned == [True]
        Trainer(Linear(), C.build(TrainConfig, {"threads": 0, "epochs": 1}), toy()).fit()
        assert torch.get_num_threads() == 1 and tuned == [True]
    finally:
        torch.set_num_threads(before)
