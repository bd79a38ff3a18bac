"""LiveView: the full-screen terminal display, a Sink like any other.

`handle()` runs on the event thread and only updates the ViewState (a lock held for
microseconds), so a slow terminal never holds up events. Drawing happens on the "view"
thread, ten times a second, from a snapshot. The display starts with the first event (after the
model has loaded and its messages are on screen) and ends in `close()`, which then prints the
summary tables where they stay: in the terminal's normal screen, after the live one is gone.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..events import Event, Summary
from .render import ViewRenderable, summary_renderables
from .state import ViewSnapshot, ViewState

log = logging.getLogger(__name__)
REFRESH_HZ = 10.0
JOIN_TIMEOUT_S = 2.0


class LiveView:
    """A Sink, and a ThreadOwner for its renderer thread (start, stop, join: run.py)."""

    interactive = True  # it holds the terminal, and keys make sense for it (run.py wires them)

    def __init__(
        self,
        state: ViewState,
        console: Console,
        *,
        screen: bool = True,
        redirect_stdout: bool = True,
        refresh_hz: float = REFRESH_HZ,
    ) -> None:
        self.state = state
        self.console = console
        self.keys = False  # set by whoever reads the keyboard, for the footer's hints
        self._screen = screen
        self._redirect_stdout = redirect_stdout
        self._period_s = 1.0 / refresh_hz
        self._live: Live | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._paused_at: ViewSnapshot | None = None
        self._closed = False
        self._ended = False  # joined: never draws again
        self._left_screen = False
        self.frames = 0
        self.render_error: str | None = None

    # -- Sink -----------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if self._live is None and not self._ended and not isinstance(event, Summary):
            self.start()
        try:
            self.state.handle(event)
        except Exception:
            # Never raise to the bus: it would drop this sink without close(), and the
            # terminal would stay in the live screen. Say what broke at exit instead.
            if self.render_error is None:
                self.render_error = traceback.format_exc()
            log.debug("view state failed on %r", event, exc_info=True)

    def close(self) -> None:
        """Stops drawing, leaves the live screen, prints the summary. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.join(JOIN_TIMEOUT_S)
        summary = self.state.summary
        if summary is not None:
            self.console.print()
            history = list(self.state.history)
            for renderable in summary_renderables(summary, history, self.state.notices_total):
                self.console.print(renderable)
        if self.render_error:
            # the traceback quotes data (a stream name, a message): text, never markup
            self.console.print(Text("The live view failed:", "red"))
            self.console.print(self.render_error, markup=False, highlight=False)

    # -- controls (any thread) ------------------------------------------------------------------

    def start(self) -> None:
        with self._start_lock:
            if self._live is not None or self._ended:
                return
            self._live = Live(
                console=self.console,
                screen=self._screen,
                auto_refresh=False,  # the "view" thread refreshes: one thread, one rate
                redirect_stdout=self._redirect_stdout,
                redirect_stderr=True,
                get_renderable=self._renderable,
            )
            self._live.start()
            self._thread = threading.Thread(target=self._run, name="view")
            self._thread.start()

    def toggle_pause(self) -> None:
        """Freezes the picture (events still flow and the figures stay current underneath)."""
        self._paused_at = None if self._paused_at is not None else self.state.snapshot()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def reset(self) -> None:
        self.state.reset()
        if self._paused_at is not None:
            self._paused_at = self.state.snapshot()

    # -- drawing --------------------------------------------------------------------------------

    def _renderable(self) -> ViewRenderable:
        frozen = self._paused_at
        snapshot = frozen if frozen is not None else self.state.snapshot()
        return ViewRenderable(snapshot, paused=frozen is not None, keys=self.keys)

    def _run(self) -> None:
        live = self._live
        assert live is not None
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                live.refresh()
                self.frames += 1
            except Exception:  # a drawing bug must not take the pipeline down; say so at exit
                self.render_error = traceback.format_exc()
                log.debug("live view failed", exc_info=True)
                return
            next_at += self._period_s
            delay = next_at - time.monotonic()
            if delay < 0:  # a slow frame: keep the rate, do not try to catch up
                next_at, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    # -- ThreadOwner (start is above) ----------------------------------------------------------

    def stop(self) -> None:
        """Asks the renderer to stop; returns at once (any thread, idempotent)."""
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Waits for the renderer, then leaves the live screen: the normal screen is back and
        the cursor shown, whatever happened. Idempotent."""
        self._stop.set()
        with self._start_lock:
            thread, live = self._thread, self._live
            self._ended = True
        ended = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            ended = not thread.is_alive()
        with self._start_lock:
            if live is None or self._left_screen:
                return ended
            self._left_screen = True
            try:
                live.stop()
            except Exception:  # the terminal may be gone (closed window); nothing to restore
                log.debug("could not stop the live display", exc_info=True)
        return ended
