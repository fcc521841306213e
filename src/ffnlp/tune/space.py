"""Search spaces: a TOML file that gives config keys distributions, read and checked up front.

Each table of the file is a dotted config key (quoted, as TOML wants a dot inside one key)::

    ["train.lr"]
    type = "float"               # float | int | categorical
    low = 1e-4
    high = 1e-1
    log = true                   # sample log-uniformly (low must be > 0)

    ["model.mlp.hidden"]
    type = "categorical"
    choices = [[], [256], [512, 256]]    # any TOML values, lists included

    ["train.momentum"]
    type = "float"
    low = 0.0
    high = 0.95
    when = { "train.optimizer" = "sgd" }  # only tuned in trials that chose sgd

``float`` takes ``low``, ``high`` and either ``log`` or ``step``; ``int`` takes ``low``, ``high``
and ``log`` or ``step``; ``categorical`` takes ``choices``. ``when`` makes a parameter conditional
on an earlier categorical one (a value or a list of values). An optional ``[fixed]`` table holds
settings every trial shares (``"model.type" = "mlp"``), applied before ``--set``.

:func:`read_space` checks what a file can get wrong on its own (a low above its high, a log scale
that reaches 0, no choices, unknown fields); :func:`check_space` checks it against the task's
configuration before the first trial: every key must be an option (with "did you mean"), every
value the distribution can give must be one the option takes. Every problem is reported at once,
naming the file and the key.

Optuna's categorical parameters hold plain scalars only, so choices that are lists (layer sizes)
are handed to it as their TOML text ("[512, 256]") and turned back into lists for the config.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, shown

TYPES = ("float", "int", "categorical")
FIELDS = {
    "float": ("type", "low", "high", "log", "step", "when"),
    "int": ("type", "low", "high", "log", "step", "when"),
    "categorical": ("type", "choices", "when"),
}
FIXED = "fixed"  # the table of settings every trial shares
SHIPPED = Path(__file__).parent / "spaces"  # the spaces of configs/spaces/, installed
SHIPPED_SPACES = ("classify", "pooled", "lm", "w2v")


class SuggestsValues(Protocol):
    """What a space needs of an Optuna trial (``optuna.trial.Trial``)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One tuned config key and its distribution."""

    key: str  # dotted config key, also the Optuna parameter's name
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # key -> values it needs

    def values_to_check(self) -> list[Any]:
        """The values that bound what this parameter can give: low and high, or each choice."""
        if self.type == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "float":  # what suggest_float gives: floats, even for low = 1
            return [float(self.low), float(self.high)]
        return [self.low, self.high]

    @property
    def labels(self) -> tuple[Any, ...]:
        """The choices as Optuna holds them: as they are when every one is a plain scalar of one
        kind, else each one's TOML text."""
        if _plain(self.choices):
            return self.choices
        return tuple(cfgmod.toml_value(c) for c in self.choices)

    def decode(self, label: Any) -> Any:
        """The config value of an Optuna parameter value (a choice's label back to the choice)."""
        if self.type != "categorical":
            return label
        for choice, lab in zip(self.choices, self.labels, strict=True):
            if lab == label and type(lab) is type(label):
                return choice
        raise ConfigError(f"{label!r} is not a choice of the space parameter {self.key!r}")

    def suggest(self, trial: SuggestsValues) -> Any:
        """The value this trial takes (drawn by the trial's sampler), as the config wants it."""
        if self.type == "categorical":
            return self.decode(trial.suggest_categorical(self.key, list(self.labels)))
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step) if self.step is not None else 1
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        step_f = float(self.step) if self.step is not None else None
        return trial.suggest_float(
            self.key, float(self.low), float(self.high), step=step_f, log=self.log
        )

    def label_of(self, value: Any) -> Any:
        """The Optuna parameter value that gives the config value ``value``, or ``_MISSING``
        when the distribution cannot give it (not a choice, out of range, off the step)."""
        if self.type == "categorical":
            text = cfgmod.toml_value(value)
            for choice, lab in zip(self.choices, self.labels, strict=True):
                if cfgmod.toml_value(choice) == text:
                    return lab
            return _MISSING
        assert self.low is not None and self.high is not None
        fits = _is_int(value) if self.type == "int" else _is_number(value)
        if not fits or not self.low <= value <= self.high:
            return _MISSING
        if (
            self.step is not None
            and value != self.low
            and not _divides(self.step, value - self.low)
        ):
            return _MISSING
        return int(value) if self.type == "int" else float(value)

    def spec(self) -> dict[str, Any]:
        """The distribution as the file gave it (tune.json keeps it)."""
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out["low"], out["high"] = self.low, self.high
            if self.log:
                out["log"] = True
            if self.step is not None:
                out["step"] = self.step
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out


@dataclass(frozen=True)
class Space:
    """The parameters of a search, in file order, and the settings every trial shares."""

    params: tuple[Param, ...]
    source: str  # the file, for messages
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def param(self, key: str) -> Param:
        return next(p for p in self.params if p.key == key)

    def suggest(self, trial: SuggestsValues) -> dict[str, Any]:
        """Config key -> value for one trial. A conditional parameter whose condition does not
        hold is not drawn (the base configuration's value stays)."""
        values: dict[str, Any] = {}
        for p in self.params:
            if all(values.get(k, _MISSING) in allowed for k, allowed in p.when.items()):
                values[p.key] = p.suggest(trial)
        return values

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna's stored parameters of a trial as config values."""
        by_key = {p.key: p for p in self.params}
        return {k: by_key[k].decode(v) if k in by_key else v for k, v in params.items()}

    def base_params(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The base configuration as a trial of this space: (Optuna parameter values of the
        parameters the space can set to the base's value, keys it cannot). ``config`` is the
        resolved configuration as a dict (sections nested)."""
        params: dict[str, Any] = {}
        outside: list[str] = []
        for p in self.params:
            value: Any = config
            for part in p.key.split("."):
                value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
            label = _MISSING if value is _MISSING else p.label_of(value)
            if label is _MISSING:
                outside.append(p.key)
            else:
                params[p.key] = label
        return params, outside

    def fixed_settings(self) -> dict[str, Any]:
        """The values of the space's [fixed] table, as settings every trial takes."""
        return dict(self.fixed)

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {p.key: p.spec() for p in self.params}
        if self.fixed:
            out[FIXED] = dict(self.fixed)
        return out


_MISSING = object()


def _plain(choices: Sequence[Any]) -> bool:
    kinds = {type(c) for c in choices}
    return len(kinds) == 1 and kinds <= {bool, int, float, str}


# ---------------------------------------------------------------------------------- reading


def space_path(space: str | Path, name: str) -> Path:
    """The file of ``--space``: a path, or for "auto" the shipped space ``name``."""
    if str(space) == "auto":
        return SHIPPED / f"{name}.toml"
    return Path(space)


def read_space(path: str | Path) -> Space:
    """Read and check a space file on its own (see the module's docstring); one ConfigError
    that names the file and lists every problem."""
    space, problems = parse_space(path)
    cfgmod.raise_problems(problems, f"in the search space {space.source}")
    return space


def parse_space(path: str | Path) -> tuple[Space, list[str]]:
    """The space of a file (its sound parameters) and what is wrong with the file on its own,
    to be reported with what :func:`check_space` finds."""
    source = str(path)
    data = cfgmod.load_toml(path)
    problems: list[str] = []
    fixed = data.pop(FIXED, {})
    if not isinstance(fixed, Mapping):
        problems.append(f"{source}: [{FIXED}] must be a table of config keys and values")
        fixed = {}
    params: list[Param] = []
    for key, spec in _tables(data, "", problems, source):
        param = _param(key, spec, f"{source} [{shown(key)}]", problems)
        if param is not None:
            params.append(param)
    seen: dict[str, Param] = {}
    for p in params:
        _check_when(p, seen, f"{source} [{shown(p.key)}]", problems)
        seen[p.key] = p
    fixed_flat = dict(_flatten(fixed))
    for key, value in list(fixed_flat.items()):
        if not _plain_value(value):
            problems.append(
                f"{source} [{FIXED}]: {shown(key)} = {shown(value)} is not a value a "
                "configuration takes (a number, a string, true or false, or a list of them)"
            )
            del fixed_flat[key]
    for key in fixed_flat:
        if key in seen:
            problems.append(
                f"{source}: {key!r} is both a parameter and in [{FIXED}]; keep one of them"
            )
    if not params and not problems:
        problems.append(
            f'{source} has no parameter; give each tuned key a table, e.g. ["train.lr"] with '
            'type = "float", low = 1e-4, high = 0.1, log = true'
        )
    return Space(tuple(params), source, fixed_flat), problems


def _tables(
    data: Mapping[str, Any], prefix: str, problems: list[str], source: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """(dotted key, spec) for every table with a ``type``; an unquoted [train.lr] nests, and
    is followed down to its spec."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for name, value in data.items():
        key = f"{prefix}{name}"
        if not isinstance(value, Mapping):
            example = cfgmod.toml_value(value) if _plain_value(value) else "..."
            problems.append(
                f"{source}: {shown(key)} = {shown(value)} is not a distribution; write it as a "
                f'table, e.g. ["{key if len(key) <= 80 else "KEY"}"] with type = "categorical" '
                f"and choices = [{example if len(example) <= 80 else '...'}], or put fixed "
                f"settings under [{FIXED}]"
            )
        elif "type" in value or not value:
            out.append((key, value))
        else:
            out.extend(_tables(value, f"{key}.", problems, source))
    return out


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, value in data.items():
        if isinstance(value, Mapping):
            out.extend(_flatten(value, f"{prefix}{name}."))
        else:
            out.append((f"{prefix}{name}", value))
    return out


def _param(key: str, spec: Mapping[str, Any], where: str, problems: list[str]) -> Param | None:
    kind = spec.get("type")
    if kind not in TYPES:
        close = difflib.get_close_matches(str(kind), TYPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{where}: type must be one of {', '.join(map(repr, TYPES))}; got {shown(kind)}{hint}"
        )
        return None
    before = len(problems)
    for name in spec:
        if name not in FIELDS[kind]:
            close = difflib.get_close_matches(name, FIELDS[kind], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{where}: unknown field {shown(name)} for type = {kind!r}{hint} "
                f"Allowed: {', '.join(FIELDS[kind])}"
            )
    when = _when(spec.get("when", {}), where, problems)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}: choices must be a non-empty list; got {shown(choices)}")
            return None
        odd = next((c for c in choices if not _plain_value(c)), None)
        if odd is not None:
            problems.append(
                f"{where}: each choice must be a number, a string, true or false, or a list of "
                f"them; got {shown(odd)}"
            )
            return None
        labels = [cfgmod.toml_value(c) for c in choices]
        twice = sorted({lab for lab in labels if labels.count(lab) > 1})
        if twice:
            problems.append(f"{where}: choices must differ; {', '.join(twice)} is there twice")
        if len(problems) > before:
            return None
        return Param(key, kind, choices=tuple(choices), when=when)
    return _numeric(key, kind, spec, when, where, problems, before)


def _numeric(
    key: str,
    kind: str,
    spec: Mapping[str, Any],
    when: dict[str, tuple[Any, ...]],
    where: str,
    problems: list[str],
    before: int,
) -> Param | None:
    number: Callable[[Any], bool] = _is_int if kind == "int" else _is_number
    word = "an integer" if kind == "int" else "a number"
    low: Any = spec.get("low")
    high: Any = spec.get("high")
    step: Any = spec.get("step")
    log: Any = spec.get("log")
    for name, value in (("low", low), ("high", high)):
        if not number(value):
            problems.append(f"{where}: {name} must be {word}; got {shown(value)}")
    if step is not None and not (number(step) and step > 0):
        problems.append(
            f"{where}: step must be a positive {word.split(' ', 1)[1]}; got {shown(step)}"
        )
    if log is not None and not isinstance(log, bool):
        problems.append(f"{where}: log must be true or false; got {shown(log)}")
    if len(problems) > before:
        return None
    if low >= high:
        problems.append(f"{where}: low must be below high; got low = {low!r}, high = {high!r}")
    if log and low <= 0:
        problems.append(
            f"{where}: log = true needs low > 0 (a log scale never reaches 0); got low = {low!r}"
        )
    if log and step is not None and not (kind == "int" and step == 1):
        problems.append(f"{where}: log = true and step cannot go together; drop one")
    if not math.isfinite(high - low) or (
        step is not None and not math.isfinite((high - low) / step)
    ):
        problems.append(
            f"{where}: the range low = {low!r} .. high = {high!r} (step {step!r}) is too wide to "
            "count in floating point; narrow it"
        )
        return None
    if step is not None and low < high and not _divides(step, high - low):
        problems.append(
            f"{where}: step = {step!r} must divide high - low = {high - low!r} (the values are "
            "low, low + step, ..., high)"
        )
    if len(problems) > before:
        return None
    return Param(key, kind, low, high, bool(log), step, when=when)


def _plain_value(value: Any) -> bool:
    """Whether ``value`` is one a configuration option can take: a number, a string, a bool,
    or a list of them (not a table, a date or a time, which TOML has and configurations do not)."""
    if isinstance(value, list):
        return all(_plain_value(v) for v in value)
    return isinstance(value, (bool, int, float, str))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _divides(step: float, span: float) -> bool:
    ratio = span / step
    return abs(ratio - round(ratio)) <= 1e-9 * max(1.0, abs(ratio))


def _when(raw: Any, where: str, problems: list[str]) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, Mapping):
        problems.append(
            f'{where}: when must be a table, e.g. when = {{ "train.optimizer" = "sgd" }}; '
            f"got {shown(raw)}"
        )
        return {}
    flat = dict(_flatten(raw))
    return {k: tuple(v) if isinstance(v, list) else (v,) for k, v in flat.items()}


def _check_when(p: Param, earlier: Mapping[str, Param], where: str, problems: list[str]) -> None:
    for key, values in p.when.items():
        other = earlier.get(key)
        if other is None or other.type != "categorical":
            problems.append(
                f"{where}: when names {shown(key)}, which must be a categorical parameter given "
                "earlier in the file"
            )
            continue
        missing = [v for v in values if v not in other.choices]
        if missing:
            problems.append(
                f"{where}: when {shown(key)} = {shown(missing[0])}, which is not one of its choices "
                f"({', '.join(cfgmod.toml_value(c) for c in other.choices)})"
            )


# ----------------------------------------------------------------------- against a config


def check_space(
    space: Space,
    config_cls: type,
    base: Mapping[str, Any],
    base_settings: cfgmod.Settings | None = None,
    check: Callable[[Any], None] | None = None,
    extra: Callable[[Param], str | None] | None = None,
    problems: Sequence[str] = (),
) -> None:
    """Check ``space`` against the task's configuration before any trial: each key an option of
    ``config_cls`` (with "did you mean"), each value a parameter can take (low, high, every
    choice) one the option accepts, and accepted by the whole configuration (``base``, the base
    configuration as a dict, with ``base_settings`` and that one value; ``check`` is the task's
    own check of a configuration). ``extra(param)`` may add a task's problem (e.g. a section the
    model does not read). One ConfigError naming the space file and each key, with the
    ``problems`` found before (:func:`parse_space`'s)."""
    problems = list(problems)
    fixed = cfgmod.merge(space.fixed_settings(), base_settings or {})
    where = f"{space.source} [{FIXED}]"
    fixed_problems = []
    for key in space.fixed:
        try:
            cfgmod.find_option(config_cls, key)
        except ConfigError as exc:
            fixed_problems.append(f"{where}: {exc}")
    if not fixed_problems:  # the keys exist: do their values suit the base configuration?
        found = _whole_config_problems(config_cls, base, fixed, check)
        fixed_problems = [f"{where}: {p}" for p in found]
    problems += fixed_problems
    for p in space.params:
        where = f"{space.source} [{shown(p.key)}]"
        try:
            option = cfgmod.find_option(config_cls, p.key)
        except ConfigError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if p.type != "categorical" and option.meta.get("choices"):
            allowed = ", ".join(map(repr, option.meta["choices"]))
            problems.append(
                f'{where}: {p.key} takes one of {allowed}; use type = "categorical" with '
                "choices from those"
            )
            continue
        integers_only = (
            cfgmod.type_problem(1, option.type) is None
            and cfgmod.type_problem(0.5, option.type) is not None
        )
        if p.type == "float" and integers_only:
            problems.append(f'{where}: {p.key} takes integers: use type = "int"')
            continue
        own = [
            f"{where}: {_named(p, v)} is not a value {p.key} takes: it must be {err}"
            for v in p.values_to_check()
            if (err := option.problem(v)) is not None
        ]
        problems += own
        if own:
            continue
        note = extra(p) if extra is not None else None
        if note:
            problems.append(f"{where}: {note}")
            continue
        for v in p.values_to_check() if not fixed_problems else ():  # else they repeat them
            sets = cfgmod.merge(fixed, {p.key: v})
            found = _whole_config_problems(config_cls, base, sets, check)
            if found:  # the first value that does not fit is enough to say
                problems.append(f"{where}: with {_named(p, v)}: {found[0]}")
                break
    cfgmod.raise_problems(problems, f"in the search space {space.source}")


def _named(p: Param, value: Any) -> str:
    if p.type == "categorical":
        return f"the choice {cfgmod.toml_value(value)}"
    return f"{'low' if value == p.low else 'high'} = {value!r}"


def _whole_config_problems(
    config_cls: type,
    base: Mapping[str, Any],
    sets: cfgmod.Settings,
    check: Callable[[Any], None] | None,
) -> list[str]:
    """The problems of the configuration ``base`` + ``sets`` (none: it builds and passes)."""
    try:
        cfg: Any = cfgmod.build(config_cls, base, sets)
        if check is not None:
            check(cfg)
    except ConfigError as exc:
        return exc.problems
    return []
