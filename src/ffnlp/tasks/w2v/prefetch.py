"""Batches made in a background thread, a few ahead of the training step that takes them.

Pair generation and noise sampling are torch operations that release the GIL, so one thread
preparing the next batches runs beside the step (word2vec's own threads do both in turn).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

_DONE = object()  # the producer's last item: the iterator is exhausted


def prefetched(items: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, ``depth`` ahead.

    An exception in the producer is raised in the consumer; closing the returned iterator early
    (or dropping it) stops the producer and joins its thread.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Queue ``item`` for the consumer; False once the consumer has stopped taking items
        (a plain blocking put could wait forever on a full queue nobody reads)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=work, name="ffnlp-w2v-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
