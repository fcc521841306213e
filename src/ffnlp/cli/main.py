"""The `ffnlp` command: one Typer app, command groups mounted by task.

Library errors (FfnlpError) become one line ``Error: ...`` on stderr and exit code 1, here and only
here (FfnlpGroup.invoke), and so does an OSError that no command turned into its own message (the
path and what the system said); usage errors keep click's exit code 2. An interrupted training
(Ctrl-C, SIGTERM) is one line saying how to continue it, and exit code 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM), as shells report a process a signal ended. Output whose reader
went away (``ffnlp classify predict RUN --input big.txt | head``) stops without a message, exit
code 141 (128 + SIGPIPE), as a command the signal ended.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from ffnlp import __version__
from ffnlp.cli.common import COMMAND_LINE, without_options
from ffnlp.cli.options import HELP_OPTIONS
from ffnlp.errors import FfnlpError, Interrupted, bounded_message
from ffnlp.fileio import os_error_line


class FfnlpGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["ffnlp.argv"] = list(args)  # the command line, to say how to resume a run
        COMMAND_LINE[:] = args  # and to start it again as several processes (--nproc)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            with _output_of_rank():
                return super().invoke(ctx)
        except Interrupted as exc:
            line = f"{exc.headline}; {exc.outcome}."
            if exc.run_dir is not None:
                again = resume_command(ctx.meta.get("ffnlp.argv", []), str(exc.run_dir))
                saved = f"the run is saved in {exc.run_dir}. Continue it with: {again}"
                line = f"{exc.headline}; {saved}"
            typer.echo(_rank_prefix() + line, err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            typer.echo(f"Interrupted by {signal.Signals(signum).name}.", err=True)
            raise typer.Exit(128 + signum) from None
        except FfnlpError as exc:
            typer.echo(f"{_rank_prefix()}Error: {bounded_message(str(exc))}", err=True)
            raise typer.Exit(1) from None
        except BrokenPipeError:  # what reads the output went away (`... | head`): stop quietly
            with contextlib.suppress(OSError, ValueError):  # the unwritten rest goes nowhere
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None  # 128 + SIGPIPE (13)
        except OSError as exc:  # a file operation no command turned into its own message
            typer.echo(f"Error: {os_error_line(exc)}", err=True)
            raise typer.Exit(1) from None


def _rank_prefix() -> str:
    """``[rank N] `` in a process of several under torchrun, else nothing."""
    several = os.environ.get("WORLD_SIZE", "1") not in ("", "1")
    return f"[rank {os.environ.get('RANK', '?')}] " if several else ""


@contextlib.contextmanager
def _output_of_rank() -> Iterator[None]:
    """Under torchrun the first rank alone prints results (tables, JSON): the others' standard
    output goes nowhere; their errors still reach stderr, prefixed with their rank."""
    if not _rank_prefix() or os.environ.get("RANK", "") in ("", "0"):
        yield
        return
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def resume_command(argv: list[str], run_dir: str) -> str:
    """``argv`` (a `train` command line) with ``--resume run_dir`` in place of --out / --force."""
    kept = without_options(argv, ("--out", "-o", "--resume"), ("--force",))
    return shlex.join(["ffnlp", *kept, "--resume", run_dir])


app = typer.Typer(
    cls=FfnlpGroup,
    name="ffnlp",
    help="Feed-forward neural networks for NLP: text classifiers, a feed-forward language model, "
    "skip-gram word2vec, one training loop.\n\nStart with:  ffnlp demo",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings=HELP_OPTIONS,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ffnlp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """ffnlp: train, evaluate and inspect feed-forward networks for NLP."""


from ffnlp.cli import classify, commands, explain, lm, serve, w2v  # noqa: E402

# every command and group of `ffnlp`, in the order of its help (a group's help is its own)
COMMANDS: dict[str, Any] = {
    "demo": commands.demo,
    "repeat": commands.repeat,
    "compare": commands.compare,
    "report": commands.report,
    "serve": serve.serve,
    "tune": commands.tune,
    "export": commands.export,
    "quantize": commands.quantize,
    "classify": classify.app,
    "lm": lm.app,
    "w2v": w2v.app,
    "explain": explain.app,
    "config": commands.config_app,
    "presets": commands.presets_app,
}
for name, command in COMMANDS.items():
    if isinstance(command, typer.Typer):
        app.add_typer(command, name=name)
    else:
        app.command(name)(command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
