"""EventBus: one bounded queue and one thread that hands every event to every sink, in order.

Producers (front ends, worker, engine) never call a sink directly, so a slow terminal or disk
cannot stall the audio path for long: the queue absorbs bursts, and only meter readings (Level)
may be dropped when it is full; every other event waits for room and is delivered.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Protocol

from .events import Event, Level, Notice

log = logging.getLogger(__name__)
QUEUE_EVENTS = 1024


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class EventBus:
    def __init__(self, sinks: list[Sink], capacity: int = QUEUE_EVENTS) -> None:
        self._sinks = list(sinks)
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._dispatch, name="events")
        self._closed = False
        self.dropped_levels = 0
        self.sink_errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def publish(self, event: Event) -> None:
        if self._closed:
            return
        if isinstance(event, Level):
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped_levels += 1
            return
        self._queue.put(event)

    def flush(self) -> None:
        """Returns once every event published so far has reached every sink."""
        self._queue.join()

    def close(self, timeout_s: float = 5.0) -> None:
        """Delivers what is queued, closes the sinks (flushing files) and ends the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("event thread did not finish within %.1f s", timeout_s)

    def _dispatch(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    break
                for sink in list(self._sinks):
                    try:
                        sink.handle(event)
                    except Exception as exc:  # one broken sink must not silence the others
                        self._sinks.remove(sink)
                        message = f"{type(sink).__name__} failed and was stopped: {exc}"
                        self.sink_errors.append(message)
                        for other in self._sinks:
                            with contextlib.suppress(Exception):
                                other.handle(Notice("", 0.0, "error", message))
            finally:
                self._queue.task_done()
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as exc:
                self.sink_errors.append(f"{type(sink).__name__} failed to close: {exc}")
