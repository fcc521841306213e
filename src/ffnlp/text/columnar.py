"""Labelled examples from columnar files: Parquet, Arrow, and Hugging Face datasets saved to disk.

- ``parquet``: a ``.parquet`` file, or a folder of them (read in name order);
- ``arrow``: an Arrow IPC file (``.arrow`` / ``.feather``, the random-access "file" format) or
  stream (the format of ``datasets``' cache files), or a folder written by
  ``datasets.Dataset.save_to_disk`` (its ``state.json`` lists the ``.arrow`` files in order).

The text and label columns are chosen as for CSV (``text_column`` / ``label_column``). A label
column of ``datasets``' ``ClassLabel`` type (integers, with the names in the file's metadata or
the folder's ``dataset_info.json``) is read as the names. Rows are checked like JSON Lines
objects: a null or non-string text, or a label that is not a string, an integer or a boolean, is
an error naming the file and row (1-based), or is skipped and counted with ``skip_invalid``.

Reading needs pyarrow, an optional dependency: ``pip install 'ffnlp[parquet]'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from ffnlp.errors import ConfigError, DataError, shown
from ffnlp.text.labeled import MAX_REPORTED_SKIPS, LabeledData

COLUMNAR_FORMATS = ("parquet", "arrow")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow"}
_STREAM_START = b"\xff\xff\xff\xff"  # an Arrow IPC stream's first message marker


def pyarrow() -> ModuleType:
    """The pyarrow module, or a ConfigError that says how to install it."""
    try:
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401  (sub-modules used through pa)
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ConfigError(
            "reading Parquet and Arrow data needs pyarrow, an optional dependency: "
            "pip install 'ffnlp[parquet]' (or pip install pyarrow)"
        ) from None
    return pa


def columnar_format(path: str | Path) -> str | None:
    """``parquet`` or ``arrow`` when ``path`` is such a file or folder (by name, by its first bytes,
    or by the files of a folder), else None."""
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            return "arrow"
        kinds = {_SUFFIXES.get(f.suffix.lower()) for f in p.iterdir() if f.is_file()} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    if p.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[p.suffix.lower()]
    if not p.is_file():
        return None
    with p.open("rb") as fh:
        head = fh.read(6)
        fh.seek(max(p.stat().st_size - 4, 0))
        tail = fh.read(4)
    if head[:4] == b"PAR1" and tail == b"PAR1":  # Parquet starts and ends with its magic
        return "parquet"
    if head == b"ARROW1" or head[:4] == _STREAM_START:  # an IPC file, or a stream's first message
        return "arrow"
    return None


def read_labeled_columnar(
    path: str | Path,
    format: str,
    text_column: str = "text",
    label_column: str = "label",
    skip_invalid: bool = False,
) -> LabeledData:
    """Read a Parquet or Arrow file (or folder) as labelled examples (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    pa = pyarrow()
    data = LabeledData(texts=[], labels=[], path=p, format=format)
    row = 0
    for file in _files(p, format):
        table, names = _read(pa, file, format, text_column, label_column)
        texts = table.column(text_column).to_pylist()
        labels = table.column(label_column).to_pylist()
        for text, label in zip(texts, labels, strict=True):
            row += 1
            problem = _check(text, label, text_column, label_column, names)
            if isinstance(problem, tuple):
                data.labels.append(problem[0])
                data.texts.append(problem[1])
                continue
            message = f"{file}: row {row}: {problem}"
            if not skip_invalid:
                raise DataError(
                    message + " (or pass --skip-invalid to skip such rows and count them)"
                )
            data.skipped += 1
            if len(data.skipped_lines) < MAX_REPORTED_SKIPS:
                data.skipped_lines.append(row)
                data.problems.append(message)
    if not data.texts:
        why = f" ({data.skipped} invalid rows skipped)" if data.skipped else ""
        raise DataError(f"{p}: no examples found{why}")
    return data


def _files(p: Path, format: str) -> list[Path]:
    """The data files of ``p`` in reading order."""
    if p.is_file():
        return [p]
    if (p / "dataset_dict.json").is_file():
        splits = sorted(f.name for f in p.iterdir() if f.is_dir())
        raise DataError(
            f"{p} holds several splits saved by datasets ({', '.join(splits)}); pass one split's "
            f"folder, e.g. {p / (splits[0] if splits else 'train')}"
        )
    state = p / "state.json"
    if state.is_file():
        files = _read_json(state).get("_data_files")
        names = [f.get("filename") if isinstance(f, dict) else None for f in files or []]
        if (
            not isinstance(files, list)
            or not files
            or not all(isinstance(n, str) and n and Path(n).name == n for n in names)
        ):
            raise DataError(
                f"{state}: _data_files must list the folder's files as "
                '[{"filename": "data-00000-of-00001.arrow"}, ...]; save the dataset again'
            )
        return [p / str(n) for n in names]
    suffixes = [s for s, f in _SUFFIXES.items() if f == format]
    found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
    if not found:
        raise DataError(f"{p}: a folder with no {' or '.join(suffixes)} files")
    return found


def _read(
    pa: Any, file: Path, format: str, text_column: str, label_column: str
) -> tuple[Any, list[str] | None]:
    """The two columns of one file as a table, and the label names of a ClassLabel column."""
    if not file.is_file():
        raise DataError(f"{file}: no such file (listed in the folder's state.json)")
    try:
        if format == "parquet":
            schema = pa.parquet.read_schema(file)
            _check_columns(file, schema.names, text_column, label_column)
            table = pa.parquet.read_table(file, columns=[text_column, label_column])
        else:
            table = _read_ipc(pa, file)
            _check_columns(file, table.schema.names, text_column, label_column)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{file}: not a readable {format} file ({exc}); check --format") from None
    return table, _class_names(file, table.schema, label_column)


def _read_ipc(pa: Any, file: Path) -> Any:
    """An Arrow IPC file or stream, memory-mapped."""
    with pa.memory_map(str(file)) as source:
        try:
            return pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from one of the folder's files (``state.json``, ``dataset_info.json``);
    a DataError naming the file for every way that can fail (unreadable, not UTF-8, not JSON,
    nested too deeply, not an object)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 (byte {exc.start}: 0x{raw[exc.start]:02x}); JSON files are "
            "UTF-8: save the dataset again"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "save the dataset again"
        ) from None
    except (ValueError, RecursionError):  # an integer of 5000 digits; nesting too deep
        raise DataError(f"{path}: not JSON that can be read; save the dataset again") from None
    if not isinstance(value, dict):
        raise DataError(
            f"{path}: a JSON {type(value).__name__}, not an object; save the dataset again"
        )
    return value


def _check_columns(file: Path, names: list[str], text_column: str, label_column: str) -> None:
    missing = [
        (option, name)
        for option, name in (("text_column", text_column), ("label_column", label_column))
        if name not in names
    ]
    if missing:
        what = "; ".join(
            f"no column {shown(name)} (choose one with {option}, CLI: --set data.{option}=NAME)"
            for option, name in missing
        )
        columns = ", ".join(shown(n, 40) for n in names[:20]) + (", ..." if len(names) > 20 else "")
        raise DataError(f"{file}: {what}; the table has the columns {columns}")


def _class_names(file: Path, schema: Any, label_column: str) -> list[str] | None:
    """The names of a ``datasets`` ClassLabel column, from the schema's metadata or the folder's
    dataset_info.json; None for any other column."""
    features: Any = None
    source = f"{file}'s schema metadata (huggingface)"
    meta = schema.metadata or {}
    if b"huggingface" in meta:
        try:
            features = json.loads(meta[b"huggingface"])["info"]["features"]
        except (ValueError, RecursionError, KeyError, TypeError):  # ValueError: JSON, UTF-8
            features = None  # not the metadata datasets writes: the folder's file may say
    info = file.parent / "dataset_info.json"
    if features is None and info.is_file():
        features = _read_json(info).get("features")
        source = str(info)
    feature = features.get(label_column) if isinstance(features, dict) else None
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
        names = feature.get("names")
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
        raise DataError(
            f"{source}: features.{shown(label_column)}.names must be the list of the class names "
            f"(strings); got {shown(names)}; save the dataset again"
        )
    return None


def _check(
    text: object, label: object, text_column: str, label_column: str, names: list[str] | None
) -> tuple[str, str] | str:
    """``(label, text)`` of a valid row, else what is wrong with it."""
    if text is None:
        return f"{text_column!r} is null; every row needs a text"
    if not isinstance(text, str):
        return f"{text_column!r} is a {type(text).__name__}, not a string"
    if isinstance(label, list):
        return "the label is a list; multi-label examples are not supported"
    if label is None or isinstance(label, dict | float | bytes):
        return (
            f"the label {shown(label)} in {label_column!r} is not a string, integer or boolean; "
            "write labels as strings"
        )
    if names is not None and isinstance(label, int) and not isinstance(label, bool):
        if label == -1:
            return "the label is -1 (datasets' mark for 'no label': a test split without labels?)"
        if not 0 <= label < len(names):
            return f"the label {label} is not a class of {label_column!r} (0..{len(names) - 1})"
        label = names[label]
    label_str = str(label).lower() if isinstance(label, bool) else str(label)
    label_str, text = label_str.strip(" \t"), text.strip(" \t")
    if not label_str:
        return "the label is empty; every row needs a label"
    if not text:
        return "the text is empty; remove the row or give it a text"
    return label_str, text
