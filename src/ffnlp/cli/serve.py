"""`ffnlp serve RUN [RUN ...]`: the runs over HTTP (needs the serve extra: Starlette + uvicorn)."""

from pathlib import Path
from typing import Annotated

import typer

from ffnlp.serve.limits import Limits

_DEFAULTS = Limits()


Runs = Annotated[
    list[Path],
    typer.Argument(
        help="Run directories (any task; an ARPA file for an n-gram LM). Each is served under its "
        "folder's name: POST /v1/<name>/<endpoint>."
    ),
]
Host = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface, put "
        "a proxy with TLS in front).",
    ),
]
Port = Annotated[int, typer.Option("--port", help="TCP port to listen on.")]
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Worker processes; they share the memory-mapped weights (about one core each).",
    ),
]
Threads = Annotated[
    int, typer.Option("--threads", min=1, help="PyTorch threads of each worker's forward passes.")
]
MaxBodyBytes = Annotated[
    int, typer.Option("--max-body-bytes", min=1, help="Largest request body (413).")
]
MaxTexts = Annotated[
    int, typer.Option("--max-texts", min=1, help="Most texts (or words) in a request (413).")
]
MaxTextChars = Annotated[
    int, typer.Option("--max-text-chars", min=1, help="Longest text, characters (413).")
]
MaxTokens = Annotated[
    int, typer.Option("--max-tokens", min=1, help="Most tokens one /generate samples (413).")
]
BatchWaitMs = Annotated[
    float,
    typer.Option(
        "--batch-wait-ms",
        min=0,
        max=1000,
        help="How long a batch waits for more requests after its first (0: take those queued).",
    ),
]
MaxBatchTexts = Annotated[
    int,
    typer.Option(
        "--max-batch-texts",
        min=1,
        help="Most texts gathered into one forward pass (a larger request goes alone).",
    ),
]
ShutdownTimeout = Annotated[
    float,
    typer.Option(
        "--shutdown-timeout",
        min=0,
        help="On SIGTERM / Ctrl-C, seconds the requests in flight get to finish.",
    ),
]
LogRequests = Annotated[
    bool, typer.Option("--log-requests", help="Log every request (access log).")
]


def serve(
    runs: Runs,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
    threads: Threads = 1,
    max_body_bytes: MaxBodyBytes = _DEFAULTS.max_body_bytes,
    max_texts: MaxTexts = _DEFAULTS.max_texts,
    max_text_chars: MaxTextChars = _DEFAULTS.max_text_chars,
    max_tokens: MaxTokens = _DEFAULTS.max_tokens,
    batch_wait_ms: BatchWaitMs = _DEFAULTS.batch_wait_ms,
    max_batch_texts: MaxBatchTexts = _DEFAULTS.max_batch_texts,
    shutdown_timeout: ShutdownTimeout = 30.0,
    log_requests: LogRequests = False,
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
    from ffnlp.serve.server import serve as run_server  # the server needs the serve extra

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
