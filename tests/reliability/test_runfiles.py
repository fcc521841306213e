"""Run folders as input: damaged, edited, mixed, from another task, unreadable; output paths that
cannot be written; the Python API given the wrong things. Each case: exit code 1 and one
``Error:`` line naming the file (or the exception class, in Python), nothing on disk changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import ffnlp
from ffnlp.errors import ConfigError, DataError, FfnlpError, ModelFileError, OutputError
from tests.conftest import ROOT
from tests.reliability.cases import (
    FAST_CLASSIFY,
    Unchanged,
    assert_error,
    checksums,
    copy_run,
    invoke,
    train_runs,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runfiles")
    paths = train_runs(root)
    small = root / "data" / "small.txt"  # fewer n-grams: a vocab.json of another size
    small.write_text("".join(paths["train"].read_text().splitlines(keepends=True)[:20]))
    result = invoke(["classify", "train", "--train", small, "--out", root / "runs" / "small",
                     *FAST_CLASSIFY])  # fmt: skip
    assert result.exit_code == 0, result.output
    paths["small"] = root / "runs" / "small"
    paths["texts"] = root / "data" / "texts.txt"
    paths["texts"].write_text("a charming film\na dull film\n")
    return paths


def _edit_json(name: str, edit: Callable[[Any], Any]) -> Callable[[Path, dict], None]:
    def apply(run: Path, world: dict) -> None:
        path = run / name
        data = json.loads(path.read_text())
        result = edit(data)
        path.write_text(json.dumps(data if result is None else result))

    return apply


def _write(name: str, content: bytes) -> Callable[[Path, dict], None]:
    return lambda run, world: (run / name).write_bytes(content)


def _remove(name: str) -> Callable[[Path, dict], None]:
    return lambda run, world: (run / name).unlink()


def _cut(name: str, fraction: float) -> Callable[[Path, dict], None]:
    def apply(run: Path, world: dict) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: max(int(len(data) * fraction), 9)])

    return apply


def _flip_last_byte(name: str) -> Callable[[Path, dict], None]:
    def apply(run: Path, world: dict) -> None:
        data = bytearray((run / name).read_bytes())
        data[-1] ^= 0x01
        (run / name).write_bytes(bytes(data))

    return apply


def _make_folder(name: str) -> Callable[[Path, dict], None]:
    def apply(run: Path, world: dict) -> None:
        (run / name).unlink()
        (run / name).mkdir()

    return apply


def _copy_from(other: str, name: str) -> Callable[[Path, dict], None]:
    return lambda run, world: shutil.copy(world[other] / name, run / name)


def _set(key: str, value: Any) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        d[key] = value

    return edit


def _set_arg(key: str, value: Any) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        d["args"][key] = value

    return edit


def _delete(*keys: str) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        node = d
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _labels(labels: list[str]) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        d["labels"]["labels"] = labels

    return edit


# (id, corruption of a copy of the logistic-regression run, what the error says; {run} = its path)
CLASSIFY = [
    ("model-json-not-json", _write("model.json", b"{"),
     "{run}/model.json is corrupted (not JSON: Expecting property name"),
    ("model-json-not-utf8", _write("model.json", b'{"task": "\xff"}'),
     "{run}/model.json is corrupted (not UTF-8 at byte 10)"),
    ("model-json-list", _write("model.json", b"[1, 2]"),
     "{run}/model.json is corrupted (a JSON list, not an object)"),
    ("model-json-huge-number", _write("model.json", b'{"task": ' + b"1" * 5000 + b"}"),
     "{run}/model.json is corrupted (Exceeds the limit (4300 digits)"),
    ("type-is-a-number", _edit_json("model.json", _set("type", 5)),
     '{run}/model.json is corrupted: "type" must be a string'),
    ("task-missing", _edit_json("model.json", _delete("task")),
     '{run}/model.json is corrupted: "task" must be a string'),
    ("args-a-list", _edit_json("model.json", _set("args", [])),
     '{run}/model.json is corrupted: "args" must be an object'),
    ("args-unknown-key", _edit_json("model.json", _set_arg("foo", 1)),
     "{run}/model.json is corrupted (unknown argument 'foo' (known: class_weight, label_smoothing, multilabel, num_classes, num_features, sparse))"),
    ("args-wrong-type", _edit_json("model.json", _set_arg("num_classes", "two")),
     '{run}/model.json is corrupted (num_classes must be an integer; got "two")'),
    ("args-bool-for-int", _edit_json("model.json", _set_arg("num_features", True)),
     "num_features must be an integer; got true"),
    ("args-missing-key", _edit_json("model.json", _delete("args", "num_features")),
     "{run}/model.json is corrupted (the argument 'num_features' is missing)"),
    ("args-10e13-features", _edit_json("model.json", _set_arg("num_features", 10**13)),
     "{run}/model.safetensors does not match model.json: linear.weight is (",
     ) ,
    ("args-negative-size", _edit_json("model.json", _set_arg("num_features", -5)),
     "{run}/model.json: its args do not make a 'logreg' model"),
    ("args-other-classes", _edit_json("model.json", _set_arg("num_classes", 5)),
     "{run}/model.safetensors does not match model.json: bias is (1) in the weights but model.json makes it (5)"),
    ("type-unknown", _edit_json("model.json", _set("type", "forest")),
     "{run}/model.json: unknown model type 'forest'"),
    ("type-other-classifier", _edit_json("model.json", _set("type", "mlp")),
     "{run}/model.safetensors does not match model.json:"),
    ("task-of-lm", _edit_json("model.json", _set("task", "lm")),
     "{run} is an lm run, not a classify run; use ffnlp lm eval/generate with it"),
    ("task-unknown", _edit_json("model.json", _set("task", "translate")),
     "{run}/model.json names the task 'translate', which this ffnlp does not know"),
    ("weights-garbage", _write("model.safetensors", b"not a safetensors file"),
     "{run}/model.safetensors cannot be read"),
    ("weights-empty", _write("model.safetensors", b""), "{run}/model.safetensors cannot be read"),
    ("weights-missing", _remove("model.safetensors"),
     "{run}/model.safetensors is missing; the run may not have finished"),
    ("weights-of-another-model", _copy_from("pooled", "model.safetensors"),
     "{run}/model.safetensors does not match model.json:"),
    ("vocab-missing", _remove("vocab.json"), "{run} is incomplete: vocab.json is missing"),
    ("vocab-not-json", _write("vocab.json", b"\x00\x01"), "{run}/vocab.json is corrupted (not JSON"),
    ("vocab-one-label", _edit_json("vocab.json", _labels(["0"])),
     "{run}/vocab.json does not fit {run}/model.json: 1 labels but the model has 2 classes"),
    ("vocab-three-labels", _edit_json("vocab.json", _labels(["0", "1", "2"])),
     "{run}/vocab.json does not fit {run}/model.json: 3 labels but the model has 2 classes"),
    ("vocab-repeated-label", _edit_json("vocab.json", _labels(["0", "0"])),
     "{run}/vocab.json is corrupted (not a label set: labels must be distinct"),
    ("vocab-labels-numbers", _edit_json("vocab.json", _labels([0, 1])),
     "{run}/vocab.json is corrupted (not a label set"),
    ("vocab-no-features", _edit_json("vocab.json", _delete("features")),
     "{run}/vocab.json is corrupted or does not hold what features.kind = 'ngrams'"),
    ("vocab-idf-not-numbers", _edit_json("vocab.json", lambda d: d["features"].update(idf=["x"] * len(d["features"]["idf"]))),
     "{run}/vocab.json is corrupted"),
    ("vocab-of-another-run", _copy_from("small", "vocab.json"),
     "{run}/vocab.json does not fit {run}/model.json:"),
    ("vocab-labels-renamed", _edit_json("vocab.json", _labels(["neg", "pos"])),
     "{run}/vocab.safetensors was not made from {run}/vocab.json (its sha256 differs)"),
    ("ngrams-file-of-another-run", _copy_from("small", "vocab.safetensors"),
     "{run}/vocab.safetensors was not made from {run}/vocab.json"),
    ("ngrams-file-cut-short", _cut("vocab.safetensors", 0.5),
     "{run}/vocab.safetensors is corrupted (not a safetensors file"),
    ("ngrams-file-header-cut", _cut("vocab.safetensors", 0.001),
     "{run}/vocab.safetensors is corrupted (not a safetensors file, or cut short: its header"),
    ("ngrams-file-garbage", _write("vocab.safetensors", b"not a safetensors file"),
     "{run}/vocab.safetensors is corrupted (not a safetensors file"),
    ("ngrams-file-bit-flipped", _flip_last_byte("vocab.safetensors"),
     "{run}/vocab.safetensors is corrupted (its arrays do not match their sha256)"),
    ("ngrams-file-a-folder", _make_folder("vocab.safetensors"),
     "{run}/vocab.safetensors is not a regular file"),
    ("config-missing", _remove("config.toml"), "{run} is incomplete: config.toml is missing"),
    ("config-not-toml", _write("config.toml", b"[data\n"), "{run}/config.toml is not valid TOML"),
    ("config-latin1", _write("config.toml", "# caf\u00e9\n".encode("latin-1")),
     "{run}/config.toml is not UTF-8 (byte 5: 0xe9)"),
    ("config-unknown-key", _write("config.toml", b"[train]\nepochz = 3\n"),
     "{run}/config.toml: unknown key 'train.epochz'"),
    ("config-other-features", _write("config.toml", b'[features]\nkind = "lexicon"\n'),
     "{run}/lexicon/positive-words.txt is missing"),
    ("config-ids-features", _write("config.toml", b'[features]\nkind = "ids"\n'),
     "{run}/vocab.json is corrupted or does not hold what features.kind = 'ids'"),
]  # fmt: skip

# ffnlp.load() goes by the task model.json names: these say so from that task's side
IN_PYTHON = {
    "task-of-lm": "{run}/config.toml is the configuration of a classify run but {run}/model.json "
    "says an lm run; the files come from different runs",
    "task-unknown": "{run}: unknown task 'translate' in model.json",
}


COMMANDS = {
    "eval": lambda run, w: ["classify", "eval", run, "--data", w["test"]],
    "predict": lambda run, w: ["classify", "predict", run, "--input", w["texts"]],
    "shapes": lambda run, w: ["explain", "shapes", run],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("case", "corrupt", "message"), CLASSIFY, ids=[c[0] for c in CLASSIFY])
def test_a_damaged_classifier_run_is_one_error_line(
    world, tmp_path, case, corrupt, message, command
) -> None:
    run = copy_run(world["clf"], tmp_path / "run")
    corrupt(run, world)
    with Unchanged(run, world["test"]):
        result = invoke(COMMANDS[command](run, world))
    if command == "shapes" and case == "task-of-lm":  # explain shapes reads a run of any task
        message = IN_PYTHON[case]
    assert_error(result, message.format(run=run))


@pytest.mark.parametrize(("case", "corrupt", "message"), CLASSIFY, ids=[c[0] for c in CLASSIFY])
def test_a_damaged_run_is_a_model_file_error_in_python(
    world, tmp_path, case, corrupt, message
) -> None:
    run = copy_run(world["clf"], tmp_path / "run")
    corrupt(run, world)
    with pytest.raises(ModelFileError) as info:
        ffnlp.load(run)
    assert IN_PYTHON.get(case, message).format(run=run) in str(info.value)


# ---------------------------------------------------------------------------------------------
# summary.json is optional for eval / predict, required (and checked) for the report

SUMMARY = [
    ("not-json", _write("summary.json", b"{not json"), "{run}/summary.json is corrupted (not JSON"),
    ("not-utf8", _write("summary.json", b'{"a": "\xff"}'), "{run}/summary.json is corrupted (not UTF-8 at byte 7)"),
    ("a-list", _write("summary.json", b"[]"), "{run}/summary.json is corrupted (a JSON list, not an object)"),
    ("missing", _remove("summary.json"), "{run} has no summary.json"),
    ("bad-layout", _edit_json("summary.json", _set("test", {"confusion": 5, "accuracy": 1.0})),
     "{run}/summary.json: test.confusion must be a list, not a number"),
    ("labels-not-a-list", _edit_json("summary.json", _set("labels", 7)),
     "{run}/summary.json: labels must be a list, not a number"),
    ("metrics-not-json", _write("metrics.jsonl", b'{"event": "epoch"\n'), "{run}/metrics.jsonl line 1 is not JSON"),
    ("metrics-not-utf8", _write("metrics.jsonl", b"\xff\n"), "{run}/metrics.jsonl line 1 is not UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("corrupt", "message"), [c[1:] for c in SUMMARY], ids=[c[0] for c in SUMMARY]
)
def test_report_needs_a_sound_summary_and_eval_does_not(world, tmp_path, corrupt, message) -> None:
    run = copy_run(world["clf"], tmp_path / "run")
    corrupt(run, world)
    with Unchanged(run):
        assert_error(invoke(["report", run]), message.format(run=run))
        evaluated = invoke(["classify", "eval", run, "--data", world["test"], "--json"])
        predicted = invoke(["classify", "predict", run, "--input", world["texts"]])
    assert evaluated.exit_code == 0 and predicted.exit_code == 0, evaluated.output


def test_report_reads_no_file_through_a_symbolic_link(world, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    run = copy_run(world["clf"], tmp_path / "run")
    (run / "plots" / "stolen.png").symlink_to(secret)
    (run / "config.toml").rename(run / "real.toml")
    (run / "config.toml").symlink_to(secret)
    result = invoke(["report", run, "--out", tmp_path / "report.html"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "hunter2" not in page and "stolen" not in page
    assert "cGFzc3dvcmQ9aHVudGVyMg" not in page  # the secret in base64
    assert "<h3>loss</h3>" in page  # the run's own plots are there


def test_a_confusion_plot_of_mathtext_labels(tmp_path) -> None:
    train = tmp_path / "t.txt"
    train.write_text("".join(f"{y} {t}\n" for y, t in [
        ("$\\foo$", "a fine film"), ("$x^$", "a dull film"), ("$\\foo$", "great fun"),
        ("$x^$", "flat and dull"),
    ] * 5))  # fmt: skip
    result = invoke(["classify", "train", "--train", train, "--test", train, "--out",
                     tmp_path / "r", *FAST_CLASSIFY])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "plots" / "confusion.png").stat().st_size > 0


# ---------------------------------------------------------------------------------------------
# a run names its task; the others say which commands read it

TASKS = [
    (["lm", "generate", "{clf}"], "{clf} is a classify run, not an lm run; use ffnlp classify eval/predict"),
    (["lm", "eval", "{clf}", "--data", "{corpus}"], "{clf} is a classify run, not an lm run"),
    (["classify", "eval", "{lm}", "--data", "{test}"], "{lm} is an lm run, not a classify run; use ffnlp lm eval/generate"),
    (["classify", "predict", "{w2v}"], "{w2v} is a w2v run, not a classify run; use ffnlp w2v eval/neighbors/export"),
    (["explain", "shapes", "{kn}"], "{kn} holds a Kneser-Ney n-gram model: counts, no matrix products"),
    (["lm", "generate", "{w2v}"], "{w2v} is a w2v run, not an lm run"),
    (["classify", "train", "--train", "{train}", "--resume", "{lm}"],
     "{lm} is an lm run, not a classify run; use ffnlp lm eval/generate with it (resume it with ffnlp lm train --resume {lm})"),
    (["lm", "train", "--train", "{corpus}", "--resume", "{clf}"], "{clf} is a classify run, not an lm run"),
    (["w2v", "train", "--corpus", "{corpus}", "--resume", "{kn}"], "{kn} is an lm run, not a w2v run"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"), TASKS, ids=[f"{a[0]}-{a[1]}-{i}" for i, (a, _) in enumerate(TASKS)]
)
def test_a_run_of_another_task_says_which_commands_read_it(world, args, message) -> None:
    names = {k: str(v) for k, v in world.items()}
    with Unchanged(world["clf"], world["lm"], world["w2v"], world["kn"]):
        result = invoke([a.format(**names) for a in args])
    assert_error(result, message.format(**names))


def test_an_interrupted_run_without_model_json_is_told_by_its_config(world, tmp_path) -> None:
    run = copy_run(world["lm"], tmp_path / "run")
    (run / "model.json").unlink()
    with Unchanged(run):
        result = invoke(["classify", "train", "--train", world["train"], "--resume", run])
    assert_error(result, f"{run} is an lm run, not a classify run")


# ---------------------------------------------------------------------------------------------
# the language model and word2vec runs


def _lm_vocab(edit: Callable[[dict], None]) -> Callable[[Path, dict], None]:
    return _edit_json("vocab.json", edit)


def _drop_last_word(d: dict) -> None:
    d["itos"].pop()
    d["counts"].pop()


def _rename_eos(d: dict) -> None:
    d["itos"][d["itos"].index("</s>")] = "<end>"


OTHER = [
    ("lm", "vocab-of-another-size", _lm_vocab(_drop_last_word), ["lm", "generate", "{run}"],
     "{run}: vocab.json has"),
    ("lm", "vocab-without-eos", _lm_vocab(_rename_eos), ["lm", "generate", "{run}"],
     "{run}/vocab.json: the specials '</s>' are not in the vocabulary"),
    ("lm", "vocab-not-json", _write("vocab.json", b"nope"), ["lm", "generate", "{run}"],
     "{run}/vocab.json: not a JSON vocabulary file"),
    ("lm", "vocab-counts-text", _lm_vocab(lambda d: d.update(counts=["x"] * len(d["itos"]))),
     ["lm", "generate", "{run}"], "'counts' must be a list of counts"),
    ("lm", "config-unknown-key", _edit_json("model.json", lambda d: d["args"]["config"].update(foo=1)),
     ["lm", "generate", "{run}"], "{run}/model.json: its args do not make a 'ffnn_lm' model"),
    ("lm", "config-huge", _edit_json("model.json", lambda d: d["args"]["config"].update(embedding_dim=10**9)),
     ["lm", "generate", "{run}"], "{run}/model.safetensors does not match model.json"),
    ("lm", "config-not-object", _edit_json("model.json", _set_arg("config", 5)),
     ["lm", "generate", "{run}"], "config must be a table"),
    ("lm", "summary-not-json", _write("summary.json", b"{"), ["report", "{run}"],
     "{run}/summary.json is corrupted"),
    ("lm", "weights-of-w2v", _copy_from("w2v", "model.safetensors"), ["lm", "eval", "{run}", "--data", "{corpus}"],
     "{run}/model.safetensors does not match model.json"),
    ("kn", "header-order-text", _edit_json("model.json", _set_arg("order", "x")), ["lm", "generate", "{run}"],
     "{run}/model.json: the Kneser-Ney model header is invalid: 'order' must be an integer"),
    ("kn", "weights-garbage", _write("model.safetensors", b"\x00" * 64), ["lm", "generate", "{run}"],
     "{run}/model.safetensors cannot be read"),
    ("kn", "type-of-ffnn", _edit_json("model.json", _set("type", "ffnn_lm")), ["lm", "generate", "{run}"],
     "{run}/model.json is corrupted (unknown argument"),
    ("w2v", "vectors-garbage", _write("vectors.bin", b"3 x\n"), ["w2v", "neighbors", "{run}", "the"], "{run}/vectors.bin"),
    ("w2v", "vectors-empty", _write("vectors.bin", b""), ["w2v", "export", "{run}", "--output", "{out}"],
     "{run}/vectors.bin: the file is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "corrupt", "args", "message"), [c[:1] + c[2:] for c in OTHER],
                         ids=[f"{c[0]}-{c[1]}" for c in OTHER])  # fmt: skip
def test_a_damaged_lm_or_w2v_run_is_one_error_line(
    world, tmp_path, kind, corrupt, args, message
) -> None:
    run = copy_run(world[kind], tmp_path / "run")
    corrupt(run, world)
    names = {"run": str(run), "corpus": str(world["corpus"]), "out": str(tmp_path / "v.txt")}
    with Unchanged(run):
        result = invoke([a.format(**names) for a in args])
    assert_error(result, message.format(**names))


@pytest.mark.parametrize("kind", ["lm", "kn", "w2v"])
def test_a_damaged_lm_or_w2v_run_is_a_model_file_error_in_python(world, tmp_path, kind) -> None:
    run = copy_run(world[kind], tmp_path / "run")
    vocab = json.loads((run / "vocab.json").read_text())
    vocab["itos"].append("extra")
    vocab["counts"].append(1)
    (run / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelFileError, match="vocab.json has .* words but the model"):
        ffnlp.load(run)


# ---------------------------------------------------------------------------------------------
# lexicons travel inside the run


def test_a_lexicon_run_reads_its_own_copy_of_the_word_lists(world, tmp_path, monkeypatch) -> None:
    run = copy_run(world["lexicon"], tmp_path / "run")
    assert sorted(p.name for p in (run / "lexicon").iterdir()) == [
        "negative-words.txt", "positive-words.txt"
    ]  # fmt: skip
    expected = ffnlp.load(world["lexicon"]).predict_proba(["a good and great film"])
    # the config names a lexicon elsewhere; it is never read (even when it is a secret file)
    config = (run / "config.toml").read_text()
    assert str(world["lexicon_dir"]) in config
    (run / "config.toml").write_text(config.replace(str(world["lexicon_dir"]), "/etc/nonexistent"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    got = ffnlp.load(run).predict_proba(["a good and great film"])
    assert got.tolist() == expected.tolist()
    (run / "lexicon" / "negative-words.txt").unlink()
    with Unchanged(run):
        result = invoke(["classify", "predict", run, "--input", world["texts"]])
    assert_error(result, f"{run}/lexicon/negative-words.txt is missing")


# ---------------------------------------------------------------------------------------------
# --resume with a checkpoint that is not this run's


def _checkpoint_without(key: str) -> Callable[[Path, dict], None]:
    def apply(run: Path, world: dict) -> None:
        path = run / "checkpoint" / "state.pt"
        state = torch.load(path, weights_only=True)
        del state[key]
        torch.save(state, path)

    return apply


def _checkpoint_of(other: str) -> Callable[[Path, dict], None]:
    return lambda run, world: shutil.copy(world[other] / "checkpoint" / "state.pt",
                                          run / "checkpoint" / "state.pt")  # fmt: skip


RESUME = [
    ("of-another-model", _checkpoint_of("pooled"), "{run}/checkpoint/state.pt does not fit this run (Error(s) in loading state_dict"),
    ("of-another-task", _checkpoint_of("lm"), "{run}/checkpoint/state.pt does not fit this run"),
    ("without-model", _checkpoint_without("model"), "{run}/checkpoint/state.pt is incomplete (no 'model')"),
    ("without-optimizer", _checkpoint_without("optimizer"), "{run}/checkpoint/state.pt is incomplete (no 'optimizer')"),
    ("garbage", _write("checkpoint/state.pt", b"garbage"), "{run}/checkpoint/state.pt cannot be read"),
    ("missing", _remove("checkpoint/state.pt"), "no checkpoint at {run}/checkpoint/state.pt"),
    ("config-missing", _remove("config.toml"), "cannot resume: {run}/config.toml is missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("corrupt", "message"), [c[1:] for c in RESUME], ids=[c[0] for c in RESUME]
)
def test_resume_refuses_a_checkpoint_that_is_not_this_runs(
    world, tmp_path, corrupt, message
) -> None:
    run = copy_run(world["clf"], tmp_path / "run")
    corrupt(run, world)
    with Unchanged(run):
        result = invoke(
            ["classify", "train", "--train", world["train"], "--resume", run, "--quiet"]
        )
    assert_error(result, message.format(run=run))


# ---------------------------------------------------------------------------------------------
# output paths

OUTPUTS = [
    (["classify", "train", "--train", "{train}", "--out", "{file}"], "{file} is a file, not a folder; choose another --out"),
    (["classify", "train", "--train", "{train}", "--out", "{file}/run"], "cannot make the run folder {file}/run: {file} is a file"),
    (["lm", "train", "--train", "{corpus}", "--out", "{file}"], "{file} is a file, not a folder; choose another --out"),
    (["w2v", "train", "--corpus", "{corpus}", "--out", "{file}/a/b"], "cannot make the run folder {file}/a/b: {file} is a file"),
    (["report", "{clf}", "--out", "{dir}"], "--out {dir} is a directory; give a file name"),
    (["report", "{clf}", "--out", "{file}/report.html"], "--out {file}/report.html is below {file}, which is a file"),
    (["w2v", "export", "{w2v}", "--output", "{dir}"], "--output {dir} is a directory; give a file name"),
    (["w2v", "export", "{w2v}", "--output", "{file}/v.txt"], "--output {file}/v.txt is below {file}"),
    (["w2v", "neighbors", "{w2v}", "the", "--plot", "{dir}"], "--plot {dir} is a directory"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    OUTPUTS,
    ids=[f"{a[0]}-{a[-1].strip('{}')}-{i}" for i, (a, _) in enumerate(OUTPUTS)],
)
def test_an_output_path_that_cannot_be_written_is_refused_first(
    world, tmp_path, args, message
) -> None:
    file = tmp_path / "a-file"
    file.write_text("precious\n")
    names = {**{k: str(v) for k, v in world.items()}, "file": str(file), "dir": str(tmp_path)}
    with Unchanged(tmp_path, world["clf"], world["w2v"]):
        result = invoke([a.format(**names) for a in args])
    assert_error(result, message.format(**names))


# ---------------------------------------------------------------------------------------------
# the Python API: the wrong things raise ffnlp's errors


@pytest.fixture(scope="module")
def clf(world):
    return ffnlp.load(world["clf"])


API = [
    ("predict-none-item", lambda c, w, t: c.predict([None]), DataError, "texts[0] is NoneType (None), not a string"),
    ("predict-int", lambda c, w, t: c.predict(5), DataError, "texts must be a string or a list of strings; got int (5)"),
    ("predict-bytes", lambda c, w, t: c.predict(b"good"), DataError, "got bytes"),
    ("predict-mixed", lambda c, w, t: c.predict(["good", 3.5]), DataError, "texts[1] is float (3.5)"),
    ("predict-proba-none", lambda c, w, t: c.predict_proba(None), DataError, "got NoneType"),
    ("predict-k-zero", lambda c, w, t: c.predict("good", k=0), ConfigError, "The 'k' parameter of Classifier.predict must be an int >= 1 (or -1 for every label); got 0 (int)."),
    ("predict-k-text", lambda c, w, t: c.predict("good", k="2"), ConfigError, "got '2'"),
    ("predict-threshold-text", lambda c, w, t: c.predict("good", threshold="high"), ConfigError, "The 'threshold' parameter of Classifier.predict must be a number from 0 to 1 or None; got 'high' (str)."),
    ("test-int-path", lambda c, w, t: c.test(5), ConfigError, "The 'path' parameter of Classifier.test must be a file or folder name (str or pathlib.Path); got 5 (int)."),
    ("test-missing", lambda c, w, t: c.test(t / "nope.txt"), DataError, "nope.txt: no such file"),
    ("test-unknown-label", lambda c, w, t: (t / "x.txt").write_text("9 odd\n") and c.test(t / "x.txt"), DataError, "x.txt:1: the label '9' is not in the model"),
    ("save-into-a-file", lambda c, w, t: c.save(w["train"]), ConfigError, "is a file, not a directory"),
    ("load-int", lambda c, w, t: ffnlp.load(5), ConfigError, "a run directory must be a path (str or pathlib.Path); got 5"),
    ("load-none", lambda c, w, t: ffnlp.load(None), ConfigError, "got None"),
    ("load-missing", lambda c, w, t: ffnlp.load(t / "nope"), ModelFileError, "nope does not exist"),
    ("load-a-data-file", lambda c, w, t: ffnlp.load(w["train"]), DataError, "train.txt: no \\data\\ line; is this an ARPA file?"),
    ("lm-load-classifier", lambda c, w, t: ffnlp.tasks.lm.load(w["clf"]), ModelFileError, "is a classify run, not an lm run"),
    ("train-int-path", lambda c, w, t: ffnlp.train_classifier(5, out=t / "r"), DataError, "--train must be a file name (str or pathlib.Path); got 5"),
    ("train-out-file", lambda c, w, t: ffnlp.train_classifier(w["train"], out=w["train"]), OutputError, "train.txt is a file, not a folder; choose another --out"),
    ("train-out-int", lambda c, w, t: ffnlp.train_classifier(w["train"], out=7), ConfigError, "The 'out' parameter of train_classifier must be a file or folder name (str or pathlib.Path) or None; got 7 (int)."),
    ("train-config-float", lambda c, w, t: ffnlp.train_classifier(w["train"], config=3.5, out=t / "r"), ConfigError, "config must be a ClassifyConfig, a TOML file name or a dict; got 3.5"),
    ("lm-train-int-path", lambda c, w, t: ffnlp.train_lm(["a b"], out=t / "r"), DataError, "--train must be a file name"),
    ("w2v-train-none", lambda c, w, t: ffnlp.train_word2vec(None, out=t / "r"), ConfigError, "a data file must be a file name (str or pathlib.Path); got None"),
    ("w2v-train-int-path", lambda c, w, t: ffnlp.train_word2vec(3, out=t / "r"), DataError, "--corpus must be a file name"),
    ("generate-seed-negative", lambda c, w, t: ffnlp.load(w["lm"]).generate(seed=-1), ConfigError, "The 'seed' parameter of LanguageModel.generate must be an int >= 0 and <= 9223372036854775807; got -1 (int)."),
    ("generate-seed-huge", lambda c, w, t: ffnlp.load(w["lm"]).generate(seed=2**70), ConfigError, "got 1180591620717411303424"),
    ("generate-prompt-int", lambda c, w, t: ffnlp.load(w["lm"]).generate(prompt=5), ConfigError, "The 'prompt' parameter of LanguageModel.generate must be a str; got 5 (int)."),
    ("similarity-int-path", lambda c, w, t: ffnlp.load(w["w2v"]).evaluate(similarity=[5]), ConfigError, "the word-similarity file must be a file name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"), [c[1:] for c in API], ids=[c[0] for c in API]
)
def test_the_python_api_raises_ffnlps_errors(clf, world, tmp_path, call, error, message) -> None:
    with Unchanged(world["clf"], world["train"]), pytest.raises(error) as info:
        call(clf, world, tmp_path)
    assert message in str(info.value)
    assert isinstance(info.value, FfnlpError)


# ---------------------------------------------------------------------------------------------
# permissions: as root they are bypassed, so these run as the unprivileged user "nobody"

# The Python installation may sit where "nobody" cannot read it (e.g. under /root), so the child
# imports every module the commands use while still root (and runs a few commands that read a
# run of its own, for the lazy imports), then drops to nobody for good: real and effective ids,
# so that os.access and the kernel both see an ordinary user. One child runs every case.
_AS_NOBODY = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback
    from typer.testing import CliRunner
    for name in ("ffnlp.cli.main", "ffnlp.tasks.classify", "ffnlp.tasks.lm", "ffnlp.tasks.w2v",
                 "ffnlp.report.html", "ffnlp.report.plots", "ffnlp.report.confusion",
                 "ffnlp.inspect.shapes", "safetensors.torch", "encodings.latin_1", "encodings.ascii",
                 "typer.rich_utils", "typer._click._textwrap", "torch.utils._device",
                 "torch._dynamo", "rich._emoji_codes"):
        importlib.import_module(name)
    from ffnlp.models import registry
    registry.specs()
    from ffnlp.cli.main import app
    runner = CliRunner()
    warm = os.environ["FFNLP_WARM_UP"]  # a run and a text file of root's own: read, never written
    for warm_up in (  # the others fail at once on a missing path: no writes
        ["classify", "predict", warm + "/run", "--input", warm + "/texts.txt"],
        ["classify", "eval", warm + "/run", "--data", warm + "/texts.txt"],
        ["classify", "eval", "/nonexistent", "--data", "/nonexistent"],
        ["classify", "train", "--train", "/nonexistent/t", "--out", "/nonexistent/o"],
        ["report", "/nonexistent"],
        ["w2v", "export", "/nonexistent", "--output", "/nonexistent/v.txt"],
    ):
        runner.invoke(app, warm_up)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    results = {}
    for case, args in json.loads(sys.argv[1]).items():
        result = runner.invoke(app, args)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        results[case] = {"code": result.exit_code, "stderr": result.stderr,
                         "crashed": "".join(traceback.format_exception(result.exception))
                         if crashed else ""}
    print(json.dumps(results))
    """
)

# (id, what is made unreadable / read-only, its mode, the command, the error line's fragment);
# {root} is the case's own folder: run/ (a classifier run), w2v/, train.txt, texts.txt, home/
PERMISSIONS = [
    ("vocab-unreadable", "run/vocab.json", 0o000, ["classify", "eval", "{root}/run", "--data", "{root}/texts.txt"],
     "{root}/run/vocab.json cannot be read (Permission denied)"),
    ("config-unreadable", "run/config.toml", 0o000, ["classify", "predict", "{root}/run", "--input", "{root}/texts.txt"],
     "config file {root}/run/config.toml cannot be read (Permission denied)"),
    ("model-json-unreadable", "run/model.json", 0o000, ["classify", "eval", "{root}/run", "--data", "{root}/texts.txt"],
     "{root}/run/model.json cannot be read (Permission denied)"),
    ("weights-unreadable", "run/model.safetensors", 0o000, ["classify", "eval", "{root}/run", "--data", "{root}/texts.txt"],
     "{root}/run/model.safetensors cannot be read"),
    ("summary-unreadable", "run/summary.json", 0o000, ["report", "{root}/run", "--out", "{root}/home/r.html"],
     "{root}/run/summary.json cannot be read (Permission denied)"),
    ("plots-unreadable", "run/plots", 0o000, ["report", "{root}/run", "--out", "{root}/home/r.html"],
     "{root}/run/plots cannot be read (Permission denied)"),
    ("out-in-read-only-folder", "run", 0o555, ["classify", "train", "--train", "{root}/train.txt", "--out", "{root}/run/sub"],
     "cannot write {root}/run/.sub.lock: Permission denied"),
    ("report-in-read-only-run", "run", 0o555, ["report", "{root}/run"],
     "cannot write {root}/run/"),
    ("report-out-read-only", "home", 0o555, ["report", "{root}/run", "--out", "{root}/home/r.html"],
     "--out {root}/home/r.html: the folder {root}/home cannot be written (permission denied)"),
    ("export-read-only", "run", 0o555, ["w2v", "export", "{root}/w2v", "--output", "{root}/run/v.txt"],
     "--output {root}/run/v.txt: the folder {root}/run cannot be written (permission denied)"),
    ("predict-input-unreadable", "texts.txt", 0o000, ["classify", "predict", "{root}/run", "--input", "{root}/texts.txt"],
     "{root}/texts.txt: cannot be read (Permission denied)"),
    ("resume-checkpoint-unreadable", "run/checkpoint/state.pt", 0o000,
     ["classify", "train", "--train", "{root}/train.txt", "--resume", "{root}/run", "--quiet"],
     "checkpoint {root}/run/checkpoint/state.pt cannot be read"),
    # an unreadable file given to a Path option is refused by the command line itself (exit 2)
    ("train-unreadable", "train.txt", 0o000, ["classify", "train", "--train", "{root}/train.txt", "--out", "{root}/new"],
     "usage: train.txt"),
    ("config-option-unreadable", "run/config.toml", 0o000,
     ["classify", "train", "--train", "{root}/train.txt", "--config", "{root}/run/config.toml", "--out", "{root}/new"],
     "usage: config.toml"),
    ("eval-data-unreadable", "texts.txt", 0o000, ["classify", "eval", "{root}/run", "--data", "{root}/texts.txt"],
     "usage: texts.txt"),
]  # fmt: skip


def _readable_by_all(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in path.parents if p != Path("/")) and bool(
        path.stat().st_mode & 0o004
    )


@pytest.fixture(scope="module")
def unprivileged(world):
    """Every permission case run by the user nobody in one child process: case -> (its folder,
    the result, whether its folder changed)."""
    if os.geteuid() == 0 and not _readable_by_all(ROOT / "src" / "ffnlp" / "cli" / "main.py"):
        pytest.skip("the source tree is not readable by other users, so nobody cannot run ffnlp")
    base = Path(tempfile.mkdtemp(prefix="ffnlp-permissions-"))
    try:
        shutil.copytree(world["clf"], base / "warm" / "run")
        shutil.copy(world["texts"], base / "warm" / "texts.txt")
        commands, before = {}, {}
        for case, _, _, args, _ in PERMISSIONS:
            root = base / case
            shutil.copytree(world["clf"], root / "run")
            shutil.copytree(world["w2v"], root / "w2v")
            shutil.copy(world["train"], root / "train.txt")
            shutil.copy(world["texts"], root / "texts.txt")
            (root / "home").mkdir()
            commands[case] = [a.format(root=root) for a in args]
        for path in [base, *base.rglob("*")]:  # as a user's own files are: theirs, 0755/0644
            path.chmod(0o755 if path.is_dir() else 0o644)
            if os.geteuid() == 0:
                os.chown(path, 65534, 65534)
        for case, target, mode, _, _ in PERMISSIONS:
            before[case] = checksums(base / case / "run")
            (base / case / target).chmod(mode)
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
               "HOME": str(base / "warm"), "MPLCONFIGDIR": str(base / "warm" / "mpl"),
               "FFNLP_WARM_UP": str(base / "warm")}  # fmt: skip
        done = subprocess.run([sys.executable, "-c", _AS_NOBODY, json.dumps(commands)],
                              capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
        if done.returncode != 0 and "Operation not permitted" in done.stderr:
            pytest.skip("cannot switch to the user nobody here (no CAP_SETUID); the permission "
                        "cases need a non-root user")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads(done.stdout.strip().splitlines()[-1])
        out = {}
        for case, target, _, _, _ in PERMISSIONS:
            (base / case / target).chmod(0o777 if (base / case / target).is_dir() else 0o644)
            changed = checksums(base / case / "run") != before[case]
            out[case] = (base / case, results[case], changed)
        yield out
    finally:
        for path in [base, *base.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o777 if path.is_dir() else 0o644)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("case", "message"), [(c[0], c[4]) for c in PERMISSIONS],
                         ids=[c[0] for c in PERMISSIONS])  # fmt: skip
def test_a_permission_problem_is_one_error_line(unprivileged, case, message) -> None:
    root, result, changed = unprivileged[case]
    assert not result["crashed"], result
    assert not changed, "a file of the run changed"
    if message.startswith("usage: "):  # click's own check, in its usage-error box
        flat = " ".join(result["stderr"].replace("│", " ").split())
        assert result["code"] == 2 and "is not readable" in flat, result
        assert message.removeprefix("usage: ") in flat
        return
    assert result["code"] == 1, result
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result
    assert message.format(root=root) in lines[0], lines[0]
