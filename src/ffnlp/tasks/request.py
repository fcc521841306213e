"""The keywords every recipe takes, declared once, and what a run makes of them.

``train_classifier``, ``train_lm`` and ``train_word2vec`` (and a task's own recipe) take their
data and ``config``, then the same keywords, :class:`RunKeywords`; any other keyword is a
setting (``**{"train.lr": 0.1}``), applied last. :func:`request` checks them, before anything
is read or written, into a :class:`Request`: what :func:`ffnlp.tasks.run.start_run` (and the
learning-rate range test's :func:`~ffnlp.tasks.run.dry_run`) works from.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from ffnlp import config as cfgmod
from ffnlp.errors import ConfigError
from ffnlp.params import check_bool, check_instances, check_int, check_path
from ffnlp.tasks import registry
from ffnlp.tasks.continued import Base, start_from
from ffnlp.training import Callback

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

__all__ = ["RUN_KEYWORDS", "Request", "RunKeywords", "Unpack", "owner_of", "request"]


class RunKeywords(TypedDict, total=False):
    """The keywords of every recipe (``train_classifier(train, ..., **keywords)``).

    An existing run in ``out`` is refused unless ``resume`` (continue it) or ``force`` (replace
    it once the new one is complete); the run is written as a transaction, and Ctrl-C / SIGTERM
    raise :class:`~ffnlp.errors.Interrupted` (see :func:`ffnlp.tasks.run.start_run`).
    ``init_from`` continues a finished run's model on new data (its configuration is the base
    that ``config`` and ``overrides`` apply over; see :mod:`ffnlp.tasks.continued`); it cannot be
    combined with ``resume``."""

    # settings over ``config``: typed, {"train.epochs": 5}, or as --set text, ["train.epochs=5"]
    overrides: cfgmod.Settings | Iterable[str]
    out: str | Path | None  # the run folder (None: runs/<task>-<date>-<time>)
    seed: int | None  # a shortcut for the setting train.seed
    callbacks: Sequence[Callback]  # called by the Trainer beside the configured ones
    resume: bool  # continue the interrupted run in ``out`` from its checkpoint
    force: bool  # replace a run already in ``out`` (once the new one is complete)
    init_from: str | Path | None  # a finished run of the task whose model this run continues


RUN_KEYWORDS = tuple(RunKeywords.__annotations__)


@dataclass(frozen=True)
class Request:
    """A recipe's keywords, checked: what a run is asked to do."""

    task: str
    owner: str  # the public function a message about a bad argument names
    config: Any  # as given, or layered over the earlier run's configuration (init_from)
    overrides: dict[str, Any]  # typed settings, read once
    settings: dict[str, Any]  # keyword settings (train.seed when ``seed`` was given), applied last
    out: str | Path | None
    resume: bool
    force: bool
    callbacks: list[Callback]
    base: Base | None  # the finished run init_from continues (None: a run from scratch)


def owner_of(task: str) -> str:
    """The public function that trains ``task`` (its registered recipe's name). A task's
    package registers itself when its recipe is imported, so the registry is not loaded here."""
    spec = registry.TASKS.get(task)
    return spec.trainer_name if spec is not None else f"train ({task})"


def request(
    task: str,
    config: Any,
    keywords: Mapping[str, Any],
    owner: str | None = None,
    not_inherited: Iterable[str] = (),
    continues: bool = True,
    accepted: Iterable[str] = RUN_KEYWORDS,
) -> Request:
    """``keywords`` (:class:`RunKeywords` and keyword settings) checked for ``task``'s recipe:
    a ConfigError naming ``owner``'s parameter for a value of the wrong kind. ``init_from`` opens
    the earlier run and layers ``config`` over its configuration (less ``not_inherited``, see
    :func:`~ffnlp.tasks.continued.start_from`); a recipe that does not continue runs
    (``continues=False``) refuses it. ``accepted``: the run keywords a caller takes (the range
    test: ``overrides``, ``seed``); any other keyword is a setting."""
    owner = owner or owner_of(task)
    accepted = set(accepted)
    settings = {k: v for k, v in keywords.items() if k not in accepted}
    given = {k: v for k, v in keywords.items() if k in accepted}
    init_from = given.get("init_from")
    if init_from is not None and not continues:
        raise ConfigError(f"{owner} does not continue an earlier run; leave init_from out")
    resume = given.get("resume", False)
    base, config = start_from(init_from, task, resume, config, not_inherited)
    callbacks = check_instances(
        given.get("callbacks", ()),
        "callbacks",
        owner,
        Callback,
        "ffnlp.training.Callback instances",
    )
    force = check_bool(given.get("force", False), "force", owner)
    resume = check_bool(resume, "resume", owner)
    seed = given.get("seed")
    if seed is not None:
        # its type here; its range (train.seed: 0..2**63 - 1) with the configuration's checks
        settings["train.seed"] = check_int(seed, "seed", owner)
    overrides = cfgmod.settings_of(given.get("overrides", ()), "overrides", owner)
    out = given.get("out")
    check_path(out, "out", owner, optional=True)
    return Request(task, owner, config, overrides, settings, out, resume, force, callbacks, base)
