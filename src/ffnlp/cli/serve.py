"""`ffnlp serve RUN [RUN ...]`: the runs over HTTP (needs the serve extra: Starlette + uvicorn)."""

from pathlib import Path
from typing import Annotated

from ffnlp.cli.options import HelpTable as Help
from ffnlp.cli.options import with_options
from ffnlp.serve.limits import Limits

LIMITS = Limits()

HELP = Help(
    {
        "RUNS": "Run directories (any task; an ARPA file for an n-gram LM). Each is served under "
        "its folder's name: POST /v1/<name>/<endpoint>.",
        "--host": "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface, "
        "put a proxy with TLS in front).",
        "--port": "TCP port to listen on.",
        "--workers": "Worker processes; they share the memory-mapped weights (about one core "
        "each).",
        "--threads": "PyTorch threads of each worker's forward passes.",
        "--max-body-bytes": "Largest request body (413).",
        "--max-texts": "Most texts (or words) in a request (413).",
        "--max-text-chars": "Longest text, characters (413).",
        "--max-tokens": "Most tokens one /generate samples (413).",
        "--batch-wait-ms": "How long a batch waits for more requests after its first (0: take "
        "those queued).",
        "--max-batch-texts": "Most texts gathered into one forward pass (a larger request goes "
        "alone).",
        "--shutdown-timeout": "On SIGTERM / Ctrl-C, seconds the requests in flight get to finish.",
        "--log-requests": "Log every request (access log).",
    }
)


def limits_options(
    max_body_bytes: Annotated[int, HELP("--max-body-bytes", min=1)] = LIMITS.max_body_bytes,
    max_texts: Annotated[int, HELP("--max-texts", min=1)] = LIMITS.max_texts,
    max_text_chars: Annotated[int, HELP("--max-text-chars", min=1)] = LIMITS.max_text_chars,
    max_tokens: Annotated[int, HELP("--max-tokens", min=1)] = LIMITS.max_tokens,
    batch_wait_ms: Annotated[
        float, HELP("--batch-wait-ms", min=0, max=1000)
    ] = LIMITS.batch_wait_ms,
    max_batch_texts: Annotated[int, HELP("--max-batch-texts", min=1)] = LIMITS.max_batch_texts,
) -> Limits:
    """What one request may ask for (each option a field of ffnlp.serve.limits.Limits)."""
    return Limits(**locals())


@with_options(limits_options, "limits")
def serve(
    runs: Annotated[list[Path], HELP("RUNS")],
    host: Annotated[str, HELP("--host")] = "127.0.0.1",
    port: Annotated[int, HELP("--port")] = 8000,
    workers: Annotated[int, HELP("--workers", min=1)] = 1,
    threads: Annotated[int, HELP("--threads", min=1)] = 1,
    limits: Limits = LIMITS,  # with_options: --max-body-bytes ... --max-batch-texts
    shutdown_timeout: Annotated[float, HELP("--shutdown-timeout", min=0)] = 30.0,
    log_requests: Annotated[bool, HELP("--log-requests")] = False,
) -> None:
    """Serve trained runs over HTTP: predict, score, generate, neighbours, vectors, and a page.

    POST /v1/<run>/predict (classify), /score and /generate (lm), /neighbors and /vector (w2v);
    GET /health, /v1/models, / (a page to try them): fields and answers in docs/deploy.md.
    Concurrent requests to a run are batched into one forward pass. Stop with Ctrl-C or SIGTERM:
    the requests in flight finish first.

    Example:

        ffnlp serve runs/sst2_pooled runs/ptb_lm --port 8000

        curl -s localhost:8000/v1/sst2_pooled/predict -d '{"text": "a gripping , funny film", "k": 2}'
    """
    options = locals()  # the keywords of ffnlp.serve.server.serve, by the same names
    from ffnlp.serve.server import serve as run_server  # the server needs the serve extra

    run_server(**options)
