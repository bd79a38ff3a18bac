"""What every audio source shares: a thread that writes mono float32 into a RingBuffer.

A source is opened (and validated) in its constructor, before the model loads, so a typo in a
path fails in a second, not after a 3.6 GB download. `start()` runs it in its own thread;
`stop()` asks it to finish; the ring is closed when it ends, which is how the rest of the
pipeline learns about end of input.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from .ring import RingBuffer

NoticeFn = Callable[[str, str], None]  # (severity, message)
# (state, reason, attempt, outage_s): a network feed's connection changed (feeds.py)
FeedFn = Callable[[str, str, int, float], None]

# Sources write in blocks of this length: short enough for a responsive level meter and VAD,
# long enough that Python overhead per block stays negligible.
BLOCK_S = 0.05


class Source(ABC):
    """A producer of mono audio at `sample_rate_hz` (the front end resamples to 16 kHz)."""

    name: str  # the stream's name in events and views
    description: str  # what it is, for people: a device name, a path, a URL
    sample_rate_hz: int
    live: bool  # live audio is dropped (and counted) when the pipeline lags, never waited for

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ring: RingBuffer | None = None
        self._notice: NoticeFn = lambda severity, message: None
        self._feed: FeedFn = lambda state, reason, attempt, outage_s: None
        self.error: str | None = None  # set when the source ended because of a fault

    def connect(self, ring: RingBuffer, notice: NoticeFn, feed: FeedFn | None = None) -> None:
        """Where the audio goes and where faults (and a feed's connection changes) are
        reported; before `start()`."""
        self._ring = ring
        self._notice = notice
        if feed is not None:
            self._feed = feed

    def start(self, ring: RingBuffer | None = None, notice: NoticeFn | None = None) -> None:
        """Starts the thread (`ring` and `notice`: a shortcut for `connect()` first)."""
        if ring is not None:
            self.connect(ring, notice or self._notice)
        self._thread = threading.Thread(target=self._main, name=f"source-{self.name}")
        self._thread.start()

    def stop(self) -> None:
        """Idempotent; returns at once. The thread ends within about 0.1 s."""
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _main(self) -> None:
        assert self._ring is not None
        try:
            self._run(self._ring)
        except Exception as exc:  # a source fault ends this stream, not the program
            self.error = f"{self.description}: {exc}"
            self._notice("error", f"{self.description} stopped: {exc}")
        finally:
            self.close()
            self._ring.close()

    @abstractmethod
    def _run(self, ring: RingBuffer) -> None:
        """Writes audio into `ring` until the input ends or `self.stopping`."""

    def close(self) -> None:  # noqa: B027 - optional hook for sources holding OS resources
        """Releases files, processes or devices; called from the source's thread at its end."""

    def release(self) -> None:  # noqa: B027 - optional hook for sources that can reopen
        """Gives back what the source holds while it waits to start (an open file); it takes
        it again when it starts. `identify` opens every file to check it, then reads one at a
        time: a thousand open files would run out of descriptors."""


class Pacer:
    """Sleeps so that audio is delivered no faster than real time (for --realtime)."""

    def __init__(self, sample_rate_hz: int, stop: threading.Event) -> None:
        self._rate = sample_rate_hz
        self._stop = stop
        self._t0: float | None = None  # the first sample's time: a late producer is not behind
        self._samples = 0

    def wait_for(self, n_samples: int) -> None:
        if self._t0 is None:
            self._t0 = time.monotonic()
        self._samples += n_samples
        due = self._t0 + self._samples / self._rate
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
