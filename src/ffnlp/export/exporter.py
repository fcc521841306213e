"""``ffnlp export RUN --onnx FILE --torchscript FILE``: a classifier's network for other runtimes.

Both files hold :class:`~ffnlp.export.network.PortableClassifier` (inputs ``ids`` and ``mask``
or ``weights``, (B, L) each, both axes dynamic; outputs ``logits`` and ``probabilities``); the
featurisation goes beside them as JSON (:mod:`ffnlp.export.featurize`), ``FILE.features.json``
unless ``features`` names another file.

ONNX (opset :data:`OPSET`) is written with PyTorch's TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``: the newer one needs onnxscript and gives nothing
these small graphs need), then checked and labelled with the ``onnx`` package: the ``[export]``
extra (``pip install 'ffnlp[export]'``). TorchScript needs PyTorch alone. PyTorch marks both
of its TorchScript paths deprecated; their warnings are not passed on to the user.

Every file is written atomically (:mod:`ffnlp.fileio`): checked first (a folder, a symbolic
link, a parent that is a file, an existing file without ``force``: an error before any work),
built in memory, then written; when a later file cannot be written the earlier ones of the same
call are removed again, so a failed export leaves nothing new behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ffnlp.errors import ConfigError, OutputError
from ffnlp.export.featurize import feature_spec
from ffnlp.export.network import INPUTS, OUTPUTS, PortableClassifier
from ffnlp.fileio import check_target, write_atomic
from ffnlp.outputs import check_output_file
from ffnlp.version import __version__

OPSET = 17
EXTRA = "pip install 'ffnlp[export]'"


def require_onnx() -> Any:
    """The ``onnx`` module, or a ConfigError naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            f"--onnx needs the onnx package, which is not installed: {EXTRA} (TorchScript "
            "export, --torchscript, needs nothing more)"
        ) from None
    return onnx


def default_features_path(first: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.features.json``."""
    return first.with_name(first.name + ".features.json")


def export_run(
    run: str | Path,
    onnx: str | Path | None = None,
    torchscript: str | Path | None = None,
    features: str | Path | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Export the classifier in ``run``; return what was written ({"onnx", "torchscript",
    "features"} -> path)."""
    from ffnlp.tasks.classify import load

    if onnx is None and torchscript is None:
        raise ConfigError("nothing to export: give --onnx FILE, --torchscript FILE or both")
    targets: dict[str, Path] = {}
    for key, path, option in (
        ("onnx", onnx, "--onnx"),
        ("torchscript", torchscript, "--torchscript"),
    ):
        if path is not None:
            targets[key] = check_output_file(path, option)
    first = targets.get("onnx", targets.get("torchscript"))
    assert first is not None
    targets["features"] = check_output_file(
        features if features is not None else default_features_path(first), "--features"
    )
    _check_distinct(targets)
    for key, path in targets.items():
        check_target(path)
        if path.exists() and not force:
            raise OutputError(
                f"{path} already exists; pass --force to replace it, or choose another "
                f"{'--' + key} file"
            )
    if "onnx" in targets:
        require_onnx()
    classifier = load(run)
    spec = feature_spec(classifier)  # a run that cannot be exported says so before any work
    network = PortableClassifier(classifier.model)
    payloads: dict[str, bytes] = {"features": json.dumps(spec).encode("utf-8")}
    if "onnx" in targets:
        payloads["onnx"] = onnx_bytes(network, spec)
    if "torchscript" in targets:
        payloads["torchscript"] = torchscript_bytes(network)
    return _write_all(targets, payloads)


def example_inputs(network: PortableClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    """Two texts of three ids each: what the exporters trace."""
    ids = torch.zeros((2, 3), dtype=torch.long)
    return ids, torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """PyTorch's deprecation and tracer warnings about its TorchScript paths, kept from the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
        yield


def onnx_bytes(network: PortableClassifier, spec: dict[str, Any]) -> bytes:
    """The ONNX model of ``network``: dynamic batch and length axes, checked, with the labels
    and the ffnlp version in its metadata."""
    onnx = require_onnx()
    names = INPUTS[network.kind]
    axes = {name: {0: "batch", 1: "length"} for name in names}
    axes.update({name: {0: "batch"} for name in OUTPUTS})
    with tempfile.TemporaryDirectory(prefix="ffnlp-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        with _quiet_torch(), torch.no_grad():
            torch.onnx.export(
                network,
                example_inputs(network),
                path,
                dynamo=False,
                opset_version=OPSET,
                input_names=list(names),
                output_names=list(OUTPUTS),
                dynamic_axes=axes,
            )
        model = onnx.load(str(path))
    model.producer_name, model.producer_version = "ffnlp", __version__
    model.doc_string = (
        f"ffnlp classifier: inputs {', '.join(names)} (batch, length); outputs logits, "
        "probabilities (batch, labels); featurisation in the .features.json file beside it"
    )
    for key, value in (
        ("labels", json.dumps(spec["labels"])),
        ("features_kind", spec["kind"]),
        ("output_kind", spec["output"]["kind"]),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def torchscript_bytes(network: PortableClassifier) -> bytes:
    """The TorchScript module of ``network`` (traced: no data-dependent branch in it)."""
    buffer = io.BytesIO()
    with _quiet_torch(), torch.no_grad():
        traced = torch.jit.trace(network, example_inputs(network), check_trace=False)
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _check_distinct(targets: dict[str, Path]) -> None:
    seen: dict[Path, str] = {}
    for key, path in targets.items():
        real = path.resolve()
        if real in seen:
            raise ConfigError(
                f"the {seen[real]} and {key} files are both {path}; give each its own file"
            )
        seen[real] = key


def _write_all(targets: dict[str, Path], payloads: dict[str, bytes]) -> dict[str, Path]:
    """Write every payload; if one fails, remove those this call wrote before it."""
    written: list[Path] = []
    for key, path in targets.items():
        existed = path.exists()
        try:
            write_atomic(path, payloads[key])
        except BaseException:
            for done in written:
                done.unlink(missing_ok=True)
            raise
        if not existed:
            written.append(path)
    return targets
