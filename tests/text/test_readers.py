"""Readers: every format and its .gz, auto-detection, encodings, malformed lines, real data."""

from __future__ import annotations

import gzip
import inspect
import json
import re
from pathlib import Path

import pytest

from ffnlp.errors import ConfigError, DataError
from ffnlp.text.readers import (
    detect_format,
    input_name,
    nonempty,
    read_corpus,
    read_labeled,
    read_lines,
)
from tests.conftest import shared_data

# the same three examples in every format; the text holds a comma, quotes and non-ASCII
EXAMPLES = [("pos", 'a "fine", warm film'), ("neg", "dull"), ("pos", "naïve café fun")]
TEXTS = [t for _, t in EXAMPLES]
LABELS = [label for label, _ in EXAMPLES]


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


CONTENT = {
    "label-text": "".join(f"{label} {text}\n" for label, text in EXAMPLES),
    "fasttext": "".join(f"__label__{label} {text}\n" for label, text in EXAMPLES),
    "csv": "id,text,label\n"
    + "".join(f"{i},{_csv_field(t)},{label}\n" for i, (label, t) in enumerate(EXAMPLES)),
    "tsv": "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in EXAMPLES),
    "jsonl": "".join(
        json.dumps({"text": text, "label": label, "id": 1}) + "\n" for label, text in EXAMPLES
    ),
}
SUFFIX = {"label-text": ".txt", "fasttext": ".txt", "csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl"}


def _write(path: Path, text: str, encoding: str = "utf-8", gz: bool = False) -> Path:
    data = text.encode(encoding)
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("fmt", list(CONTENT))
def test_every_format_and_its_gz_reads_the_same_examples(tmp_path, fmt, gz):
    name = "data" + SUFFIX[fmt] + (".gz" if gz else "")
    path = _write(tmp_path / name, CONTENT[fmt], gz=gz)
    for asked in ("auto", fmt):
        data = read_labeled(path, format=asked)
        assert data.texts == TEXTS
        assert data.labels == LABELS
        assert data.format == fmt
        assert len(data) == 3 and data.skipped == 0
        assert data.path == path


def test_gzip_is_detected_by_magic_bytes_whatever_the_name(tmp_path):
    path = _write(tmp_path / "train.txt", CONTENT["fasttext"], gz=True)
    assert detect_format(path) == "fasttext"
    assert read_labeled(path).labels == LABELS


def test_auto_detection_by_suffix_then_content(tmp_path):
    assert detect_format(_write(tmp_path / "a.CSV", "text,label\n")) == "csv"
    assert detect_format(_write(tmp_path / "a.tsv.gz", "x\n", gz=True)) == "tsv"
    assert detect_format(_write(tmp_path / "a.json", "{}\n")) == "jsonl"
    assert detect_format(_write(tmp_path / "a.ndjson", "{}\n")) == "jsonl"
    assert detect_format(_write(tmp_path / "ft", "\n  \n__label__x hi\n")) == "fasttext"
    assert detect_format(_write(tmp_path / "lt", "\n1 __label__ is text here\n")) == "label-text"
    assert detect_format(_write(tmp_path / "empty", "")) == "label-text"


def test_unknown_format_is_a_config_error(tmp_path):
    path = _write(tmp_path / "a.txt", "1 x\n")
    with pytest.raises(ConfigError, match="must be one of auto, label-text"):
        read_labeled(path, format="fastext")


# ---------------------------------------------------------------------------------------------
# lines and encodings


def test_read_lines_numbers_from_one_and_strips_only_the_line_end(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"one\r\n  two  \r\n\r\nthree")  # CRLF, blank line, no final newline
    assert list(read_lines(path)) == [(1, "one"), (2, "  two  "), (3, ""), (4, "three")]


def test_crlf_files_read_like_lf_files(tmp_path):
    lf = _write(tmp_path / "lf.txt", CONTENT["label-text"])
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(CONTENT["label-text"].replace("\n", "\r\n").encode())
    assert read_labeled(crlf).texts == read_labeled(lf).texts == TEXTS


def test_byte_0x85_stays_inside_its_line(tmp_path):
    # MR's Latin-1 bytes: 0x85 is U+0085, which str.splitlines() and str.strip() treat as a
    # line break / whitespace. It must stay part of the text, at the start and in the middle.
    path = tmp_path / "mr.txt"
    path.write_bytes(b"0 \x85the maudlin way\n1 hmmm\x85might i suggest \x85\n")
    data = read_labeled(path, encoding="latin-1")
    assert data.texts == ["\x85the maudlin way", "hmmm\x85might i suggest \x85"]
    assert data.labels == ["0", "1"]
    assert [n for n, _ in read_lines(path, encoding="latin-1")] == [1, 2]


def test_utf8_with_bom_and_non_ascii(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff1 grüße — ok\n".encode())
    data = read_labeled(path)
    assert data.labels == ["1"] and data.texts == ["grüße — ok"]


def test_latin1_file_reads_with_encoding_latin1(tmp_path):
    path = _write(tmp_path / "l1.txt", "1 café naïve\n0 über\n", encoding="latin-1")
    assert read_labeled(path, encoding="latin-1").texts == ["café naïve", "über"]


def test_latin1_file_read_as_utf8_names_file_line_byte_and_fix(tmp_path):
    path = _write(tmp_path / "l1.txt", "1 fine\n0 ok\n1 caf\u00e9 bad\n", encoding="latin-1")
    # line 3 starts at byte 7 + 5 = 12; "1 caf" is 5 bytes, so the é (0xe9) is at byte 17
    expected = (
        f"{path}: line 3 (byte 17) is not valid utf-8 (0xe9); "
        "pass --encoding latin-1 (or the file's real encoding)"
    )
    with pytest.raises(DataError) as info:
        read_labeled(path)
    assert str(info.value) == expected
    with pytest.raises(DataError) as info:
        list(read_corpus(path))
    assert str(info.value) == expected


def test_encoding_error_offset_counts_decompressed_bytes_in_gz(tmp_path):
    path = _write(tmp_path / "l1.txt.gz", "1 ok\n0 \u00e9\n", encoding="latin-1", gz=True)
    with pytest.raises(
        DataError, match=r"l1\.txt\.gz: line 2 \(byte 7\) is not valid utf-8 \(0xe9\)"
    ):
        read_labeled(path)


def test_other_encodings_get_a_generic_fix(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"1 \xff\n")
    with pytest.raises(
        DataError, match=r"is not valid ascii \(0xff\); pass --encoding with the file"
    ):
        list(read_lines(path, encoding="ascii"))


def test_unknown_encodings_and_utf16(tmp_path):
    path = _write(tmp_path / "x.txt", "1 a\n")
    with pytest.raises(ConfigError, match="unknown encoding 'utf-9'"):
        read_labeled(path, encoding="utf-9")
    # UTF-16 and UTF-32 are split into lines after decoding (0x0a occurs inside characters)
    wide = _write(tmp_path / "w.txt", "1 a\u010a b\n0 c\n", encoding="utf-16")
    assert read_labeled(wide, encoding="utf-16").texts == ["a\u010a b", "c"]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope.txt'}: no such file")):
        read_labeled(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_lines(tmp_path)


def test_damaged_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "x.txt.gz"
    path.write_bytes(gzip.compress(b"1 a\n" * 1000)[:40])
    with pytest.raises(DataError, match="gzip stream is damaged"):
        list(read_corpus(path))


def test_read_corpus_streams_and_skips_blank_lines(tmp_path):
    path = _write(tmp_path / "c.txt.gz", "the cat\n\n   \n sat down \n", gz=True)
    lines = read_corpus(path)
    assert inspect.isgenerator(lines)
    assert list(lines) == ["the cat", " sat down "]


# ---------------------------------------------------------------------------------------------
# malformed lines, skip_invalid, empty files

MALFORMED = {
    # format: (file content with one bad line at line 3, expected message part)
    "label-text": ("1 good\n\n0\n1 fine\n", "a label ('0') but no text"),
    "fasttext": ("__label__a x\n\nno label here\n__label__b y\n", "no label"),
    "csv": ("text,label\ngood,1\nbad,1,extra\nfine,0\n", "3 fields but the header has 2"),
    "tsv": ("text\tlabel\ngood\t1\nbad\n fine\t0\n", "1 fields but the header has 2"),
    "jsonl": (
        '{"text": "a", "label": 1}\n\n{"text": "b", "label": 1\n{"text": "c", "label": 0}\n',
        "not valid JSON",
    ),
}


@pytest.mark.parametrize("fmt", list(MALFORMED))
def test_one_malformed_line_names_file_and_line_or_is_skipped(tmp_path, fmt):
    content, problem = MALFORMED[fmt]
    path = _write(tmp_path / f"bad{SUFFIX[fmt]}", content)
    with pytest.raises(DataError) as info:
        read_labeled(path, format=fmt)
    message = str(info.value)
    assert message.startswith(f"{path}:3: {problem}")
    assert "--skip-invalid" in message
    data = read_labeled(path, format=fmt, skip_invalid=True)
    assert data.skipped == 1 and data.skipped_lines == [3]
    assert len(data) == 2
    assert data.problems[0].startswith(f"{path}:3: ")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("__label__ text\n", "an empty label"),
        ("__label__a __label__ text\n", "an empty label"),
        ("__label__a __label__b\n", "labels ('a', 'b') but no text"),
        ("__label__a\n", "a label ('a') but no text"),
    ],
)
def test_fasttext_line_problems(tmp_path, content, problem):
    path = _write(tmp_path / "ft.txt", content)
    with pytest.raises(DataError, match=re.escape(f"{path}:1: {problem}")):
        read_labeled(path, format="fasttext")


def test_fasttext_label_tokens_after_the_text_are_text(tmp_path):
    path = _write(tmp_path / "ft.txt", "__label__a\tsee __label__b  here\n")
    data = read_labeled(path)
    assert data.labels == ["a"] and data.texts == ["see __label__b here"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            '{"text": "a"}',
            "no key 'label' (keys: 'text'); choose the keys with text_column / label_column",
        ),
        ('["a", 1]', "a JSON list, not an object"),
        ('{"text": 3, "label": 1}', "'text' is a int, not a string"),
        (
            '{"text": "a", "label": [1, 2]}',
            "the label is a list, but line 1 gives one value; write every line's labels as a "
            'list (["a", "b"]) or every label as one value',
        ),
        ('{"text": "a", "label": 0.5}', "the label 0.5 is not a string, integer or boolean"),
        ('{"text": "  ", "label": 1}', "the text is empty"),
        ('{"text": "a", "label": ""}', "the label is empty"),
    ],
)
def test_jsonl_problems(tmp_path, line, problem):
    path = _write(tmp_path / "d.jsonl", '{"text": "ok", "label": 1}\n' + line + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: {problem}")):
        read_labeled(path)


def test_jsonl_labels_of_other_types_become_strings(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"t": "a", "y": 1}\n{"t": "b", "y": true}\n')
    data = read_labeled(path, text_column="t", label_column="y")
    assert data.labels == ["1", "true"]


def test_a_json_array_file_says_how_to_convert(tmp_path):
    path = _write(tmp_path / "d.json", '[{"text": "a", "label": 1}]\n')
    with pytest.raises(DataError, match=r"d\.json: the file is a JSON array, not JSON Lines"):
        read_labeled(path)


def test_csv_missing_columns_lists_the_header(tmp_path):
    path = _write(tmp_path / "d.csv", "sentence,polarity\nhi,1\n")
    with pytest.raises(DataError) as info:
        read_labeled(path)
    assert str(info.value) == (
        f"{path}:1: no column 'text' (choose one with text_column, CLI: --set "
        "data.text_column=NAME); no column 'label' (choose one with label_column, CLI: --set "
        "data.label_column=NAME); the CSV header has the columns 'sentence', 'polarity'"
    )
    data = read_labeled(path, text_column="sentence", label_column="polarity")
    assert data.texts == ["hi"] and data.labels == ["1"]


def test_csv_quoted_newline_and_line_numbers_after_it(tmp_path):
    path = _write(tmp_path / "d.csv", 'text,label\n"two\nlines",1\nok,0\n,1\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:5: the text is empty")):
        read_labeled(path)
    data = read_labeled(path, skip_invalid=True)
    assert data.texts == ["two\nlines", "ok"] and data.skipped_lines == [5]


def test_tsv_does_not_interpret_quotes(tmp_path):
    path = _write(tmp_path / "d.tsv", 'text\tlabel\n"quoted" start\t1\n')
    assert read_labeled(path).texts == ['"quoted" start']


@pytest.mark.parametrize("content", ["", "\n\n  \r\n"], ids=["empty", "blank"])
def test_an_empty_file_names_the_file(tmp_path, content):
    path = _write(tmp_path / "empty.txt", content)
    with pytest.raises(DataError, match=re.escape(f"{path}: no examples found")):
        read_labeled(path)


def test_all_lines_skipped_says_how_many(tmp_path):
    path = _write(tmp_path / "bad.txt", "1\n0\n")
    with pytest.raises(DataError, match=r"no examples found \(2 malformed lines skipped\)"):
        read_labeled(path, skip_invalid=True)


def test_skipped_lines_keeps_only_the_first_few(tmp_path):
    path = _write(tmp_path / "bad.txt", "1 ok\n" + "0\n" * 25)
    data = read_labeled(path, skip_invalid=True)
    assert data.skipped == 25 and data.skipped_lines == list(range(2, 12)) and len(data) == 1


def test_csv_header_only_is_empty(tmp_path):
    path = _write(tmp_path / "d.csv", "text,label\n")
    with pytest.raises(DataError, match="no examples found"):
        read_labeled(path)


# ---------------------------------------------------------------------------------------------
# the real data


def test_mr_latin1_reads_exactly_10662_examples():
    data = read_labeled(shared_data("mr/rt-polarity.all"), encoding="latin-1")
    assert len(data) == 10662 and data.skipped == 0
    assert data.labels.count("0") == data.labels.count("1") == 5331
    assert sum(text.count("\x85") for text in data.texts) == 23  # every 0x85 byte kept
    assert data.format == "label-text"


def test_mr_as_utf8_fails_with_the_fix():
    path = shared_data("mr/rt-polarity.all")
    with pytest.raises(DataError) as info:
        read_labeled(path)
    assert str(info.value) == (
        f"{path}: line 32 (byte 3841) is not valid utf-8 (0xe9); "
        "pass --encoding latin-1 (or the file's real encoding)"
    )


def test_sst2_train_reads_6920_examples():
    data = read_labeled(shared_data("sst2/stsa.binary.train"))
    assert len(data) == 6920 and set(data.labels) == {"0", "1"}
    assert data.texts[0].startswith("a stirring , funny and finally transporting")


def test_ptb_gz_corpus_has_42068_sentences():
    assert sum(1 for _ in read_corpus(shared_data("ptb/ptb.train.txt.gz"))) == 42068


# ---------------------------------------------------------------------------------------------
# multi-label data

MULTI = [(("sauce", "cheese"), "potato starch in a cheese sauce"), (("baking",), "why did it sink")]


def test_fasttext_lines_with_several_labels_are_multilabel(tmp_path):
    path = _write(
        tmp_path / "ft.txt",
        "__label__sauce __label__cheese\tpotato starch in a cheese sauce\n"
        "__label__baking why did it sink\n",
    )
    data = read_labeled(path)
    assert data.multilabel
    assert data.label_sets == [labels for labels, _ in MULTI]
    assert data.labels == ["sauce", "baking"]  # the first label of each
    assert data.texts == [text for _, text in MULTI]


def test_a_label_repeated_on_a_line_counts_once(tmp_path):
    path = _write(tmp_path / "ft.txt", "__label__a __label__b __label__a text\n")
    assert read_labeled(path).label_sets == [("a", "b")]


def test_single_label_data_has_no_label_sets(tmp_path):
    path = _write(tmp_path / "ft.txt", CONTENT["fasttext"])
    data = read_labeled(path)
    assert not data.multilabel and data.label_sets is None
    assert data.label_lists() == [(label,) for label in LABELS]


@pytest.mark.parametrize("key", ["label", "labels"])
def test_jsonl_label_lists(tmp_path, key):
    lines = [json.dumps({"text": text, key: list(labels)}) for labels, text in MULTI]
    path = _write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    data = read_labeled(path)
    assert data.multilabel
    assert data.label_sets == [labels for labels, _ in MULTI]


def test_jsonl_a_list_of_one_label_makes_the_file_multilabel(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"text": "a", "label": ["x"]}\n')
    assert read_labeled(path).label_sets == [("x",)]


def test_jsonl_labels_key_is_read_only_for_the_default_label_column(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"text": "a", "labels": ["x", "y"]}\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:1: no key 'tag'")):
        read_labeled(path, label_column="tag")


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            ['{"text": "a", "labels": []}'],
            "1: the label list is empty; every object needs at least one label",
        ),
        (
            ['{"text": "a", "labels": ["x"]}', '{"text": "b", "labels": "y"}'],
            "2: the label is one value, but line 1 gives a list; write every line's labels as a "
            'list (["a", "b"]) or every label as one value',
        ),
        (
            ['{"text": "a", "labels": "x"}', '{"text": "b", "labels": ["y", "z"]}'],
            "2: the label is a list, but line 1 gives one value; write every line's labels as a "
            'list (["a", "b"]) or every label as one value',
        ),
        (
            ['{"text": "a", "labels": ["x", " "]}'],
            "1: the label list holds an empty label; every object needs a label",
        ),
        (
            ['{"text": "a", "labels": ["x", 0.5]}'],
            "1: the label 0.5 is not a string, integer or boolean; write labels as strings",
        ),
    ],
)
def test_jsonl_label_list_problems(tmp_path, lines, problem):
    path = _write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        read_labeled(path)
    assert str(info.value) == f"{path}:{problem}" + (
        " (or pass --skip-invalid to skip malformed lines and count them)"
    )


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_and_tsv_with_a_label_separator(tmp_path, fmt):
    sep = "," if fmt == "csv" else "\t"
    rows = ['"sauce, cheese"' if fmt == "csv" else "sauce, cheese", "baking"]
    body = "".join(f"{row}{sep}{text}\n" for row, (_, text) in zip(rows, MULTI, strict=True))
    path = _write(tmp_path / f"d.{fmt}", f"label{sep}text\n" + body)
    data = read_labeled(path, label_separator=",")
    assert data.label_sets == [labels for labels, _ in MULTI]
    single = read_labeled(path)  # no separator: the field is one label
    assert single.labels == ["sauce, cheese", "baking"] and not single.multilabel


def test_csv_separator_with_one_label_per_row_is_single_label(tmp_path):
    path = _write(tmp_path / "d.csv", "label,text\na,x\nb,y\n")
    data = read_labeled(path, label_separator=";")
    assert not data.multilabel and data.labels == ["a", "b"]


def test_csv_an_empty_label_between_separators_is_an_error(tmp_path):
    path = _write(tmp_path / "d.csv", 'label,text\n"a;;b",x\n')
    with pytest.raises(DataError) as info:
        read_labeled(path, label_separator=";")
    assert str(info.value).startswith(
        f"{path}:2: an empty label in 'a;;b' (labels separated by ';'); remove the extra ';'"
    )


def test_nonempty_passes_a_stream_through_and_refuses_an_empty_one() -> None:
    assert list(nonempty(iter("abc"), "unused")) == ["a", "b", "c"]
    with pytest.raises(DataError, match="standard input has no text"):
        list(nonempty(iter([]), f"{input_name('-')} has no text"))
    assert input_name(Path("in.txt")) == "in.txt"
