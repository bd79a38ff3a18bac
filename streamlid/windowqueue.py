"""WindowQueues: one bounded queue of windows per stream, drained round-robin by the worker.

Live streams drop their oldest window when their queue is full (a stale answer helps no one);
file streams wait for room instead, so every window of a file is classified.
"""

from __future__ import annotations

import threading
from collections import deque

from .windows import Window


class WindowQueues:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Window]] = {}
        self._capacity: dict[str, int] = {}
        self._live: dict[str, bool] = {}
        self._open: set[str] = set()
        self._rotation = 0

    def add_stream(self, name: str, capacity: int, live: bool) -> None:
        with self._cond:
            self._queues[name] = deque()
            self._capacity[name] = max(1, capacity)
            self._live[name] = live
            self._open.add(name)

    def put(self, name: str, window: Window, stop: threading.Event) -> Window | None:
        """Queues a window; returns the window dropped to make room (live streams), if any."""
        with self._cond:
            q = self._queues[name]
            dropped = None
            if self._live[name]:
                if len(q) >= self._capacity[name]:
                    dropped = q.popleft()
            else:
                while len(q) >= self._capacity[name] and not stop.is_set():
                    self._cond.wait(0.1)
                if stop.is_set():
                    return None
            q.append(window)
            self._cond.notify_all()
            return dropped

    def close_stream(self, name: str) -> None:
        with self._cond:
            self._open.discard(name)
            self._cond.notify_all()

    def take(self, max_windows: int, timeout_s: float) -> list[tuple[str, Window]] | None:
        """Up to max_windows, one per stream per round so no stream starves. Empty on timeout;
        None once every stream is closed and drained."""
        with self._cond:
            if not any(self._queues.values()):
                if not self._open:
                    return None
                self._cond.wait(timeout_s)
            names = list(self._queues)
            if not names:
                return [] if self._open else None
            start = self._rotation % len(names)
            self._rotation += 1
            order = names[start:] + names[:start]
            taken: list[tuple[str, Window]] = []
            while len(taken) < max_windows:
                progressed = False
                for name in order:
                    if self._queues[name] and len(taken) < max_windows:
                        taken.append((name, self._queues[name].popleft()))
                        progressed = True
                if not progressed:
                    break
            if taken:
                self._cond.notify_all()  # room for blocked file streams
            elif not self._open:
                return None
            return taken

    def oldest_end_s(self, name: str) -> float | None:
        """Stream time at which the oldest waiting window of `name` ends (None: none waits)."""
        with self._cond:
            q = self._queues.get(name)
            return q[0].t_end_s if q else None

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())
