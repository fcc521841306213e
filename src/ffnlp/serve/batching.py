"""Micro-batching: the texts of concurrent requests to one run go through one call of the
library's batch method (``Classifier.predict``, ``LanguageModel.score``; the queries of
``Word2VecRun.most_similar_many``), one forward pass.

A request puts its texts in the run's queue and waits. The run's batch loop takes the first
request waiting, waits ``batch_wait_ms`` more (default 1 ms) for others, then takes every request
queued by then, up to ``max_batch_texts`` texts (a request larger than that goes alone), and calls
the batch method once for each distinct set of options among them (``k`` and ``threshold`` for
predict; usually one call) in the run's own thread, so the event loop keeps reading requests
meanwhile; those queue for the next batch. A request thus waits at most ``batch_wait_ms`` plus
the batch ahead of it, then its own batch's pass. One thread per run: two batches of one run
never run at once, and PyTorch's threads (``--threads``) serve one pass at a time. A call that
raises is made again for each of its requests alone, so that one request's bad input (a word
without a vector) fails that request only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

BatchFunction = Callable[[list[Any], Any], Sequence[Any]]


@dataclass
class _Waiting:
    texts: list[Any]  # texts, or a /neighbors request's (positive, negative) query
    options: Hashable
    future: asyncio.Future[list[Any]] = field(repr=False)


class MicroBatcher:
    """Gathers the texts of concurrent :meth:`submit` calls into calls of ``function(texts,
    options)``, which returns one result per text; see the module's docstring."""

    def __init__(
        self,
        function: BatchFunction,
        executor: ThreadPoolExecutor,
        wait_ms: float = 1.0,
        max_texts: int = 2048,
    ):
        self.function = function
        self.executor = executor
        self.wait = wait_ms / 1000.0
        self.max_texts = max_texts
        self.queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self.batches = 0  # calls of function made (for /health and the tests)
        self.largest = 0  # the most requests one batch gathered
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, texts: list[Any], options: Hashable) -> list[Any]:
        """The results of ``texts`` (one per text, in order) under ``options``."""
        self.start()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Waiting(texts, options, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            size = len(first.texts)
            if self.wait > 0 and size < self.max_texts:
                await asyncio.sleep(self.wait)
            while size < self.max_texts and not self.queue.empty():
                item = self.queue.get_nowait()
                batch.append(item)
                size += len(item.texts)
            live = [w for w in batch if not w.future.done()]
            if not live:
                continue
            self.batches += 1
            self.largest = max(self.largest, len(live))
            outcomes = await loop.run_in_executor(self.executor, _run_batch, self.function, live)
            for waiting, outcome in zip(live, outcomes, strict=True):
                if waiting.future.done():  # its client went away
                    continue
                if isinstance(outcome, BaseException):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)


def _call(function: BatchFunction, texts: list[Any], options: Hashable) -> list[Any]:
    results = list(function(texts, options))
    if len(results) != len(texts):
        raise RuntimeError(f"{len(results)} results for {len(texts)} texts")
    return results


def _run_batch(function: BatchFunction, batch: list[_Waiting]) -> list[Any]:
    """One call of ``function`` per distinct options; each request's share of the results (or
    the exception its call raised)."""
    groups: dict[Hashable, list[int]] = {}
    for i, waiting in enumerate(batch):
        groups.setdefault(waiting.options, []).append(i)
    outcomes: list[Any] = [None] * len(batch)
    for options, members in groups.items():
        texts = [t for i in members for t in batch[i].texts]
        try:
            results = _call(function, texts, options)
        except Exception as exc:
            if len(members) == 1:
                outcomes[members[0]] = exc
                continue
            # one request's input (an unknown word) must not fail the others: each again on
            # its own, and only those that fail alone get their error
            for i in members:
                try:
                    outcomes[i] = _call(function, batch[i].texts, options)
                except Exception as alone:
                    outcomes[i] = alone
            continue
        start = 0
        for i in members:
            n = len(batch[i].texts)
            outcomes[i] = results[start : start + n]
            start += n
    return outcomes
