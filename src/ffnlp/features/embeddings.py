"""Pretrained word vectors in and out: word2vec text and binary, GloVe, fastText ``.vec``.

The formats people actually hold:

- ``word2vec-text``: a header line ``N D``, then ``word v1 ... vD`` lines (spaces; the C tool adds a
  trailing space, which is fine). fastText's ``.vec`` files are exactly this format.
- ``word2vec-binary``: the header line ``N D\\n``, then for each word ``word`` + a space + ``D``
  little-endian float32 values (the C tool follows each vector with ``\\n``; gensim 4 does not; both
  are read).
- ``glove``: ``word v1 ... vD`` lines with no header.

``load_vectors`` returns ``(words, vectors)`` with ``vectors`` a float32 array of shape (N, D) in file
order; ``save_vectors`` writes the two word2vec formats, which gensim's
``KeyedVectors.load_word2vec_format`` reads. A path may also be an ``ffnlp w2v`` run directory
(its ``vectors.bin`` is read). Files ending in ``.gz`` are decompressed on the fly.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ffnlp.errors import DataError, shown
from ffnlp.fileio import atomic_writer, resolved
from ffnlp.folders.layout import VECTORS

FORMATS = ("auto", "word2vec-text", "word2vec-binary", "glove", "fasttext-vec")
SAVE_FORMATS = ("word2vec-text", "word2vec-binary")
HEADER_BYTES = 4096  # the most of a first line read looking for the word2vec header "N D"
_FIELD_SEP = re.compile(r"[ \t]+")  # not str.split(): words may hold other Unicode spaces
RUN_DIR_FILES = (
    VECTORS,
    "vectors.txt",
)  # what a w2v run directory holds, in order of preference


def load_vectors(
    path: str | Path, format: str = "auto", encoding: str = "utf-8"
) -> tuple[list[str], np.ndarray]:
    """Read word vectors; return ``(words, vectors)``, vectors float32 of shape (N, D).

    ``format`` is one of ``auto`` (detected from the first lines), ``word2vec-text``,
    ``word2vec-binary``, ``glove`` (text without the header line) or ``fasttext-vec`` (= word2vec
    text). A malformed line or an inconsistent dimension raises :class:`DataError` naming the file
    and line.
    """
    if format not in FORMATS:
        raise DataError(
            f"format must be one of {', '.join(FORMATS)}; got {format!r} (loading vectors from {path})"
        )
    p = _resolve(Path(path))
    if format == "auto":
        format = detect_format(p, encoding)
    if format == "word2vec-binary":
        with _open_binary(p) as fh:
            return _read_binary(fh, p, encoding)
    with _open_binary(p) as fh:
        return _read_text(fh, p, encoding, header=format != "glove")


def save_vectors(
    path: str | Path,
    words: Sequence[str],
    vectors: np.ndarray,
    format: str = "word2vec-text",
) -> None:
    """Write ``words`` and their ``vectors`` (N, D) in word2vec text or binary format.

    The file is written atomically (:func:`ffnlp.fileio.atomic_writer`): an interrupted save or a
    full disk never leaves half a file under ``path``, nor a temporary file beside it.
    """
    if format not in SAVE_FORMATS:
        raise DataError(f"format must be one of {', '.join(SAVE_FORMATS)}; got {format!r}")
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise DataError(
            f"vectors must have shape (len(words), D) = ({len(words)}, D); got {matrix.shape}"
        )
    for i, w in enumerate(words):
        if not w or any(ch.isspace() for ch in w):
            raise DataError(
                f"word {i} ({w!r}) is empty or contains whitespace; the word2vec formats cannot store it"
            )
    n, dim = matrix.shape
    with atomic_writer(path, "wb") as fh:
        fh.write(f"{n} {dim}\n".encode())
        if format == "word2vec-binary":
            little = matrix.astype("<f4", copy=False)
            for w, row in zip(words, little, strict=True):
                fh.write(w.encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            buf = io.StringIO()
            for w, row in zip(words, matrix, strict=True):
                # repr-exact float32 round trip: 9 significant digits
                buf.write(w + " " + " ".join(f"{x:.9g}" for x in row.tolist()) + "\n")
            fh.write(buf.getvalue().encode("utf-8"))


def detect_format(path: str | Path, encoding: str = "utf-8") -> str:
    """Guess ``word2vec-binary``, ``word2vec-text`` or ``glove`` from the start of the file."""
    p = _resolve(Path(path))
    with _open_binary(p) as fh:
        first = fh.readline(HEADER_BYTES)  # "N D": short; never an endless line
        rest = fh.read(4096)
    if not first.strip():
        raise DataError(f"{p}: the file is empty (expected word vectors)")
    header = _parse_header(first)
    if header is None:
        return "glove"
    _, dim = header
    # word2vec text: the next line is a word and `dim` numbers; binary: raw float bytes follow
    line = rest.split(b"\n", 1)[0]
    try:
        fields = line.decode(encoding).split()
        [float(x) for x in fields[1:]]
        if len(fields) == dim + 1 or (not rest.strip()):
            return "word2vec-text"
    except (UnicodeDecodeError, ValueError):
        pass
    return "word2vec-binary"


# ------------------------------------------------------------------------------------------------
# readers


def _resolve(p: Path) -> Path:
    if p.is_dir():
        for name in RUN_DIR_FILES:
            if (p / name).is_file():
                return p / name
        raise DataError(
            f"{p} is a directory without {' or '.join(RUN_DIR_FILES)}; "
            "give a vectors file or an ffnlp w2v run directory"
        )
    if not p.is_file():
        raise DataError(f"vectors file {resolved(p)} does not exist")
    return p


def _open_binary(p: Path) -> io.BufferedIOBase:
    if p.suffix == ".gz":
        return gzip.open(p, "rb")
    return p.open("rb")


def _parse_header(line: bytes) -> tuple[int, int] | None:
    fields = line.split()
    if len(fields) != 2:
        return None
    try:
        n, dim = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return (n, dim) if n >= 0 and dim > 0 else None


def _decode(raw: bytes, p: Path, where: str, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{p}:{where}: bytes {raw[exc.start : exc.end]!r} are not valid {encoding}; "
            "pass the file's encoding (e.g. encoding='latin-1')"
        ) from None


def _read_text(
    fh: io.BufferedIOBase, p: Path, encoding: str, header: bool
) -> tuple[list[str], np.ndarray]:
    expected_n: int | None = None
    dim: int | None = None
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(fh, start=1):
        if lineno == 1 and header:
            parsed = _parse_header(raw)
            if parsed is None:
                raise DataError(
                    f"{p}:1: expected the word2vec header 'N D' (count and dimension); got "
                    f"{raw[:60].decode(encoding, 'replace').strip()!r}. For a file without a header "
                    "use format='glove'"
                )
            expected_n, dim = parsed
            continue
        text = _decode(raw, p, str(lineno), encoding)
        if not text.strip():
            continue  # a blank line (e.g. at the very end)
        fields = _FIELD_SEP.split(text.strip(" \t\r\n"))
        if len(fields) < 2:
            raise DataError(
                f"{p}:{lineno}: expected a word followed by numbers; got {text.strip()!r}"
            )
        word = fields[0]
        if dim is None:
            dim = len(fields) - 1
        if len(fields) - 1 != dim:
            raise DataError(
                f"{p}:{lineno}: {len(fields) - 1} numbers after {shown(word)}, expected {dim} "
                "(every vector must have the same dimension)"
            )
        try:
            vec = np.array(fields[1:], dtype=np.float32)
        except ValueError:
            bad = next(x for x in fields[1:] if not _is_float(x))
            raise DataError(
                f"{p}:{lineno}: {shown(bad)} after {shown(word)} is not a number"
            ) from None
        if word in seen:
            raise DataError(
                f"{p}:{lineno}: word {shown(word)} appears twice (first on line {seen[word]})"
            )
        seen[word] = lineno
        words.append(word)
        rows.append(vec)
    if dim is None or (not words and expected_n):
        raise DataError(f"{p}: no vectors in the file")
    if expected_n is not None and expected_n != len(words):
        raise DataError(
            f"{p}: the header says {expected_n} vectors but the file holds {len(words)}"
        )
    vectors = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return words, vectors


def _is_float(x: str) -> bool:
    try:
        float(x)
    except ValueError:
        return False
    return True


def _read_binary(fh: io.BufferedIOBase, p: Path, encoding: str) -> tuple[list[str], np.ndarray]:
    first = fh.readline(HEADER_BYTES)  # "N D": short; never an endless line
    parsed = _parse_header(first)
    if parsed is None:
        raise DataError(
            f"{p}:1: expected the word2vec header 'N D' (count and dimension); got "
            f"{first[:60].decode(encoding, 'replace').strip()!r}"
        )
    n, dim = parsed
    data = fh.read()
    offset = len(first)  # byte offset in the file, for messages
    pos = 0
    vec_bytes = dim * 4
    words: list[str] = []
    vectors = np.empty((n, dim), dtype=np.float32)
    seen: dict[str, int] = {}
    for i in range(n):
        while pos < len(data) and data[pos : pos + 1] in (b"\n", b"\r"):
            pos += 1  # the C tool's newline after each vector
        space = data.find(b" ", pos)
        if space < 0 or len(data) - (space + 1) < vec_bytes:
            raise DataError(
                f"{p}: the header says {n} vectors of dimension {dim} but the file ends after "
                f"{i} (byte {offset + pos}); the file is truncated or not word2vec binary"
            )
        word = _decode(data[pos:space], p, f"byte {offset + pos} (vector {i + 1})", encoding)
        if not word or "\n" in word:
            raise DataError(
                f"{p}: byte {offset + pos} (vector {i + 1}): malformed word {shown(word)}"
            )
        if word in seen:
            raise DataError(
                f"{p}: byte {offset + pos}: word {shown(word)} appears twice (vectors {seen[word]} and {i + 1})"
            )
        seen[word] = i + 1
        words.append(word)
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + vec_bytes
    if data[pos:].strip():
        raise DataError(
            f"{p}: {len(data) - pos} bytes follow the {n} vectors the header announces "
            f"(byte {offset + pos}); is the header right?"
        )
    return words, vectors
