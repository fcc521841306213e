"""prefetched: the items in order, the producer's errors raised in the consumer, no thread left."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ffnlp.tasks.w2v.prefetch import prefetched


def test_items_arrive_in_order_and_the_thread_ends() -> None:
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))
    assert not [t for t in threading.enumerate() if t.name == "ffnlp-w2v-batches"]


def test_an_error_in_the_producer_is_raised_in_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("chunk 2 is broken")

    it = prefetched(items())
    assert next(it) == 1
    with pytest.raises(ValueError, match="chunk 2 is broken"):
        next(it)


@pytest.mark.parametrize("last", ["end", "error"])
def test_closing_while_the_producer_waits_on_a_full_queue_does_not_hang(last: str) -> None:
    exhausted = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        yield 2
        exhausted.set()  # next: the end marker (or the error) goes into a full queue
        if last == "error":
            raise ValueError("late")

    it = prefetched(items(), depth=1)
    assert next(it) == 1
    assert exhausted.wait(5)
    closer = threading.Thread(target=it.close, daemon=True)
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "closing the iterator waited forever on the producer thread"
