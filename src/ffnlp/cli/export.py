"""`ffnlp export RUN --onnx FILE --torchscript FILE`: a classifier for other runtimes."""

from pathlib import Path

import typer

from ffnlp.cli.common import out_console, print_json


def export(
    run: Path = typer.Argument(..., help="Run directory of a trained (or quantised) classifier."),
    onnx: Path = typer.Option(
        None,
        "--onnx",
        help="Write the network as ONNX (opset 17) to this file (needs pip install 'ffnlp[export]').",
    ),
    torchscript: Path = typer.Option(
        None, "--torchscript", help="Write the network as TorchScript to this file."
    ),
    features: Path = typer.Option(
        None,
        "--features",
        help="Write the featurisation spec (JSON) here (default: the first file + .features.json).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace files that already exist."),
    json_: bool = typer.Option(False, "--json", help="Print the files written as JSON."),
) -> None:
    """Export a classifier's network (ONNX and/or TorchScript) and its featurisation (JSON).

    The network takes padded inputs, ids (batch, length) int64 and mask (pooled runs) or
    weights (n-gram runs) (batch, length) float32, both axes dynamic, and gives logits and
    probabilities (batch, labels). The JSON file says how a text becomes those inputs
    (tokeniser, vocabulary, n-gram hashing, tf-idf weights): docs/export.md describes what a
    consumer reimplements; ffnlp.export.featurize.featurize is a reference in plain Python.

    Example:

        ffnlp export runs/sst2_pooled --onnx sst2.onnx   # + sst2.onnx.features.json
    """
    from ffnlp.export.exporter import export_run  # imports torch (and ONNX when asked)

    written = export_run(run, onnx=onnx, torchscript=torchscript, features=features, force=force)
    if json_:
        print_json({key: str(path) for key, path in written.items()})
        return
    for key, path in written.items():
        out_console.print(f"{key:<12} {path}  ({path.stat().st_size:,} bytes)", highlight=False)
