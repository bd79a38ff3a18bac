"""KeyReader: single-key commands (q, p, r) read from the terminal while the live view runs.

The terminal is put in cbreak mode (keys arrive at once, unechoed; Ctrl-C still interrupts)
from the start of the session (`hold()`, before the model loads: a key typed meanwhile would
be echoed over the view's first frame), and always put back: by `join()` (the supervisor's,
run.py), by the reading thread itself when it ends, and by `listen` whichever way it ends. A
shell that took the terminal back (Ctrl-Z, then `fg`) hands it back cooked, so the reader puts
cbreak back whenever it finds it gone. Only for a terminal we are in the foreground of:
changing the settings of a terminal from a background job would stop the process (SIGTTOU).
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import IO

log = logging.getLogger(__name__)
POLL_S = 0.1
JOIN_TIMEOUT_S = 1.0


class KeyReader:
    def __init__(self, handlers: dict[str, Callable[[], None]], stream: IO[str] | None = None):
        self.bind(handlers)
        self._stream = stream if stream is not None else sys.stdin
        self._fd: int | None = None
        self._saved: list | None = None
        self._lock = threading.Lock()
        self._cbreak: list | None = None  # the settings hold() made, kept while reading
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def usable(self) -> bool:
        """True when there is a terminal to read keys from, and we are in its foreground."""
        try:
            fd = self._stream.fileno()
            return os.isatty(fd) and not _in_background(fd)
        except (OSError, ValueError, AttributeError):
            return False

    def bind(self, handlers: dict[str, Callable[[], None]]) -> None:
        """The commands, once what they act on exists (the terminal may be held before)."""
        self._handlers = {key.lower(): fn for key, fn in handlers.items()}

    def hold(self) -> bool:
        """Takes the terminal (cbreak: typed keys are not echoed) without reading it yet;
        `restore()` or `join()` gives it back. False (nothing changed) without a terminal."""
        with self._lock:
            if self._saved is not None:
                return True
        if not self.usable():
            return False
        try:
            import termios
            import tty

            fd = self._stream.fileno()
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)
            cbreak = termios.tcgetattr(fd)
        except (ImportError, OSError, ValueError, AttributeError):
            return False
        with self._lock:
            self._fd, self._saved, self._cbreak = fd, saved, cbreak
        return True

    def start(self) -> bool:
        """Starts reading; False (and nothing changed) when there is no terminal to read.
        Keys typed before (while the model loaded) are dropped: they were typed before the
        view said what the keys do, and a stray p would start it paused."""
        if not self.hold():
            return False
        try:
            import termios

            termios.tcflush(self._fd, termios.TCIFLUSH)
        except (ImportError, OSError):
            log.debug("could not drop the keys typed ahead", exc_info=True)
        # A daemon: it holds nothing to flush, and a missed stop() must not keep the process
        # alive waiting for a key.
        self._thread = threading.Thread(target=self._run, name="keys", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Asks the reading thread to end; returns at once (idempotent, any thread)."""
        self._stop.set()

    def join(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Waits for the reading thread, then puts the terminal back as it was, either way."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self.restore()
        return thread is None or not thread.is_alive()

    def restore(self) -> None:
        with self._lock:
            fd, saved = self._fd, self._saved
            self._saved = None
        if fd is None or saved is None:
            return
        try:
            import termios

            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except (ImportError, OSError):
            log.debug("could not restore the terminal settings", exc_info=True)

    def _keep_cbreak(self, fd: int) -> None:
        """After Ctrl-Z and `fg` the shell gives the terminal back in its own (cooked) mode:
        keys would wait for Enter and echo over the view. Put cbreak back, but only in the
        foreground (from the background that would stop us: SIGTTOU)."""
        try:
            import termios

            with self._lock:
                wanted = self._cbreak if self._saved is not None else None
                if wanted is None or termios.tcgetattr(fd)[3] == wanted[3]:
                    return
                if not _in_background(fd):
                    termios.tcsetattr(fd, termios.TCSANOW, wanted)
        except (ImportError, OSError):
            log.debug("could not put the terminal back in cbreak mode", exc_info=True)

    def _run(self) -> None:
        fd = self._fd
        assert fd is not None
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], POLL_S)
                if not ready:
                    self._keep_cbreak(fd)
                    continue
                data = os.read(fd, 64)
                if not data:  # end of input: nothing more to read
                    return
                if data.startswith(b"\x1b"):  # arrow keys, F-keys: not commands
                    continue
                for ch in data.decode(errors="ignore"):
                    handler = self._handlers.get(ch.lower())
                    if handler is None:
                        continue
                    try:
                        handler()
                    except Exception:  # a failing command must not end the reading
                        log.exception("key %r failed", ch)
        except OSError:
            log.debug("stopped reading keys", exc_info=True)
        finally:
            self.restore()


def _in_background(fd: int) -> bool:
    """True when `fd` is our controlling terminal and another process group owns it."""
    try:
        return os.tcgetpgrp(fd) != os.getpgrp()
    except OSError:  # not our controlling terminal: changing it cannot stop us
        return False
