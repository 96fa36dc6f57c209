"""Decode ahead: run a frame iterator in its own thread, a few items ahead of its consumer.

FFmpeg's decoders release the GIL, so decoding (and the RGB conversion) of the next frames overlaps
with the consumer's work on the current one (Face Mesh, compositing, SSIM). The queue is bounded
(``depth`` items), so memory stays bounded whatever the video's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def prefetched(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield the items of ``items``, produced by a background thread at most ``depth`` ahead.

    An exception raised by ``items`` is re-raised here, at the position it happened. Stopping early
    (``break``, an error in the consumer, ``close()``) stops the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    error: list[BaseException] = []

    source = iter(items)

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer
            error.append(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:  # a generator: its ``with`` blocks (the open container) end here
                close()
            while not stop.is_set():
                try:
                    q.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=produce, name="lipdub-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            yield item
        if error:
            raise error[0]
    finally:
        stop.set()
        thread.join()
