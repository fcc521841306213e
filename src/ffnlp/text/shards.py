"""Training input in several files (shards): a glob or a folder, split among the processes.

``--train 'data/part-*.txt'`` (quoted, so that the shell leaves the pattern to ffnlp) or
``--train data/parts/`` (a folder: its files, hidden ones left out) names the shards, taken in
sorted name order. One process reads every shard in that order, as if they were one file. Under
torchrun, rank r of N reads shards r, r + N, r + 2N, ... and no other: no process reads the whole
corpus. Fewer shards than processes is refused (a process without a shard would have no data).

What every rank must agree on (the vocabulary, the label set, the featurizer) is built from the
shards of all ranks through :func:`in_shard_order`: each rank computes its part per shard, the
parts are gathered and put back in shard order, so that the result is the one a single process
would build from all the shards.

A folder of Parquet files (or a saved ``datasets`` folder) stays one columnar data set for the
classifier, as before: it is read whole, not as shards.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ffnlp.errors import ConfigError, DataError, shown
from ffnlp.text.columnar import columnar_format
from ffnlp.training import distributed

GLOB_CHARACTERS = frozenset("*?[")

# the shards this process read for training, in the order it read them (summary.json records
# them per rank); reset by every run
READ: list[str] = []

T = TypeVar("T")


def is_pattern(spec: object) -> bool:
    """Whether ``spec`` is a glob pattern (holds ``*``, ``?`` or ``[``) rather than a file."""
    return isinstance(spec, (str, os.PathLike)) and bool(GLOB_CHARACTERS & set(os.fspath(spec)))


def names_shards(spec: object, columnar_ok: bool = False) -> bool:
    """Whether ``spec`` names several files: a glob pattern, or a folder (other than a columnar
    data set when ``columnar_ok``)."""
    if not isinstance(spec, (str, os.PathLike)):
        return False
    if is_pattern(spec):
        return not Path(spec).exists()  # a file whose name holds "[" is that file
    p = Path(spec)
    if not p.is_dir():
        return False
    return not (columnar_ok and _columnar(p))


def _columnar(p: Path) -> bool:
    """Whether the folder ``p`` holds a columnar data set (read as a whole, not as shards)."""
    try:
        return columnar_format(p) is not None
    except OSError:
        return False


def expand(spec: str | os.PathLike[str], option: str) -> list[Path]:
    """The shard files ``spec`` names, in sorted order; a DataError naming ``option`` when it
    names none."""
    text = os.fspath(spec)
    if is_pattern(spec) and not Path(spec).exists():
        found = [Path(p) for p in glob.glob(text, recursive=True)]
        files = sorted(p for p in found if p.is_file())
        if not files:
            raise DataError(
                f"{option} {text}: the pattern matches no file; check the pattern (quote it, so "
                "that the shell does not expand it)"
            )
        return files
    folder = Path(spec)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(
            f"{option} {folder}: the folder holds no file; give a data file, or a folder of "
            "shards (or of Parquet files)"
        )
    return files


def problems(option: str, spec: object) -> list[str]:
    """What is wrong with the shards ``spec`` names (nothing when it names none): empty pattern
    or folder, an unreadable shard, fewer shards than processes."""
    if not names_shards(spec, columnar_ok=True):
        return []
    assert isinstance(spec, (str, os.PathLike))
    try:
        files = expand(spec, option)
    except (DataError, OSError) as exc:
        return [str(exc)]
    unreadable = [p for p in files if not os.access(p, os.R_OK)]
    if unreadable:
        return [f"{option} {unreadable[0]}: cannot be read (permission denied)"]
    world = distributed.world_size()
    if len(files) < world:
        return [too_few(option, spec, len(files), world)]
    return []


def too_few(option: str, spec: object, shards: int, world: int) -> str:
    return (
        f"{option} {describe(spec)}: {shards} shard(s) for {world} processes; each process "
        f"reads its own shards and needs at least one: split the input into at least {world} "
        f"files, or run at most {shards} processes"
    )


def mine(spec: str | os.PathLike[str], option: str) -> tuple[list[int], list[Path]]:
    """This rank's shards of ``spec``: their positions among all the shards, and their paths
    (every shard with one process)."""
    files = expand(spec, option)
    world, me = distributed.world_size(), distributed.rank()
    if len(files) < world:
        raise ConfigError(too_few(option, spec, len(files), world))
    positions = list(range(me, len(files), world))
    return positions, [files[i] for i in positions]


def record(path: str | os.PathLike[str]) -> None:
    """Note that this process read the training shard ``path`` (for summary.json)."""
    READ.append(os.fspath(path))


def in_shard_order(parts: Mapping[int, T], what: str) -> list[T]:
    """Every rank's ``parts`` (shard position -> this rank's value for it) gathered and listed in
    shard order: with one process, its own values in order."""
    gathered = distributed.gather_objects(dict(parts), what)
    merged: dict[int, Any] = {}
    for rank_parts in gathered:
        merged.update(rank_parts)
    return [merged[i] for i in sorted(merged)]


def read_shards(
    spec: str | os.PathLike[str], option: str, read: Callable[[Path], T]
) -> tuple[list[int], list[T]]:
    """``read`` applied to each of this rank's shards (recorded as read), with their positions."""
    positions, paths = mine(spec, option)
    values = []
    for path in paths:
        values.append(read(path))
        record(path)
    return positions, values


def describe(spec: object) -> str:
    return shown(spec) if not isinstance(spec, (str, os.PathLike)) else os.fspath(spec)
