"""torchrun's --max-restarts: after a rank dies, torchrun starts the workers again with the same
command line, and the run continues from the last checkpoint that the earlier attempt left, with
no --resume, ending as a run that was never stopped. A run some other command left in --out is
not taken up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from tests.cli.test_torchrun import CLASSIFY, ROOT, assert_close_weights, log_of, summary
from tests.reliability.rundir_support import invoke, train_args, write_data

pytestmark = pytest.mark.skipif(
    not dist.is_available(), reason="torch.distributed is not available in this build"
)

# one worker: the CLI; on the first attempt, rank 1 SIGKILLs itself after TEST_KILL_AT_STEP
DRIVER = """
import os, signal, sys
kill_at = int(os.environ.get("TEST_KILL_AT_STEP", "0"))
first = os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0"
if kill_at and first and os.environ.get("RANK") == "1":
    import pytest
    from tests.reliability.rundir_support import SignalAt, with_callbacks
    with_callbacks(pytest.MonkeyPatch(), SignalAt(kill_at, signal.SIGKILL))
sys.argv = ["ffnlp", *sys.argv[1:]]
from ffnlp.cli.main import main
main()
"""


def torchrun(
    args: list[str], tmp_path: Path, restarts: int, kill_at: int = 0
) -> subprocess.CompletedProcess[str]:
    """`torchrun --nproc-per-node 2 --max-restarts RESTARTS` of the CLI (as the driver)."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "FFNLP_DIST_TIMEOUT": "60",
        "TEST_KILL_AT_STEP": str(kill_at),
    }
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1"]
    command += ["--nproc-per-node", "2", "--max-restarts", str(restarts)]
    command += ["--standalone"]
    command += ["--monitor-interval", "0.5", str(driver), *map(str, args)]
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def one_classifier(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    result = invoke([*train_args("classify", data), *CLASSIFY, "--out", out])
    assert result.exit_code == 0, result.output
    return out


def test_a_rank_killed_mid_epoch_is_restarted_and_the_run_continues_as_one(
    data, one_classifier: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [*train_args("classify", data), *CLASSIFY, "--out", out]
    done = torchrun(args, tmp_path, restarts=1, kill_at=13)  # epoch 2 of 3 (10 steps each)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_close_weights(out, one_classifier)
    s = summary(out)
    assert s["world_size"] == 2 and s["steps"] == 30
    assert s["restarts"] == 1  # completed by the second attempt
    assert log_of(out) == log_of(one_classifier)  # one log, as if never stopped
    assert not (out / "interrupted.json").exists()
    job = json.loads((out / "checkpoint" / "torchrun.json").read_text(encoding="utf-8"))
    assert set(job) == {"run_id", "host", "agent"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_without_restarts_the_killed_run_waits_for_resume(
    data, one_classifier: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = [*train_args("classify", data), *CLASSIFY]
    done = torchrun([*args, "--out", out], tmp_path, restarts=0, kill_at=13)
    assert done.returncode != 0
    assert (out / "interrupted.json").is_file() and not (out / "summary.json").exists()
    # the next command (a new torchrun job) does not take it up by itself ...
    again = torchrun([*args, "--out", out], tmp_path, restarts=1)
    assert again.returncode != 0
    assert f"{out} already holds a run; pass --resume {out} to continue it" in again.stderr
    assert not (out / "summary.json").exists()
    # ... --resume does, and ends as the uninterrupted run
    resumed = torchrun([*args, "--resume", out], tmp_path, restarts=0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_close_weights(out, one_classifier)
    assert log_of(out) == log_of(one_classifier)


def test_nproc_passes_max_restarts_to_torchrun(data, tmp_path: Path, monkeypatch) -> None:
    started: list[list[str]] = []

    def call(command: list[str]) -> int:
        started.append(command)
        return 0

    monkeypatch.setattr(subprocess, "call", call)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    out = tmp_path / "run"
    args = [*train_args("lm", data), "--out", out, "--nproc", "2", "--max-restarts", "3"]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    (command,) = started
    at = command.index("torch.distributed.run")
    assert command[at + 1 : at + 6] == [
        "--standalone",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "3",
    ]
    rest = command[command.index("ffnlp") + 1 :]
    assert "--nproc" not in rest and "--max-restarts" not in rest  # torchrun's, not the workers'
    assert rest[rest.index("--out") + 1] == str(out)


def test_max_restarts_without_nproc_is_one_clear_error(data, tmp_path: Path) -> None:
    result = invoke([*train_args("w2v", data), "--out", tmp_path / "run", "--max-restarts", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --max-restarts restarts the processes that --nproc")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a long end-to-end run (several processes): python3 -m pytest -m slow
def test_a_sharded_run_restarted_after_a_kill_ends_as_the_uninterrupted_one(
    data, tmp_path: Path
) -> None:
    from tests.cli.test_shards import split_into

    shards = tmp_path / "shards"
    split_into(data["train"], shards, 4)
    args = [*train_args("classify", data), *CLASSIFY]
    args[args.index("--train") + 1] = str(shards / "part-*.txt")
    whole = torchrun([*args, "--out", tmp_path / "whole"], tmp_path, restarts=0)
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "run"
    done = torchrun([*args, "--out", out], tmp_path, restarts=1, kill_at=13)
    assert done.returncode == 0, done.stderr[-3000:]
    # each rank's order of its own shards comes from (seed, epoch, rank): the same again after
    # the restart, so the continued run is the uninterrupted one
    assert_close_weights(out, tmp_path / "whole")
    s = summary(out)
    assert s["restarts"] == 1 and s["steps"] == summary(tmp_path / "whole")["steps"] == 30
    assert [r["shards"] for r in s["ranks"]] == [
        [str(shards / "part-0.txt"), str(shards / "part-2.txt")],
        [str(shards / "part-1.txt"), str(shards / "part-3.txt")],
    ]
    assert log_of(out) == log_of(tmp_path / "whole")
