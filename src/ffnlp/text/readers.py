"""Reading the text files people actually have: labelled examples and plain corpora.

Formats of labelled files (``read_labeled``):

- ``label-text``: ``LABEL text`` — the label, spaces or a tab, the text (the files in ../shared/data);
- ``fasttext``: ``__label__X text`` — the leading ``__label__`` tokens are the labels (one, or
  several: ``__label__a __label__b text``);
- ``csv`` / ``tsv``: a header row, then rows; the text and label columns are chosen by name.
  CSV follows RFC 4180 quoting (a quoted field may hold commas, quotes and newlines); TSV has no
  quoting at all (a field is everything between tabs), as in GLUE and most TSV files. With a
  ``label_separator`` (e.g. ``","``) a label field holds several labels: ``"sauce,cheese"``;
- ``jsonl``: one JSON object a line, with a text key and a label key; the label is a string (or
  an integer or boolean) or a list of them (``"labels": ["a", "b"]``; the key ``labels`` is read
  when the label column is the default ``label`` and an object has no ``label``). Every line
  gives its label the same way: a list on one line and a string on another is an error.

Multi-label data: an example with several labels, or with its labels written as a list, makes the
file multi-label; then ``LabeledData.label_sets`` holds every example's labels (a label repeated
on one line counts once) and ``labels`` the first of each.

Any of them may be gzip-compressed (detected by the magic bytes, whatever the name).

Lines are split on ``b"\\n"`` only, then a trailing ``"\\r"`` is dropped: ``str.splitlines()`` would
also split on U+0085 and friends, and the movie-review data (Latin-1) holds byte 0x85 inside
sentences. For the same reason surrounding whitespace is stripped with ASCII spaces and tabs only.
Nothing is dropped silently: a malformed line raises :class:`DataError` naming ``FILE:LINE``, unless
``skip_invalid`` is asked for, and then the number skipped is in ``LabeledData.skipped``.

(Over 400 lines on purpose: the five formats and the corpus reader share one decoding, line
splitting and error-location path, which is what this module is for.)
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from ffnlp.errors import ConfigError, DataError

FORMATS = ("auto", "label-text", "fasttext", "csv", "tsv", "jsonl")
FASTTEXT_PREFIX = "__label__"
MAX_REPORTED_SKIPS = 10  # how many skipped line numbers / messages LabeledData keeps
_GZIP_MAGIC = b"\x1f\x8b"
_ASCII_SPACE = " \t\f\v"  # what we strip: never U+0085 / U+00A0, which are text in Latin-1 files
_LABEL_TEXT = re.compile(r"([^ \t]+)[ \t]*(.*)", re.DOTALL)
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass
class LabeledData:
    """Examples read from one file: ``texts[i]`` has label ``labels[i]`` (both strings).

    Multi-label data (an example with several labels, or labels written as a list) also has
    ``label_sets[i]``, every label of example i; ``labels[i]`` is then its first one.
    """

    texts: list[str]
    labels: list[str]
    path: Path
    skipped: int = 0  # malformed lines skipped (only with skip_invalid=True)
    skipped_lines: list[int] = field(default_factory=list)  # the first few of them (1-based)
    format: str = "label-text"  # the format actually used (never "auto")
    problems: list[str] = field(default_factory=list)  # messages for the first few skipped lines
    label_sets: list[tuple[str, ...]] | None = None  # multi-label data: each example's labels

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multilabel(self) -> bool:
        """Whether the file held several labels on a line, or labels written as a list."""
        return self.label_sets is not None

    def label_lists(self) -> list[tuple[str, ...]]:
        """Every example's labels: ``label_sets``, or one label each for single-label data."""
        if self.label_sets is not None:
            return self.label_sets
        return [(label,) for label in self.labels]


# ---------------------------------------------------------------------------------------------
# lines


def read_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every line of a text file (``.gz`` read transparently).

    Line numbers start at 1; the line comes without its ``"\\n"`` and a trailing ``"\\r"``.
    Lines are split on ``b"\\n"`` only. A UTF-8 byte-order mark at the start is dropped. Bytes that
    are not valid in ``encoding`` raise :class:`DataError` naming the file, the line, the byte
    offset (counted from 0 in the decompressed stream) and the fix. The file is streamed.
    """
    p = _check_file(path)
    decoder = _decoder_for(encoding)
    return _iter_lines(p, encoding, decoder)


def read_corpus(path: str | Path, encoding: str = "utf-8") -> Iterator[str]:
    """Yield the non-blank lines of a plain-text corpus (one sentence or document a line).

    Streamed, never the whole file in memory. Lines holding only whitespace are skipped (they carry
    no tokens). The same encoding checks as :func:`read_lines`.
    """
    lines = read_lines(path, encoding)
    return (line for _, line in lines if line.strip(_ASCII_SPACE))


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory; pass a data file")
    return p


def _decoder_for(encoding: str) -> codecs.CodecInfo:
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"unknown encoding {encoding!r}; use a Python codec name such as utf-8, latin-1, cp1252"
        ) from None
    if info.name.startswith(("utf-16", "utf-32")):
        raise DataError(
            f"encoding {encoding!r} is not supported: lines are split on the byte 0x0a, which "
            f"{info.name} uses inside characters; convert the file first "
            f"(iconv -f {info.name} -t utf-8 FILE > FILE.utf8)"
        )
    return info


def _open_binary(p: Path) -> IO[bytes]:
    try:
        with p.open("rb") as fh:
            magic = fh.read(2)
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror})") from None
    if magic == _GZIP_MAGIC:
        # gzip.open owns its file, so closing it closes both (GzipFile(fileobj=...) would not)
        return cast(IO[bytes], gzip.open(p, "rb"))
    return p.open("rb")


def _iter_lines(p: Path, encoding: str, info: codecs.CodecInfo) -> Iterator[tuple[int, str]]:
    decode = info.decode
    utf8 = info.name == "utf-8"
    offset = 0  # byte offset of the current line's start in the (decompressed) stream
    number = 0
    fh = _open_binary(p)
    try:
        with fh:
            for raw in fh:  # a binary file iterates on b"\n" and nothing else
                number += 1
                try:
                    text = decode(raw)[0]
                except UnicodeDecodeError as e:
                    raise DataError(_encoding_message(p, number, offset, encoding, e)) from None
                if text.endswith("\n"):
                    text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
                if number == 1 and utf8 and text.startswith("\ufeff"):
                    text = text[1:]
                offset += len(raw)
                yield number, text
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(
            f"{p}: the gzip stream is damaged after line {number} ({e}); "
            "re-download or re-compress the file"
        ) from None


def _encoding_message(p: Path, line: int, offset: int, encoding: str, e: UnicodeDecodeError) -> str:
    bad = " ".join(f"0x{b:02x}" for b in e.object[e.start : e.end])
    if codecs.lookup(encoding).name == "utf-8":
        fix = "pass --encoding latin-1 (or the file's real encoding)"
    else:
        fix = "pass --encoding with the file's real encoding"
    return f"{p}: line {line} (byte {offset + e.start}) is not valid {encoding} ({bad}); {fix}"


# ---------------------------------------------------------------------------------------------
# formats


def detect_format(path: str | Path) -> str:
    """The format ``read_labeled(format="auto")`` would use for ``path``.

    By suffix first (after a ``.gz``): ``.csv``, ``.tsv``, ``.jsonl`` / ``.json`` / ``.ndjson``;
    otherwise by content: the first non-blank line starting with ``__label__`` means ``fasttext``,
    anything else ``label-text``.
    """
    p = _check_file(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffixes[-1]]
    with _open_binary(p) as fh:
        try:
            for raw in fh:
                stripped = raw.strip(b" \t\r\n\f\v")
                if stripped.startswith(b"\xef\xbb\xbf"):
                    stripped = stripped[3:]
                if stripped:
                    return (
                        "fasttext"
                        if stripped.startswith(FASTTEXT_PREFIX.encode())
                        else "label-text"
                    )
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise DataError(
                f"{p}: the gzip stream is damaged ({e}); re-download the file"
            ) from None
    return "label-text"


class _Invalid(Exception):
    """One malformed example: the message says what is wrong and how to fix it."""


def read_labeled(
    path: str | Path,
    format: str = "auto",
    encoding: str = "utf-8",
    text_column: str = "text",
    label_column: str = "label",
    skip_invalid: bool = False,
    label_separator: str = "",
) -> LabeledData:
    """Read labelled examples from ``path`` (see the module docstring for the formats).

    ``label_separator`` (CSV/TSV): split each label field on it into several labels ("" = one
    label a row). Blank lines are ignored. A malformed line raises ``DataError("FILE:LINE: problem; fix")``;
    with ``skip_invalid=True`` it is skipped and counted in ``skipped`` instead (encoding errors
    are never skipped: a wrong encoding is a property of the whole file). A file without a single
    example raises :class:`DataError`.
    """
    if format not in FORMATS:
        raise ConfigError(
            f"The 'format' parameter of read_labeled must be one of {', '.join(FORMATS)}; "
            f"got {format!r} instead."
        )
    p = _check_file(path)
    fmt = detect_format(p) if format == "auto" else format
    lines = read_lines(p, encoding)
    if fmt == "label-text":
        records = _label_text_records(lines)
    elif fmt == "fasttext":
        records = _fasttext_records(lines)
    elif fmt == "csv":
        records = _csv_records(p, lines, text_column, label_column, label_separator)
    elif fmt == "tsv":
        records = _tsv_records(p, lines, text_column, label_column, label_separator)
    else:
        records = _jsonl_records(p, lines, text_column, label_column)

    data = LabeledData(texts=[], labels=[], path=p, format=fmt)
    label_sets: list[tuple[str, ...]] = []
    multilabel = False
    for number, item in records:
        if isinstance(item, _Invalid):
            message = f"{p}:{number}: {item}"
            if not skip_invalid:
                raise DataError(message + _skip_hint())
            data.skipped += 1
            if len(data.skipped_lines) < MAX_REPORTED_SKIPS:
                data.skipped_lines.append(number)
                data.problems.append(message)
            continue
        label, text = item
        if isinstance(label, tuple):  # several labels, or labels given as a list
            multilabel = True
            label_sets.append(label)
            label = label[0]
        else:
            label_sets.append((label,))
        data.labels.append(label)
        data.texts.append(text)
    if multilabel:
        data.label_sets = label_sets
    if not data.texts:
        why = f" ({data.skipped} malformed lines skipped)" if data.skipped else ""
        raise DataError(
            f"{p}: no examples found{why}; is this the right file and --format ({fmt})?"
        )
    return data


def _skip_hint() -> str:
    return " (or pass --skip-invalid to skip malformed lines and count them)"


# (line, (label, text) or a problem); the label is a tuple for several labels or a label list
_Record = tuple[int, "tuple[str | tuple[str, ...], str] | _Invalid"]


def _distinct(labels: list[str]) -> tuple[str, ...]:
    """The labels in their order, each once."""
    return tuple(dict.fromkeys(labels))


def _label_text_records(lines: Iterator[tuple[int, str]]) -> Iterator[_Record]:
    for number, line in lines:
        line = line.strip(_ASCII_SPACE)
        if not line:
            continue
        m = _LABEL_TEXT.fullmatch(line)
        assert m is not None  # a non-blank line always has a first field
        label, text = m.group(1), m.group(2)
        if not text:
            yield (
                number,
                _Invalid(
                    f"a label ({label!r}) but no text; each line must be 'LABEL text' "
                    "(label, a space or tab, then the text)"
                ),
            )
            continue
        yield number, (label, text)


def _fasttext_records(lines: Iterator[tuple[int, str]]) -> Iterator[_Record]:
    for number, line in lines:
        line = line.strip(_ASCII_SPACE)
        if not line:
            continue
        fields = re.split(r"[ \t]+", line)
        labels = []
        for token in fields:
            if not token.startswith(FASTTEXT_PREFIX):
                break
            labels.append(token[len(FASTTEXT_PREFIX) :])
        rest = fields[len(labels) :]
        if not labels:
            yield (
                number,
                _Invalid(
                    f"no label: a fastText line starts with {FASTTEXT_PREFIX}LABEL, then the text"
                ),
            )
        elif not all(labels):
            yield (
                number,
                _Invalid(
                    f"an empty label ('{FASTTEXT_PREFIX}' alone); write {FASTTEXT_PREFIX}LABEL"
                ),
            )
        elif not rest:
            shown = ", ".join(repr(label) for label in labels)
            what = f"a label ({shown})" if len(labels) == 1 else f"labels ({shown})"
            yield number, _Invalid(f"{what} but no text after it")
        else:
            label = labels[0] if len(labels) == 1 else _distinct(labels)
            yield number, (label, " ".join(rest))


def _column_indices(
    p: Path, header: list[str], text_column: str, label_column: str, fmt: str
) -> tuple[int, int]:
    header = [h.strip(_ASCII_SPACE) for h in header]
    missing = [
        (option, name)
        for option, name in (("text_column", text_column), ("label_column", label_column))
        if name not in header
    ]
    if missing:
        columns = ", ".join(repr(h) for h in header)
        what = "; ".join(
            f"no column {name!r} (choose one with {option}, CLI: --set data.{option}=NAME)"
            for option, name in missing
        )
        raise DataError(f"{p}:1: {what}; the {fmt.upper()} header has the columns {columns}")
    return header.index(text_column), header.index(label_column)


def _row_record(
    number: int,
    row: list[str],
    width: int,
    text_at: int,
    label_at: int,
    fmt: str,
    separator: str = "",
) -> _Record:
    if len(row) != width:
        hint = "quote fields that hold commas" if fmt == "csv" else "a text cannot hold a tab"
        return number, _Invalid(f"{len(row)} fields but the header has {width}; {hint}")
    text = row[text_at].strip(_ASCII_SPACE)
    label = row[label_at].strip(_ASCII_SPACE)
    if not label:
        return number, _Invalid("the label is empty; every row needs a label")
    if not text:
        return number, _Invalid("the text is empty; remove the row or give it a text")
    if separator and separator in label:
        parts = [part.strip(_ASCII_SPACE) for part in label.split(separator)]
        if not all(parts):
            return number, _Invalid(
                f"an empty label in {label!r} (labels separated by {separator!r}); remove the "
                f"extra {separator!r}"
            )
        labels = _distinct(parts)
        return number, (labels if len(labels) > 1 else labels[0], text)
    return number, (label, text)


def _csv_records(
    p: Path,
    lines: Iterator[tuple[int, str]],
    text_column: str,
    label_column: str,
    separator: str = "",
) -> Iterator[_Record]:
    # csv.reader gets the lines back with "\n", so quoted fields may span lines; its line_num
    # counts the lines it consumed, which is the physical line number of a row's end.
    reader = csv.reader((line + "\n" for _, line in lines), strict=True)
    header: list[str] | None = None
    text_at = label_at = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            yield start, _Invalid(f"not valid CSV ({e}); check the quoting")
            continue
        if not row or (len(row) == 1 and not row[0].strip(_ASCII_SPACE)):
            continue
        if header is None:
            header = row
            text_at, label_at = _column_indices(p, header, text_column, label_column, "csv")
            continue
        yield _row_record(start, row, len(header), text_at, label_at, "csv", separator)


def _tsv_records(
    p: Path,
    lines: Iterator[tuple[int, str]],
    text_column: str,
    label_column: str,
    separator: str = "",
) -> Iterator[_Record]:
    header: list[str] | None = None
    text_at = label_at = 0
    for number, line in lines:
        if not line.strip(_ASCII_SPACE):
            continue
        row = line.split("\t")
        if header is None:
            header = row
            text_at, label_at = _column_indices(p, header, text_column, label_column, "tsv")
            continue
        yield _row_record(number, row, len(header), text_at, label_at, "tsv", separator)


def _jsonl_records(
    p: Path, lines: Iterator[tuple[int, str]], text_column: str, label_column: str
) -> Iterator[_Record]:
    first_kind: tuple[str, int] | None = None  # ("list" or "value", its line): every line alike
    for number, line in lines:
        line = line.strip(_ASCII_SPACE)
        if not line:
            continue
        if number == 1 and line.startswith("["):
            raise DataError(
                f"{p}: the file is a JSON array, not JSON Lines (one object a line); convert it with "
                "jq -c '.[]' FILE > FILE.jsonl"
            )
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield (
                number,
                _Invalid(f"not valid JSON ({e.msg} at column {e.colno}); one object a line"),
            )
            continue
        if not isinstance(obj, dict):
            yield number, _Invalid(f"a JSON {type(obj).__name__}, not an object; one object a line")
            continue
        key = label_column
        if key == "label" and key not in obj and "labels" in obj:
            key = "labels"  # {"text": ..., "labels": [...]}, the usual multi-label spelling
        missing = [k for k in (text_column, key) if k not in obj]
        if missing:
            keys = ", ".join(repr(k) for k in obj) or "none"
            names = " and ".join(repr(k) for k in missing)
            yield (
                number,
                _Invalid(
                    f"no key {names} (keys: {keys}); choose the keys with text_column / "
                    "label_column (CLI: --set data.text_column=KEY)"
                ),
            )
            continue
        text, label = obj[text_column], obj[key]
        if not isinstance(text, str):
            yield number, _Invalid(f"{text_column!r} is a {type(text).__name__}, not a string")
            continue
        kind = "list" if isinstance(label, list) else "value"
        if first_kind is None:
            first_kind = (kind, number)
        elif kind != first_kind[0]:
            now, then = ("a list", "one value") if kind == "list" else ("one value", "a list")
            yield (
                number,
                _Invalid(
                    f"the label is {now}, but line {first_kind[1]} gives {then}; write every "
                    'line\'s labels as a list (["a", "b"]) or every label as one value'
                ),
            )
            continue
        values = label if isinstance(label, list) else [label]
        if not values:
            yield number, _Invalid("the label list is empty; every object needs at least one label")
            continue
        bad = next((v for v in values if isinstance(v, (dict, list, float)) or v is None), False)
        if bad is not False:
            shown = json.dumps(bad)
            yield (
                number,
                _Invalid(
                    f"the label {shown} is not a string, integer or boolean; write labels as strings"
                ),
            )
            continue
        label_names = [
            (str(v).lower() if isinstance(v, bool) else str(v)).strip(_ASCII_SPACE) for v in values
        ]
        text = text.strip(_ASCII_SPACE)
        if not all(label_names):
            what = "the label list holds an empty label" if kind == "list" else "the label is empty"
            yield number, _Invalid(f"{what}; every object needs a label")
        elif not text:
            yield number, _Invalid("the text is empty; remove the line or give it a text")
        elif kind == "list":
            yield number, (_distinct(label_names), text)
        else:
            yield number, (label_names[0], text)
