"""`ffnlp config show|check|reference`: every task's options, defaults and help."""

from pathlib import Path

import typer

from ffnlp import config as C
from ffnlp.cli.options import command_settings
from ffnlp.errors import ConfigError
from ffnlp.tasks import registry

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def config_class(task: str) -> type:
    spec = registry.find(task)
    if spec is None:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(registry.names())}")
    return spec.config


@app.command("show")
def show(
    task: str = typer.Argument(..., help="classify, lm or w2v."),
    config: Path = typer.Option(
        None, "--config", "-c", help="A TOML file to resolve on top of the defaults."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="key=value overrides (repeatable)."),
) -> None:
    """Print the resolved configuration of a task as TOML (defaults, then --config, then --set).

    Example:

        ffnlp config show classify --config sst2_logreg --set train.lr=0.1
    """
    cls = config_class(task)
    data = C.load_config_file(config) if config else {}
    typer.echo(C.dump_toml(C.build(cls, data, command_settings(set_))), nl=False)


@app.command("reference")
def reference() -> None:
    """Print the configuration reference of every task as Markdown (docs/configuration.md).

    Example:

        ffnlp config reference > docs/configuration.md
    """
    from ffnlp.tasks.reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)
