"""Serving runs over HTTP: ``ffnlp serve RUN [RUN ...]`` (the ``serve`` extra: Starlette + uvicorn).

- :mod:`ffnlp.serve.limits`: the request limits and the JSON error every refusal is;
- :mod:`ffnlp.serve.runs`: a run folder as the server holds it (the library's ``Classifier``,
  ``LanguageModel`` or ``Word2VecRun``, its weights memory-mapped), what each endpoint reads;
- :mod:`ffnlp.serve.batching`: concurrent requests to one run gathered into one call of the
  library's batch method;
- :mod:`ffnlp.serve.app`: the ASGI application (routes, body reading, errors);
- :mod:`ffnlp.serve.page`: the page at ``GET /``;
- :mod:`ffnlp.serve.server`: starting uvicorn, one process or several workers.

Nothing here imports Starlette or uvicorn at import time except :mod:`ffnlp.serve.app` and
:mod:`ffnlp.serve.server`; :func:`require_extra` says which extra to install when they are absent.
"""

from __future__ import annotations

import importlib.util

from ffnlp.errors import ConfigError

EXTRA_HINT = "pip install 'ffnlp[serve]'"


def require_extra() -> None:
    """ConfigError naming the ``serve`` extra unless Starlette and uvicorn can be imported."""
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"ffnlp serve needs {' and '.join(missing)}, which are not installed; install the "
            f"serve extra: {EXTRA_HINT}"
        )
