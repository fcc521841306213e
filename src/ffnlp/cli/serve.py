"""`ffnlp serve RUN [RUN ...]`: the runs over HTTP (needs the serve extra: Starlette + uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer

from ffnlp.serve.limits import Limits

_DEFAULTS = Limits()


def serve(
    runs: list[Path] = typer.Argument(
        ...,
        help="Run directories (any task; an ARPA file for an n-gram LM). Each is served under its "
        "folder's name: POST /v1/<name>/<endpoint>.",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface, put "
        "a proxy with TLS in front).",
    ),
    port: int = typer.Option(8000, "--port", help="TCP port to listen on."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Worker processes; they share the memory-mapped weights (about one core each).",
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, help="PyTorch threads of each worker's forward passes."
    ),
    max_body_bytes: int = typer.Option(
        _DEFAULTS.max_body_bytes, "--max-body-bytes", min=1, help="Largest request body (413)."
    ),
    max_texts: int = typer.Option(
        _DEFAULTS.max_texts, "--max-texts", min=1, help="Most texts (or words) in a request (413)."
    ),
    max_text_chars: int = typer.Option(
        _DEFAULTS.max_text_chars, "--max-text-chars", min=1, help="Longest text, characters (413)."
    ),
    max_tokens: int = typer.Option(
        _DEFAULTS.max_tokens, "--max-tokens", min=1, help="Most tokens one /generate samples (413)."
    ),
    batch_wait_ms: float = typer.Option(
        _DEFAULTS.batch_wait_ms,
        "--batch-wait-ms",
        min=0,
        max=1000,
        help="How long a batch waits for more requests after its first (0: take those queued).",
    ),
    max_batch_texts: int = typer.Option(
        _DEFAULTS.max_batch_texts,
        "--max-batch-texts",
        min=1,
        help="Most texts gathered into one forward pass (a larger request goes alone).",
    ),
    shutdown_timeout: float = typer.Option(
        30.0,
        "--shutdown-timeout",
        min=0,
        help="On SIGTERM / Ctrl-C, seconds the requests in flight get to finish.",
    ),
    log_requests: bool = typer.Option(
        False, "--log-requests", help="Log every request (access log)."
    ),
) -> None:
    """Serve trained runs over HTTP: predict, score, generate, neighbours, vectors, and a page.

    Endpoints (JSON): POST /v1/<run>/predict {"text": "..." or [...], "k", "threshold"} for a
    classifier; /score {"text"} and /generate {"prompt", "max_tokens", "temperature", "top_k",
    "seed"} for a language model; /neighbors {"word", "negative", "k"} and /vector {"word"} for
    word vectors. GET /health, GET /v1/models (task, labels, config hash, sizes), GET / (a page
    to try them). Concurrent requests to a run are batched into one forward pass. Stop with
    Ctrl-C or SIGTERM: the requests in flight finish first. See docs/deploy.md.

    Example:

        ffnlp serve runs/sst2_pooled runs/ptb_lm --port 8000

        curl -s localhost:8000/v1/sst2_pooled/predict -d '{"text": "a gripping , funny film", "k": 2}'
    """
    from ffnlp.serve.server import serve as run_server

    limits = Limits(
        max_body_bytes=max_body_bytes,
        max_texts=max_texts,
        max_text_chars=max_text_chars,
        max_tokens=max_tokens,
        batch_wait_ms=batch_wait_ms,
        max_batch_texts=max_batch_texts,
    )
    run_server(
        runs,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        limits=limits,
        log_requests=log_requests,
        shutdown_timeout=shutdown_timeout,
    )
