"""Continuing training from an earlier run: ``--init-from RUN`` / ``init_from=RUN``.

A continued run is a new run (its own folder, its own data) whose model starts from the weights
of a finished run of the same task, as gensim's ``build_vocab(update=True)`` followed by
``train`` does. The steps each task's recipe takes, written once here:

1. :func:`open_base` checks the earlier run (it exists, it is a finished run folder, of this
   task) and reads its configuration;
2. :func:`layered_config`: that configuration is the base; a ``--config`` file (or dict) is
   merged over it and ``--set`` overrides apply on top, as they do over the defaults;
3. :func:`check_kept`: the settings that lay out the model's rows (the feature kind, the
   n-gram orders, the number of hash buckets, the model type...) must stay as the earlier run
   has them, and :func:`check_architecture` builds the configured model at the earlier run's
   sizes and compares every weight's shape with the run's;
4. the task grows its vocabulary (and label set) with the new data: what the earlier run had
   keeps its place, new words, n-grams and labels are appended; a :class:`RowMap` says where
   each old row (or class) went;
5. :func:`transfer` copies the earlier weights into the freshly built (seeded, initialised)
   model through those maps: old rows keep their values, new rows keep their fresh values;
6. :func:`lineage` is what summary.json records under ``init_from`` (and the run folder's
   ``init_from.json`` from the start, so that ``--resume`` of an interrupted continued run grows
   the same vocabulary from the same run).

``--resume`` and ``--init-from`` together are refused: resume continues an interrupted run from
its own checkpoint (and a continued run remembers the run it started from); init-from starts a
new run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.fileio import as_named
from ffnlp.folders.folder import (
    a_run,
    read_arch,
    read_lineage,
    read_summary,
    run_path,
    write_lineage,
)
from ffnlp.folders.layout import CONFIG, WEIGHTS
from ffnlp.models.io import NGRAM_TYPE
from ffnlp.tasks import registry

__all__ = [
    "Base",
    "RowMap",
    "check_architecture",
    "check_kept",
    "layered_config",
    "lineage",
    "open_base",
    "read_lineage",
    "resumed_base",
    "start_from",
    "transfer",
    "write_lineage",
]


@dataclass(frozen=True)
class Base:
    """The finished run a continued run starts from."""

    run_dir: Path
    task: str
    model_type: str  # model.json's "type"
    config: dict[str, Any]  # its config.toml, as read
    config_hash: str  # sha256 of its config.toml
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"--init-from {self.run_dir}"


def open_base(init_from: str | Path, task: str) -> Base:
    """The earlier run ``init_from``, checked: a ModelFileError (naming ``--init-from``) when it
    does not exist, is not a finished run folder, or is a run of another task."""
    run_dir = run_path(init_from)
    try:
        arch = read_arch(run_dir)
    except ModelFileError as exc:
        raise ModelFileError(f"--init-from {run_dir}: {exc}") from None
    found = str(arch["task"])
    if found != task:
        known = registry.find(found)
        hint = (
            f"; to continue it use ffnlp {found} train --init-from {run_dir}"
            if known is not None
            else ""
        )
        raise ModelFileError(
            f"--init-from {run_dir}: it is {a_run(found)}, and ffnlp {task} train continues "
            f"{a_run(task)}{hint}"
        )
    if arch["type"] == NGRAM_TYPE:
        raise ModelFileError(
            f"--init-from {run_dir}: the run is a Kneser-Ney model, counted rather than trained, "
            'so it has no weights to continue; continue a feed-forward LM run (kind = "ffnn"), '
            "or fit Kneser-Ney on all the text"
        )
    path = run_dir / CONFIG
    if not path.is_file():
        raise ModelFileError(f"--init-from {run_dir}: the run is incomplete: {CONFIG} is missing")
    if not (run_dir / WEIGHTS).is_file():
        raise ModelFileError(
            f"--init-from {run_dir}: the run has no {WEIGHTS} (a cross-validation fold whose "
            "weights were not kept?); give a run with trained weights"
        )
    try:
        data = cfgmod.load_toml(path)
    except ConfigError as exc:
        raise ModelFileError(f"--init-from {run_dir}: {exc}") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Base(run_dir, task, str(arch["type"]), data, digest, read_summary(run_dir))


# settings of the earlier run a continued run does not take over (it logs to its own places)
NOT_INHERITED = ("train.tensorboard",)


def start_from(
    init_from: str | Path | None,
    task: str,
    resume: bool,
    config: Any,
    not_inherited: Iterable[str] = (),
) -> tuple[Base | None, Any]:
    """The earlier run of ``init_from`` (None without one) and the configuration to resolve:
    ``config`` layered over the earlier run's (see :func:`layered_config`), less the dotted keys
    of :data:`NOT_INHERITED` and ``not_inherited`` (e.g. the LM's ``interpolate_with``): they
    are about where the earlier run logged or how it was evaluated, not about its model.
    ``resume`` with ``init_from`` is a ConfigError."""
    if init_from is None:
        return None, config
    if resume:
        raise ConfigError(
            "--resume and --init-from cannot be used together: --resume continues the "
            "interrupted run in its folder from its own checkpoint (a continued run remembers "
            "the run it started from), --init-from starts a new run from a finished run's "
            "weights; leave one of them out"
        )
    base = open_base(init_from, task)
    for key in (*NOT_INHERITED, *not_inherited):
        *tables, name = key.split(".")
        table: Any = base.config
        for part in tables:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict):
            table.pop(name, None)
    return base, layered_config(base, config)


def resumed_base(run_dir: Path, task: str) -> Base | None:
    """For ``--resume``: the earlier run an interrupted continued run started from (None for a
    run trained from scratch)."""
    recorded = read_lineage(run_dir)
    if recorded is None:
        return None
    try:
        return open_base(recorded["run"], task)
    except ModelFileError as exc:
        raise ModelFileError(
            f"{as_named(run_dir)} continues the run {recorded['run']} (its init_from.json), which "
            f"--resume reads again to grow the same vocabulary: {exc}; put that run back"
        ) from None


def layered_config(base: Base, config: Any) -> Any:
    """The configuration a continued run resolves: the earlier run's config.toml, then
    ``config`` merged over it (a TOML file or a dict: key by key; a config object is complete
    and replaces it). ``--set`` overrides then apply on top, as usual."""
    if config is None:
        return dict(base.config)
    if dataclass_instance(config):
        return config
    layer = dict(config) if isinstance(config, Mapping) else cfgmod.load_toml(config)
    return merged(base.config, layer)


def dataclass_instance(obj: object) -> bool:
    """Whether ``obj`` is a configuration object (a dataclass instance, not the class)."""
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def merged(under: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``under``: tables key by key, any other value replaced."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def check_kept(base: Base, base_cfg: Any, cfg: Any, keys: Iterable[str]) -> None:
    """ConfigError listing every setting of ``keys`` (dotted) that differs from the earlier run:
    they lay out the rows of its weights, so a continued run keeps them."""
    problems = []
    for key in keys:
        old, new = _get(base_cfg, key), _get(cfg, key)
        if old != new:
            problems.append(
                f"{key} = {cfgmod.toml_value(new)} here but {cfgmod.toml_value(old)} in the run "
                f"it continues; set it back (or leave it out: the run's settings are the base)"
            )
    if problems:
        raise ConfigError(
            f"{base.where}: the rows of the run's weights are laid out by settings this "
            "configuration changes: " + "; ".join(problems),
            problems=problems,
        )


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    if dataclass_instance(obj):
        return cfgmod.to_dict(obj)
    return obj


def check_architecture(
    base: Base, old: nn.Module, new: nn.Module, base_section: Any, section: Any, prefix: str
) -> None:
    """``new`` (the configured model built at the earlier run's sizes) must have the weights of
    ``old``, shape for shape; otherwise a ConfigError naming the first weight that differs and
    the settings of ``section`` (under ``prefix``, e.g. "model") that differ from the run's."""
    old_shapes = {name: tuple(p.shape) for name, p in old.named_parameters()}
    new_shapes = {name: tuple(p.shape) for name, p in new.named_parameters()}
    if old_shapes == new_shapes:
        return
    missing = sorted(set(old_shapes) - set(new_shapes))
    extra = sorted(set(new_shapes) - set(old_shapes))
    if missing or extra:
        what = (
            f"the run has the weight {missing[0]!r}, which this model lacks"
            if missing
            else f"this model has the weight {extra[0]!r}, which the run lacks"
        )
    else:
        name = next(n for n in old_shapes if old_shapes[n] != new_shapes[n])
        what = (
            f"the weight {name!r} is {_shape(old_shapes[name])} in the run and "
            f"{_shape(new_shapes[name])} with this configuration"
        )
    changed = _differences(cfgmod.to_dict(base_section), cfgmod.to_dict(section), prefix)
    settings = (
        "; settings that differ from the run's: " + ", ".join(changed)
        if changed
        else "; the settings that size the model must stay as the run has them"
    )
    raise ConfigError(
        f"{base.where}: the model this configuration builds does not fit the run's weights: "
        f"{what}{settings}; leave the model's sizes as the run has them"
    )


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}.{key}")
        elif a != b:
            out.append(
                f"{prefix}.{key} ({cfgmod.toml_value(a) if a is not None else 'unset'} in the "
                f"run, {cfgmod.toml_value(b) if b is not None else 'unset'} here)"
            )
    return out


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


@dataclass(frozen=True)
class RowMap:
    """Where the rows of one axis went when a vocabulary (or label set) grew: ``index[i]`` is
    the new position of old row ``i``; positions no old row maps to are new rows. An axis of a
    weight is mapped when its sizes are ``old_size`` in the run and ``new_size`` now.

    ``binary``: the axis is a classifier's logits and the earlier run had two classes, which a
    binary classifier scores with one logit z (the sigmoid of z is the second class's
    probability; ``old_size`` is 1, ``index`` has the new positions of both classes). Softmax
    over (0, z) gives the same probabilities, so the one row becomes two, zeros for the first
    class and z's row for the second, before they are mapped."""

    old_size: int
    new_size: int
    index: torch.Tensor  # (old rows,) int64 new positions (binary: (2,), one per class)
    binary: bool = False

    @classmethod
    def appended(cls, old_size: int, new_size: int) -> RowMap:
        """Old rows in place, new ones after them."""
        return cls(old_size, new_size, torch.arange(old_size))

    @property
    def grows(self) -> bool:
        return self.new_size != self.old_size


def transfer(
    base: Base, old: Mapping[str, torch.Tensor], model: nn.Module, maps: Sequence[RowMap]
) -> None:
    """Copy the earlier run's weights ``old`` (a state dict) into ``model``'s parameters: a weight
    of the same shape as it is; a weight with axes that grew through the ``maps`` (an axis is
    matched by its old and new sizes) row by row, the new rows keeping the values ``model`` was
    initialised with. Buffers (e.g. class weights) stay the new model's."""
    growing = [m for m in maps if m.grows]
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name not in old:
                raise ConfigError(f"{base.where}: the run has no weight {name!r}; retrain it")
            source = old[name].to(param.dtype)
            if tuple(source.shape) == tuple(param.shape):
                param.copy_(source)
                continue
            index: list[torch.Tensor] = []
            for axis, (was, now) in enumerate(zip(source.shape, param.shape, strict=True)):
                found = next((m for m in growing if (m.old_size, m.new_size) == (was, now)), None)
                if found is None:
                    if was != now:
                        raise ConfigError(
                            f"{base.where}: the weight {name!r} is {_shape(tuple(source.shape))} "
                            f"in the run and {_shape(tuple(param.shape))} here, which growing the "
                            "vocabulary does not explain; leave the model's sizes as the run "
                            "has them"
                        )
                    index.append(torch.arange(was))
                    continue
                if found.binary:  # one logit -> two: (0, z), see RowMap
                    zeros = torch.zeros_like(source.narrow(axis, 0, 1))
                    source = torch.cat([zeros, source], dim=axis)
                index.append(found.index)
            dims = source.dim()
            grid = tuple(  # each axis's positions, shaped to broadcast against the others
                ix.view([len(ix) if i == axis else 1 for i in range(dims)])
                for axis, ix in enumerate(index)
            )
            param.data[grid] = source


def weights_hash(run_dir: Path) -> str:
    """sha256 of a run's model.safetensors."""
    digest = hashlib.sha256()
    with (run_dir / WEIGHTS).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lineage(base: Base, **details: Any) -> dict[str, Any]:
    """summary.json's ``init_from``: the earlier run (its folder, the sha256 of its config.toml
    and of its weights), what grew (``details``), and the earlier run's own ``init_from`` when
    it was itself continued, so the whole chain is on record."""
    out: dict[str, Any] = {
        "run": str(base.run_dir.resolve()),
        "config_hash": base.config_hash,
        "weights_sha256": weights_hash(base.run_dir),
        **details,
    }
    earlier = base.summary.get("init_from")
    if isinstance(earlier, dict):
        out["init_from"] = earlier
    return out
