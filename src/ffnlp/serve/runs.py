"""A run as the server holds it: the library's object for it, what each endpoint reads from a
request and answers, and the description ``GET /v1/models`` gives.

Runs are loaded with :func:`ffnlp.load` (every file checked), then their network's weights are
swapped for the tensors of model.safetensors mapped into memory (:func:`map_weights`): the pages
come from the operating system's file cache, so the workers of one server, and servers of the same
run, share one copy instead of a copy each.

Endpoints (``POST /v1/<name>/<endpoint>``, JSON object in, JSON out):

- classify: ``predict`` -- ``text`` (a string, or a list of strings), ``k`` (default 1, -1 for
  every label), ``threshold`` (0..1, default the run's); each text's answer is the object of
  ``ffnlp classify predict --json``: ``text``, ``label``, ``prob``, ``top``;
- lm: ``score`` -- ``text`` (string or list): ``log_prob``, ``perplexity``, ``tokens``,
  ``unknown``; ``generate`` -- ``prompt``, ``max_tokens`` (default 30), ``temperature`` (1.0),
  ``top_k`` (0 = all), ``seed`` (0): ``text``, ``tokens``, ``unknown``;
- w2v: ``neighbors`` -- ``word`` (a word, or a list added up), ``negative`` (words subtracted),
  ``k`` (default 10): ``neighbors`` [{word, score}]; ``vector`` -- ``word`` (string or list):
  ``word``, ``vector``.

Batched (:mod:`ffnlp.serve.batching`): ``predict`` (``Classifier.predict``), ``score``
(``LanguageModel.score``) and ``neighbors`` (``Word2VecRun.most_similar_many``: the queries of
concurrent requests times the table in one matrix product). Not batched, in the run's thread:
``generate`` (each step samples from the request's own seeded generator and feeds the drawn
token to the next step; stepping several requests together would compute their logits in
other matrix shapes, whose rounding differs, and a seed would no longer give
``LanguageModel.generate``'s text) and ``vector`` (a row look-up per word, or a subword
model's mean of a few rows: no product to share; a request's list of words is one call).

A string gives one answer object; a list gives ``{"results": [...]}``, one per item, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

from torch import nn

from ffnlp.errors import ConfigError, DataError, FfnlpError
from ffnlp.folders.layout import CONFIG, WEIGHTS
from ffnlp.serve.batching import MicroBatcher
from ffnlp.serve.limits import ApiError, Limits, invalid, too_large
from ffnlp.tasks import registry
from ffnlp.training.config import MAX_SEED

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
MAX_NEIGHBORS = 1000
WARM_UP_TEXT = "a warm-up text"  # predicted once at start, before the server listens

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def run_name(path: Path) -> str:
    """The name a run is served under: its folder's name (a file's name for an ARPA model)."""
    name = path.name or path.resolve().name
    if not NAME.match(name):
        raise ConfigError(
            f"{path}: the run is served under its folder's name, and {name!r} cannot be one "
            "(letters, digits, '.', '_' and '-' only, not starting with '.' or '-'); rename or "
            "copy the folder"
        )
    return name


def check_names(paths: list[Path]) -> list[str]:
    """The names of ``paths``, refusing two runs of one name (the URL would be ambiguous)."""
    names: dict[str, Path] = {}
    for path in paths:
        name = run_name(path)
        if name in names:
            raise ConfigError(
                f"two runs would be served as {name!r}: {names[name]} and {path} (a run's name "
                "in the URL is its folder's name); rename or copy one of the folders"
            )
        names[name] = path
    return list(names)


class ServedRun:
    """One run behind ``/v1/<name>/...``: the library object, its thread, its batcher."""

    def __init__(self, name: str, path: Path, limits: Limits):
        import ffnlp

        self.name = name
        self.path = path
        self.limits = limits
        # a Classifier, LanguageModel or Word2VecRun: each endpoint calls its own methods
        self.model: Any = ffnlp.load(path)
        self.spec = registry.of_result(self.model)  # its task: endpoints, description
        self.task = self.spec.name
        self.mapped = any(map_weights(module, weights) for module, weights in self._networks())
        # a classifier's NumPy path (ffnlp.tasks.fastpredict.FastClassifier), taken once: the
        # weights of a served run do not change, so each batch goes straight to the path
        # Classifier.predict would choose, without its per-call checks (the server has read k
        # and threshold) and its look at the tensors (a tenth of a batch's time in a busy server)
        fast_path = getattr(self.model, "fast_path", None)
        self.fast: Any = fast_path() if callable(fast_path) else None
        # one thread per run: its batches (and PyTorch's threads) serve one pass at a time
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serve-{name}")
        self.batcher: MicroBatcher | None = None
        self.handlers: dict[str, Handler] = {}
        # the endpoints whose texts are gathered into batches: what each batch runs
        batched: dict[str, Callable[[list[Any], Any], Any]] = {
            "predict": self._predict_batch,
            "score": lambda texts, _: self.model.score(texts),
            "neighbors": lambda queries, k: self.model.most_similar_many(queries, k),
        }
        for endpoint in self.spec.endpoints:
            if endpoint in batched and self.batcher is None:
                self.batcher = self._batcher(batched[endpoint])
        self.handlers = {endpoint: getattr(self, endpoint) for endpoint in self.spec.endpoints}
        # one call of the batch method before the server listens: what the library makes on
        # first use (a classifier's NumPy path over the mapped weights, its compiled loops,
        # loaded from Numba's cache or compiled) is not paid by the first client
        if "predict" in self.spec.endpoints:
            self._predict_batch([WARM_UP_TEXT], (1, None))

    def _batcher(self, function: Callable[[list[Any], Any], Any]) -> MicroBatcher:
        return MicroBatcher(
            function, self.executor, self.limits.batch_wait_ms, self.limits.max_batch_texts
        )

    def _networks(self) -> list[tuple[nn.Module, Path]]:
        """(module, its model.safetensors) for every network of the run."""
        found = []
        model = self.model
        for lm in (model, getattr(model, "partner", None)):
            network = getattr(lm, "network", None)
            if isinstance(network, nn.Module) and lm is not None and lm.run_dir is not None:
                found.append((network, Path(lm.run_dir) / WEIGHTS))
        module = getattr(model, "model", None)
        if isinstance(module, nn.Module) and model.run_dir is not None:
            found.append((module, Path(model.run_dir) / WEIGHTS))
        return found

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` says of the run."""
        model = self.model
        out: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "endpoints": [f"/v1/{self.name}/{e}" for e in self.spec.endpoints],
        }
        if self.spec.describe is not None:
            out.update(self.spec.describe(model))
        config = self.path / CONFIG  # an ARPA file (no folder) has none: null
        out["config_hash"] = "sha256:" + _sha256(config) if config.is_file() else None
        weights = self.path / WEIGHTS
        out["size_bytes"] = (
            weights.stat().st_size if weights.is_file() else self.path.stat().st_size
        )
        out["run_bytes"] = _folder_bytes(self.path)
        out["weights"] = "memory-mapped" if self.mapped else "in memory"
        return out

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=True)

    async def _in_thread(self, function: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function)

    # -- classify ------------------------------------------------------------------------------
    def _predict_batch(self, texts: list[str], options: tuple[int, float | None]) -> list[Any]:
        k, threshold = options
        if self.fast is not None:
            return self.fast.predict(texts, k=k, threshold=threshold)
        return self.model.predict(texts, k=k, threshold=threshold)

    async def predict(self, body: dict[str, Any]) -> Any:
        known(body, ("text", "k", "threshold"))
        texts, single = text_list(body, "text", self.limits)
        k = integer(body, "k", 1, low=-1)
        if k == 0:
            raise invalid("k", "must be at least 1, or -1 for every label; got 0")
        threshold = number(body, "threshold", None, 0.0, 1.0)
        assert self.batcher is not None
        tops = await self.batcher.submit(texts, (k, threshold))
        answers = []
        for text, top in zip(texts, tops, strict=True):
            label, prob = top[0] if top else (None, 0.0)
            answers.append(
                {
                    "text": text,
                    "label": label,
                    "prob": prob,
                    "top": [{"label": lab, "prob": p} for lab, p in top],
                }
            )
        return answers[0] if single else {"results": answers}

    # -- lm ------------------------------------------------------------------------------------
    async def score(self, body: dict[str, Any]) -> Any:
        known(body, ("text",))
        texts, single = text_list(body, "text", self.limits)
        assert self.batcher is not None
        scores = await self.batcher.submit(texts, None)
        answers = [{"text": t, **s} for t, s in zip(texts, scores, strict=True)]
        return answers[0] if single else {"results": answers}

    async def generate(self, body: dict[str, Any]) -> Any:
        known(body, ("prompt", "max_tokens", "temperature", "top_k", "seed"))
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise invalid("prompt", f"must be a string; got {_type(prompt)}")
        _check_length(prompt, "prompt", self.limits)
        max_tokens = integer(body, "max_tokens", 30, low=1)
        if max_tokens > self.limits.max_tokens:
            raise too_large(
                f"max_tokens is {max_tokens}; at most {self.limits.max_tokens} tokens are sampled",
                "max_tokens",
                "max_tokens",
            )
        temperature = number(body, "temperature", 1.0, 0.0, None)
        top_k = integer(body, "top_k", 0, low=0)
        seed = integer(body, "seed", 0, low=0, high=MAX_SEED)
        assert temperature is not None
        done = await self._in_thread(
            lambda: self.model.generate(prompt, max_tokens, temperature, top_k, seed)
        )
        return {"prompt": prompt, "text": done.text, "tokens": done.tokens, "unknown": done.unknown}

    # -- w2v -----------------------------------------------------------------------------------
    async def neighbors(self, body: dict[str, Any]) -> Any:
        known(body, ("word", "negative", "k"))
        if "word" not in body:
            raise invalid("word", "is missing (a word, or a list of words to add up)")
        positive, _ = text_list(body, "word", self.limits)
        negative = text_list(body, "negative", self.limits)[0] if "negative" in body else []
        k = integer(body, "k", 10, low=1, high=MAX_NEIGHBORS)
        assert self.batcher is not None
        (found,) = await self.batcher.submit([(positive, negative)], k)
        return {
            "word": body["word"],
            "neighbors": [{"word": w, "score": float(s)} for w, s in found],
        }

    async def vector(self, body: dict[str, Any]) -> Any:
        known(body, ("word",))
        words, single = text_list(body, "word", self.limits)
        vectors = await self._in_thread(lambda: [self.model.vector(w) for w in words])
        answers = [
            {"word": w, "vector": [float(x) for x in v]}
            for w, v in zip(words, vectors, strict=True)
        ]
        return answers[0] if single else {"results": answers}

    async def handle(self, endpoint: str, body: dict[str, Any]) -> Any:
        """The answer of ``endpoint`` to ``body``; a library error about the input is a 422."""
        handler = self.handlers.get(endpoint)
        if handler is None:
            raise ApiError(
                404,
                f"{self.name} is {_a(self.task)} run; its endpoints are "
                f"{', '.join(f'/v1/{self.name}/{e}' for e in self.spec.endpoints)}",
                "endpoint",
            )
        try:
            return await handler(body)
        except (DataError, ConfigError) as exc:  # the input's fault (an unknown word, a range)
            field = {"neighbors": "word", "vector": "word"}.get(endpoint, "body")
            raise ApiError(422, str(exc), field) from None
        except FfnlpError as exc:
            raise ApiError(422, str(exc)) from None


def map_weights(module: nn.Module, weights: Path) -> bool:
    """Swap the tensors of ``module`` for those of ``weights`` mapped into memory (read-only
    pages of the file cache, shared by every process that maps the file), each only where the
    stored tensor has the same shape, type and values (the file was not changed since the
    load). True when at least one tensor is mapped."""
    if not weights.is_file():
        return False
    from safetensors.torch import load_file

    try:
        stored = load_file(str(weights))
    except Exception:  # the load itself checked the file: keep the copies it made
        return False
    mapped = False
    named = chain(
        module.named_parameters(remove_duplicate=False),
        module.named_buffers(remove_duplicate=False),
    )
    for name, tensor in named:
        source = stored.get(name)
        if (
            source is None
            or source.shape != tensor.shape
            or source.dtype != tensor.dtype
            or source.data_ptr() == tensor.data_ptr()
            or not bool((source == tensor).all())
        ):
            continue
        tensor.data = source
        mapped = True
    return mapped


# -- reading a request's fields -----------------------------------------------------------------
def known(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    """422 naming a field the endpoint does not read (nothing is silently ignored)."""
    for key in body:
        if key not in fields:
            raise invalid(key, f"unknown field (this endpoint reads {', '.join(fields)})")


def text_list(body: dict[str, Any], field: str, limits: Limits) -> tuple[list[str], bool]:
    """``body[field]``: a string or a list of strings, within the limits; (texts, was a string)."""
    if field not in body:
        raise invalid(field, "is missing (a string, or a list of strings)")
    value = body[field]
    if isinstance(value, str):
        _check_length(value, field, limits)
        return [value], True
    if not isinstance(value, list):
        raise invalid(field, f"must be a string or a list of strings; got {_type(value)}")
    if len(value) > limits.max_texts:
        raise too_large(
            f"{field} has {len(value)} items; at most {limits.max_texts} per request",
            "max_texts",
            field,
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise invalid(f"{field}[{i}]", f"must be a string; got {_type(item)}")
        _check_length(item, f"{field}[{i}]", limits)
    return list(value), False


def _check_length(text: str, field: str, limits: Limits) -> None:
    if len(text) > limits.max_text_chars:
        raise too_large(
            f"{field} has {len(text)} characters; at most {limits.max_text_chars}",
            "max_text_chars",
            field,
        )


def integer(
    body: dict[str, Any], field: str, default: int, low: int, high: int | None = None
) -> int:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"must be an integer; got {_type(value)}")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise invalid(field, f"must be {span}; got {value}")
    return value


def number(
    body: dict[str, Any], field: str, default: float | None, low: float, high: float | None
) -> float | None:
    value = body.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(field, f"must be a number; got {_type(value)}")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise invalid(field, f"must be {span}; got {value}")
    return float(value)


def _type(value: object) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    kinds.update({list: "a list", dict: "an object", type(None): "null"})
    return kinds.get(type(value), type(value).__name__)


def _a(task: str) -> str:
    return f"{'an' if task[:1] in 'aeiloux' else 'a'} {task}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file() and not p.is_symlink())
