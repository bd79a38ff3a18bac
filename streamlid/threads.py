"""The one start/stop/join interface every thread owner of a run implements, and its join."""

from __future__ import annotations

import threading
from typing import Any, Protocol

# After a stop, every owner gets this long to finish (a model mid-forward, a cluster's actors
# handing over their last events); past it the run leaves without them and says so.
FORCED_EXIT_AFTER_S = 3.0


class ThreadOwner(Protocol):
    """Something that runs one or more threads of a run.

    `start()` starts them; `stop()` asks them to finish and returns at once (idempotent, safe
    from any thread); `join(timeout_s)` waits at most that long and says whether they ended
    (True also when they never started)."""

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def join(self, timeout_s: float) -> bool: ...


def join_thread(thread: threading.Thread, timeout_s: float | None) -> bool:
    """Waits at most `timeout_s` for `thread`; True once it has ended or if it never started
    (a stop during start-up)."""
    if thread.ident is None:
        return True
    thread.join(timeout_s)
    return not thread.is_alive()


class RunToEnd:
    """`wait` and `run` of a whole run (the local Engine, a cluster run): once its main thread
    has ended, `_finish` runs exactly once, on the caller's thread, however long its bounded
    joins take. Subclasses set up `_done`/`_finish_lock` through `__init__` and implement
    `start`, `stop`, `_join_main` and `_finish`, which sets `summary`."""

    summary: Any

    def __init__(self) -> None:
        self._done = threading.Event()
        self._finish_lock = threading.Lock()
        self.summary = None

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self, reason: str) -> None:
        raise NotImplementedError

    def _join_main(self, timeout_s: float | None) -> bool:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the run is over: threads joined, Summary published, sinks closed."""
        if self._done.is_set():
            return True
        if not self._join_main(timeout_s):
            return False
        with self._finish_lock:
            if not self._done.is_set():
                try:
                    self._finish()
                finally:
                    self._done.set()
        return True

    def run(self) -> Any:
        """Start, wait for the end of input (or an error), and return the summary."""
        self.start()
        try:
            self.wait()
        finally:
            if not self._done.is_set():
                self.stop()
                self.wait()
        assert self.summary is not None
        return self.summary
