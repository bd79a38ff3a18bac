"""AlertCommand: `--on-alert CMD`, run for each alert with the alert as JSON on its stdin.

A sink (it hears the `StreamAlert` events on the event thread) and a thread owner (the
commands run on its own thread, so a slow command never holds up the events). The command is
split like a shell would split it but run without one; each run has a timeout and its output is
captured. A failure is a warning Notice, never fatal. Raises are rate-limited per stream and
kind (a recovery is sent only when its raise was); the queue is bounded, and what does not fit
is dropped and counted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from .errors import ConfigError
from .events import Event, Notice, StreamAlert, event_to_dict
from .threads import join_thread

log = logging.getLogger(__name__)
COMMAND_TIMEOUT_S = 10.0  # a command that takes longer is killed and reported
STOP_GRACE_S = 1.5  # on stop, queued and running commands get this long together
REAP_S = 2.0  # a killed command's group closes its pipes at once: this bounds the unexpected
QUEUE_ALERTS = 32
POLL_S = 0.1
_END = object()


def parse_command(command: str) -> list[str]:
    """The argv of `--on-alert`, or one sentence saying why it cannot run."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"--on-alert {command!r} cannot be split into words ({exc}).") from None
    if not argv:
        raise ConfigError("--on-alert is empty; give a command such as `notify-send streamlid`.")
    if shutil.which(argv[0]) is None:
        raise ConfigError(
            f"--on-alert program {argv[0]!r} was not found or is not executable; give its "
            "full path or install it."
        )
    return argv


class AlertCommand:
    def __init__(
        self,
        argv: list[str],
        publish: Callable[[Event], None],
        interval_s: float,
        timeout_s: float = COMMAND_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._argv = argv
        self._publish = publish
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_ALERTS)
        self._thread = threading.Thread(target=self._run, name="on-alert")
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._pending = 0  # handed over and not yet run (or dropped); the event thread adds
        self._pending_lock = threading.Lock()
        self._last_sent: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._raise_sent: set[tuple[str, str]] = set()
        self.runs = 0
        self.failures = 0
        self.dropped = 0

    # -- the sink (event thread) -------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if not isinstance(event, StreamAlert) or self._stopping.is_set():
            return
        key = (event.stream, event.kind)
        if event.active:
            now = self._clock()
            last = self._last_sent.get(key)
            if last is not None and now - last < self._interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last_sent[key] = now
            self._raise_sent.add(key)
        elif key in self._raise_sent:
            self._raise_sent.discard(key)
        else:
            return  # its raise was rate-limited: its recovery is not news either
        payload = {**event_to_dict(event), "suppressed": self._suppressed.pop(key, 0)}
        with self._pending_lock:
            self._pending += 1
        try:
            self._queue.put_nowait((event, json.dumps(payload, ensure_ascii=False)))
        except queue.Full:
            self.dropped += 1
            self._done_one()

    def _done_one(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    def close(self) -> None:
        pass  # the thread ends on stop(), after the bus has closed

    def drain(self, timeout_s: float) -> bool:
        """Waits (at most `timeout_s`) until every alert handed over has run."""
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive() and self._pending:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # -- ThreadOwner -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stop_deadline = time.monotonic() + STOP_GRACE_S
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_END)

    def join(self, timeout_s: float) -> bool:
        return join_thread(self._thread, timeout_s)

    def hurry(self) -> None:
        """A second Ctrl-C while the run ends: the command running now is stopped at once and
        the alerts still queued are left unsent, so the run's end does not wait for them.
        Safe from a signal handler (it only sets flags and queues without blocking)."""
        self.stop()
        self._stop_deadline = time.monotonic()

    # -- the command thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self._stopping.is_set():
                    break
                continue
            if item is _END:
                break
            event, payload = item  # type: ignore[misc]
            try:
                if self._stopping.is_set() and time.monotonic() >= self._stop_deadline:
                    log.warning("on-alert: left an alert unsent at the end of the run")
                    continue
                self._execute(event, payload)
            finally:
                self._done_one()
        if self.dropped:
            log.warning("on-alert: %d alerts dropped (the command was too slow)", self.dropped)

    def _execute(self, event: StreamAlert, payload: str) -> None:
        self.runs += 1
        problem = None
        try:
            child = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C on the terminal is ours to handle, not its
            )
        except OSError as exc:
            problem = f"could not start ({exc.strerror or exc})"
        else:
            problem = self._wait(child, payload.encode("utf-8") + b"\n")
        if problem is not None:
            self.failures += 1
            self._publish(
                Notice(
                    event.stream,
                    event.t_s,
                    "warning",
                    f"--on-alert command {self._argv[0]!r} {problem}"
                    + ("." if self._stopping.is_set() else "; the run goes on."),
                )
            )

    def _wait(self, child: subprocess.Popen, data: bytes) -> str | None:
        """Feeds and waits for the child within its timeout (or the stop grace); reaps it."""
        deadline = time.monotonic() + self._timeout_s
        given: bytes | None = data
        while True:
            limit = deadline
            if self._stopping.is_set():
                limit = min(limit, self._stop_deadline)
            try:
                _, err = child.communicate(
                    given, timeout=max(0.01, min(POLL_S, limit - time.monotonic()))
                )
                break
            except subprocess.TimeoutExpired:
                given = None  # already handed over; communicate() goes on from where it was
                if time.monotonic() >= limit:
                    _end_all(child)
                    if limit < deadline:
                        return "was stopped unfinished, as the run ended"
                    return f"took longer than {self._timeout_s:g} s and was stopped"
            except OSError as exc:  # it closed its stdin early, or died at once
                _end_all(child)
                return f"failed ({exc.strerror or exc})"
        if child.returncode != 0:
            lines = err.decode("utf-8", errors="replace").strip().splitlines()
            said = f": {lines[-1][:200]}" if lines else ""
            return f"failed with exit status {child.returncode}{said}"
        return None


def _end_all(child: subprocess.Popen) -> None:
    """Kills the command and everything it started (its own session: a shell script's
    `sleep` holds the output pipes, and killing the shell alone would leave it running and
    the wait for the pipes' end hanging), then reaps it, within a bound."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.communicate(timeout=REAP_S)
