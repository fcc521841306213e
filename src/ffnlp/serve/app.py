"""The ASGI application of ``ffnlp serve``: routes, reading a request, errors.

Routes:

- ``GET /``: a page to try the runs by hand (:mod:`ffnlp.serve.page`);
- ``GET /health``: ``{"status": "ok", "runs": [...], "batches": {run: forward passes so far}}``
  (the batches of this worker process);
- ``GET /v1/models``: every run: name, task, type, endpoints, labels (classify), config hash,
  sizes, whether its weights are memory-mapped;
- ``POST /v1/<name>/<endpoint>``: see :mod:`ffnlp.serve.runs`.

The prediction route (``POST /v1/...``) is answered by :class:`ServeApp` straight on the ASGI
messages; the others, and a wrong method or path, by Starlette's router.

Reading a request: a body declared or found larger than ``max_body_bytes`` is refused (413)
without being kept in memory; up to :data:`DRAIN_BYTES` of it is read and dropped first, so that
a client that sends its whole body before reading the answer gets the 413 rather than a reset
connection. The body must be UTF-8 JSON holding an object (else 422, ``"field": "body"``); each
endpoint checks its fields (422 naming the field; 413 naming the limit). Any other failure is a
500 whose body says only that the server's log has the details: no traceback reaches a client.
A client that goes away mid-request costs nothing more: its request is dropped (and its texts,
if already queued, are predicted with the rest of their batch, the answer discarded).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ffnlp.serve.limits import ApiError, Limits, too_large
from ffnlp.serve.page import render_page
from ffnlp.serve.runs import ServedRun, check_names
from ffnlp.threads import set_threads

log = logging.getLogger("ffnlp.serve")

DRAIN_BYTES = 64 << 20  # an oversized body is read and dropped up to this much before the 413
SPEC_VARIABLE = "FFNLP_SERVE_SPEC"  # the runs and limits, for worker processes (JSON)
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


def load_runs(paths: Sequence[str | Path], limits: Limits) -> list[ServedRun]:
    """Every run of ``paths`` loaded under its folder's name (two of one name refused)."""
    folders = [Path(p) for p in paths]
    names = check_names(folders)
    return [ServedRun(name, path, limits) for name, path in zip(names, folders, strict=True)]


_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_ENCODE_FINITE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
INTERNAL = {"error": "internal error in the server; its log has the details", "status": 500}


def render(content: Any) -> bytes:
    """``content`` as compact UTF-8 JSON; a non-finite number (not JSON) is written as null."""
    try:
        text = _ENCODE(content)
    except ValueError:
        text = _ENCODE_FINITE(_finite(content))
    return text.encode("utf-8")


class Answer(JSONResponse):
    """A JSON response written by :func:`render`."""

    def render(self, content: Any) -> bytes:
        return render(content)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def build_app(runs: list[ServedRun], limits: Limits) -> ServeApp:
    """The application serving ``runs`` (already loaded) under ``limits``."""
    by_name = {run.name: run for run in runs}
    page = render_page([run.describe() for run in runs])

    async def index(request: Request) -> Response:
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": PAGE_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    async def health(request: Request) -> Response:
        batches = {r.name: r.batcher.batches for r in runs if r.batcher is not None}
        return Answer({"status": "ok", "runs": list(by_name), "batches": batches})

    async def models(request: Request) -> Response:
        return Answer({"models": [run.describe() for run in runs]})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = (
                f"no such path: {request.url.path} (GET /, /health, /v1/models; "
                "POST /v1/<run>/<endpoint>)"
            )
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return Answer({"error": message, "status": exc.status_code}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        return Answer(INTERNAL, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # what was made before serving (the runs; PyTorch's and Numba's modules: hundreds of
        # thousands of objects) is left out of the collector's full passes, which then look at
        # what the requests make only
        gc.collect()
        gc.freeze()
        yield
        for run in runs:  # after the last request in flight has been answered
            await run.close()

    routes = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            # POST is answered by ServeApp before Starlette; any other method gets the 405
            Route("/v1/{run}/{endpoint}", _never, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    return ServeApp(routes, by_name, limits)


async def _never(request: Request) -> Response:  # pragma: no cover - ServeApp answers first
    raise RuntimeError("POST /v1/<run>/<endpoint> reached Starlette's router")


_CALL = re.compile(r"/v1/([^/]+)/([^/]+)\Z")
_JSON_HEADER = (b"content-type", b"application/json")


class _Gone(Exception):
    """The client went away before its request's body was read."""


class ServeApp:
    """The ASGI application: ``POST /v1/<run>/<endpoint>`` answered here, straight on the ASGI
    messages; every other request (the page, /health, /v1/models, a wrong method or path, the
    lifespan) by Starlette's router (``routes``).

    The prediction route is the one a busy server spends its time on: without Starlette's
    middleware, routing and request objects between uvicorn and the run, a request costs the
    server a good part less CPU (``python bench/serve.py``: the server's CPU time per request),
    with the same answers, errors and limits (tests/serve)."""

    def __init__(self, routes: Starlette, runs: dict[str, ServedRun], limits: Limits):
        self.routes = routes
        self.runs = runs
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = _CALL.match(scope["path"])
            if found is not None:
                await self.call(found[1], found[2], scope, receive, send)
                return
        await self.routes(scope, receive, send)

    async def call(
        self, name: str, endpoint: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        status = 200
        try:
            run = self.runs.get(name)
            if run is None:
                raise ApiError(
                    404,
                    f"no run named {name!r} is served here (served: {', '.join(self.runs)}); "
                    "GET /v1/models lists them",
                    "run",
                )
            body = parse_json(await receive_body(scope, receive, self.limits.max_body_bytes))
            answer = await run.handle(endpoint, body)
        except ApiError as exc:
            status, answer = exc.status, exc.body()
        except _Gone:
            log.info("a client went away before its request to %s/%s was read", name, endpoint)
            status, answer = 400, {"error": "the request's body did not arrive", "status": 400}
        except Exception:
            log.exception("request to /v1/%s/%s failed", name, endpoint)
            status, answer = 500, INTERNAL
        try:
            data = render(answer)
        except Exception:  # an answer JSON cannot hold: the server's fault, said as any other
            log.exception("the answer to /v1/%s/%s could not be written", name, endpoint)
            status, data = 500, render(INTERNAL)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON_HEADER, (b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request's body, refused (413) past ``limit`` bytes without keeping it; ``_Gone``
    when the client goes away first."""
    declared = b""
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value
            break
    if declared.isdigit() and int(declared) > limit:
        await _drain(receive, 0)
        raise too_large(
            f"the body is {int(declared)} bytes; at most {limit}", "max_body_bytes", "body"
        )
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            if message.get("more_body", False):
                await _drain(receive, size)
            raise too_large(f"the body is over {limit} bytes", "max_body_bytes", "body")
        parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def _drain(receive: Receive, seen: int) -> None:
    """Read and drop the rest of the body, up to DRAIN_BYTES in all."""
    while seen < DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else is a 422 naming the body."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            422, f"the body is not UTF-8 text (byte {exc.start}); send a JSON object", "body"
        ) from None
    try:
        data = _DECODE(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            422,
            f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "body",
        ) from None
    except (ValueError, RecursionError):  # a 5000-digit number, nesting too deep
        raise ApiError(
            422, "the body is not JSON this server reads (too deep or too long a number)", "body"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            422, f"the body must be a JSON object; got a JSON {type(data).__name__}", "body"
        )
    return data


def _not_json(name: str) -> Any:
    """NaN, Infinity, -Infinity: Python's json reads them; JSON has no such values."""
    raise ApiError(422, f"the body is not JSON: {name} is not a JSON value", "body")


_DECODE = json.JSONDecoder(parse_constant=_not_json).decode


def app_from_environment() -> ServeApp:
    """The application a worker process builds (uvicorn's factory): runs, limits and threads
    from the ``FFNLP_SERVE_SPEC`` variable that :func:`ffnlp.serve.server.serve` sets."""
    spec = json.loads(os.environ[SPEC_VARIABLE])
    set_threads(int(spec["threads"]))  # PyTorch's intra-op threads for every forward pass
    limits = Limits(**spec["limits"])
    return build_app(load_runs(spec["runs"], limits), limits)
