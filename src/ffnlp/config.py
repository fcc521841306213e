"""Configuration: frozen dataclasses, TOML in and out, dotted settings, validation.

Each component owns a frozen dataclass whose fields carry their default, a help line and their
constraints (via :func:`option`).  A task's configuration nests those dataclasses.  Values arrive in
this order, later ones winning: defaults in code -> a TOML file (``--config``) -> settings (``--set
key=value`` on the command line).  :func:`build` checks the whole result and raises one
:class:`ConfigError` listing every problem, with a "did you mean" for misspelt keys.
:func:`dump_toml` writes the resolved configuration back, so that any run can be reproduced from
its ``config.toml``.

Inside ffnlp a setting is a dotted key with a typed value, ``{"train.lr": 0.1}``
(:data:`Settings`).  Text is read at the edges only, each kind by one function: ``key=value``
strings (``--set``, and the ``["train.lr=0.1"]`` form the public functions accept) by
:func:`parse_setting`, TOML files by :func:`load_toml`; and TOML is written by one writer,
:func:`toml_value` (with :func:`toml_string` and :func:`toml_key`) under :func:`dump_toml`.
"""

# Over 400 lines on purpose: one job (typed settings, the one --set and TOML reader and writer, validation that collects every problem); its parts share the coercion helpers.

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import itertools
import math
import numbers
import os
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from ffnlp.errors import ConfigError, cut, shown
from ffnlp.fileio import write_atomic
from ffnlp.params import check_strings, fail
from ffnlp.presets import find_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable[Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with a help line and constraints checked by :func:`build`."""
    meta = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "ge": ge,
        "gt": gt,
        "le": le,
        "lt": lt,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type[T], **defaults: Any) -> T:
    """A nested dataclass field whose default is ``cls(**defaults)``.

    ``defaults`` lets a task change a shared component's defaults (e.g. the classifier monitors
    dev.accuracy where the trainer's own default is dev.loss); TOML and --set still override them.
    """
    return dataclasses.field(default_factory=lambda: cls(**defaults))


# ---------------------------------------------------------------------------------------------
# building a config from nested dicts


Settings = Mapping[str, Any]
"""Settings as ffnlp passes them inside: dotted keys ("train.lr", or a whole section such as
"train") with typed values (0.1, "adam", [1, 2], True), applied in the mapping's order over a
configuration. A plain mapping (not a class of its own) because it is what a user already
writes, what ``**settings`` keywords and a search space's values already are, and what
``json``, Optuna and TOML tables give; :func:`settings_of` checks and copies one at the
public boundary, so nothing inside changes a caller's mapping."""


def build(
    cls: type[T], data: Mapping[str, Any] | None = None, settings: Settings | Iterable[str] = ()
) -> T:
    """Make ``cls`` from ``data`` (as read from TOML) plus ``settings`` (typed, or the
    ``key=value`` text of --set); check it all.

    Raises one ConfigError that lists every problem found.
    """
    problems: list[str] = []
    return _build(cls, data, _pairs(settings, problems), problems)


def _build(
    cls: type[T],
    data: Mapping[str, Any] | None,
    pairs: Iterable[tuple[str, Any]],
    problems: list[str],
) -> T:
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"the configuration must be a table (a dict); got {shown(data)}")
    depth_problem = nesting_problem(data or {})
    if depth_problem:
        raise ConfigError(f"the configuration {depth_problem}")
    merged: dict[str, Any] = _deep_copy(dict(data or {}))
    for key, value in pairs:  # one by one, in order: a later value of a key wins
        _apply_setting(cls, merged, key, value, problems)
    obj = _from_dict(cls, merged, "", problems)
    raise_problems(problems)
    return obj


def _pairs(settings: Settings | Iterable[str], problems: list[str]) -> Iterable[tuple[str, Any]]:
    """(key, value) pairs of typed settings, or of ``key=value`` strings read one by one."""
    if isinstance(settings, Mapping):
        return settings.items()
    return _parsed(settings, problems)


def resolve(
    cls: type[T], config: Any = None, settings: Settings | Iterable[str] = (), **keywords: Any
) -> T:
    """A task's configuration from defaults, then ``config`` (an instance of ``cls``, a TOML path
    or a dict), then ``settings`` ({"train.lr": 0.1}, or ``key=value`` text), then keyword
    settings (``**{"train.lr": 0.1}``)."""
    if isinstance(config, cls):
        data = to_dict(config)
    elif isinstance(config, (str, os.PathLike)):
        data = load_config_file(config)
    elif config is None or isinstance(config, Mapping):
        data = dict(config or {})
    else:
        raise ConfigError(
            f"config must be a {cls.__name__}, a TOML file name or a dict; got {config!r}"
        )
    extra = typed_settings(keywords)
    problems: list[str] = []
    pairs = itertools.chain(_pairs(settings, problems), extra.items())
    return _build(cls, data, pairs, problems)


def settings_of(value: object, name: str, owner: str) -> dict[str, Any]:
    """The settings a public function was given as its ``name`` parameter, as typed settings:
    a mapping ({"train.epochs": 5}, values checked by :func:`typed_settings`) or a list of
    ``key=value`` strings (["train.epochs=5"], read by :func:`parse_setting`); anything else is
    a ConfigError naming the parameter and ``owner``."""
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise fail(name, owner, "a mapping with dotted keys (str)", bad[0])
        return typed_settings(value, finite=False)
    items = check_strings(value, name, owner, what='"key=value" strings')
    return parse_settings(items)


def typed_settings(values: Mapping[str, Any], finite: bool = True) -> dict[str, Any]:
    """``values`` ({"train.lr": 0.1}) copied, each value checked to be one a configuration can
    hold (a finite number, a string, a bool, a list or table of them); tuples become lists, as
    TOML reads them. One ConfigError naming every setting that is not. ``finite=False`` lets
    NaN and infinity through to the option's own check (which names the key and the bound),
    as a TOML file's or --set's ``nan`` goes."""
    out: dict[str, Any] = {}
    problems = []
    for key, value in values.items():
        plain = _plain_value(value, finite)
        if plain is _NOT_PLAIN:
            problems.append(
                f"the setting {shown(key)} must be a finite number, a string, a bool or a list of "
                f"them; got {shown(value)} ({type(value).__name__})"
            )
        else:
            out[key] = plain
    raise_problems(problems)
    return out


_NOT_PLAIN = object()


def _plain_value(value: Any, finite: bool = True) -> Any:
    """``value`` as a configuration holds it (bool, int, float, str, list, dict), or _NOT_PLAIN."""
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) or not finite else _NOT_PLAIN
    if isinstance(value, (list, tuple)):
        items = [_plain_value(v, finite) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items) else items
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        table = {k: _plain_value(v, finite) for k, v in value.items()}
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in table.values()) else table
    return _NOT_PLAIN


def merge(*parts: Settings) -> dict[str, Any]:
    """Several settings as one, applied in order: a key given again takes its later value and its
    later place (so that ``train.lr`` after ``train`` still wins, as it would applied one by one)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out.pop(key, None)
            out[key] = value
    return out


def parse_setting(text: str) -> tuple[str, Any]:
    """One ``key=value`` string (``--set``'s form) as a dotted key and a typed value: the value
    is read as TOML (numbers, booleans, lists, quoted strings), else kept as a bare string. The
    one reader of that text in ffnlp; a ConfigError when there is no ``=``."""
    found = _parse_one(text)
    if isinstance(found, str):
        raise ConfigError(found)
    return found


def parse_settings(items: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings (``--set``'s form) as typed settings with the same effect applied in
    order (a key given again takes its later value and place, see :func:`merge`); one
    ConfigError naming every string without ``=``."""
    problems: list[str] = []
    out = merge(*({key: value} for key, value in _parsed(items, problems)))
    raise_problems(problems)
    return out


def _parse_one(text: str) -> tuple[str, Any] | str:
    if "=" not in text:
        return f"--set expects key=value (e.g. train.lr=0.1); got {text!r}"
    key, raw = text.split("=", 1)
    return key.strip(), _parse_value(raw.strip())


def _parsed(items: Iterable[str], problems: list[str]) -> Iterable[tuple[str, Any]]:
    """``key=value`` strings read one by one, in order (duplicates kept); problems collected."""
    for item in items:
        found = _parse_one(item)
        if isinstance(found, str):
            problems.append(found)
        else:
            yield found


def load_config_file(value: str | os.PathLike[str]) -> dict[str, Any]:
    """A --config value read: a TOML file, or a preset shipped with ffnlp named without a folder
    (``sst2_ffnn``); a file of that name in the working folder wins (ffnlp.presets)."""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"the config must be a TOML file name (str or Path); got {value!r}")
    return load_toml(find_config(value))


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; every way it can fail is a ConfigError naming the file (and the
    position, for a syntax error)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"the config must be a TOML file name (str or Path); got {path!r}")
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory; pass a TOML file (--config FILE)")
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p} is not UTF-8 (byte {exc.start}: 0x{raw[exc.start]:02x}); TOML files are UTF-8: "
            f"convert it (iconv -f latin1 -t utf-8 {p.name} > fixed.toml)"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit integer, arrays nested too deep
        raise ConfigError(
            f"{p} is not valid TOML: {str(exc).split(':')[0] or 'nested too deeply'}"
        ) from None
    problem = nesting_problem(data)
    if problem:
        raise ConfigError(f"{p} {problem}")
    return data


MAX_NESTING = 32
"""How deeply the tables and arrays of a configuration or search-space file may nest: an option is
two or three keys deep (``model.mlp.hidden``); a 3,000-part dotted key is no option, and its
nesting would end every reader that walks it in Python's RecursionError."""


def nesting_problem(data: Any, limit: int = MAX_NESTING) -> str | None:
    """What is nested too deeply in ``data`` (tables and arrays, as TOML reads them), e.g.
    "nests tables more than 32 deep at a.a.a.a...", or None: found without recursion."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            where = ".".join(path[:8])
            return (
                f"nests tables or arrays more than {limit} deep (at {shown(where)}...); "
                "configuration keys are a few parts long, e.g. train.lr or model.mlp.hidden"
            )
        if isinstance(value, Mapping):
            stack.extend((v, (*path, str(k))) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, (*path, f"[{i}]")) for i, v in enumerate(value))
    return None


def replace(obj: T, **changes: Any) -> T:
    """``dataclasses.replace`` with validation of the changed values."""
    data = to_dict(obj)
    data.update(changes)
    return build(type(obj), data)


def join_problems(problems: list[str], where: str = "in the configuration") -> str:
    """One problem as it is; several as a count and one indented line each."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems {where}:\n" + "\n".join(f"  - {p}" for p in problems)


def raise_problems(
    problems: list[str], where: str = "in the configuration", error: type[Exception] = ConfigError
) -> None:
    """One error (a ConfigError, whose ``problems`` keeps them, unless ``error`` says another
    class) listing every problem; nothing when there is none."""
    if not problems:
        return
    if error is ConfigError:
        raise ConfigError(join_problems(problems, where), problems=problems)
    raise error(join_problems(problems, where))


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _apply_setting(
    cls: type, merged: dict[str, Any], key: str, value: Any, problems: list[str]
) -> None:
    parts = key.split(".")
    found = _find_option(cls, key, "--set", sections_ok=True)  # it must exist to be stored
    if isinstance(found, str):
        problems.append(found)
        return
    node = merged
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            problems.append(f"--set {key}: {part} is not a section in the config file")
            return
    node[parts[-1]] = _deep_copy(value) if isinstance(value, dict) else value


def tensorboard_settings(log_dir: str | Path | None, run: str = "") -> dict[str, Any]:
    """The setting that --tensorboard DIR stands for (none when it is not given); with ``run``,
    the run's own subfolder DIR/run (a seed of a repeat, a fold of a cross-validation:
    TensorBoard shows each as a run of its own)."""
    if log_dir is None:
        return {}
    return {"train.tensorboard": str(Path(log_dir) / run if run else log_dir)}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a config class, found by its dotted key (see :func:`find_option`)."""

    key: str  # dotted, e.g. "train.lr"
    type: Any  # its type annotation
    meta: Mapping[str, Any]  # help and constraints (see :func:`option`)
    section: type  # the dataclass it belongs to

    def problem(self, value: Any) -> str | None:
        """What ``value`` should be for this option ("a number", ">= 0", "one of ..."), or
        None when it fits: the check a TOML file or --set value gets."""
        coerced, err = _coerce(value, self.type)
        if err:
            return err
        return _check_constraints(coerced, self.meta)


def find_option(cls: type, key: str, via: str = "") -> Option:
    """The option ``key`` ("train.lr") of the config class ``cls``; a ConfigError saying what
    is allowed (with "did you mean") when there is none, or when ``key`` names a section.
    ``via`` says where the key was written (e.g. "--set"), for the message."""
    found = _find_option(cls, key, via)
    if isinstance(found, str):
        raise ConfigError(found)
    return found


def _find_option(cls: type, key: str, via: str, sections_ok: bool = False) -> Option | str:
    """:func:`find_option`'s answer, or the problem as a message. ``sections_ok``: a key that
    names a whole section is found too (--set leaves its value to the section's own check)."""
    parts = key.split(".")
    target_cls: Any = cls
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(target_cls)}
        if part not in fields:
            return _unknown_key(".".join(parts[:depth]), part, list(fields), via=via)
        ftype = _hints(target_cls)[part]
        is_section = isinstance(ftype, type) and dataclasses.is_dataclass(ftype)
        if depth < len(parts) - 1:
            if not is_section:
                where = f"{via} {cut(key)}" if via else cut(key)
                return f"{where}: {cut('.'.join(parts[: depth + 1]))} is a value, not a section"
            target_cls = ftype
        elif is_section and not sections_ok:
            return f"{cut(key)} is a section ([{cut(key)}]), not a value; name one of its options"
        else:
            return Option(key, ftype, fields[part].metadata, target_cls)
    raise AssertionError("unreachable: the loop returns")  # pragma: no cover


def _parse_value(raw: str) -> Any:
    """Read a --set value as TOML (numbers, booleans, lists, quoted strings); else a bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (ValueError, RecursionError):  # not TOML (TOMLDecodeError is a ValueError)
        return raw


def _unknown_key(prefix: str, key: str, allowed: list[str], via: str = "") -> str:
    where = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]!r}?" if close else ""
    src = f" ({via})" if via else ""
    return f"unknown key {shown(where)}{src}{hint} Allowed here: {', '.join(sorted(allowed))}"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_dict(
    cls: type, data: Mapping[str, Any], prefix: str, problems: list[str], base: Any = None
) -> Any:
    """Build ``cls`` from ``data``; missing keys take their value from ``base`` (a default
    instance given by the parent's default_factory) or else the class default."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            problems.append(_unknown_key(prefix.rstrip("."), key, list(fields)))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        ftype = hints[name]
        dotted = f"{prefix}{name}"
        if isinstance(ftype, type) and dataclasses.is_dataclass(ftype):
            sub = data.get(name, {})
            if not isinstance(sub, Mapping):
                problems.append(f"{dotted} must be a section (a TOML table); got {shown(sub)}")
                sub = {}
            sub_base = getattr(base, name) if base is not None else _factory_default(f)
            kwargs[name] = _from_dict(ftype, sub, dotted + ".", problems, sub_base)
            continue
        if name not in data:
            if base is not None:
                kwargs[name] = getattr(base, name)
            continue
        value, err = _coerce(data[name], ftype)
        if err:
            problems.append(f"{dotted} must be {err}; got {shown(data[name])}")
            continue
        err = _check_constraints(value, f.metadata)
        if err:
            problems.append(f"{dotted} must be {err}; got {shown(value)}")
            continue
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        problems.append(f"{prefix.rstrip('.') or cls.__name__}: {exc}")
        return None
    check = getattr(obj, "check", None)
    if callable(check):
        for msg in check() or []:  # messages name keys relative to this section, or in full
            problems.append(msg if msg.startswith(prefix) else f"{prefix}{msg}")
    return obj


def _factory_default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` should be for the type annotation ``hint`` (e.g. "an integer"), or None
    when it fits: the check configs get, for other typed inputs (a model file's arguments)."""
    return _coerce(value, hint)[1]


def _coerce(value: Any, ftype: Any) -> tuple[Any, str | None]:
    origin = typing.get_origin(ftype)
    args = typing.get_args(ftype)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None, None
        non_none = [a for a in args if a is not type(None)]
        errs = []
        for a in non_none:
            v, e = _coerce(value, a)
            if e is None:
                return v, None
            errs.append(e)
        return None, " or ".join(errs)
    if ftype is Any:
        return value, None
    if origin is Literal:  # one of a few fixed values, e.g. the "auto" of ``int | Literal["auto"]``
        if any(type(value) is type(a) and value == a for a in args):
            return value, None
        return None, " or ".join(repr(a) for a in args)
    if ftype is bool:
        return (value, None) if isinstance(value, bool) else (None, "true or false")
    if ftype is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        return None, "an integer"
    if ftype is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), None
        return None, "a number"
    if ftype is str:
        if not isinstance(value, str):
            return None, "a string"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None, "valid Unicode text (no lone surrogates)"
        return value, None
    if isinstance(ftype, type) and dataclasses.is_dataclass(ftype):
        ok = isinstance(value, (ftype, Mapping))
        return (value, None) if ok else (None, f"a table ({ftype.__name__})")
    if ftype in (list, tuple):
        return (value, None) if isinstance(value, (list, tuple)) else (None, "a list")
    if ftype is dict:
        return (value, None) if isinstance(value, Mapping) else (None, "a table")
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return None, f"a list ({_describe(ftype)})"
        item_type = args[0] if args else Any
        out = []
        for v in value:
            cv, e = _coerce(v, item_type)
            if e:
                return None, f"a list of {e}s"
            out.append(cv)
        return (tuple(out) if origin is tuple else out), None
    if origin is dict:
        return (dict(value), None) if isinstance(value, Mapping) else (None, "a table")
    return value, None


def _describe(ftype: Any) -> str:
    return getattr(ftype, "__name__", str(ftype))


def _check_constraints(value: Any, meta: Mapping[str, Any]) -> str | None:
    choices = meta.get("choices")
    if choices is not None and value is not None:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v not in choices:
                return "one of " + ", ".join(repr(c) for c in choices)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            return "a number (not NaN)"
        if isinstance(value, float) and math.isinf(value):
            return "a finite number (not infinity)"
        for key, ok, word in (
            ("ge", lambda v, b: v >= b, ">="),
            ("gt", lambda v, b: v > b, ">"),
            ("le", lambda v, b: v <= b, "<="),
            ("lt", lambda v, b: v < b, "<"),
        ):
            bound = meta.get(key)
            if bound is not None and not ok(value, bound):
                return f"{word} {bound}"
    return None


# ---------------------------------------------------------------------------------------------
# writing a config back


def to_dict(obj: Any) -> dict[str, Any]:
    """The config as nested dicts (None values left out, as TOML has no null)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_dict(v)
        elif v is not None:
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def dump_toml(obj_or_dict: Any) -> str:
    """Serialise a config (or nested dict of plain values) to TOML text."""
    data = to_dict(obj_or_dict) if dataclasses.is_dataclass(obj_or_dict) else obj_or_dict
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _dump_table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path and scalars:
        lines.append(f"\n[{'.'.join(toml_key(k) for k in path)}]")
    for k, v in scalars.items():
        lines.append(f"{toml_key(k)} = {toml_value(v)}")
    for k, v in tables.items():
        _dump_table(v, path + [k], lines)


def toml_value(v: Any) -> str:
    """``v`` written as a TOML value (bool, int, float, str, or a list of them): the one TOML
    value writer of ffnlp (config.toml, best.toml, messages that show a value as TOML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


_TOML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped (TOML
    forbids U+0000-U+001F and U+007F unescaped), so any string reads back as it was."""
    out = []
    for ch in text:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A TOML key: bare when it can be (letters, digits, _ and -), else a quoted string."""
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def save_toml(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as TOML to ``path``, atomically (see :mod:`ffnlp.fileio`)."""
    write_atomic(path, dump_toml(obj))


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every option of ``cls``: the configuration reference."""
    return _describe_instance(cls(), prefix)


def _describe_instance(default_obj: Any, prefix: str) -> list[tuple[str, str, str]]:
    cls = type(default_obj)
    rows: list[tuple[str, str, str]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        ftype = hints[f.name]
        if isinstance(ftype, type) and dataclasses.is_dataclass(ftype):
            rows.extend(_describe_instance(getattr(default_obj, f.name), f"{prefix}{f.name}."))
            continue
        default = getattr(default_obj, f.name)
        meta = f.metadata
        help_ = meta.get("help", "")
        if meta.get("choices"):
            help_ += " (" + " | ".join(str(c) for c in meta["choices"]) + ")"
        rows.append((f"{prefix}{f.name}", "" if default is None else toml_value(default), help_))
    return rows
