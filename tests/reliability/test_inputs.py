"""Bad input files through the CLI: every case is exit code 1, one ``Error:`` line naming the file
(and the line, where there is one) and the fix, and no file already on disk changed."""

from __future__ import annotations

import codecs
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.cases import (
    FAST_CLASSIFY,
    TINY_LM,
    TINY_W2V,
    Unchanged,
    assert_error,
    invoke,
    train_runs,
)

GOOD = "1 a warm , funny film .\n0 a dull , flat film .\n1 a great film .\n0 a bad film .\n"
GOOD_CORPUS = "the cat sat\nthe dog ran\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("inputs"))


@dataclass
class Case:
    """A file named ``name`` holding ``content``, given to a command; the error must hold the
    fragments (``{file}`` stands for the file's path)."""

    id: str
    name: str
    content: bytes
    command: str  # which command reads it (see COMMANDS)
    fragments: tuple[str, ...]
    extra: list[str] = field(default_factory=list)


def _lt(text: str) -> bytes:
    return text.encode("utf-8")


CASES = [
    # -- label-text: malformed lines, named FILE:LINE
    Case("label-missing", "t.txt", _lt(GOOD + " a line starting with a space\n"), "train",
         ("{file}:5: no label: the line starts with a space",)),
    Case("label-missing-tab", "t.txt", _lt(GOOD + "\ta line starting with a tab\n"), "train",
         ("{file}:5: no label",)),
    Case("label-without-text", "t.txt", _lt(GOOD + "0\n"), "train",
         ("{file}:5: a label ('0') but no text",)),
    Case("empty-file", "t.txt", b"", "train", ("{file}: no examples found",)),
    Case("blank-lines-only", "t.txt", b"\n  \n\t\n", "train", ("{file}: no examples found",)),
    Case("one-class", "t.txt", _lt("1 good\n1 great\n"), "train",
         ("{file}: every training example has the label '1'",)),
    # -- encodings
    Case("utf16-bom", "t.txt", GOOD.encode("utf-16"), "train",
         ("{file} looks like UTF-16 (byte-order mark); pass --encoding utf-16",)),
    Case("utf16-bom-as-latin1", "t.txt", GOOD.encode("utf-16"), "train",
         ("{file} looks like UTF-16 (byte-order mark)",), ["--encoding", "latin-1"]),
    Case("utf16-le-no-bom", "t.txt", GOOD.encode("utf-16-le"), "train",
         ("{file} looks like UTF-16 little-endian", "pass --encoding utf-16-le")),
    Case("utf16-be-no-bom", "t.txt", GOOD.encode("utf-16-be"), "train",
         ("{file} looks like UTF-16 big-endian", "pass --encoding utf-16-be")),
    Case("utf32-bom", "t.txt", GOOD.encode("utf-32"), "train",
         ("{file} looks like UTF-32 (byte-order mark); pass --encoding utf-32",)),
    Case("utf32-le-no-bom", "t.txt", GOOD.encode("utf-32-le"), "train",
         ("{file} looks like UTF-32 little-endian",), ["--encoding", "cp1252"]),
    Case("utf16-gz", "t.txt.gz", gzip.compress(GOOD.encode("utf-16")), "train",
         ("{file} looks like UTF-16",)),
    Case("nul-byte", "t.txt", GOOD.encode("latin-1") + b"1 a\x00b\n", "train",
         ("{file}: line 5 (byte 82) holds a NUL byte",), ["--encoding", "latin-1"]),
    Case("latin1-as-utf8", "t.txt", "1 fine\n0 ok\n1 caf\u00e9 bad\n".encode("latin-1"), "train",
         ("{file}: line 3 (byte 17) is not valid utf-8 (0xe9); pass --encoding latin-1",)),
    Case("latin1-in-gz", "t.txt.gz", gzip.compress("1 ok\n0 \u00e9\n".encode("latin-1")), "train",
         ("{file}: line 2 (byte 7) is not valid utf-8 (0xe9)",)),
    Case("ascii-encoding", "t.txt", _lt("1 caf\u00e9\n"), "train",
         ("{file}: line 1 (byte 5) is not valid ascii",), ["--encoding", "ascii"]),
    Case("unknown-encoding", "t.txt", _lt(GOOD), "train",
         ("unknown encoding 'utf-9'",), ["--encoding", "utf-9"]),
    Case("binary-codec", "t.txt", _lt(GOOD), "train",
         ("'base64' is not a text encoding",), ["--encoding", "base64"]),
    Case("damaged-gzip", "t.txt.gz", gzip.compress(_lt(GOOD * 200))[:60], "train",
         ("{file}: the gzip stream is damaged",)),
    Case("random-binary", "t.bin", bytes(range(256)) * 4, "train", ("{file}",)),
    # -- fastText
    Case("fasttext-two-labels-single-label-model", "e.txt",
         _lt("__label__0 x\n__label__0 __label__1 y\n"), "eval",
         ("{file} has examples with several labels (or label lists), but this classifier was "
          "trained on single-label data",)),
    Case("fasttext-empty-label", "t.txt", _lt("__label__a x\n__label__ y\n"), "train",
         ("{file}:2: an empty label",)),
    Case("fasttext-no-label", "t.txt", _lt("__label__a x\nno label\n"), "train",
         ("{file}:2: no label: a fastText line starts with __label__",)),
    # -- JSON Lines
    Case("jsonl-5000-digits", "t.jsonl",
         _lt('{"text": "a", "label": 1}\n{"text": "b", "label": ' + "9" * 5000 + "}\n"), "train",
         ("{file}:2: not valid JSON (Exceeds the limit (4300 digits)",)),
    Case("jsonl-nested-list", "t.jsonl",
         _lt('{"text": "a", "label": 1}\n{"text": ' + "[" * 100_000 + "\n"), "train",
         ("{file}:2: JSON nested too deeply to read",)),
    Case("jsonl-nested-object", "t.jsonl",
         _lt('{"text": "a", "label": 1}\n' + '{"a":' * 100_000 + "\n"), "train",
         ("{file}:2: JSON nested too deeply to read",)),
    Case("jsonl-array-file", "t.jsonl", _lt("[" * 100_000 + "\n"), "train",
         ("{file}: the file is a JSON array, not JSON Lines",)),
    Case("jsonl-number", "t.jsonl", _lt('{"text": "a", "label": 1}\n7\n'), "train",
         ("{file}:2: a JSON int, not an object",)),
    Case("jsonl-missing-key", "t.jsonl", _lt('{"text": "a", "label": 1}\n{"text": "b"}\n'),
         "train", ("{file}:2: no key 'label'",)),
    Case("jsonl-float-label", "t.jsonl", _lt('{"text": "a", "label": 1}\n{"text": "b", "label": 0.5}\n'),
         "train", ("{file}:2: the label 0.5 is not a string, integer or boolean",)),
    Case("jsonl-null-label", "t.jsonl", _lt('{"text": "a", "label": 1}\n{"text": "b", "label": null}\n'),
         "train", ("{file}:2: the label null",)),
    Case("jsonl-text-not-string", "t.jsonl", _lt('{"text": "a", "label": 1}\n{"text": 3, "label": 1}\n'),
         "train", ("{file}:2: 'text' is a int, not a string",)),
    Case("jsonl-bad-json", "t.jsonl", _lt('{"text": "a", "label": 1}\n{"text": \n'), "train",
         ("{file}:2: not valid JSON",)),
    # -- CSV / TSV
    Case("csv-missing-column", "t.csv", _lt("words,label\na,1\n"), "train",
         ("{file}:1: no column 'text'",)),
    Case("csv-bad-quoting", "t.csv", _lt('text,label\n"a,1\n'), "train", ("{file}:2: not valid CSV",)),
    Case("csv-field-count", "t.csv", _lt("text,label\na,1\nb,1,x\n"), "train",
         ("{file}:3: 3 fields but the header has 2",)),
    Case("tsv-field-count", "t.tsv", _lt("text\tlabel\na\t1\nb\n"), "train",
         ("{file}:3: 1 fields but the header has 2",)),
    Case("tsv-empty-label", "t.tsv", _lt("text\tlabel\na\t1\nb\t \n"), "train",
         ("{file}:3: the label is empty",)),
    # -- dev and test files: checked before training, named with their line
    Case("test-unknown-label", "test.txt", _lt(GOOD + "7 a new label\n"), "train-test",
         ("{file}:5: the label '7' is not in the training data",)),
    Case("dev-unknown-label", "dev.txt", _lt("1 ok\n9 odd\n"), "train-dev",
         ("{file}:2: the label '9' is not in the training data",)),
    Case("dev-utf16", "dev.txt", GOOD.encode("utf-16"), "train-dev", ("{file} looks like UTF-16",)),
    Case("test-malformed", "test.txt", _lt(GOOD + " no label\n"), "train-test",
         ("{file}:5: no label",)),
    # -- eval / predict inputs
    Case("eval-unknown-label", "e.txt", _lt(GOOD + "7 odd\n"), "eval",
         ("{file}:5: the label '7' is not in the model",)),
    Case("eval-utf16", "e.txt", GOOD.encode("utf-16"), "eval", ("{file} looks like UTF-16",)),
    Case("eval-empty", "e.txt", b"", "eval", ("{file}: no examples found",)),
    Case("predict-utf16", "p.txt", "a fine film\n".encode("utf-16"), "predict",
         ("{file} looks like UTF-16",)),
    Case("predict-latin1", "p.txt", "caf\u00e9\n".encode("latin-1"), "predict",
         ("{file}: line 1 (byte 3) is not valid utf-8",)),
    Case("predict-nul", "p.txt", b"a\x00b\n", "predict", ("{file}: line 1 (byte 1) holds a NUL",)),
    Case("predict-empty", "p.txt", b"", "predict", ("{file} has no text to classify",)),
    # -- language model and word2vec corpora
    Case("lm-utf16", "c.txt", GOOD_CORPUS.encode("utf-16"), "lm-train", ("{file} looks like UTF-16",)),
    Case("lm-nul", "c.txt", b"the cat\nsat \x00 down\n", "lm-train", ("{file}: line 2 (byte 12) holds a NUL",)),
    Case("lm-eval-latin1", "c.txt", "caf\u00e9 ok\n".encode("latin-1"), "lm-eval",
         ("{file}: line 1 (byte 3) is not valid utf-8",)),
    Case("w2v-latin1", "c.txt", "the caf\u00e9\n".encode("latin-1"), "w2v-train",
         ("{file}: line 1 (byte 7) is not valid utf-8",)),
    Case("w2v-utf32", "c.txt", GOOD_CORPUS.encode("utf-32"), "w2v-train", ("{file} looks like UTF-32",)),
    Case("similarity-binary", "s.txt", bytes(range(256)) * 4, "similarity",
         ("{file}: line 1 (byte 0) holds a NUL byte",)),
    Case("similarity-utf16", "s.txt", "cat dog 5\n".encode("utf-16"), "similarity",
         ("{file} looks like UTF-16",)),
    Case("similarity-malformed", "s.txt", _lt("the cat 5\nthe\n"), "similarity",
         ("{file}:2: expected 'word1 word2 score'",)),
    Case("similarity-score", "s.txt", _lt("the cat x\n"), "similarity",
         ("{file}:1: the score 'x' is not a number",)),
    Case("analogies-malformed", "a.txt", _lt(": s\nthe cat sat\n"), "analogies",
         ("{file}:2: expected four words",)),
    Case("analogies-latin1", "a.txt", ": s\nthe caf\u00e9 a b\n".encode("latin-1"), "analogies",
         ("{file}: line 2 (byte 11) is not valid utf-8",)),
]  # fmt: skip

COMMANDS: dict[str, Callable[[dict[str, Path], Path, Path], list[object]]] = {
    "train": lambda w, f, out: ["classify", "train", "--train", f, "--out", out, *FAST_CLASSIFY],
    "train-test": lambda w, f, out: [
        "classify", "train", "--train", w["train"], "--test", f, "--out", out, *FAST_CLASSIFY
    ],
    "train-dev": lambda w, f, out: [
        "classify", "train", "--train", w["train"], "--dev", f, "--out", out, *FAST_CLASSIFY
    ],
    "eval": lambda w, f, out: ["classify", "eval", w["clf"], "--data", f],
    "predict": lambda w, f, out: ["classify", "predict", w["clf"], "--input", f],
    "lm-train": lambda w, f, out: ["lm", "train", "--train", f, "--out", out, *TINY_LM],
    "lm-eval": lambda w, f, out: ["lm", "eval", w["lm"], "--data", f],
    "w2v-train": lambda w, f, out: ["w2v", "train", "--corpus", f, "--out", out, *TINY_W2V],
    "similarity": lambda w, f, out: ["w2v", "eval", w["w2v"], "--similarity", f],
    "analogies": lambda w, f, out: ["w2v", "eval", w["w2v"], "--analogies", f],
}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_file_is_one_error_line(
    case: Case, world: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / case.name
    path.write_bytes(case.content)
    args = COMMANDS[case.command](world, path, tmp_path / "out")
    with Unchanged(path, world["train"].parent, world["clf"], world["lm"], world["w2v"]):
        result = invoke([*args, *case.extra])
    assert_error(result, *(f.format(file=path) for f in case.fragments))


# ---------------------------------------------------------------------------------------------
# standard input is decoded exactly as a file is


STDIN_CASES = [
    ("invalid-utf8", b"good \xff film\n", [], "standard input: line 1 (byte 5) is not valid utf-8 (0xff)"),
    ("utf16", "good film\n".encode("utf-16"), [], "standard input looks like UTF-16 (byte-order mark)"),
    ("nul", b"good\nfi\x00lm\n", [], "standard input: line 2 (byte 7) holds a NUL byte"),
    ("empty", b"", [], "standard input has no text to classify"),
    ("utf16-as-latin1", "good film\n".encode("utf-16"), ["--encoding", "latin-1"],
     "standard input looks like UTF-16"),
    ("unknown-encoding", b"good\n", ["--encoding", "nope"], "unknown encoding 'nope'"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "extra", "message"), [c[1:] for c in STDIN_CASES],
                         ids=[c[0] for c in STDIN_CASES])  # fmt: skip
def test_standard_input_gets_the_checks_of_a_file(world, data, extra, message) -> None:
    with Unchanged(world["clf"]):
        result = invoke(["classify", "predict", world["clf"], *extra], input=data)
    assert_error(result, message)


def test_standard_input_in_its_declared_encoding_and_gzip(world, tmp_path) -> None:
    text = "caf\u00e9 a charming film\n"
    latin = invoke(["classify", "predict", world["clf"], "--encoding", "latin-1", "--json"],
                   input=text.encode("latin-1"))  # fmt: skip
    assert latin.exit_code == 0, latin.output
    assert json.loads(latin.stdout)["text"] == text.strip()
    wide = invoke(["classify", "predict", world["clf"], "--encoding", "utf-16", "--json"],
                  input=text.encode("utf-16"))  # fmt: skip
    assert json.loads(wide.stdout)["text"] == text.strip()
    packed = invoke(["classify", "predict", world["clf"], "--json"], input=gzip.compress(b"ok\r\n"))
    assert json.loads(packed.stdout)["text"] == "ok"


# ---------------------------------------------------------------------------------------------
# what works, and what is counted rather than refused


def test_utf16_and_utf32_files_train_when_their_encoding_is_given(world, tmp_path) -> None:
    text = world["train"].read_text(encoding="utf-8")
    for codec in ("utf-16", "utf-16-le", "utf-32"):
        path = tmp_path / f"{codec}.txt"
        path.write_bytes(text.encode(codec))
        if codec == "utf-16-le":  # the mark is optional: a leading U+FEFF is dropped
            path.write_bytes(codecs.BOM_UTF16_LE + text.encode(codec))
        result = invoke(["classify", "train", "--train", path, "--encoding", codec, "--json",
                         "--out", tmp_path / codec, "--set", "train.epochs=1"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["train_examples"] == 200


def test_a_line_without_label_is_skipped_and_counted_when_asked(world, tmp_path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(world["train"].read_text() + " no label here\n")
    result = invoke(["classify", "train", "--train", path, "--skip-invalid", "--json",
                     "--out", tmp_path / "r", "--set", "train.epochs=1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["skipped_lines"] == {"train": 1} and summary["labels"] == ["0", "1"]


def test_missing_inputs_are_reported_together(world, tmp_path) -> None:
    result = invoke(["classify", "train", "--train", tmp_path / "nope.txt", "--dev", tmp_path,
                     "--test", tmp_path / "gone.txt", "--out", tmp_path / "r"])  # fmt: skip
    assert result.exit_code == 1
    message = result.stderr
    assert message.startswith("Error: 3 problems with the input files:")
    assert f"--train {tmp_path / 'nope.txt'}: no such file" in message
    assert f"--dev {tmp_path}: is a directory" in message
    assert f"--test {tmp_path / 'gone.txt'}: no such file" in message
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lm", "train", "--train", "{missing}"], "--train {missing}: no such file"),
        (["w2v", "train", "--corpus", "{missing}"], "--corpus {missing}: no such file"),
        (["lm", "eval", "{lm}", "--data", "{missing}"], "{missing}: no such file"),
        (["classify", "eval", "{clf}", "--data", "{missing}"], "{missing}: no such file"),
        (["classify", "predict", "{clf}", "--input", "{missing}"], "{missing}: no such file"),
        (["w2v", "eval", "{w2v}", "--similarity", "{missing}"], "word-similarity file {missing} does not exist"),
    ],
    ids=["lm-train", "w2v-train", "lm-eval", "classify-eval", "classify-predict", "w2v-similarity"],
)  # fmt: skip
def test_a_missing_input_file_names_its_option(world, tmp_path, args, message) -> None:
    names = {"missing": tmp_path / "missing.txt", "lm": world["lm"], "clf": world["clf"],
             "w2v": world["w2v"]}  # fmt: skip
    with Unchanged(world["lm"], world["clf"], world["w2v"]):
        result = invoke(
            [a.format(**names) for a in args] + ["--out", tmp_path / "o"] * ("train" in args)
        )
    assert_error(result, message.format(**names))
