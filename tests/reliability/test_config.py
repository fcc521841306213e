"""Bad configuration and arguments: one ``Error:`` line naming the file or option (exit 1), checked
before anything is allocated or written; and config.toml always reads back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.models import registry
from ffnlp.tasks.classify.config import ClassifyConfig
from ffnlp.tasks.sample import write_sample
from tests.extras import needs
from tests.reliability.cases import (
    FAST_CLASSIFY,
    TINY_LM,
    TINY_W2V,
    Unchanged,
    assert_error,
    invoke,
)

hypothesis = needs("hypothesis")
given, settings = hypothesis.given, hypothesis.settings
st = needs("hypothesis.strategies")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("config-data"), sizes=(60, 20, 20))


# ---------------------------------------------------------------------------------------------
# --config files

CONFIG_FILES = [
    ("latin1", "# caf\u00e9\n[train]\nepochs = 1\n".encode("latin-1"),
     ["{file} is not UTF-8 (byte 5: 0xe9); TOML files are UTF-8"]),
    ("utf16", "[train]\nepochs = 1\n".encode("utf-16"), ["{file} is not UTF-8 (byte 0: 0xff)"]),
    ("not-toml", b"[train\nepochs = 1\n", ["{file} is not valid TOML"]),
    ("5000-digits", b"[train]\nepochs = " + b"9" * 5000 + b"\n",
     ["{file} is not valid TOML: Exceeds the limit (4300 digits)"]),
    ("deep-nesting", b"x = " + b"[" * 100_000 + b"\n", ["{file} is not valid TOML"]),
    ("unknown-key", b"[train]\nepochz = 1\n", ["unknown key 'train.epochz'; did you mean 'train.epochs'?"]),
    ("wrong-type", b'[train]\nlr = "fast"\n', ["train.lr must be a number; got 'fast'"]),
    ("section-is-value", b"data = 3\n", ["data must be a section (a TOML table); got 3"]),
    ("seed-too-large", b"[train]\nseed = 9223372036854775808\n",
     ["train.seed must be <= 9223372036854775807"]),
    ("control-char-key", b'[data]\ntext_column = "a\x01b"\n', ["{file} is not valid TOML"]),
]  # fmt: skip


@pytest.mark.parametrize(("content", "fragments"), [c[1:] for c in CONFIG_FILES],
                         ids=[c[0] for c in CONFIG_FILES])  # fmt: skip
def test_a_bad_config_file_is_one_error_line(data, tmp_path, content, fragments) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    with Unchanged(path, data["train"]):
        result = invoke(["classify", "train", "--train", data["train"], "--config", path,
                         "--out", tmp_path / "r", *FAST_CLASSIFY])  # fmt: skip
    assert_error(result, *(f.format(file=path) for f in fragments))
    assert not (tmp_path / "r").exists()  # refused before the run folder is made


@pytest.mark.parametrize("task", ["classify", "lm", "w2v"])
def test_config_that_is_a_directory_or_missing(data, tmp_path, task) -> None:
    option = "--corpus" if task == "w2v" else "--train"
    data_file = data["corpus"] if task != "classify" else data["train"]
    base = [task, "train", option, data_file, "--out", tmp_path / "r"]
    assert_error(invoke([*base, "--config", tmp_path]),
                 f"config file {tmp_path} is a directory; pass a TOML file")  # fmt: skip
    assert_error(invoke([*base, "--config", tmp_path / "no.toml"]),
                 f"config file {tmp_path / 'no.toml'} does not exist")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# --set and --seed

SETS = [
    ("seed-huge", ["--seed", "99999999999999999999"], "train.seed must be <= 9223372036854775807; got 99999999999999999999"),
    ("seed-negative", ["--seed", "-1"], "train.seed must be >= 0; got -1"),
    ("seed-set-huge", ["--set", "train.seed=" + "9" * 30], "train.seed must be <= 9223372036854775807"),
    ("seed-5000-digits", ["--set", "train.seed=" + "9" * 5000], "train.seed must be an integer"),
    ("buckets-huge", ["--set", "features.buckets=100000000000", "--set", "model.type=pooled",
                      "--set", "features.kind=ids"], "features.buckets must be <= 100000000; got 100000000000"),
    ("lr-text", ["--set", "train.lr=fast"], "train.lr must be a number; got 'fast'"),
    ("lr-nan", ["--set", "train.lr=nan"], "train.lr must be a number (not NaN)"),
    ("epochs-negative", ["--set", "train.epochs=-3"], "train.epochs must be >="),
    ("no-equals", ["--set", "train.lr"], "--set expects key=value (e.g. train.lr=0.1); got 'train.lr'"),
    ("unknown-key", ["--set", "train.lrr=0.1"], "unknown key 'train.lrr' (--set); did you mean 'train.lr'?"),
    ("value-not-section", ["--set", "train.lr.x=1"], "--set train.lr.x: train.lr is a value, not a section"),
    ("model-type", ["--set", "model.type=forest"], "model.type must be a text classifier"),
    ("feature-kind", ["--set", "features.kind=ids"], "model.type = 'logreg' reads features.kind 'ngrams'"),
    ("ngram-range", ["--set", "features.ngram_range=[3,1]"], "features.ngram_range must be [min_n, max_n]"),
    ("format", ["--format", "xml"], "data.format must be one of"),
    ("class-weight", ["--set", 'loss.class_weight="1,2,3"'], "loss.class_weight must be 'none', 'balanced' or 2"),
    ("pooled-too-big", ["--set", "model.type=pooled", "--set", "features.kind=ids",
                        "--set", "features.buckets=100000000", "--set", "model.pooled.dim=100000000"],
     "a 'pooled' model of these sizes needs"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "message"), [c[1:] for c in SETS], ids=[c[0] for c in SETS])
def test_a_bad_option_is_one_error_line(data, tmp_path, extra, message) -> None:
    with Unchanged(data["train"]):
        result = invoke(["classify", "train", "--train", data["train"], "--out", tmp_path / "r",
                         *FAST_CLASSIFY, *extra])  # fmt: skip
    assert_error(result, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lm", "train", "--train", "{corpus}", *TINY_LM, "--set", "model.embedding_dim=1000000000000"],
         "a 'ffnn_lm' model of these sizes needs"),
        (["w2v", "train", "--corpus", "{corpus}", *TINY_W2V, "--set", "model.dim=10000000000000"],
         "a 'skipgram' model of these sizes needs"),
        (["lm", "train", "--train", "{corpus}", "--seed", "99999999999999999999"],
         "train.seed must be <= 9223372036854775807"),
        (["w2v", "train", "--corpus", "{corpus}", "--seed", "-5"], "train.seed must be >= 0"),
    ],
    ids=["lm-too-big", "w2v-too-big", "lm-seed", "w2v-seed"],
)  # fmt: skip
def test_other_tasks_refuse_sizes_and_seeds(data, tmp_path, args, message) -> None:
    result = invoke([a.format(corpus=data["corpus"]) for a in args] + ["--out", tmp_path / "r"])
    assert_error(result, message)


def test_config_problems_do_not_hide_a_missing_training_file(data, tmp_path) -> None:
    for task, option in (("classify", "--train"), ("lm", "--train"), ("w2v", "--corpus")):
        missing = tmp_path / f"{task}.txt"
        result = invoke([task, "train", option, missing, "--set", "train.lrr=1",
                         "--out", tmp_path / task])  # fmt: skip
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert lines[0] == "Error: 2 problems in the configuration and inputs:"
        assert lines[1] == f"  - {option} {missing}: no such file"
        assert lines[2].startswith("  - unknown key 'train.lrr' (--set); did you mean 'train.lr'?")
        assert not (tmp_path / task).exists()


def test_a_model_larger_than_memory_is_refused_before_allocating() -> None:
    spec = registry.spec("logreg")
    args = {"num_features": 10**13, "num_classes": 2}
    with pytest.raises(ConfigError, match=r"needs 40,000.0 GB .* \(10000000000000, 1\)"):
        spec.check_fits_memory(args)
    registry.check_fits_memory("logreg", spec.skeleton({"num_features": 10, "num_classes": 2}))
    with pytest.raises(ConfigError, match="more than the 0.0 GB of memory"):
        registry.check_fits_memory("logreg", spec.skeleton(args), memory=1)


# ---------------------------------------------------------------------------------------------
# explain backprop --sizes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sizes", "3,x,2"], "--sizes must be comma-separated layer sizes D,H1,...,K like 20,16,8,3 (at least two, each 1..4096); got '3,x,2'"),
        (["--sizes", "0,0"], "--sizes must be comma-separated layer sizes"),
        (["--sizes", "3"], "(at least two, each 1..4096); got 3"),
        (["--sizes", ""], "got ''"),
        (["--sizes", "5000,2"], "got 5000,2"),
        (["--sizes", "3,-2"], "got 3,-2"),
        (["--sizes", "4,3,1"], "--sizes 4,3,1: the last size is the number of classes K, and a softmax over one class"),
        (["--activation", "gelu"], "--activation must be one of relu, tanh, sigmoid; got 'gelu'"),
        (["--batch", "1000000"], "--batch must be between 1 and 100000"),
    ],
    ids=["not-a-number", "zeros", "one-size", "empty", "too-large", "negative", "one-class", "activation", "batch"],
)  # fmt: skip
def test_explain_backprop_arguments(extra, message) -> None:
    assert_error(invoke(["explain", "backprop", *extra]), message)


# ---------------------------------------------------------------------------------------------
# config.toml always reads back: every control character is escaped


CONTROL = [chr(c) for c in [*range(0x20), 0x7F]] + ["\\", '"', "\u2028", "\u0085", "'''", '"""']


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c[0]):04X}-{len(c)}" for c in CONTROL])
def test_every_string_value_round_trips_through_toml(char: str) -> None:
    text = f"a{char}b{char}"
    cfg = cfgmod.build(ClassifyConfig, {"data": {"text_column": text, "label_column": char}})
    back = cfgmod.build(ClassifyConfig, tomllib.loads(cfgmod.dump_toml(cfg)))
    assert back == cfg and back.data.text_column == text


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.text(min_size=1), st.one_of(st.text(), st.lists(st.text())), min_size=1))
def test_any_table_of_strings_round_trips_through_toml(table: dict) -> None:
    assert tomllib.loads(cfgmod.dump_toml({"t": table}))["t"] == table


def test_a_control_character_set_on_the_command_line_gives_a_readable_run(data, tmp_path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(f'{{"a\\u0001b": "{t}", "label": "{y}"}}\n' for y, t in
                             (("1", "good fun"), ("0", "bad dull"), ("1", "great"), ("0", "flat"))))  # fmt: skip
    out = tmp_path / "r"
    result = invoke(["classify", "train", "--train", jsonl, "--out", out,
                     "--set", 'data.text_column="a\\u0001b"', *FAST_CLASSIFY])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"a\\u0001b"' in (out / "config.toml").read_text()
    evaluated = invoke(["classify", "eval", out, "--data", jsonl, "--json"])
    assert evaluated.exit_code == 0, evaluated.output


def test_a_string_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ConfigError, match="data.text_column must be valid Unicode text"):
        cfgmod.build(ClassifyConfig, {"data": {"text_column": "a\ud800"}})
