"""`ffnlp explain shapes|dead|lr-range|backprop`: see inside a network."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ffnlp.cli.common import out_console, print_json

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def _classifier(run: Path):
    from ffnlp.tasks.classify import load

    return load(run)


@app.command("shapes")
def shapes(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    text: list[str] = typer.Option(["a gripping , funny film", "not good"], "--text", "-t",
                                   help="Texts to push through the network (repeatable)."),
    json_: bool = typer.Option(False, "--json", help="One JSON object per layer call."),
) -> None:
    """Every layer a forward pass goes through, with its input/output shapes and matrix products.

    Example:

        ffnlp explain shapes runs/sst2_ffnn --text "a gripping , funny film" --text "not good"
    """
    import torch

    from ffnlp.inspect.shapes import trace_shapes

    clf = _classifier(run)
    tokens = clf.tokenizer.tokenize_all(text)
    source = clf.featurizer.source(tokens, list(text), torch.zeros(len(text), dtype=torch.long))
    batch = next(iter(source.batches(len(text), None)))
    calls = trace_shapes(clf.model, lambda: clf.model.logits(batch))
    if json_:
        for c in calls:
            print_json(c.__dict__)
        return
    table = Table(title=f"{run}: forward pass on B = {len(text)} texts")
    for col in ("layer", "module", "input", "output", "matrix product", "mult-adds", "params"):
        table.add_column(col, justify="right" if col in ("mult-adds", "params") else "left")
    for c in calls:
        table.add_row(c.name, c.kind, " ".join(str(s) for s in c.inputs), str(c.output), c.product,
                      f"{c.macs:,}" if c.macs else "", f"{c.params:,}")
    out_console.print(table)


@app.command("dead")
def dead(
    run: Path = typer.Argument(..., help="Run directory of a trained classifier."),
    data: Path = typer.Option(..., "--data", help="Labelled data to run through the network."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Dead ReLUs: hidden units that output zero for every example of --data.

    Example:

        ffnlp explain dead runs/sst2_ffnn --data ../shared/data/sst2/stsa.binary.dev
    """
    import torch

    from ffnlp.inspect.diagnostics import dead_units
    from ffnlp.tasks.classify import read_split

    clf = _classifier(run)
    examples = read_split(data, clf.config)
    tokens = clf.tokenizer.tokenize_all(examples.texts)
    source = clf.featurizer.source(tokens, examples.texts, torch.zeros(len(examples), dtype=torch.long))
    report = dead_units(clf.model, source)
    if json_:
        print_json(report)
        return
    if not report:
        out_console.print("This network has no ReLU layers.")
    for name, r in report.items():
        out_console.print(f"{name}: {r['dead']} of {r['units']} units never fire ({r['dead_fraction']:.1%})")


@app.command("backprop")
def backprop(
    sizes: str = typer.Option("20,16,8,3", "--sizes", help="Layer sizes D,H1,...,K."),
    activation: str = typer.Option("tanh", "--activation", help="relu, tanh or sigmoid."),
    batch: int = typer.Option(32, "--batch", min=1, help="Examples in the random batch."),
) -> None:
    """Backpropagation by hand (NumPy) against PyTorch autograd and finite differences.

    Example:

        ffnlp explain backprop --sizes 20,16,8,3 --activation relu
    """
    from ffnlp.inspect.backprop_check import compare_with_autograd, parse_sizes

    result = compare_with_autograd(parse_sizes(sizes), activation, batch)
    out_console.print(f"loss: NumPy {result['loss_numpy']:.8f}, torch {result['loss_torch']:.8f}")
    for i, err in enumerate(result["max_abs_diff"]):
        out_console.print(f"layer {i + 1}: max |dW_numpy - dW_autograd| = {err:.2e}")
    out_console.print(f"finite differences: worst relative error {result['finite_difference']:.2e}")
