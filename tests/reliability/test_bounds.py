"""Bounds on what a user or a file can make huge (threads, line length, expression depth,
subword n-grams, bootstrap resamples, text quoted in an error) and structured files read with
a schema (configuration and space files, a Parquet folder's JSON): each is one ``Error:`` line
through the CLI, or a ConfigError / DataError through the library, and nothing on disk changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ffnlp.config import MAX_NESTING, build, load_toml
from ffnlp.errors import ConfigError, DataError, ExpressionError, bounded_message, shown
from ffnlp.experiments.bootstrap import MAX_RESAMPLES, paired_bootstrap, share_right
from ffnlp.features.subwords import (
    MAX_NGRAM_CHARS,
    MAX_SUBWORD_WORD_CHARS,
    SubwordTable,
    char_ngrams,
)
from ffnlp.inspect.graph import MAX_DEPTH, MAX_EXPRESSION_CHARS, explain
from ffnlp.tasks.classify.config import ClassifyConfig
from ffnlp.text.readers import (
    MAX_LINE_BYTES,
    MAX_LINE_ENV,
    read_labeled,
    read_lines,
    read_stream_lines,
)
from ffnlp.threads import THREADS_PER_CORE, available_cores, max_threads, set_threads
from ffnlp.tune.space import check_space, parse_space
from tests.reliability.cases import (
    FAST_CLASSIFY,
    TINY_W2V,
    Unchanged,
    assert_error,
    invoke,
    train_runs,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("bounds"))


# ------------------------------------------------------------------------------------ threads


def test_a_million_threads_is_a_config_error_not_a_segfault(world, tmp_path) -> None:
    out = tmp_path / "run"
    result = invoke(
        ["classify", "train", "--train", world["train"], *FAST_CLASSIFY, "--out", out]
        + ["--set", "train.threads=1000000"]
    )
    assert_error(result, "train.threads must be at most", str(max_threads()), "got 1000000")
    assert not out.exists()


def test_the_thread_bound_is_a_small_multiple_of_the_cores() -> None:
    assert max_threads() == THREADS_PER_CORE * available_cores()
    build(ClassifyConfig, {"train": {"threads": max_threads()}})  # the bound itself is fine
    with pytest.raises(ConfigError, match="train.threads must be at most"):
        build(ClassifyConfig, {"train": {"threads": max_threads() + 1}})
    with pytest.raises(ConfigError, match="threads must be at most"):
        set_threads(max_threads() + 1)


def test_word2vec_workers_are_bounded_too(world, tmp_path) -> None:
    out = tmp_path / "w2v"
    result = invoke(
        ["w2v", "train", "--corpus", world["corpus"], *TINY_W2V, "--out", out]
        + ["--set", "model.workers=100000"]
    )
    assert_error(result, "model.workers must be at most", "got 100000")
    assert not out.exists()


# -------------------------------------------------------------------------------- line length


def test_an_endless_input_line_stops_at_the_limit(world, monkeypatch) -> None:
    monkeypatch.setenv(MAX_LINE_ENV, "4096")
    with Unchanged(world["clf"]):
        result = invoke(["classify", "predict", world["clf"], "--input", "/dev/zero"])
    assert_error(result, "/dev/zero: line 1", "longer than 4,096 bytes", MAX_LINE_ENV)


def test_a_line_over_the_default_limit_is_refused_and_a_raised_limit_reads_it(
    world, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"short line\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nafter\n")
    result = invoke(["classify", "predict", world["clf"], "--input", path])
    assert_error(result, f"{path}: line 2 (from byte 11)", f"longer than {MAX_LINE_BYTES:,}")
    assert len(result.stderr) < 400
    monkeypatch.setenv(MAX_LINE_ENV, str(MAX_LINE_BYTES + 2))
    lengths = [len(line) for _, line in read_lines(path)]
    assert lengths == [10, MAX_LINE_BYTES + 1, 5]


def test_a_line_of_exactly_the_limit_is_read(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(MAX_LINE_ENV, "10")
    path = tmp_path / "edge.txt"
    path.write_bytes(b"0123456789\n0123456789")
    assert [line for _, line in read_lines(path)] == ["0123456789", "0123456789"]
    path.write_bytes(b"0123456789\n0123456789x")
    with pytest.raises(DataError, match="line 2 .* longer than 10 bytes"):
        list(read_lines(path))


def test_standard_input_and_utf16_lines_are_bounded(world, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MAX_LINE_ENV, "1000")
    result = invoke(["classify", "predict", world["clf"]], input=b"y" * 5000)
    assert_error(result, "standard input: line 1", "longer than 1,000 bytes")
    wide = tmp_path / "wide.txt"
    wide.write_bytes(("1 " + "z" * 2000 + "\n").encode("utf-16"))
    with pytest.raises(DataError, match="line 1 .*longer than 1,000 bytes"):
        list(read_lines(wide, encoding="utf-16"))
    lines = [b"ok\n", b"w" * 2000 + b"\n"]  # an iterable of byte lines, already in memory
    with pytest.raises(DataError, match="line 2 .*longer than 1,000 bytes"):
        list(read_stream_lines(lines))


@pytest.mark.parametrize("value", ["-5", "lots", "1.5"])
def test_a_bad_line_limit_setting_is_a_config_error(world, monkeypatch, value) -> None:
    monkeypatch.setenv(MAX_LINE_ENV, value)
    result = invoke(["classify", "predict", world["clf"]], input="a film\n")
    assert_error(result, MAX_LINE_ENV, "positive number of bytes")


def test_a_corpus_line_over_the_limit_stops_w2v_before_anything_is_written(
    world, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(MAX_LINE_ENV, "100")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\n" + "word " * 50 + "\n")
    out = tmp_path / "w2v"
    result = invoke(["w2v", "train", "--corpus", corpus, *TINY_W2V, "--out", out])
    assert_error(result, f"{corpus}: line 2", "longer than 100 bytes")
    assert not out.exists()


# ---------------------------------------------------------------------- expression depth / size


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 300 + "a" + ")" * 300,
        "-" * 300 + "a",
        "a**" * 300 + "a",
        "exp(" * 300 + "a" + ")" * 300,
        "sigmoid(" * 150 + "(" * 150 + "a" + ")" * 300,
    ],
    ids=["parentheses", "signs", "powers", "functions", "mixed"],
)
def test_deep_expressions_are_an_error_line(expression) -> None:
    result = invoke(["explain", "graph", "--", expression, "a=1"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: the expression nests more than {MAX_DEPTH} levels")
    assert "Traceback" not in result.output
    assert max(len(line) for line in result.stderr.splitlines()) < 200


def test_an_expression_just_inside_the_depth_bound_is_explained() -> None:
    depth = MAX_DEPTH - 1
    graph = explain("(" * depth + "a*2" + ")" * depth, {"a": 3.0})
    assert graph.output.value == 6.0 and graph.grads() == {"a": 2.0}


def test_an_overlong_expression_is_refused_and_errors_show_only_its_neighbourhood() -> None:
    with pytest.raises(ExpressionError, match="the longest read is 10,000"):
        explain("a+" * MAX_EXPRESSION_CHARS + "a", {"a": 1.0})
    long_flat = "a+" * 3000 + "b)"
    with pytest.raises(ExpressionError) as info:
        explain(long_flat, {"a": 1.0, "b": 1.0})
    text = str(info.value)
    assert "the ')' at column 6002 has no '('" in text and len(text) < 300
    shown_line, caret = text.splitlines()[1:]
    assert shown_line.strip().endswith("a+b)") and caret.index("^") == shown_line.index(")")


@pytest.mark.parametrize("values", ["a=1", [1], None])
def test_values_that_are_not_name_number_strings(values) -> None:
    from ffnlp.inspect.graph import parse_assignments

    with pytest.raises(ExpressionError, match="name=NUMBER"):
        parse_assignments(values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ subwords


def test_a_huge_maxn_is_refused_by_the_configuration(world, tmp_path) -> None:
    out = tmp_path / "pooled"
    result = invoke(
        ["classify", "train", "--train", world["train"], *FAST_CLASSIFY, "--out", out]
        + ["--set", "model.type=pooled", "--set", "features.kind=ids"]
        + ["--set", "features.maxn=1000000"]
    )
    assert_error(result, f"features.maxn must be at most {MAX_NGRAM_CHARS}", "got 1000000")
    assert not out.exists()
    with pytest.raises(ConfigError, match="minn must be at most 32"):
        SubwordTable(["word"], minn=40, maxn=40, buckets=10)
    with pytest.raises(ConfigError, match="maxn must be at most 32"):  # e.g. from a model file
        char_ngrams("word", 3, 1_000_000)


def test_a_word_too_long_for_subwords_is_a_data_error(world, tmp_path) -> None:
    assert len(char_ngrams("x" * MAX_SUBWORD_WORD_CHARS, 3, 6)) > 0
    with pytest.raises(DataError, match="longer than 4,096 characters"):
        char_ngrams("x" * (MAX_SUBWORD_WORD_CHARS + 1), 3, 6)
    train = tmp_path / "train.txt"
    train.write_text(world["train"].read_text() + "1 a " + "q" * 5000 + " film\n")
    out = tmp_path / "pooled"
    result = invoke(
        ["classify", "train", "--train", train, *FAST_CLASSIFY, "--out", out]
        + ["--set", "model.type=pooled", "--set", "features.kind=ids"]
        + ["--set", "features.maxn=5", "--set", "features.min_count=1"]
    )
    line = assert_error(result, "longer than 4,096 characters", "maxn = 0")
    assert len(line) < 400
    assert not out.exists()


# -------------------------------------------------------------------------- bootstrap resamples


def test_bootstrap_resamples_are_bounded(world) -> None:
    result = invoke(
        ["compare", world["clf"], world["pooled"], "--bootstrap", str(MAX_RESAMPLES + 1)]
    )
    assert result.exit_code == 2 and "1000000" in result.output  # a usage error, before work
    a = b = share_right([True, False, True])
    with pytest.raises(ConfigError, match="'resamples' parameter of paired_bootstrap"):
        paired_bootstrap(a, b, resamples=10**9)
    with pytest.raises(ConfigError, match="must be an int >= 1"):
        paired_bootstrap(a, b, resamples=0)
    from ffnlp.experiments.compare import compare_classifiers

    with pytest.raises(ConfigError, match="'resamples' parameter of compare_classifiers"):
        compare_classifiers(world["clf"], world["pooled"], resamples=-1)


# ------------------------------------------------------------------- text quoted in an error


def test_an_error_quotes_at_most_a_short_piece_of_a_huge_line(world, tmp_path) -> None:
    data = tmp_path / "train.txt"
    data.write_text("1 a fine film\n" + "x" * 3_000_000 + "\n")  # a label and no text
    result = invoke(["classify", "train", "--train", data, *FAST_CLASSIFY])
    line = assert_error(result, f"{data}:2: a label", "(3,000,000 characters in all)")
    assert len(line) < 400


def test_shown_and_the_cli_backstop_bound_messages() -> None:
    assert shown("abc") == "'abc'"
    cut = shown("z" * 10_000)
    assert cut.endswith("(10,000 characters in all)") and len(cut) < 120
    assert shown(list(range(1000))).endswith("(1,000 items in all)")
    message = bounded_message("first\n" + "y" * 100_000 + "\n" + "\n".join(["l"] * 500))
    lines = message.splitlines()
    assert lines[0] == "first" and lines[1].endswith("... (cut)") and len(lines[1]) < 2100
    assert len(lines) == 61 and lines[-1] == "... (442 more lines)"


# --------------------------------------------------------- configuration and space files


def _space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _check(path: Path) -> None:
    space, problems = parse_space(path)
    check_space(space, ClassifyConfig, {}, [], None, None, problems)


DEEP_KEY = ".".join(["a"] * 3000)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (f"{DEEP_KEY} = 1\n", ("nests tables or arrays more than 32 deep", "'a.a.a.a")),
        (f"[fixed]\n{DEEP_KEY} = 1\n", ("more than 32 deep", "fixed.a.a")),
        (
            '["train.lr"]\ntype = "float"\nlow = {a = 1}\nhigh = 1\n',
            ("['train.lr']: low must be a number; got {'a': 1}",),
        ),
        (
            '["train.lr"]\ntype = "categorical"\nchoices = [{a = 1}]\n',
            ("each choice must be a number, a string",),
        ),
        (
            '["train.lr"]\ntype = "categorical"\nchoices = [1979-05-27]\n',
            ("each choice must be", "datetime.date"),
        ),
        (
            '[fixed]\n"train.lr" = 07:32:00\n["train.epochs"]\ntype = "int"\nlow = 1\nhigh = 2\n',
            ("[fixed]: 'train.lr' = datetime.time", "is not a value a configuration takes"),
        ),
        (
            '[["train.lr"]]\ntype = "float"\nlow = 0.1\nhigh = 1.0\n',
            ("'train.lr' = [{", "is not a distribution"),
        ),
        (
            '["train.lr"]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nstep = 1e-320\n',
            ("too wide to count in floating point",),
        ),
        (
            '["train.lr"]\ntype = "float"\nlow = -1e308\nhigh = 1e308\n',
            ("too wide to count in floating point",),
        ),
        (
            '["train.lr"]\ntype = "float"\nlow = 0.1\nhigh = 1.0\nstep = {a = 1}\n',
            ("step must be a positive number",),
        ),
        (
            '["' + "k" * 50_000 + '"]\ntype = "float"\nlow = 0.1\nhigh = 1.0\n',
            ("(50,000 characters in all)",),
        ),
    ],
    ids=[
        "deep-key",
        "deep-fixed-key",
        "table-for-number",
        "table-choice",
        "date-choice",
        "time-fixed",
        "array-of-tables",
        "tiny-step",
        "huge-span",
        "table-step",
        "huge-key",
    ],
)
def test_space_files_read_with_a_schema(tmp_path, text, fragments) -> None:
    path = _space(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        _check(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert max(len(line) for line in message.splitlines()) < 1000


def test_a_deep_config_file_and_a_deep_dict_are_config_errors(world, tmp_path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text(f"{DEEP_KEY} = 1\n")
    out = tmp_path / "run"
    result = invoke(
        ["classify", "train", "--train", world["train"], "--config", config, "--out", out]
    )
    assert_error(result, str(config), f"more than {MAX_NESTING} deep")
    assert not out.exists()
    with pytest.raises(ConfigError, match="more than 32 deep"):
        load_toml(config)
    nested: dict = {}
    node = nested
    for _ in range(3000):
        node = node.setdefault("a", {})
    with pytest.raises(ConfigError, match="the configuration nests"):
        build(ClassifyConfig, nested)
    with pytest.raises(ConfigError, match="must be a table"):
        build(ClassifyConfig, [1])  # type: ignore[arg-type]


def test_a_config_value_quoted_in_an_error_is_cut(tmp_path) -> None:
    config = tmp_path / "big.toml"
    config.write_text('[train]\nlr = "' + "9" * 200_000 + '"\n')
    with pytest.raises(ConfigError) as info:
        build(ClassifyConfig, load_toml(config))
    assert "train.lr must be a number" in str(info.value) and len(str(info.value)) < 300


# ----------------------------------------------------------- a Parquet folder's JSON files


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"features": "\xff\xfe"}', "not UTF-8 (byte 14: 0xff)"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000, "not JSON that can be read"),
        (
            b'{"features": {"label": {"_type": "ClassLabel", "names": 5}}}',
            "features.'label'.names must be the list of the class names",
        ),
    ],
    ids=["not-utf8", "a-list", "not-json", "too-deep", "names-not-a-list"],
)
def test_a_parquet_folder_with_a_broken_dataset_info(world, tmp_path, content, fragment) -> None:
    pa = pytest.importorskip(
        "pyarrow", reason="needs the parquet extra: pip install -e '.[parquet]'"
    )
    import pyarrow.parquet as pq

    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(
        pa.table({"text": ["a fine film", "a dull film"], "label": [1, 0]}), folder / "a.parquet"
    )
    (folder / "dataset_info.json").write_bytes(content)
    out = tmp_path / "run"
    with Unchanged(folder):
        args = ["--train", folder / "a.parquet", *FAST_CLASSIFY, "--out", out]
        result = invoke(["classify", "train", *args])
    assert_error(result, str(folder / "dataset_info.json"), fragment)
    assert not out.exists()
    with pytest.raises(DataError, match=re.escape(fragment)):
        read_labeled(folder)


def test_an_arrow_folder_whose_state_json_points_outside(world, tmp_path) -> None:
    pytest.importorskip("pyarrow", reason="needs the parquet extra: pip install -e '.[parquet]'")
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "../x.arrow"}]}))
    with pytest.raises(DataError, match="_data_files must list the folder's files"):
        read_labeled(folder, format="arrow")


def test_a_parquet_folder_is_taken_as_train_data_as_documented(world, tmp_path) -> None:
    pa = pytest.importorskip(
        "pyarrow", reason="needs the parquet extra: pip install -e '.[parquet]'"
    )
    import pyarrow.parquet as pq

    rows = [line.split(" ", 1) for line in world["train"].read_text().splitlines()]
    folder = tmp_path / "data"
    folder.mkdir()
    table = pa.table({"text": [t for _, t in rows], "label": [int(y) for y, _ in rows]})
    pq.write_table(table, folder / "part-0.parquet")
    names = {"features": {"label": {"_type": "ClassLabel", "names": ["neg", "pos"]}}}
    (folder / "dataset_info.json").write_text(json.dumps(names))
    out = tmp_path / "run"
    result = invoke(["classify", "train", "--train", folder, *FAST_CLASSIFY, "--out", out])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["labels"] == ["neg", "pos"]
    empty = tmp_path / "empty"
    empty.mkdir()
    # a folder may also hold shards of the input (docs/scale.md): an empty one is neither
    assert_error(
        invoke(["classify", "train", "--train", empty, *FAST_CLASSIFY]),
        "the folder holds no file; give a data file, or a folder of shards (or of Parquet files)",
    )
