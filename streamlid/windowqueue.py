"""WindowQueues: one bounded queue of windows per stream, drained round-robin by the worker.

A live stream's waiting windows are superseded by its newest one when the worker takes it (an
answer about the past helps no one); file streams wait for room instead, so every window of a
file is classified. The queues also know which streams have a window with the model (in
flight), so a front end can hold its next window until the model is ready for it: the window is
then cut from the freshest speech. Superseded windows are only counted here; the worker, which
owns each stream's `skipped_windows`, adds them up.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .scheduler import newest_first
from .windows import Window


@dataclass
class Taken:
    windows: list[tuple[str, Window]] = field(default_factory=list)
    superseded: dict[str, int] = field(default_factory=dict)  # per stream, since the last take
    # Streams closed and drained since the last take: the worker answers what it still holds
    # of them (the file schedule's held windows), then calls `finish`.
    ended: list[str] = field(default_factory=list)


class WindowQueues:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Window]] = {}
        self._capacity: dict[str, int] = {}
        self._live: dict[str, bool] = {}
        self._open: set[str] = set()
        self._in_flight: set[str] = set()
        self._ended: set[str] = set()  # closed and drained, told to the worker
        self._finished: set[str] = set()  # and the worker has answered all it held
        self._superseded: dict[str, int] = {}
        self._rotation = 0

    def add_stream(self, name: str, capacity: int, live: bool) -> None:
        with self._cond:
            self._queues[name] = deque()
            self._capacity[name] = max(1, capacity)
            self._live[name] = live
            self._open.add(name)
            self._superseded[name] = 0

    def put(self, name: str, window: Window, stop: threading.Event) -> None:
        """Queues a window. A full live queue supersedes its oldest; a file's waits for room."""
        with self._cond:
            q = self._queues[name]
            if self._live[name]:
                if len(q) >= self._capacity[name]:
                    q.popleft()
                    self._superseded[name] += 1
            else:
                while len(q) >= self._capacity[name] and not stop.is_set():
                    self._cond.wait(0.1)
                if stop.is_set():
                    return
            q.append(window)
            self._cond.notify_all()

    def close_stream(self, name: str) -> None:
        with self._cond:
            self._open.discard(name)
            self._cond.notify_all()

    def idle(self, name: str) -> bool:
        """No window of `name` waits or is with the model: the next one may be cut."""
        with self._cond:
            return not self._queues[name] and name not in self._in_flight

    def wait_idle(self, name: str, stop: threading.Event) -> None:
        """Blocks until `idle(name)` (or stop): a file whose next hop depends on the answer."""
        with self._cond:
            while (self._queues[name] or name in self._in_flight) and not stop.is_set():
                self._cond.wait(0.1)

    def wait_finished(self, name: str, stop: threading.Event) -> None:
        """Blocks until the worker has answered every window of a closed stream, the ones it
        held included (or stop): what `ended` waits for."""
        with self._cond:
            while name not in self._finished and not stop.is_set():
                self._cond.wait(0.1)

    def finish(self, names: Iterable[str]) -> None:
        """The worker has answered all it held of these ended streams."""
        with self._cond:
            self._finished.update(names)
            self._cond.notify_all()

    def ready_counts(self) -> tuple[int, int]:
        """(live, file) windows the worker could take now: one per live stream with a window
        waiting, every waiting window of a file."""
        with self._cond:
            live_n = sum(1 for name, q in self._queues.items() if q and self._live[name])
            file_n = sum(len(q) for name, q in self._queues.items() if not self._live[name])
            return live_n, file_n

    def take(self, max_windows: int, timeout_s: float) -> Taken | None:
        """Up to max_windows, one per stream per round so no stream starves, the newest of each
        live stream (older ones superseded). Empty on timeout; None once every stream is closed
        and drained, and told as `ended`. The streams taken are in flight until `done`."""
        with self._cond:
            if not any(self._queues.values()):
                ended = self._newly_ended()
                if ended:
                    return Taken(ended=ended)
                if not self._open:
                    return None
                self._cond.wait(timeout_s)
            names = list(self._queues)
            if not names:
                return Taken() if self._open else None
            start = self._rotation % len(names)
            self._rotation += 1
            order = names[start:] + names[:start]
            taken = Taken()
            while len(taken.windows) < max_windows:
                progressed = False
                for name in order:
                    q = self._queues[name]
                    if not q or len(taken.windows) >= max_windows:
                        continue
                    if self._live[name]:
                        if name in self._in_flight:
                            continue  # one window of a live stream per pass
                        keep, superseded = newest_first(len(q))
                        window = q[keep]
                        q.clear()
                        self._superseded[name] += superseded
                    else:
                        window = q.popleft()
                    taken.windows.append((name, window))
                    self._in_flight.add(name)
                    progressed = True
                if not progressed:
                    break
            for name, count in self._superseded.items():
                if count:
                    taken.superseded[name] = count
                    self._superseded[name] = 0
            taken.ended = self._newly_ended()
            if taken.windows:
                self._cond.notify_all()  # room for blocked file streams
            elif not self._open and not taken.superseded and not taken.ended:
                return None
            return taken

    def _newly_ended(self) -> list[str]:
        """Closed streams with nothing waiting or in flight, not yet told to the worker."""
        ended = [
            name
            for name, q in self._queues.items()
            if name not in self._open
            and not q
            and name not in self._in_flight
            and name not in self._ended
        ]
        self._ended.update(ended)
        return ended

    def done(self, names: Iterable[str]) -> None:
        """The model has answered these streams' windows."""
        with self._cond:
            self._in_flight.difference_update(names)
            self._cond.notify_all()

    def oldest_end_s(self, name: str) -> float | None:
        """Stream time at which the oldest waiting window of `name` ends (None: none waits)."""
        with self._cond:
            q = self._queues.get(name)
            return q[0].t_end_s if q else None

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())
