"""The one start/stop/join interface every thread owner of a run implements, and its join."""

from __future__ import annotations

import threading
from typing import Any, Protocol


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
