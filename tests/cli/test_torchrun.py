"""`ffnlp ... train` as two processes of one run, started as torchrun starts them (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in the environment; gloo on this machine): the
ranks share every epoch and end with the weights of one process with the same global batch;
rank 0 alone writes the run and prints; a rank SIGKILLed mid-epoch makes the other stop with a
clear message, and --resume then ends as the uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

from tests.reliability.rundir_support import invoke, train_args, weights, write_data
from tests.training.test_distributed import free_port

pytestmark = pytest.mark.skipif(
    not dist.is_available(), reason="torch.distributed is not available in this build"
)

ROOT = Path(__file__).resolve().parents[2]

# one rank's command line: the CLI, with (for the test only) a SIGKILL of itself after a step
DRIVER = """
import os, signal, sys
kill_at = int(os.environ.get("TEST_KILL_AT_STEP", "0"))
if kill_at:
    import pytest
    from tests.reliability.rundir_support import SignalAt, with_callbacks
    with_callbacks(pytest.MonkeyPatch(), SignalAt(kill_at, signal.SIGKILL))
sys.argv = ["ffnlp", *sys.argv[1:]]
from ffnlp.cli.main import main
main()
"""

CLASSIFY = [
    "--set",
    "model.type=mlp",
    "--set",
    "model.mlp.hidden=[8]",
    "--set",
    "train.sparse=true",  # SparseAdam: the first layer's rows travel as rows
    "--set",
    "train.optimizer=adam",
    "--set",
    "train.checkpoint=true",
]


def launch(
    args: list[str], world: int = 2, kill: dict[int, int] | None = None
) -> list[subprocess.Popen[str]]:
    """Start ``world`` ranks of `ffnlp ARGS`; ``kill``: rank -> step after which it SIGKILLs
    itself."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "FFNLP_DIST_TIMEOUT": "60",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        if kill and rank in kill:
            env["TEST_KILL_AT_STEP"] = str(kill[rank])
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", DRIVER, *map(str, args)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def finish(procs: list[subprocess.Popen[str]], timeout: float = 300) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, stdout, stderr))
    return out


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))


def assert_close_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_allclose(wa[name], wb[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def one_classifier(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    result = invoke([*train_args("classify", data), *CLASSIFY, "--out", out])
    assert result.exit_code == 0, result.output
    return out


def test_two_ranks_of_the_classifier_end_with_one_process_weights(
    data, one_classifier: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    loud = [a for a in train_args("classify", data) if a != "--quiet"]
    (rank0, out0, err0), (rank1, out1, err1) = finish(launch([*loud, *CLASSIFY, "--out", out]))
    assert rank0 == 0 and rank1 == 0, err0 + err1
    assert_close_weights(out, one_classifier)
    s, one = summary(out), summary(one_classifier)
    assert s["world_size"] == 2 and s["steps"] == one["steps"] == 30  # 160 / 16 x 3 epochs
    assert [r["rank"] for r in s["ranks"]] == [0, 1]
    assert all(r["batch_size"] == 8 for r in s["ranks"])  # each rank half of the global 16
    assert all(r["examples_per_second"] > 0 for r in s["ranks"])
    assert s["ranks"][0]["exchange"]["sparse_exchanges"] == 30  # the sparse first layer
    assert s["test"]["accuracy"] == pytest.approx(one["test"]["accuracy"], abs=1e-9)
    assert "accuracy" in out0 and out1 == ""  # rank 0 alone prints the results
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # and alone writes a run


def test_two_ranks_of_the_language_model_end_with_one_process_weights(data, tmp_path: Path) -> None:
    # fp32: "auto" takes bf16 products where the CPU has them, whose rounding the ranks' sums
    # in another order would make visible
    settings = ["--set", "model.dropout=0", "--set", "model.word_dropout=0"]
    settings += ["--set", "model.precision=fp32"]
    one = tmp_path / "one"
    result = invoke([*train_args("lm", data), *settings, "--out", one])
    assert result.exit_code == 0, result.output
    two = tmp_path / "two"
    (rank0, _, err0), (rank1, _, err1) = finish(
        launch([*train_args("lm", data), *settings, "--out", two])
    )
    assert rank0 == 0 and rank1 == 0, err0 + err1
    assert_close_weights(two, one)
    s = summary(two)
    assert s["world_size"] == 2 and s["steps"] == summary(one)["steps"]
    assert s["dev"]["perplexity"] == pytest.approx(summary(one)["dev"]["perplexity"], rel=1e-4)


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_a_rank_killed_mid_epoch_stops_the_other_and_resume_ends_as_one_run(
    data, one_classifier: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [*train_args("classify", data), *CLASSIFY]
    procs = launch([*args, "--out", out], kill={1: 13})  # epoch 2 of 3 (10 steps each)
    started = time.monotonic()
    (rank0, out0, err0), (rank1, _, _) = finish(procs, timeout=120)
    assert rank1 == -9  # SIGKILL
    assert time.monotonic() - started < 120  # bounded: no hang
    assert rank0 == 1, err0
    line = err0.strip().splitlines()[-1]
    assert line.startswith("[rank 0] Training stopped at step 13 (epoch 2): another process of ")
    assert "FFNLP_DIST_TIMEOUT" in line
    assert f"the run is saved in {out}. Continue it with: ffnlp " in line
    assert line.endswith(f"--resume {out}")
    assert (out / "checkpoint" / "state.pt").is_file() and not (out / "summary.json").exists()

    (rank0, _, err0), (rank1, _, err1) = finish(launch([*args, "--resume", out]))
    assert rank0 == 0 and rank1 == 0, err0 + err1
    assert_close_weights(out, one_classifier)
    assert summary(out)["steps"] == 30
    assert log_of(out) == log_of(one_classifier)  # one log, as if never stopped


def log_of(run: Path) -> list[tuple[str, int]]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r["event"], r["step"]) for r in map(json.loads, lines)]


def test_nproc_runs_the_command_as_that_many_processes(data, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*train_args("classify", data), "--out", out, "--nproc", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "-m", "ffnlp", *map(str, args)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    s = summary(out)
    assert s["world_size"] == 2 and [r["batch_size"] for r in s["ranks"]] == [8, 8]


def test_half_a_torchrun_environment_is_one_clear_error(data, tmp_path, monkeypatch) -> None:
    for key in ("WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RANK", "0")
    result = invoke([*train_args("classify", data), "--out", tmp_path / "run"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the environment names this process as one of several")
    assert "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set" in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written


def test_nproc_under_torchrun_is_refused(data, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "0")
    result = invoke([*train_args("classify", data), "--out", tmp_path / "run", "--nproc", "2"])
    assert result.exit_code == 1
    assert "--nproc starts processes under torchrun itself" in result.stderr


# ------------------------------------------------------------ two "nodes" on real data (slow)


def two_nodes(args: list[str], timeout: float) -> list[tuple[int, str, str]]:
    """Two `torchrun --nnodes 2 --nproc-per-node 1 --node-rank 0|1` launches rendezvousing on
    127.0.0.1, as on two machines."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(node),
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                f"127.0.0.1:{port}",
                "-m",
                "ffnlp",
                *map(str, args),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    return finish(procs, timeout=timeout)


@pytest.mark.slow
def test_two_nodes_train_the_sst2_mlp_as_one_process(tmp_path: Path) -> None:
    from tests.conftest import shared_data

    sst2 = shared_data("sst2")
    args = ["classify", "train", "--config", "sst2_ffnn", "--quiet"]
    args += ["--train", sst2 / "stsa.binary.train", "--dev", sst2 / "stsa.binary.dev"]
    args += ["--test", sst2 / "stsa.binary.test"]
    # without dropout the two runs are the same computation (float tolerance), so the figures
    # must agree closely; with it they differ by the draws (docs/scale.md has those figures).
    # A fixed number of epochs: early stopping on dev accuracy turns one flipped dev example
    # (float rounding) into a different stopping point
    args += ["--set", "model.mlp.dropout=0", "--set", "train.early_stopping=false"]
    args += ["--set", "train.epochs=4"]
    result = invoke([*args, "--out", tmp_path / "one"])
    assert result.exit_code == 0, result.output
    results = two_nodes([*args, "--out", tmp_path / "two"], timeout=1200)
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    one, two = summary(tmp_path / "one"), summary(tmp_path / "two")
    assert two["world_size"] == 2 and [r["batch_size"] for r in two["ranks"]] == [32, 32]
    assert two["steps"] == one["steps"] == 4 * 109  # each rank: its half of every epoch
    assert abs(two["test"]["accuracy"] - one["test"]["accuracy"]) <= 0.005


@pytest.mark.slow
def test_two_nodes_train_the_ptb_lm_as_one_process(tmp_path: Path) -> None:
    from tests.conftest import shared_data

    ptb = shared_data("ptb")
    args = ["lm", "train", "--config", "ptb_lm", "--quiet", "--set", "train.max_steps=150"]
    args += ["--train", ptb / "ptb.train.txt.gz", "--dev", ptb / "ptb.valid.txt"]
    args += ["--test", ptb / "ptb.test.txt", "--set", "train.epochs=1"]
    result = invoke([*args, "--out", tmp_path / "one"])
    assert result.exit_code == 0, result.output
    results = two_nodes([*args, "--out", tmp_path / "two"], timeout=1800)
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    one, two = summary(tmp_path / "one"), summary(tmp_path / "two")
    assert two["world_size"] == 2 and [r["batch_size"] for r in two["ranks"]] == [256, 256]
    assert two["steps"] == one["steps"] == 150
    assert two["test"]["perplexity"] == pytest.approx(one["test"]["perplexity"], rel=0.02)
