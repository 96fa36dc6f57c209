"""Decode ahead: run a frame iterator in its own thread, a few items ahead of its consumer (or of
several consumers sharing it, :func:`fanned_out`).

FFmpeg's decoders release the GIL, so decoding (and the RGB conversion) of the next frames overlaps
with the consumer's work on the current one (Face Mesh, compositing, SSIM). The queue is bounded
(``depth`` items), so memory stays bounded whatever the video's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def _put(q: queue.Queue, item, stopped: threading.Event) -> bool:
    """Put ``item`` on the bounded ``q``, waiting while it is full, unless ``stopped`` is set first
    (the consumer stopped). True: put."""
    while not stopped.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(source: Iterator, hand_over: Callable[[object], bool], error: list[BaseException], finish: Callable[[], None]) -> None:
    """The producer thread of :func:`prefetched` and :func:`fanned_out`: ``hand_over(item)`` for each
    item of ``source`` until it returns False (no consumer wants more). An exception raised by
    ``source`` is appended to ``error`` (re-raised by the consumers); in every case ``source`` is then
    closed (a generator: its ``with`` blocks, e.g. an open container, end here) and ``finish()``
    tells the consumers that nothing more comes."""
    try:
        for item in source:
            if not hand_over(item):
                return
    except BaseException as exc:  # handed to the consumers
        error.append(exc)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
        finish()


def prefetched(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield the items of ``items``, produced by a background thread at most ``depth`` ahead.

    An exception raised by ``items`` is re-raised here, at the position it happened. Stopping early
    (``break``, an error in the consumer, ``close()``) stops the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    error: list[BaseException] = []
    thread = threading.Thread(target=_produce, args=(iter(items), lambda item: _put(q, item, stop), error, lambda: _put(q, _END, stop)),
                              name="lipdub-prefetch", daemon=True)
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


class _Outlet:
    """One consumer of :func:`fanned_out`: its wanted keys, its bounded queue, whether it stopped."""

    def __init__(self, keys: set, depth: int) -> None:
        self.left = set(keys)  # keys not handed over yet
        self.q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stopped = threading.Event()
        self.ended = False


def fanned_out(items: Iterable[tuple[int, T]], wanted: list[set[int]], depth: int = 4) -> list[Iterator[tuple[int, T]]]:
    """Share one producer of ``(key, value)`` items (e.g. one decode of a video: frame index, RGB)
    between several consumers in their own threads: consumer ``c`` gets, in the producer's order, the
    items whose key is in ``wanted[c]`` (each key once), at most ``depth`` ahead of it; a consumer
    ends when it got all its keys or ``items`` ends. The producer (a background thread started at
    once) waits for the slowest consumer that still wants items, so memory stays bounded, and stops
    when every consumer has ended. An exception raised by ``items`` is re-raised in every consumer
    that had not got all its keys, after the items it got; a consumer that stops early (``break``, an
    error, ``close()``, dropped unread) is skipped from then on.

    Returns:
        One iterator per entry of ``wanted``.
    """
    outlets = [_Outlet(set(w), depth) for w in wanted]
    error: list[BaseException] = []

    def end(o: _Outlet) -> None:
        if not o.ended:
            o.ended = True
            _put(o.q, _END, o.stopped)

    def hand_over(item) -> bool:
        for o in outlets:
            if item[0] in o.left and not o.stopped.is_set():
                _put(o.q, item, o.stopped)
                o.left.discard(item[0])
                if not o.left:  # all it wants: it ends now, not when the source does
                    end(o)
        return not all(o.ended or o.stopped.is_set() for o in outlets)

    def finish() -> None:
        for o in outlets:
            end(o)

    for o in outlets:
        if not o.left:
            end(o)
    thread = threading.Thread(target=_produce, args=(iter(items), hand_over, error, finish), name="lipdub-fanout", daemon=True)
    thread.start()

    return [_Consumer(o, error) for o in outlets]


class _Consumer:
    """The iterator of one :func:`fanned_out` consumer; ``close()`` (or being dropped unread) stops it."""

    def __init__(self, out: _Outlet, error: list[BaseException]) -> None:
        self._out, self._error = out, error

    def __iter__(self) -> _Consumer:
        return self

    def __next__(self):
        if self._out.stopped.is_set():
            raise StopIteration
        try:
            item = self._out.q.get()
        except BaseException:
            self.close()
            raise
        if item is _END:
            self.close()
            if self._error and self._out.left:  # ended by the error, not by getting all its keys
                raise self._error[0]
            raise StopIteration
        return item

    def close(self) -> None:
        self._out.stopped.set()

    def __del__(self) -> None:
        self._out.stopped.set()
