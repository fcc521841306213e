"""`ffnlp presets [show NAME]`: the presets shipped with ffnlp, found by name with --config NAME."""

import dataclasses
import textwrap

import typer

from ffnlp import presets
from ffnlp.cli.common import print_json

app = typer.Typer(
    invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)


@app.callback()
def list_presets(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the presets shipped with ffnlp: task, what each is for, its documented result and
    the data it expects. Use one with --config NAME (a file of that name in the working folder
    wins); `ffnlp presets show NAME` prints it, to copy and edit.

    Examples:

        ffnlp presets

        ffnlp classify train --config sst2_ffnn --train train.txt --dev dev.txt --test test.txt
    """
    if ctx.invoked_subcommand is not None:
        return
    found = presets.all_presets()
    if json_:
        print_json([{**dataclasses.asdict(p), "file": str(p.path)} for p in found])
        return
    typer.echo("Presets shipped with ffnlp (use one with --config NAME):\n")
    for p in found:
        typer.echo(f"{p.name}  ({p.task})")
        for label, text in (("for", p.about), ("result", p.result), ("data", p.data)):
            head = f"  {label + ':':<8}"
            typer.echo(textwrap.fill(text, 96, initial_indent=head, subsequent_indent=" " * 10))
        typer.echo("")


@app.command("show")
def show(
    name: str = typer.Argument(..., help="A preset's name, as `ffnlp presets` lists it."),
) -> None:
    """Print a preset's TOML file, comments included, to copy and edit.

    Example:

        ffnlp presets show sst2_ffnn > my.toml
    """
    typer.echo(presets.get(name).text(), nl=False)
