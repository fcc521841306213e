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
  gives its label the same way: a list on one line and a string on another is an error;
- ``parquet`` / ``arrow``: columnar files and Hugging Face datasets saved to disk, read by
  :mod:`ffnlp.text.columnar` (pyarrow, an optional dependency), with the same column options.

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
import io
import itertools
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from ffnlp.errors import ConfigError, DataError, shown
from ffnlp.text.labeled import MAX_REPORTED_SKIPS, LabeledData

T = TypeVar("T")

FORMATS = ("auto", "label-text", "fasttext", "csv", "tsv", "jsonl", "parquet", "arrow")
FASTTEXT_PREFIX = "__label__"
MAX_LINE_BYTES = 10 * 2**20
"""The longest line a reader takes by default (10 MiB): a sentence, a document, a row of a CSV
file fit many times over; an endless line (``/dev/zero``) or a file without line breaks is refused
after this much is read, instead of taking about 40 bytes of memory per byte of the line
(``FFNLP_MAX_LINE_BYTES`` changes it, see :func:`max_line_bytes`)."""
MAX_LINE_ENV = "FFNLP_MAX_LINE_BYTES"
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 4096  # how much of a file's start tells UTF-16 / UTF-32 from 8-bit text
_ASCII_SPACE = " \t\f\v"  # what we strip: never U+0085 / U+00A0, which are text in Latin-1 files
_LABEL_TEXT = re.compile(r"([^ \t]+)[ \t]*(.*)", re.DOTALL)
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}


# ---------------------------------------------------------------------------------------------
# lines


def read_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every line of a text file (``.gz`` read transparently).

    Line numbers start at 1; the line comes without its ``"\\n"`` and a trailing ``"\\r"``.
    Lines are split on ``b"\\n"`` only (after decoding, for UTF-16 and UTF-32). A byte-order mark
    at the start is dropped. Bytes that are not valid in ``encoding`` raise :class:`DataError`
    naming the file, the line, the byte offset (counted from 0 in the decompressed stream) and
    the fix; so does a file that looks like UTF-16/UTF-32 read with another encoding, and a NUL
    byte (which no text file holds). The file is streamed.
    """
    p = _check_file(path)
    info = _decoder_for(encoding)
    return _file_lines(p, encoding, info)


def read_stream_lines(
    stream: Iterable[bytes], name: str = "standard input", encoding: str = "utf-8"
) -> Iterator[tuple[int, str]]:
    """:func:`read_lines` for an open binary stream (e.g. ``sys.stdin.buffer``), or any iterable
    of byte lines: the same decoding, checks and messages, which name it ``name``. Lazy: a line
    is read when the previous one has been used (a gzip stream needs a file object)."""
    info = _decoder_for(encoding)
    if hasattr(stream, "peek") or hasattr(stream, "readinto"):  # a binary file: gzip or not
        fh = cast(Any, stream) if hasattr(stream, "peek") else io.BufferedReader(cast(Any, stream))
        if fh.peek(2)[:2] == _GZIP_MAGIC:
            fh = gzip.GzipFile(fileobj=fh, mode="rb")
        return _decode_lines(fh, _peek_head(fh), name, encoding, info)
    lines = iter(stream)
    first = next(lines, b"")
    rest = itertools.chain([first] if first else [], lines)
    return _decode_lines(rest, lambda: first, name, encoding, info)


def input_name(source: str | Path) -> str:
    """How a message names the ``source`` of :func:`read_input_lines`: its path, or standard
    input for ``"-"``."""
    return "standard input" if str(source) == "-" else str(source)


def nonempty(items: Iterable[T], message: str) -> Iterator[T]:
    """``items`` as they come; once they end, a DataError saying ``message`` if there was none
    (an input with no text, found while streaming it)."""
    empty = True
    for item in items:
        empty = False
        yield item
    if empty:
        raise DataError(message)


def read_input_lines(source: str | Path, encoding: str = "utf-8") -> Iterator[str]:
    """The lines of a file, or of standard input (``"-"``), read lazily, split on ``"\\n"`` only.
    Standard input is decoded exactly as a file is (:func:`read_stream_lines`: the same checks
    and messages); a text stream without bytes underneath is read as text."""
    if str(source) != "-":
        yield from (line for _, line in read_lines(source, encoding=encoding))
        return
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        yield from (line.rstrip("\r\n") for line in sys.stdin)
        return
    yield from (line for _, line in read_stream_lines(stream, "standard input", encoding))


def read_corpus(path: str | Path, encoding: str = "utf-8") -> Iterator[str]:
    """Yield the non-blank lines of a plain-text corpus (one sentence or document a line).

    Streamed, never the whole file in memory. Lines holding only whitespace are skipped (they carry
    no tokens). The same encoding checks as :func:`read_lines`.
    """
    lines = read_lines(path, encoding)
    return (line for _, line in lines if line.strip(_ASCII_SPACE))


def as_path(path: object, what: str = "path") -> Path:
    """``path`` as a :class:`Path`; a :class:`ConfigError` for anything that is not a string or
    an ``os.PathLike`` (an int given as a file name, None...)."""
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise ConfigError(f"{what} must be a file name (str or pathlib.Path); got {shown(path)}")


def input_problems(inputs: Mapping[str, object]) -> list[str]:
    """What is wrong with each input file, as ``option -> path`` (None and data already in
    memory are skipped): not a path, missing, a directory, unreadable. Empty when all are fine;
    the files are not opened. ``--train`` and ``--corpus`` may name several files (a glob
    pattern or a folder of shards, :mod:`ffnlp.text.shards`)."""
    from ffnlp.text.shards import is_pattern, names_shards
    from ffnlp.text.shards import problems as shard_problems

    problems = []
    for option, path in inputs.items():
        if path is None or isinstance(path, LabeledData):
            continue
        if not isinstance(path, (str, os.PathLike)):
            problems.append(
                f"{option} must be a file name (str or pathlib.Path); got {shown(path)}"
            )
            continue
        p = Path(path)
        if option in SHARDED_OPTIONS and names_shards(path, columnar_ok=True):
            problems.extend(shard_problems(option, path))
            continue
        if not p.exists():
            many = (
                " (several files, as a pattern or a folder, are taken by --train and --corpus only)"
            )
            problems.append(f"{option} {p}: no such file{many if is_pattern(path) else ''}")
        elif p.is_dir() and not _columnar_folder(p):
            problems.append(f"{option} {p}: is a directory; pass a data file")
        elif not os.access(p, os.R_OK):
            problems.append(f"{option} {p}: cannot be read (permission denied)")
    return problems


# the options whose file may be several files (a glob pattern or a folder): ffnlp.text.shards
SHARDED_OPTIONS = ("--train", "--corpus")


def _columnar_folder(p: Path) -> bool:
    """Whether the folder ``p`` holds a columnar data set (Parquet files, a saved ``datasets``
    folder): data the readers take as a whole (see :mod:`ffnlp.text.columnar`)."""
    from ffnlp.text.columnar import columnar_format

    try:
        return columnar_format(p) is not None
    except OSError:
        return False


def _check_file(path: str | Path) -> Path:
    p = as_path(path, "a data file")
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory; pass a data file")
    return p


def _decoder_for(encoding: str) -> codecs.CodecInfo:
    if not isinstance(encoding, str):
        raise ConfigError(f"the encoding must be a codec name such as utf-8; got {shown(encoding)}")
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"unknown encoding {shown(encoding)}; use a Python codec name such as utf-8, latin-1, cp1252"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise ConfigError(
            f"{encoding!r} is not a text encoding; use a codec name such as utf-8 or latin-1"
        )
    return info


def _open_binary(p: Path) -> IO[bytes]:
    try:
        with p.open("rb") as fh:
            magic = fh.read(2)
        if magic == _GZIP_MAGIC:
            # gzip.open owns its file, so closing it closes both (GzipFile(fileobj=...) would not)
            return cast(IO[bytes], gzip.open(p, "rb"))
        return p.open("rb")
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror or e})") from None


def _file_lines(
    p: Path, encoding: str, info: codecs.CodecInfo
) -> Generator[tuple[int, str], None, None]:
    fh = _open_binary(p)
    with fh:
        yield from _decode_lines(fh, _peek_head(fh), str(p), encoding, info)


def _peek_head(fh: Any) -> Callable[[], bytes]:
    """The first bytes of ``fh`` without consuming them (read when called)."""
    return lambda: bytes(fh.peek(_SNIFF_BYTES)[:_SNIFF_BYTES])


def _is_wide(info: codecs.CodecInfo) -> bool:
    """UTF-16 / UTF-32: the byte 0x0a occurs inside characters, so lines are split after decoding."""
    return info.name.startswith(("utf-16", "utf-32"))


def sniff_wide_encoding(head: bytes) -> tuple[str, str, str] | None:
    """Whether the first bytes of a file look like UTF-16 or UTF-32: ``(name, codec, evidence)``,
    e.g. ``("UTF-16", "utf-16", "byte-order mark")``; None when they do not.

    By the byte-order mark, else by the NUL bytes that ASCII text has between its characters in
    these encodings (every other byte for UTF-16, three of every four for UTF-32).
    """
    for bom, name, codec in _BOMS:
        if head.startswith(bom):
            return name, codec, "byte-order mark"
    sample = head[: len(head) - len(head) % 4]
    if len(sample) < 8 or sample.count(0) < len(sample) // 3:
        return None
    zeros = [sample[i::4].count(0) / (len(sample) // 4) for i in range(4)]
    pattern = tuple(z > 0.6 for z in zeros)
    evidence = "NUL bytes between the characters"
    for expected, name, codec in _NUL_PATTERNS:
        if pattern == expected:
            return name, codec, evidence
    return None


_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"),
)
_NUL_PATTERNS = (  # which of every 4 bytes are mostly NUL in ASCII text
    ((False, True, True, True), "UTF-32 little-endian", "utf-32-le"),
    ((True, True, True, False), "UTF-32 big-endian", "utf-32-be"),
    ((False, True, False, True), "UTF-16 little-endian", "utf-16-le"),
    ((True, False, True, False), "UTF-16 big-endian", "utf-16-be"),
)


def _wide_advice(name: str, sniffed: tuple[str, str, str]) -> str:
    label, codec, evidence = sniffed
    return (
        f"{name} looks like {label} ({evidence}); pass --encoding {codec} or convert it to UTF-8 "
        f"(iconv -f {codec} -t utf-8 FILE > FILE.utf8)"
    )


def _decode_lines(
    lines: Iterable[bytes],
    head: Callable[[], bytes],
    name: str,
    encoding: str,
    info: codecs.CodecInfo,
) -> Iterator[tuple[int, str]]:
    """Decode byte ``lines`` (split after b"\\n"; for UTF-16/32, any pieces); ``head()`` gives the
    first bytes, which tell UTF-16 / UTF-32 read with another encoding."""
    wide = _is_wide(info)
    limit = max_line_bytes()
    try:
        sniffed = sniff_wide_encoding(head())
        if sniffed is not None and not wide:
            raise DataError(_wide_advice(name, sniffed))
        if wide:
            yield from _wide_lines(_pieces(lines, limit), name, encoding, info, limit)
        else:
            yield from _byte_lines(_bounded_lines(lines, name, limit), name, encoding, info)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(
            f"{name}: the gzip stream is damaged ({e}); re-download or re-compress the file"
        ) from None
    except OSError as e:
        raise DataError(f"{name}: cannot be read ({e.strerror or e})") from None


def max_line_bytes() -> int:
    """The longest line, in bytes, any reader takes: :data:`MAX_LINE_BYTES`, or the environment
    variable ``FFNLP_MAX_LINE_BYTES`` (a positive integer; ``0`` or ``none`` for no limit).
    A longer line is a :class:`DataError` as soon as the reader has read that much of it, so
    one endless line (``--input /dev/zero``) costs the limit and no more."""
    raw = os.environ.get(MAX_LINE_ENV, "").strip()
    if not raw:
        return MAX_LINE_BYTES
    if raw.lower() in ("0", "none"):
        return 2**62
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = -1
    if value < 1:
        raise ConfigError(
            f"{MAX_LINE_ENV} must be a positive number of bytes (or 0 / none for no limit); "
            f"got {shown(raw)}"
        )
    return value


def _too_long(name: str, line: int, offset: int, limit: int) -> DataError:
    return DataError(
        f"{name}: line {line} (from byte {offset}) is longer than {limit:,} bytes, the longest "
        f"line ffnlp reads; is it a binary file or a corpus without line breaks? Break it into "
        f"lines (one sentence or document a line), or raise the limit with {MAX_LINE_ENV}=BYTES"
    )


def _bounded_lines(fh: Iterable[bytes], name: str, limit: int) -> Iterator[bytes]:
    """The lines of ``fh`` (each with its b"\\n"), none longer than ``limit`` bytes: a file is
    read with ``readline(limit + 1)``, so an over-long line is found after ``limit`` bytes."""
    readline = getattr(fh, "readline", None)
    number, offset = 0, 0
    if readline is None:  # an iterable of byte lines (already in memory)
        for raw in fh:
            number += 1
            if len(raw) - raw.endswith(b"\n") > limit:
                raise _too_long(name, number, offset, limit)
            offset += len(raw)
            yield raw
        return
    while True:
        raw = readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
            raise _too_long(name, number, offset, limit)
        offset += len(raw)
        yield raw


def _pieces(fh: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """``fh`` in pieces of bounded size (UTF-16 / UTF-32, split into lines after decoding)."""
    # read1: what is there now, up to size (a pipe or terminal streams); read: up to size
    read = getattr(fh, "read1", None) or getattr(fh, "read", None)
    if read is None:
        yield from fh
        return
    size = max(1, min(limit + 1, 1 << 16))
    while piece := read(size):
        yield piece


def _byte_lines(
    fh: Iterable[bytes], name: str, encoding: str, info: codecs.CodecInfo
) -> Iterator[tuple[int, str]]:
    """Encodings where b"\\n" is always a line break (UTF-8, Latin-1, cp1252...)."""
    decode = info.decode
    offset = 0  # byte offset of the current line's start in the (decompressed) stream
    for number, raw in enumerate(fh, start=1):  # a binary file iterates on b"\\n" only
        try:
            text = decode(raw)[0]
        except UnicodeDecodeError as e:
            raise DataError(_encoding_message(name, number, offset, encoding, e)) from None
        if "\x00" in text:
            raise DataError(_nul_message(name, number, offset + raw.index(b"\x00")))
        text = _strip_line_end(text)
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        offset += len(raw)
        yield number, text


def _wide_lines(
    chunks: Iterable[bytes],
    name: str,
    encoding: str,
    info: codecs.CodecInfo,
    limit: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, str]]:
    """UTF-16 / UTF-32: decode the pieces incrementally, then split on "\\n"."""
    decoder = info.incrementaldecoder("strict")
    width = 4 if info.name.startswith("utf-32") else 2  # bytes of a character (at least)
    number, offset = 0, 0  # offset: bytes of the lines before, as counted from their characters
    pending = ""
    for chunk in chunks:
        try:
            text = pending + decoder.decode(chunk)
        except UnicodeError as e:  # the UTF-16 decoder raises a bare one for a missing mark
            good = e.object[: e.start] if isinstance(e, UnicodeDecodeError) else b""
            done = codecs.decode(good, info.name, "replace")
            line = number + done.count("\n") + 1  # pending holds no line break
            raise DataError(
                f"{name}: line {line} is not valid {encoding}; pass --encoding with the file's "
                "real encoding"
            ) from None
        *lines, pending = text.split("\n")
        for line_text in lines:
            number += 1
            if len(line_text) * width > limit:
                raise _too_long(name, number, offset, limit)
            offset += (len(line_text) + 1) * width
            yield number, _checked_wide_line(name, number, line_text)
        if len(pending) * width > limit:
            raise _too_long(name, number + 1, offset, limit)
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeError:
        raise DataError(
            f"{name}: line {number + 1} ends in the middle of a character (a truncated "
            f"{encoding} file?)"
        ) from None
    if pending:
        number += 1
        yield number, _checked_wide_line(name, number, pending)


def _checked_wide_line(name: str, number: int, text: str) -> str:
    if "\x00" in text:
        raise DataError(
            f"{name}: line {number} holds a NUL character, which no text file has; is it a "
            "binary file?"
        )
    text = _strip_line_end(text)
    return text[1:] if number == 1 and text.startswith("\ufeff") else text


def _strip_line_end(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text


def _nul_message(name: str, line: int, byte: int) -> str:
    return (
        f"{name}: line {line} (byte {byte}) holds a NUL byte, which no text file has; is it a "
        "binary file, or UTF-16 / UTF-32 (then pass --encoding utf-16 or utf-32, or convert it "
        "to UTF-8)?"
    )


def _encoding_message(
    name: str, line: int, offset: int, encoding: str, e: UnicodeDecodeError
) -> str:
    bad = " ".join(f"0x{b:02x}" for b in e.object[e.start : e.end])
    if codecs.lookup(encoding).name == "utf-8":
        fix = "pass --encoding latin-1 (or the file's real encoding)"
    else:
        fix = "pass --encoding with the file's real encoding"
    return f"{name}: line {line} (byte {offset + e.start}) is not valid {encoding} ({bad}); {fix}"


# ---------------------------------------------------------------------------------------------
# formats


def detect_format(path: str | Path, encoding: str = "utf-8") -> str:
    """The format ``read_labeled(format="auto")`` would use for ``path``.

    By suffix first (after a ``.gz``): ``.csv``, ``.tsv``, ``.jsonl`` / ``.json`` / ``.ndjson``;
    otherwise by content: the first non-blank line (decoded with ``encoding``) starting with
    ``__label__`` means ``fasttext``, anything else ``label-text``.
    """
    p = _check_file(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffixes[-1]]
    lines = _file_lines(p, encoding, _decoder_for(encoding))
    try:
        for _, line in lines:
            stripped = line.strip(_ASCII_SPACE + "\r")
            if stripped:
                return "fasttext" if stripped.startswith(FASTTEXT_PREFIX) else "label-text"
    finally:
        lines.close()
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
    path = as_path(path, "a data file")
    columnar = _columnar_format(path, format)
    if columnar is not None:
        from ffnlp.text.columnar import read_labeled_columnar

        return read_labeled_columnar(path, columnar, text_column, label_column, skip_invalid)
    p = _check_file(path)
    fmt = detect_format(p, encoding) if format == "auto" else format
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
        data.lines.append(number)
    if multilabel:
        data.label_sets = label_sets
    if not data.texts:
        why = f" ({data.skipped} malformed lines skipped)" if data.skipped else ""
        raise DataError(
            f"{p}: no examples found{why}; is this the right file and --format ({fmt})?"
        )
    return data


def _columnar_format(path: str | Path, format: str) -> str | None:
    """``parquet`` / ``arrow`` when asked for, or when ``auto`` finds such a file or folder."""
    from ffnlp.text.columnar import COLUMNAR_FORMATS, columnar_format

    if format in COLUMNAR_FORMATS:
        return format
    return columnar_format(path) if format == "auto" else None


def _skip_hint() -> str:
    return " (or pass --skip-invalid to skip malformed lines and count them)"


# (line, (label, text) or a problem); the label is a tuple for several labels or a label list
_Record = tuple[int, "tuple[str | tuple[str, ...], str] | _Invalid"]


def _distinct(labels: list[str]) -> tuple[str, ...]:
    """The labels in their order, each once."""
    return tuple(dict.fromkeys(labels))


def _label_text_records(lines: Iterator[tuple[int, str]]) -> Iterator[_Record]:
    for number, line in lines:
        stripped = line.strip(_ASCII_SPACE)
        if not stripped:
            continue
        if line[0] in _ASCII_SPACE:
            yield (
                number,
                _Invalid(
                    "no label: the line starts with a space or tab; each line must be "
                    "'LABEL text' (the label first, then a space or tab, then the text)"
                ),
            )
            continue
        m = _LABEL_TEXT.fullmatch(stripped)
        assert m is not None  # a non-blank line always has a first field
        label, text = m.group(1), m.group(2)
        if not text:
            yield (
                number,
                _Invalid(
                    f"a label ({shown(label)}) but no text; each line must be 'LABEL text' "
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
            quoted = ", ".join(shown(label, 40) for label in labels[:10]) + (
                ", ..." if len(labels) > 10 else ""
            )
            what = f"a label ({quoted})" if len(labels) == 1 else f"labels ({quoted})"
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
        columns = ", ".join(shown(h, 40) for h in header[:20]) + (
            ", ..." if len(header) > 20 else ""
        )
        what = "; ".join(
            f"no column {shown(name)} (choose one with {option}, CLI: --set data.{option}=NAME)"
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
                f"an empty label in {shown(label)} (labels separated by {separator!r}); remove the "
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
        except RecursionError:
            yield number, _Invalid("JSON nested too deeply to read; one flat object a line")
            continue
        except ValueError as e:  # an integer of more than 4300 digits
            reason = str(e).split(":")[0]
            yield number, _Invalid(f"not valid JSON ({reason}); write long labels as strings")
            continue
        if not isinstance(obj, dict):
            yield number, _Invalid(f"a JSON {type(obj).__name__}, not an object; one object a line")
            continue
        key = label_column
        if key == "label" and key not in obj and "labels" in obj:
            key = "labels"  # {"text": ..., "labels": [...]}, the usual multi-label spelling
        missing = [k for k in (text_column, key) if k not in obj]
        if missing:
            keys = (
                ", ".join(shown(k, 40) for k in list(obj)[:20]) + (", ..." if len(obj) > 20 else "")
                or "none"
            )
            names = " and ".join(shown(k) for k in missing)
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
            yield number, _Invalid(f"{shown(text_column)} is a {type(text).__name__}, not a string")
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
            quoted = json.dumps(bad)
            quoted = quoted if len(quoted) <= 80 else quoted[:80] + "..."
            yield (
                number,
                _Invalid(
                    f"the label {quoted} is not a string, integer or boolean; write labels as strings"
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
