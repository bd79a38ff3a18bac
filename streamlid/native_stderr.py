"""File descriptor 2 held while a C library talks to it directly.

Some libraries under us write to file descriptor 2 themselves, past Python's logging: Ray's
core retries a refused join for 20 s with a warning a second, and ALSA and PortAudio print a
pair of lines for every probe of a missing device (a pulled microphone, retried every second,
for as long as it is gone), which also lands on the live view's screen. Around such calls the
descriptor goes to a temporary file; what was written there is then read (a refused token) or
passed on without the libraries' known chatter (`pass_on`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Lines the C audio stack prints while probing devices: noise for our users, who get one line
# of our own about the device instead.
AUDIO_CHATTER = (
    "ALSA lib ",
    "Expression '",  # PortAudio's PA_ENSURE
    "Cannot connect to server",  # JACK, probed by PortAudio
    "jack server is not running",
    "JackShmReadWritePtr",
)


@dataclass
class _Hold:
    saved_fd: int  # the descriptor 2 to give back
    released: bool = False  # `release` gave it back already


_held_lock = threading.RLock()  # one descriptor 2: holds in two threads would lose it; one
# thread may nest them (the inner passes on into the outer)
# The holds now open, outermost first, each with the descriptor it gives back. Its own lock:
# `release` must not wait for `_held_lock`, which a hold that never returns keeps.
_open_holds: list[_Hold] = []
_holds_lock = threading.Lock()


@contextlib.contextmanager
def held(console: Any = None) -> Iterator[list[str]]:
    """File descriptor 2 goes to a temporary file for the duration; the yielded list then holds
    what was written there. A rich `console` (a spinner) keeps writing to the terminal.

    Not around anything that starts processes: they would inherit the file for good."""
    said: list[str] = []
    with _held_lock:
        try:
            saved_fd = os.dup(2)
        except OSError:  # descriptor 2 is closed (`2>&-`): nothing to hold, nothing to show
            yield said
            return
        if sys.stderr is not None:
            sys.stderr.flush()
        terminal = os.fdopen(os.dup(saved_fd), "w", buffering=1)
        previous_file = None if console is None else console.file
        if console is not None:
            console.file = terminal
        try:
            with tempfile.TemporaryFile() as sink:
                hold = _Hold(saved_fd)
                with _holds_lock:
                    os.dup2(sink.fileno(), 2)
                    _open_holds.append(hold)
                try:
                    yield said
                finally:
                    if sys.stderr is not None:
                        sys.stderr.flush()
                    with _holds_lock:
                        _open_holds.remove(hold)
                        if not hold.released:
                            os.dup2(saved_fd, 2)
                    sink.seek(0)
                    said.append(sink.read().decode("utf-8", "replace"))
        finally:
            os.close(saved_fd)
            if console is not None:
                console.file = previous_file
            terminal.close()


def release() -> None:
    """Gives descriptor 2 back to the terminal now, from any thread, whatever hold is open.

    A hold around a call that never returns (PortAudio probing a frozen PulseAudio server)
    would otherwise keep everything written to standard error after it, the run's summary
    included, in a temporary file that is lost at exit. The holds still open end without
    taking descriptor 2 again; what was written into them is still theirs to read."""
    with _holds_lock:
        if not _open_holds:
            return
        if sys.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
        os.dup2(_open_holds[0].saved_fd, 2)
        for hold in _open_holds:
            hold.released = True


def pass_on(said: list[str], chatter: tuple[str, ...] = AUDIO_CHATTER) -> None:
    """Writes what was held to standard error, less the lines that start with `chatter`."""
    kept = [
        line
        for line in "".join(said).splitlines(keepends=True)
        if line.strip() and not line.lstrip().startswith(chatter)
    ]
    if kept and sys.stderr is not None:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()
