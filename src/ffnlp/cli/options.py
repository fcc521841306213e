"""The options several commands share, declared once, and the one conversion of options into
settings (typed: dotted key -> value; only --set's ``key=value`` text is parsed, by
:func:`ffnlp.config.parse_settings`).

An option is an ``Annotated`` alias (``config: Config = None``); the block every `train` command
ends with is one function, :func:`run_options`, whose parameters :func:`with_options` puts in the
place of a command's ``run: RunOptions`` parameter.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from ffnlp import config as cfgmod

F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override one config value, e.g. --set train.lr=0.1 (repeatable)."
CONFIG_HELP = (
    "TOML config file, or the name of a preset shipped with ffnlp (e.g. sst2_ffnn; `ffnlp presets` "
    "lists them); a file of that name in the working folder wins (docs/configuration.md)."
)
INPUT_HELP = (
    "Text file, one text a line ('-' = stdin); lines of up to 10 MiB (FFNLP_MAX_LINE_BYTES "
    "changes the limit)."
)

Config = Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)]
Set = Annotated[list[str], typer.Option("--set", "-s", help=SET_HELP)]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Random seed (same as --set train.seed=N).")
]
Seeds = Annotated[
    str | None,
    typer.Option(
        "--seeds",
        help="Train once per seed, as `ffnlp repeat` does (same folders and summary): a count N "
        "(seeds 0 to N-1) or a list such as 0,1,2; --out is the folder of the runs.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")]
Input = Annotated[str, typer.Option("--input", "-i", help=INPUT_HELP)]
VectorsFormat = Annotated[str, typer.Option("--format", help="Vectors file format (see eval).")]
# the data options of every command that reads labelled files (classify train, cv, lr-find; tune)
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Input format: auto, label-text, fasttext, csv, tsv, jsonl, parquet, arrow.",
    ),
]
Encoding = Annotated[
    str | None, typer.Option("--encoding", help="Encoding of the data files, e.g. latin-1.")
]
SkipInvalid = Annotated[
    bool, typer.Option("--skip-invalid", help="Skip malformed lines and report how many.")
]
Resume = Annotated[
    Path | None, typer.Option("--resume", help="Continue the interrupted run in this directory.")
]
InitFrom = Annotated[
    Path | None,
    typer.Option(
        "--init-from",
        help="Continue a finished run of this task on new data: its weights and its configuration "
        "are the start (--config and --set apply over it), new words and labels get fresh rows; "
        "summary.json records the run under init_from. Not with --resume. See docs/continue.md.",
    ),
]
Diagnostics = Annotated[
    bool,
    typer.Option(
        "--diagnostics",
        help="Record dead/saturated units, gradient norms and update ratios at every evaluation, "
        "with warnings and advice (same as --set train.diagnostics=true).",
    ),
]
Tensorboard = Annotated[
    Path | None,
    typer.Option(
        "--tensorboard",
        help="Also write the train loss, lr and dev metrics as TensorBoard scalars into this "
        "folder, live (same as --set train.tensorboard=DIR; needs pip install "
        "'ffnlp[tensorboard]').",
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace the run already in --out (the old one is deleted once the new one is "
        "complete).",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress (bar on a terminal, lines otherwise) or messages."
    ),
]
SummaryJson = Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")]
Nproc = Annotated[
    int,
    typer.Option(
        "--nproc",
        min=1,
        help="Train as this many processes on this machine, one run (torchrun --standalone "
        "--nproc-per-node N; train.batch_size is shared between them). For several machines, "
        "start `torchrun ... -m ffnlp` on each (docs/scale.md).",
    ),
]
MaxRestarts = Annotated[
    int,
    typer.Option(
        "--max-restarts",
        min=0,
        help="With --nproc: when a process dies, start them all again up to this many times; the "
        "run continues from its last checkpoint (torchrun --max-restarts; train.checkpoint = true "
        "keeps one every epoch).",
    ),
]


def run_dir_option(task: str) -> Any:
    """--out of a `train` command."""
    return typer.Option("--out", "-o", help=f"Run directory (default: runs/{task}-<date>-<time>).")


@dataclass(frozen=True)
class RunOptions:
    """The options every `train` command ends with (see :func:`run_options`)."""

    resume: Path | None
    init_from: Path | None
    diagnostics: bool
    tensorboard: Path | None
    force: bool
    quiet: bool
    json: bool
    nproc: int
    max_restarts: int


def run_options(
    resume: Resume = None,
    init_from: InitFrom = None,
    diagnostics: Diagnostics = False,
    tensorboard: Tensorboard = None,
    force: Force = False,
    quiet: Quiet = False,
    json_: SummaryJson = False,
    nproc: Nproc = 1,
    max_restarts: MaxRestarts = 0,
) -> RunOptions:
    return RunOptions(
        resume, init_from, diagnostics, tensorboard, force, quiet, json_, nproc, max_restarts
    )


def with_options(builder: Callable[..., Any], name: str = "run") -> Callable[[F], F]:
    """Put ``builder``'s parameters (options) in the place of the command's parameter ``name``,
    and hand the command ``name=builder(**their values)``: a block of options declared once (for
    several commands, or a long one apart), shown in the command's help where that parameter
    stands."""
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
    """The settings a command's options stand for, applied in order, a later one winning:
    ``--set``'s ``key=value`` strings (read by :func:`ffnlp.config.parse_settings`, the one
    reader of that text) and the typed settings of other options (--format, --diagnostics ...)."""
    return cfgmod.merge(*(p if isinstance(p, Mapping) else cfgmod.parse_settings(p) for p in parts))


def data_settings(fmt: str | None, encoding: str | None, skip_invalid: bool) -> dict[str, Any]:
    """The settings that --format, --encoding and --skip-invalid stand for (those given)."""
    sets: dict[str, Any] = {}
    if fmt:
        sets["data.format"] = fmt
    if encoding:
        sets["data.encoding"] = encoding
    if skip_invalid:
        sets["data.skip_invalid"] = True
    return sets


def diagnostics_settings(diagnostics: bool) -> dict[str, Any]:
    """The setting that --diagnostics stands for (none when the flag is not given)."""
    return {"train.diagnostics": True} if diagnostics else {}


def settings(
    set_: Sequence[str],
    run: RunOptions | None = None,
    *,
    data: tuple[str | None, str | None, bool] = (None, None, False),
    interpolate_with: Path | None = None,
    one_run: bool = True,
) -> dict[str, Any]:
    """The command line's options as the recipes' settings: the data options (--format,
    --encoding, --skip-invalid), then --set (which wins over them), then --diagnostics and
    (``one_run``) --tensorboard, which win over --set; ``interpolate_with`` as a setting (for the
    runs of --seeds). --seed is not among them: it goes to the recipe as its ``seed=``, which
    sets ``train.seed`` last."""
    return command_settings(
        data_settings(*data),
        set_,
        diagnostics_settings(run is not None and run.diagnostics),
        cfgmod.tensorboard_settings(run.tensorboard) if run is not None and one_run else {},
        {"interpolate_with": str(interpolate_with)} if interpolate_with is not None else {},
    )


RUN = run_options()  # a command's ``run: RunOptions = RUN``: where with_options puts the block
