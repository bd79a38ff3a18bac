"""EventBus: one bounded queue and one thread that hands every event to every sink, in order.

Producers (front ends, worker, engine) never call a sink directly, so a slow terminal or disk
cannot stall the audio path for long: the queue absorbs bursts, and only meter readings (Level)
may be dropped when it is full; every other event waits for room and is delivered.

A sink may derive events (alerts from the figures): what it publishes from the event thread is
delivered right after the event in hand, never queued (the thread would wait on itself when the
queue is full). Sinks with a `tick()` method are also called about every TICK_S, events or not,
for what depends on wall time alone (a feed down for too long).

A sink that fails is dropped and the others go on: they get a Notice, and `on_failure` hears of
it at once (with `reader_left` when the output was a pipe whose reader has gone, e.g. `| head`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from .errors import OutputError
from .events import Event, Level, Notice
from .threads import join_thread

log = logging.getLogger(__name__)
QUEUE_EVENTS = 1024
TICK_S = 0.5
READER_LEFT = "standard output was closed by its reader; stopping"

FailureFn = Callable[[str, bool], None]  # (one-sentence message, reader_left)


def enqueue(events: queue.Queue, event: Event) -> bool:
    """Puts `event` on a bounded queue: a meter reading (Level) is dropped when the queue is
    full (False), as the next one supersedes it; any other event waits for room, so nothing a
    sink must see is lost."""
    if isinstance(event, Level):
        try:
            events.put_nowait(event)
        except queue.Full:
            return False
        return True
    events.put(event)
    return True


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class _Flush:
    """A marker: set once every event queued before it has reached every sink."""

    def __init__(self) -> None:
        self.done = threading.Event()


_END = object()  # the last item: close the sinks and end the thread


class EventBus:
    def __init__(
        self,
        sinks: list[Sink],
        capacity: int = QUEUE_EVENTS,
        on_failure: FailureFn | None = None,
    ) -> None:
        self._sinks = list(sinks)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._dispatch, name="events")
        self._on_failure = on_failure
        self._closed = False
        self._lock = threading.Lock()
        self.dropped_levels = 0
        self._derived: deque[Event] = deque()  # published by sinks, on the event thread
        self._next_tick = 0.0

    # -- ThreadOwner ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Delivers what is queued, then closes the sinks (flushing files) and ends the thread.
        Idempotent; events published later are dropped, so publish the summary first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Never blocks: with a full queue the thread is busy, and ends once it has drained it.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_END)

    def join(self, timeout_s: float) -> bool:
        return join_thread(self._thread, timeout_s)

    # -- producers ------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        if threading.current_thread() is self._thread:
            self._derived.append(event)  # a sink's: delivered after the event in hand
            return
        if self._closed:
            return
        if not enqueue(self._queue, event):
            self.dropped_levels += 1

    def flush(self, timeout_s: float) -> bool:
        """True once every event published so far has reached every sink (within timeout_s)."""
        if self._closed or not self._thread.is_alive():
            return False
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout_s)
        except queue.Full:
            return False
        return marker.done.wait(timeout_s)

    # -- the event thread -----------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=TICK_S)
            except queue.Empty:
                item = None
            if time.monotonic() >= self._next_tick:
                self._tick()
            if item is None:
                continue
            if item is _END:
                break
            if isinstance(item, _Flush):
                item.done.set()
                continue
            self._deliver(item)  # type: ignore[arg-type]
            if self._closed and self._queue.empty():
                break
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as exc:
                self._report(_describe(sink, exc, "failed to close"), _reader_left(exc))

    def _deliver(self, event: Event) -> None:
        self._derived.append(event)
        while self._derived:
            item = self._derived.popleft()
            for sink in list(self._sinks):
                try:
                    sink.handle(item)
                except Exception as exc:  # one broken sink must not silence the others
                    self._drop(sink, exc)

    def _tick(self) -> None:
        self._next_tick = time.monotonic() + TICK_S
        for sink in list(self._sinks):
            tick = getattr(sink, "tick", None)
            if tick is None:
                continue
            try:
                tick()
            except Exception as exc:
                self._drop(sink, exc)
        while self._derived:
            self._deliver(self._derived.popleft())

    def _drop(self, sink: Sink, exc: Exception) -> None:
        self._sinks.remove(sink)
        with contextlib.suppress(Exception):  # release its file; it has failed already
            sink.close()
        reader_left = _reader_left(exc)
        message = READER_LEFT if reader_left else _describe(sink, exc, "failed and was stopped")
        for other in self._sinks:
            with contextlib.suppress(Exception):
                other.handle(Notice("", 0.0, "info" if reader_left else "error", message))
        self._report(message, reader_left)

    def _report(self, message: str, reader_left: bool) -> None:
        if self._on_failure is None:
            log.error("%s", message)
            return
        try:
            self._on_failure(message, reader_left)
        except Exception:
            log.exception("reporting a failed sink failed")


def _reader_left(exc: BaseException) -> bool:
    if isinstance(exc, OutputError):
        return exc.reader_left
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE
    )


def _describe(sink: Sink, exc: Exception, what: str) -> str:
    if isinstance(exc, OutputError):
        return str(exc)  # already one sentence for the user
    return f"{type(sink).__name__} {what}: {exc}"
