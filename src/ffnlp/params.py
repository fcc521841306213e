"""The typed boundary of the Python API: each public function checks its arguments here.

Python does not check an annotation, so ``train_classifier(..., force="no")`` would take the
string as true, and ``most_similar("the", k=-1)`` would slice from the end. Every public function
and method checks what it is given with these few helpers before it does anything; a mistake is
one :class:`~ffnlp.errors.ConfigError` in scikit-learn's words, naming the parameter, the
function, what the value must be and what it was::

    The 'force' parameter of train_classifier must be a bool; got 'no' (str).

Each helper returns the value in its plain Python type (a NumPy integer as an ``int``, a list
or tuple of strings as a ``list``), so a caller can use what comes back.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from ffnlp.errors import ConfigError, shown

T = TypeVar("T")


def got(value: object) -> str:
    """How a wrong value is shown: its (shortened) repr and its type, e.g. ``'no' (str)``."""
    return f"{shown(value)} ({type(value).__name__})"


def fail(name: str, owner: str, must: str, value: object) -> ConfigError:
    """The error for parameter ``name`` of ``owner`` that ``must`` be something and is ``value``."""
    return ConfigError(f"The {name!r} parameter of {owner} must be {must}; got {got(value)}.")


def check_bool(value: object, name: str, owner: str) -> bool:
    """``value`` if it is a bool (``True``/``False``, NumPy's too); a string such as ``"no"``
    or a number is refused, since Python would count it as true."""
    if isinstance(value, bool):
        return value
    kind = type(value)
    if kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"):  # NumPy's bool
        return bool(value)
    raise fail(name, owner, "a bool", value)


def _range_words(
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> str:
    parts = []
    if ge is not None:
        parts.append(f">= {ge}")
    if gt is not None:
        parts.append(f"> {gt}")
    if le is not None:
        parts.append(f"<= {le}")
    if lt is not None:
        parts.append(f"< {lt}")
    return " and ".join(parts)


def check_int(
    value: object,
    name: str,
    owner: str,
    *,
    ge: int | None = None,
    le: int | None = None,
    also: tuple[int, ...] = (),
    must: str = "",
) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool, not a float) within
    ``ge``..``le``, or one of the special values ``also`` (e.g. -1 for "every label");
    ``must`` replaces the generated description in the message."""
    words = must or " ".join(p for p in ("an int", _range_words(ge=ge, le=le), _also(also)) if p)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise fail(name, owner, words, value)
    n = int(value)
    if n in also:
        return n
    if (ge is not None and n < ge) or (le is not None and n > le):
        raise fail(name, owner, words, value)
    return n


def _also(values: tuple[int, ...]) -> str:
    return f"(or {', '.join(str(v) for v in values)})" if values else ""


def check_number(
    value: object,
    name: str,
    owner: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    must: str = "",
) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool, not NaN or
    infinite) within the bounds."""
    words = must or " ".join(p for p in ("a finite number", _range_words(ge, gt, le, lt)) if p)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(name, owner, words, value)
    x = float(value)
    if (
        not math.isfinite(x)
        or (ge is not None and x < ge)
        or (gt is not None and x <= gt)
        or (le is not None and x > le)
        or (lt is not None and x >= lt)
    ):
        raise fail(name, owner, words, value)
    return x


def check_str(value: object, name: str, owner: str, *, choices: Iterable[str] = ()) -> str:
    """``value`` if it is a string (one of ``choices`` when they are given)."""
    options = tuple(choices)
    words = f"one of {', '.join(repr(c) for c in options)}" if options else "a str"
    if not isinstance(value, str) or (options and value not in options):
        raise fail(name, owner, words, value)
    return value


def check_strings(value: object, name: str, owner: str, *, what: str = "strings") -> list[str]:
    """``value`` as a list if it is a list, tuple or other iterable of strings (a string alone
    is refused: it would be read one character at a time)."""
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise fail(name, owner, f"a list of {what}", value)
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise fail(name, owner, f"a list of {what}, and item {i} is not one", item)
    return items


def check_instances(value: object, name: str, owner: str, kind: type[T], what: str) -> list[T]:
    """``value`` as a list if it is an iterable (not a string) of ``kind`` instances;
    ``what`` names them in the message (e.g. "ffnlp.training.Callback instances")."""
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise fail(name, owner, f"a list of {what}", value)
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            raise fail(name, owner, f"a list of {what}, and item {i} is not one", item)
    return items


def check_path(value: object, name: str, owner: str, *, optional: bool = False) -> Path | None:
    """``value`` as a :class:`Path` if it is a str or ``os.PathLike`` (None too when
    ``optional``); an empty string is refused (it names no file)."""
    if value is None and optional:
        return None
    words = "a file or folder name (str or pathlib.Path)" + (" or None" if optional else "")
    if not isinstance(value, (str, os.PathLike)) or value == "":
        raise fail(name, owner, words, value)
    return Path(value)
