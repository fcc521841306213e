"""Training input in several files (ffnlp.text.shards): a glob pattern or a folder of shards.

One process reads the shards in order as one file (the same run as on their concatenation).
Two ranks of one run (started as torchrun starts them) split four shards between them, each
reading only its own (recorded in summary.json), with the vocabulary of the whole input on
every rank; fewer shards than ranks is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

from tests.cli.test_torchrun import finish, launch, summary
from tests.reliability.rundir_support import invoke, train_args, weights, write_data

pytestmark = pytest.mark.skipif(
    not dist.is_available(), reason="torch.distributed is not available in this build"
)

TASKS = ("classify", "lm", "w2v")


def split_into(source: Path, folder: Path, parts: int) -> list[Path]:
    """``source``'s lines in ``parts`` consecutive files part-0.txt ... of ``folder``."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    folder.mkdir()
    size = -(-len(lines) // parts)
    out = []
    for i in range(parts):
        path = folder / f"part-{i}.txt"
        path.write_text("".join(lines[i * size : (i + 1) * size]), encoding="utf-8")
        out.append(path)
    return out


def train_input(task: str, data: dict[str, Path]) -> Path:
    return data["train"] if task == "classify" else data["lm_train"]


def with_input(args: list[str], task: str, given: str | Path) -> list[str]:
    """``args`` with the training input replaced by ``given``."""
    option = "--corpus" if task == "w2v" else "--train"
    out = list(args)
    out[out.index(option) + 1] = str(given)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    paths = write_data(folder)
    split_into(paths["train"], folder / "classify_shards", 4)
    split_into(paths["lm_train"], folder / "corpus_shards", 4)
    return paths


def shard_folder(task: str, data: dict[str, Path]) -> Path:
    name = "classify_shards" if task == "classify" else "corpus_shards"
    return data["train"].parent / name


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each task trained by one process on the whole (unsharded) file."""
    runs = {}
    for task in TASKS:
        out = tmp_path_factory.mktemp(task) / "run"
        result = invoke([*train_args(task, data), "--out", out])
        assert result.exit_code == 0, result.output
        runs[task] = out
    return runs


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("form", ["folder", "glob"])
def test_one_process_reads_the_shards_in_order_as_one_file(
    task: str, form: str, data, one_process, tmp_path: Path
) -> None:
    folder = shard_folder(task, data)
    given = folder if form == "folder" else folder / "part-*.txt"
    out = tmp_path / "run"
    result = invoke([*with_input(train_args(task, data), task, given), "--out", out])
    assert result.exit_code == 0, result.output
    whole = one_process[task]
    assert (out / "vocab.json").read_text() == (whole / "vocab.json").read_text()
    wa, wb = weights(out), weights(whole)
    assert wa.keys() == wb.keys()
    for name in wa:  # the same run: the same batches from the same examples
        assert np.array_equal(wa[name], wb[name]), name
    assert summary(out)["steps"] == summary(whole)["steps"]


def test_a_pattern_that_matches_nothing_is_one_clear_error(data, tmp_path: Path) -> None:
    args = with_input(train_args("lm", data), "lm", tmp_path / "nothing-*.txt")
    result = invoke([*args, "--out", tmp_path / "run"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert f"--train {tmp_path / 'nothing-*.txt'}: the pattern matches no file" in result.stderr
    assert not (tmp_path / "run").exists()


def test_an_empty_folder_is_one_clear_error(data, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    args = with_input(train_args("w2v", data), "w2v", tmp_path / "empty")
    result = invoke([*args, "--out", tmp_path / "run"])
    assert result.exit_code == 1
    assert f"--corpus {tmp_path / 'empty'}: the folder holds no file" in result.stderr


def test_a_pattern_for_the_dev_file_is_refused_naming_the_options(data, tmp_path: Path) -> None:
    args = train_args("classify", data)
    args[args.index("--dev") + 1] = str(tmp_path / "dev-*.txt")
    result = invoke([*args, "--out", tmp_path / "run"])
    assert result.exit_code == 1
    assert "are taken by --train and --corpus only" in result.stderr


@pytest.mark.parametrize("task", TASKS)
def test_two_ranks_each_read_only_their_own_shards(
    task: str, data, one_process, tmp_path: Path
) -> None:
    folder = shard_folder(task, data)
    files = sorted(folder.iterdir())
    out = tmp_path / "run"
    args = with_input(train_args(task, data), task, folder / "part-*.txt")
    (rank0, _, err0), (rank1, _, err1) = finish(launch([*args, "--out", out]))
    assert rank0 == 0 and rank1 == 0, err0 + err1
    s = summary(out)
    assert s["world_size"] == 2
    # rank r read shards r and r + 2, and no other
    assert s["ranks"][0]["shards"] == [str(files[0]), str(files[2])]
    assert s["ranks"][1]["shards"] == [str(files[1]), str(files[3])]
    # the vocabulary of the whole input, as one process builds it, although no rank read it all
    whole = one_process[task]
    assert (out / "vocab.json").read_text() == (whole / "vocab.json").read_text()
    one = summary(whole)
    if task == "classify":
        # 40 examples a shard: each rank's 80 in batches of 8 (half of 16), 10 steps an epoch
        assert s["steps"] == one["steps"] == 30 and s["train_examples"] == 160
    elif task == "lm":
        assert s["train_tokens"] == one["train_tokens"]
    else:
        assert s["corpus_tokens"] == one["corpus_tokens"]
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["event"] == "epoch"] == [1, 2, 3]
    if task != "w2v":  # (word2vec's evaluation is its similarity files, not batches)
        # the Trainer's dev evaluation, shared between the ranks (every other batch each), has
        # the figures of the whole evaluation that every rank makes of the final (best) weights
        best = next(r for r in log if r["event"] == "epoch" and r["epoch"] == s["best_epoch"])
        metric = "accuracy" if task == "classify" else "perplexity"
        assert best["dev"][metric] == pytest.approx(s["dev"][metric], rel=1e-6)
        assert best["dev"]["loss"] == pytest.approx(s["dev"]["loss"], rel=1e-6)


def test_fewer_shards_than_ranks_is_one_clear_error_on_every_rank(data, tmp_path: Path) -> None:
    folder = tmp_path / "one_shard"
    folder.mkdir()
    (folder / "part-0.txt").write_bytes(data["lm_train"].read_bytes())
    args = with_input(train_args("lm", data), "lm", folder)
    (rank0, _, err0), (rank1, _, err1) = finish(launch([*args, "--out", tmp_path / "run"]))
    assert rank0 == 1 and rank1 == 1, err0 + err1
    for err in (err0, err1):
        assert f"--train {folder}: 1 shard(s) for 2 processes" in err
        assert "split the input into at least 2 files, or run at most 1 processes" in err
        assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
