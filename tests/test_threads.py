"""train.threads = "auto": the thread rule on synthetic models, the topology it reads, and the
OpenMP wait policy ffnlp sets before torch starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from ffnlp import config as C
from ffnlp.threads import (
    MIN_WORK_PER_THREAD,
    choose_threads,
    multiply_adds_per_step,
    parse_cpu_list,
    physical_cores,
)
from ffnlp.training import TrainConfig

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def mlp(*sizes: int) -> nn.Module:
    return nn.Sequential(*[nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])


class Pooled(nn.Module):
    """A fastText-shaped classifier: a big bag-of-n-grams table, a tiny output layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(200_000, 64, mode="mean")
        self.out = nn.Linear(64, 1)


class TiedLM(nn.Module):
    """The PTB language model's shapes: C*D -> H -> D, tied output over V words."""

    def __init__(self, vocab: int = 10_000) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 256)
        self.hidden = nn.Linear(7 * 256, 512)
        self.projection = nn.Linear(512, 256, bias=False)
        self.output = nn.Linear(256, vocab)
        self.output.weight = self.embedding.weight


def test_cpu_lists_and_physical_cores_from_the_sibling_lists() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpu_list("5") == {5}
    # 4 cores with 2 hyper-threads each: cpu i and i + 4 share a core
    smt = {c: frozenset({c % 4, c % 4 + 4}) for c in range(8)}
    assert physical_cores(range(8), smt.get) == 4
    assert physical_cores({0, 4}, smt.get) == 1  # the process may use both threads of one core
    assert physical_cores({0, 1, 4}, smt.get) == 2
    assert physical_cores({0, 1, 2}, lambda cpu: None) == 3  # unknown siblings: a core each
    assert physical_cores() >= 1  # this machine, as it is


def test_work_per_step_counts_products_and_one_table_row_per_example() -> None:
    assert multiply_adds_per_step(mlp(100, 10, 2), 32) == 32 * (100 * 10 + 10 * 2)
    assert multiply_adds_per_step(Pooled(), 32) == 32 * 64 + 32 * 64 * 1
    lm = TiedLM()
    assert multiply_adds_per_step(lm, 512) == 512 * (256 + 1792 * 512 + 512 * 256 + 256 * 10_000)


@pytest.mark.parametrize(
    ("model", "batch", "cores", "expected"),
    [
        (mlp(6, 1), 64, 8, 1),  # the lexicon features' logistic regression
        (Pooled(), 32, 2, 1),  # the SST-2 pooled preset
        (mlp(64, 64, 1), 64, 64, 1),
        (TiedLM(), 512, 2, 2),  # the PTB language model: every core
        (TiedLM(), 512, 16, 16),
        (TiedLM(), 512, 1, 1),  # never more than the cores there are
        (mlp(1000, 1000), 2 * MIN_WORK_PER_THREAD // 1_000_000, 8, 2),  # one thread per share
        (mlp(1000, 1000), 2 * MIN_WORK_PER_THREAD // 1_000_000 - 1, 8, 1),
    ],
)
def test_the_rule_gives_small_steps_one_thread_and_large_ones_the_cores(
    model: nn.Module, batch: int, cores: int, expected: int
) -> None:
    choice = choose_threads("auto", model, batch, cores=cores, busy=lambda: 0)  # a quiet machine
    assert choice.count == expected
    assert choice.reason.startswith("auto: a step is about ")


@pytest.mark.parametrize(
    ("others", "cores", "expected"),
    [(0, 2, 1), (1, 2, 1), (2, 2, 2), (7, 2, 2), (3, 4, 1), (9, 4, 2), (None, 2, 1), (5, 1, 1)],
)
def test_a_small_step_on_a_busy_machine_gets_a_second_thread(
    others: int | None, cores: int, expected: int
) -> None:
    choice = choose_threads("auto", mlp(64, 64, 1), 64, cores=cores, busy=lambda: others)
    assert choice.count == expected
    assert ("ready to run" in choice.reason) == (expected == 2)


def test_the_busy_probe_reads_proc_loadavg() -> None:
    from ffnlp.threads import other_runnable_threads

    others = other_runnable_threads(samples=3, interval=0.0)
    assert others is None or others >= 0


def test_a_step_with_its_own_worker_threads_keeps_one_intra_op_thread() -> None:
    choice = choose_threads("auto", TiedLM(), 512, own_threads=True, cores=16)
    assert choice.count == 1 and "its own worker threads" in choice.reason


def test_a_number_is_obeyed_and_zero_is_every_available_core() -> None:
    from ffnlp.threads import available_cores

    assert choose_threads(3, mlp(2, 1), 8).count == 3
    assert choose_threads(0, mlp(2, 1), 8).count == available_cores()


def test_threads_accept_auto_or_a_count_and_name_the_choice_otherwise() -> None:
    assert C.build(TrainConfig).threads == "auto"
    assert C.build(TrainConfig, {"threads": 2}).threads == 2
    assert C.build(TrainConfig, {}, ["threads=auto"]).threads == "auto"
    assert C.build(TrainConfig, {}, ['threads="auto"']).threads == "auto"
    assert C.build(TrainConfig, {}, ["threads=0"]).threads == 0
    for bad, message in (
        ("threads=fast", "threads must be an integer or 'auto'; got 'fast'"),
        ("threads=2.5", "threads must be an integer or 'auto'; got 2.5"),
        ("threads=true", "threads must be an integer or 'auto'; got True"),
        ("threads=-1", "threads must be >= 0; got -1"),
    ):
        with pytest.raises(Exception, match=message.replace("(", r"\(")):
            C.build(TrainConfig, {}, [bad])
    assert 'threads = "auto"' in C.dump_toml(C.build(TrainConfig))


def test_fit_sets_the_chosen_threads_and_the_summary_reports_them(tmp_path, monkeypatch) -> None:
    import ffnlp.threads
    from ffnlp.tasks.classify import train_classifier

    monkeypatch.setattr(ffnlp.threads, "other_runnable_threads", lambda: 0)  # a quiet machine
    from ffnlp.tasks.sample import write_sample

    paths = write_sample(tmp_path, sizes=(40, 10, 10))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        clf = train_classifier(
            paths["train"], dev=paths["dev"], out=tmp_path / "run", overrides=["train.epochs=1"]
        )
        assert clf.summary["threads"] == 1 == torch.get_num_threads()  # a tiny model: 1 thread
    finally:
        torch.set_num_threads(before)


def omp_settings(env: dict[str, str]) -> str:
    code = "import ffnlp, torch; torch.ones(8).sum()"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OMP_DISPLAY_ENV": "verbose", "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stderr


def test_importing_ffnlp_first_stops_idle_openmp_threads_from_spinning() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    shown = omp_settings(env)
    if "GOMP_SPINCOUNT" not in shown:
        pytest.skip("torch's OpenMP here is not GNU libgomp, which shows its settings")
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in shown and "GOMP_SPINCOUNT = '0'" in shown
    shown = omp_settings({**env, "OMP_WAIT_POLICY": "ACTIVE"})  # the user's choice wins
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in shown and "GOMP_SPINCOUNT = '0'" not in shown
