"""The options several commands share, declared once, and the one conversion of options into
settings (dotted key -> typed value; --set's ``key=value`` text read by
:func:`ffnlp.config.parse_settings`).

A group's help texts are one table per command (:class:`HelpTable`, by option name), each
parameter one line naming its option (``k: Annotated[int, PREDICT("--k")] = 1``); a shared option
is an ``Annotated`` alias (``config: Config = None``); a block of options (:class:`RunOptions`,
the end of every `train` command) is put in a command's signature by :func:`with_options`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.markup import escape

from ffnlp import config as cfgmod

F = TypeVar("F", bound=Callable[..., Any])
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


class HelpTable:
    """The help texts of a command's options (or of a group's shared ones), by the option's first
    name (``"--k"``), or by an argument's name (``"RUN"``); calling the table declares one:
    ``table("--out", "-o")`` is ``typer.Option("--out", "-o", help=<the text of "--out">)``,
    ``table("RUN")`` an argument with that text. A name without a text is a KeyError at import."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = dict(texts)

    def __call__(self, *names: str, **settings: Any) -> Any:
        text = escape(self.texts[names[0]])  # help is Rich markup: "ffnlp[tune]" stays as written
        if names[0].startswith("-"):
            return typer.Option(*names, help=text, **settings)
        return typer.Argument(help=text, **settings)


def group(no_args_is_help: bool = True, **settings: Any) -> typer.Typer:
    """A command group (`ffnlp classify`, ...): its help without arguments, -h as --help."""
    return typer.Typer(no_args_is_help=no_args_is_help, context_settings=HELP_OPTIONS, **settings)


def help_tables(**tables: Mapping[str, str]) -> tuple[HelpTable, ...]:
    """The help tables of a group's commands (keyword: the command), in the order given."""
    return tuple(HelpTable(texts) for texts in tables.values())


SHARED, RUN_HELP, SWEEP_HELP = help_tables(
    shared={
        "--config": "TOML config file, or the name of a preset shipped with ffnlp (e.g. "
        "sst2_ffnn; `ffnlp presets` lists them); a file of that name in the working folder wins "
        "(docs/configuration.md).",
        "--set": "Override one config value, e.g. --set train.lr=0.1 (repeatable).",
        "--seed": "Random seed (same as --set train.seed=N).",
        "--seeds": "Train once per seed, as `ffnlp repeat` does (same folders and summary): a "
        "count N (seeds 0 to N-1) or a list such as 0,1,2; --out is the folder of the runs.",
        "--json": "Print the result as JSON.",
        "--input": "Text file, one text a line ('-' = stdin); lines of up to 10 MiB "
        "(FFNLP_MAX_LINE_BYTES changes the limit).",
        "--format": "Input format: auto, label-text, fasttext, csv, tsv, jsonl, parquet, arrow.",
        "--encoding": "Encoding of the data files, e.g. latin-1.",
        "--skip-invalid": "Skip malformed lines and report how many.",
        "--tensorboard": "Also write the train loss, lr and dev metrics as TensorBoard scalars "
        "into this folder, live (same as --set train.tensorboard=DIR; needs pip install "
        "'ffnlp[tensorboard]').",
    },
    run={
        "--resume": "Continue the interrupted run in this directory.",
        "--init-from": "Continue a finished run of this task on new data: its weights and its "
        "configuration are the start (--config and --set apply over it), new words and labels "
        "get fresh rows. Not with --resume. See docs/continue.md.",
        "--diagnostics": "Record dead/saturated units, gradient norms and update ratios at every "
        "evaluation, with warnings and advice (same as --set train.diagnostics=true).",
        "--force": "Replace the run already in --out (the old one is deleted once the new one is "
        "complete).",
        "--quiet": "No progress (bar on a terminal, lines otherwise) or messages.",
        "--json": "Print summary.json to stdout.",
        "--nproc": "Train as this many processes on this machine, one run (torchrun --standalone "
        "--nproc-per-node N; train.batch_size is shared between them). For several machines, "
        "start `torchrun ... -m ffnlp` on each (docs/scale.md).",
        "--max-restarts": "With --nproc: when a process dies, start them all again up to this "
        "many times; the run continues from its last checkpoint (torchrun --max-restarts; "
        "train.checkpoint = true keeps one every epoch).",
    },
    sweep={
        "--min-lr": "Learning rate of the first step.",
        "--max-lr": "Learning rate of the last step.",
        "--steps": "Training batches in the sweep (the rate grows by a constant factor each).",
        "--plot": "Image of loss against learning rate (default: lr_find.png in --out, else here).",
        "--out": "Folder for lr_find.png and lr_find.json (default: the current one, plot only).",
        "--json": "Print the curve and the suggestion as one JSON object.",
    },
)
CONFIG_HELP = SHARED.texts["--config"]

Config = Annotated[Path | None, SHARED("--config", "-c")]
Set = Annotated[list[str], SHARED("--set", "-s")]
Seed = Annotated[int | None, SHARED("--seed")]
Seeds = Annotated[str | None, SHARED("--seeds")]
Json = Annotated[bool, SHARED("--json")]
Input = Annotated[str, SHARED("--input", "-i")]
ClassifierRun = Annotated[Path, typer.Argument(help="Run directory of a trained classifier.")]
VECTORS_FORMATS = "Vectors file format: auto, word2vec-text, word2vec-binary, glove, fasttext-vec."
VectorsFormat = Annotated[str, typer.Option("--format", help=VECTORS_FORMATS)]
# the data options of every command that reads labelled files (classify train, cv, lr-find; tune)
Format = Annotated[str | None, SHARED("--format")]
Encoding = Annotated[str | None, SHARED("--encoding")]
SkipInvalid = Annotated[bool, SHARED("--skip-invalid")]
Tensorboard = Annotated[Path | None, SHARED("--tensorboard")]


def run_dir_option(task: str) -> Any:
    """--out of a `train` command."""
    return typer.Option("--out", "-o", help=f"Run directory (default: runs/{task}-<date>-<time>).")


@dataclass(frozen=True)
class RunOptions:
    """The options every `train` command ends with: the fields of this block are the options
    (:func:`with_options` puts them in the place of a command's ``run: RunOptions = RUN``)."""

    resume: Annotated[Path | None, RUN_HELP("--resume")] = None
    init_from: Annotated[Path | None, RUN_HELP("--init-from")] = None
    diagnostics: Annotated[bool, RUN_HELP("--diagnostics")] = False
    tensorboard: Tensorboard = None
    force: Annotated[bool, RUN_HELP("--force")] = False
    quiet: Annotated[bool, RUN_HELP("--quiet", "-q")] = False
    json: Annotated[bool, RUN_HELP("--json")] = False
    nproc: Annotated[int, RUN_HELP("--nproc", min=1)] = 1
    max_restarts: Annotated[int, RUN_HELP("--max-restarts", min=0)] = 0


def data_options(
    fmt: Format = None, encoding: Encoding = None, skip_invalid: SkipInvalid = False
) -> dict[str, Any]:
    """The data options of the commands that read labelled files, as the settings that they stand
    for (those given)."""
    given = {"data.format": fmt, "data.encoding": encoding, "data.skip_invalid": skip_invalid}
    return {key: value for key, value in given.items() if value}


def with_options(builder: Callable[..., Any], name: str = "run") -> Callable[[F], F]:
    """Put ``builder``'s parameters (options; a dataclass's fields) in the place of the command's
    parameter ``name`` (in its help too), and hand the command ``name=builder(**their values)``."""
    block = inspect.signature(builder, eval_str=True).parameters

    def decorate(command: F) -> F:
        own = inspect.signature(command, eval_str=True)
        params: list[inspect.Parameter] = []
        for param in own.parameters.values():
            params += block.values() if param.name == name else [param]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            shared = {name: kwargs.pop(name) for name in block}
            return command(*args, **kwargs, **{name: builder(**shared)})

        cast(Any, wrapper).__signature__ = own.replace(parameters=params)
        return cast(F, wrapper)

    return decorate


def command_settings(*parts: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """The settings of a command's options, a later part winning: --set's ``key=value`` strings
    (read by :func:`ffnlp.config.parse_settings`) or other options' typed settings."""
    return cfgmod.merge(*(p if isinstance(p, Mapping) else cfgmod.parse_settings(p) for p in parts))


def settings(
    set_: Sequence[str],
    run: RunOptions | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    interpolate_with: Path | None = None,
    one_run: bool = True,
) -> dict[str, Any]:
    """The options as the recipes' settings, a later one winning: the data options, --set,
    --diagnostics and (``one_run``) --tensorboard; ``interpolate_with`` (for the runs of --seeds).
    --seed goes to the recipe as its ``seed=``, which sets ``train.seed`` last."""
    return command_settings(
        data or {},
        set_,
        {"train.diagnostics": True} if run is not None and run.diagnostics else {},
        cfgmod.tensorboard_settings(run.tensorboard) if run is not None and one_run else {},
        {"interpolate_with": str(interpolate_with)} if interpolate_with is not None else {},
    )


SweepJson = Annotated[bool, SWEEP_HELP("--json")]


@dataclass(frozen=True)
class Sweep:
    """The learning rates of an `lr-find` sweep and where it writes: the fields are the options
    (as :class:`RunOptions`')."""

    lr_min: Annotated[float, SWEEP_HELP("--min-lr")] = 1e-6
    lr_max: Annotated[float, SWEEP_HELP("--max-lr")] = 1.0
    steps: Annotated[int, SWEEP_HELP("--steps", min=5)] = 100
    plot: Annotated[Path | None, SWEEP_HELP("--plot")] = None
    out: Annotated[Path | None, SWEEP_HELP("--out", "-o")] = None


# where with_options puts a block: a command's ``run: RunOptions = RUN`` (and DATA, SWEEP)
RUN, DATA, SWEEP = RunOptions(), data_options(), Sweep()
