"""The presets shipped with ffnlp: the TOML configurations behind every documented result.

The clone's ``configs/`` folder and this package's copies are one set (tests/test_presets.py keeps
them identical), so that an installed ffnlp reaches every preset by name: ``--config sst2_ffnn``.

How ``--config VALUE`` is read (:func:`find_config`):

- a file at VALUE always wins (relative to the working folder); when its name is also a preset's,
  the log says that the file, not the preset, is used;
- otherwise a bare name (no folder part), with or without ``.toml``, that names a preset is the
  installed preset, and the log says so;
- otherwise the error names the path as resolved against the working folder, and the presets.

Paths inside a config file (data, lexicons, evaluation files) are relative to the working folder,
as paths on the command line are; presets hold none: data and evaluation files are given on the
command line.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ffnlp.errors import ConfigError
from ffnlp.fileio import resolved

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

INDEX = "index.toml"


@dataclass(frozen=True)
class Preset:
    """One shipped preset and what `ffnlp presets` says of it."""

    name: str
    task: str
    about: str
    result: str
    data: str

    @property
    def path(self) -> Path:
        return preset_path(self.name)

    def text(self) -> str:
        """The preset file's text, comments included (to copy and edit)."""
        return self.path.read_text(encoding="utf-8")


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


@functools.cache
def names() -> list[str]:
    """The shipped presets' names, sorted (read once: the installed folder does not change)."""
    return sorted(p.stem for p in _folder().glob("*.toml") if p.name != INDEX)


def preset_path(name: str) -> Path:
    """The installed file of preset ``name`` (a ConfigError naming the presets if there is none)."""
    stem = name[:-5] if name.endswith(".toml") else name
    if stem not in names():
        close = difflib.get_close_matches(stem, names(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"no preset named {stem!r}{hint} The presets: {', '.join(names())} (ffnlp presets)"
        )
    return _folder() / f"{stem}.toml"


def all_presets() -> list[Preset]:
    """Every shipped preset with its description, in name order."""
    index = tomllib.loads((_folder() / INDEX).read_text(encoding="utf-8"))
    return [Preset(name=n, **index[n]) for n in names()]


def get(name: str) -> Preset:
    """One preset by name (a ConfigError naming the presets if there is none)."""
    stem = preset_path(name).stem
    return next(p for p in all_presets() if p.name == stem)


def _preset_name(value: str) -> str | None:
    """The preset that a --config value names, if it is a bare name of one; else None."""
    if not value or os.sep in value or (os.altsep and os.altsep in value):
        return None
    stem = value[:-5] if value.endswith(".toml") else value
    return stem if stem in names() else None


def find_config(value: str | os.PathLike[str]) -> Path:
    """The file a ``--config`` value stands for: the file at that path when there is one, else
    the installed preset of that name; the choice is logged when both could be meant."""
    path = Path(value)
    name = _preset_name(os.fspath(value))
    if path.exists():
        if name is not None:
            log.info(
                "config %s: the file %s in the working folder is used, not the preset %r of the "
                "same name (ffnlp presets show %s prints the preset)",
                value,
                path.resolve(),
                name,
                name,
            )
        return path
    if name is not None:
        found = preset_path(name)
        log.info("config %s: the preset shipped with ffnlp (%s)", value, found)
        return found
    message = f"config file {resolved(path)} does not exist"
    if not path.is_absolute():
        message += (
            f"; give a TOML file or a preset name ({', '.join(names())}; ffnlp presets lists them)"
        )
    raise ConfigError(message)
