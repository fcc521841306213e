"""The TensorBoard logger: the scalars read back from its event files are metrics.jsonl's."""

from __future__ import annotations

import importlib.util
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.config import tensorboard_settings
from ffnlp.tasks.classify import resolve_config
from ffnlp.tasks.sample import write_sample
from ffnlp.training import read_metrics
from tests.extras import needs
from tests.reliability.rundir_support import SignalAt, with_callbacks

event_accumulator = needs("tensorboard.backend.event_processing.event_accumulator")
EventAccumulator = event_accumulator.EventAccumulator

runner = CliRunner()

TINY = {
    "classify": ["train.epochs=3", "train.log_every=3", "train.batch_size=16", "train.threads=1"],
    "lm": [
        "train.epochs=2",
        "train.log_every=5",
        "train.threads=1",
        "model.embedding_dim=8",
        "model.hidden_sizes=[8]",
        "model.context_size=2",
        "samples=0",
    ],
    "w2v": ["train.epochs=2", "train.log_every=5", "model.dim=8", "model.min_count=1"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("d"), sizes=(160, 40, 40))


def train_args(task: str, data: dict[str, Path]) -> list[str]:
    if task == "classify":
        args = ["classify", "train", "--train", data["train"], "--dev", data["dev"]]
    elif task == "lm":
        args = ["lm", "train", "--train", data["corpus"], "--dev", data["dev_corpus"]]
    else:
        args = ["w2v", "train", "--corpus", data["corpus"]]
    for setting in TINY[task]:
        args += ["--set", setting]
    return [str(a) for a in [*args, "--quiet"]]


def expected_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """What metrics.jsonl says each tag should hold: (step, value) in the order logged."""
    out: dict[str, list[tuple[int, float]]] = {}

    def put(tag: str, step: int, value: object) -> None:
        if value is not None:
            out.setdefault(tag, []).append((step, float(value)))  # type: ignore[arg-type]

    for r in read_metrics(run / "metrics.jsonl"):
        if r["event"] == "step":
            put("train/loss", r["step"], r["train"]["loss"])
            put("train/lr", r["step"], r["lr"])
            put("train/grad_norm", r["step"], r["grad_norm"])
        elif r["event"] == "epoch":
            put("epoch/train_loss", r["step"], r["train"]["loss"])
            put("epoch/lr", r["step"], r["lr"])
        for name, value in r.get("dev", {}).items():
            put(f"dev/{name}", r["step"], value)
    return out


def logged_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def assert_same_scalars(log_dir: Path, run: Path) -> None:
    logged, expected = logged_scalars(log_dir), expected_scalars(run)
    assert sorted(logged) == sorted(expected)
    for tag, points in expected.items():
        assert [step for step, _ in logged[tag]] == [step for step, _ in points], tag
        # TensorBoard keeps float32
        assert [v for _, v in logged[tag]] == pytest.approx([v for _, v in points], rel=1e-6)


@pytest.mark.parametrize("task", ["classify", "lm", "w2v"])
def test_the_event_file_holds_the_scalars_of_metrics_jsonl(task, data, tmp_path) -> None:
    if task == "lm":
        data = {**data, "dev_corpus": data["dev"].with_name("dev_corpus.txt")}
        lines = data["corpus"].read_text(encoding="utf-8").splitlines()
        data["dev_corpus"].write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    log_dir = tmp_path / "tb"
    result = runner.invoke(
        app,
        [*train_args(task, data), "--out", str(tmp_path / "run"), "--tensorboard", str(log_dir)],
    )
    assert result.exit_code == 0, result.output
    assert_same_scalars(log_dir, tmp_path / "run")
    logged = logged_scalars(log_dir)
    assert {"train/loss", "train/lr", "epoch/train_loss"} <= set(logged)
    if task == "classify":
        assert {"dev/loss", "dev/accuracy", "dev/macro_f1"} <= set(logged)
    if task == "lm":
        assert "dev/perplexity" in logged
    config = (tmp_path / "run" / "config.toml").read_text(encoding="utf-8")
    assert f'tensorboard = "{log_dir}"' in config  # the run says where its curves went


def test_the_config_key_turns_it_on_and_empty_leaves_it_off(data, tmp_path) -> None:
    log_dir = tmp_path / "from config"
    config = tmp_path / "c.toml"
    config.write_text(f'[train]\ntensorboard = "{log_dir}"\n', encoding="utf-8")
    args = train_args("classify", data)
    result = runner.invoke(app, [*args, "--config", str(config), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert_same_scalars(log_dir, tmp_path / "a")
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert 'tensorboard = ""' in (tmp_path / "b" / "config.toml").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c.toml", "from config"]


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT as a terminal's Ctrl-C gives it (a shell's background job starts with it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_a_resumed_run_continues_the_same_curves(data, tmp_path, monkeypatch) -> None:
    log_dir, run = tmp_path / "tb", tmp_path / "run"
    args = [*train_args("classify", data), "--tensorboard", str(log_dir)]
    with_callbacks(monkeypatch, SignalAt(step=17))  # mid-epoch 2, past the first checkpoint
    assert runner.invoke(app, [*args, "--out", str(run)]).exit_code == 130
    with_callbacks(monkeypatch)
    # event files are named events.out.tfevents.<second>.<host>.<pid>.<writer count>: two
    # sessions of one process in the same second sort by the count as text (writer 10 before
    # writer 9), so TensorBoard would read the second session first. A user's resume is another
    # process, seconds later; here the next second is awaited
    second = int(time.time())
    while int(time.time()) == second:
        time.sleep(0.02)
    result = runner.invoke(app, [*args, "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert len(list(log_dir.iterdir())) == 2  # one event file per session
    # the steps logged after the checkpoint and then trained again are there once
    assert_same_scalars(log_dir, run)


def test_without_the_package_the_error_names_the_extra(data, tmp_path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    args = [*train_args("classify", data), "--out", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: train.tensorboard (--tensorboard) needs the tensorboard package: pip install "
        "'ffnlp[tensorboard]' (or pip install tensorboard), or leave train.tensorboard = ''"
    )
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_file_in_the_way_is_named(data, tmp_path) -> None:
    (tmp_path / "tb").write_text("not a folder", encoding="utf-8")
    args = [*train_args("classify", data), "--out", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: train.tensorboard (--tensorboard) {tmp_path / 'tb'} is a file, not a "
        "directory; choose another train.tensorboard (--tensorboard)"
    )
    assert not (tmp_path / "run").exists()


def test_the_folder_stays_a_string_whatever_it_looks_like() -> None:
    for name in ("10", "true", 'we"ird\\name', "[1, 2]"):
        cfg = resolve_config(None, tensorboard_settings(Path(name)))
        assert cfg.train.tensorboard == name
