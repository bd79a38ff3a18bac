"""A fixed-size ring of mono float32 samples that knows every sample's absolute position.

One producer (a source thread or the PortAudio callback) and one consumer (the stream's front
end). Live producers never wait: when the consumer falls behind, the oldest audio is dropped and
counted, so the loss is reported with its exact size and position. File producers wait for room
instead, so a file is never cut.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .mixdown import Mixdown


@dataclass(frozen=True)
class Chunk:
    start_index: int  # absolute index of samples[0] in the stream
    samples: np.ndarray  # float32, mono
    lost_before: int  # samples dropped (overflow) just before this chunk


class RingBuffer:
    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples <= 0:
            raise ValueError("capacity_samples must be positive")
        self.capacity_samples = capacity_samples
        self._data = np.zeros(capacity_samples, dtype=np.float32)
        self._mixdown = Mixdown()  # the producer's multichannel frames, to mono
        self._write_index = 0  # absolute index of the next sample written
        self._read_index = 0  # absolute index of the next sample read
        self._pending_lost = 0
        self._overflow_samples = 0
        self._closed = False
        self._cond = threading.Condition(threading.Lock())

    # -- producer -------------------------------------------------------------------------

    def write(
        self, samples: np.ndarray, *, block: bool = False, stop: threading.Event | None = None
    ) -> int:
        """Appends samples (1-D, or 2-D frames x channels, mixed down by mixdown.py) and
        returns how many were taken. With block=True waits for room (until `stop` is set);
        otherwise overwrites the oldest unread audio and counts it as overflow."""
        if samples.ndim == 2:
            samples = self._mixdown(samples)
        n = len(samples)
        if not block:
            with self._cond:
                self._put(samples)
                self._cond.notify_all()
            return n
        taken = 0
        while taken < n:
            with self._cond:
                while (
                    self._write_index - self._read_index >= self.capacity_samples
                    and not self._closed
                    and not (stop is not None and stop.is_set())
                ):
                    self._cond.wait(0.1)
                if self._closed or (stop is not None and stop.is_set()):
                    return taken
                room = self.capacity_samples - (self._write_index - self._read_index)
                piece = samples[taken : taken + room]
                self._put(piece)
                taken += len(piece)
                self._cond.notify_all()
        return taken

    def _put(self, samples: np.ndarray) -> None:
        n = len(samples)
        if n == 0:
            return
        cap = self.capacity_samples
        overflow = max(0, (self._write_index - self._read_index) + n - cap)
        if overflow:
            self._read_index += overflow
            self._pending_lost += overflow
            self._overflow_samples += overflow
        stored = samples[-cap:]  # a write larger than the ring keeps only its newest audio
        position = self._write_index + n - len(stored)
        start = position % cap
        first = min(len(stored), cap - start)
        self._data[start : start + first] = stored[:first]
        if first < len(stored):
            self._data[: len(stored) - first] = stored[first:]
        self._write_index += n

    def close(self) -> None:
        """No more audio will come; the consumer drains what is left, then gets None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- consumer -------------------------------------------------------------------------

    def read(self, max_samples: int, timeout_s: float = 0.1) -> Chunk | None:
        """Up to max_samples of unread audio, waiting up to timeout_s for some. Returns an empty
        chunk on timeout and None once the ring is closed and drained."""
        with self._cond:
            if self._write_index == self._read_index and not self._closed:
                self._cond.wait(timeout_s)
            available = self._write_index - self._read_index
            if available == 0:
                if self._closed and self._pending_lost == 0:
                    return None
                lost, self._pending_lost = self._pending_lost, 0
                return Chunk(self._read_index, np.zeros(0, dtype=np.float32), lost)
            n = min(available, max_samples)
            cap = self.capacity_samples
            start = self._read_index % cap
            first = min(n, cap - start)
            out = np.empty(n, dtype=np.float32)
            out[:first] = self._data[start : start + first]
            if first < n:
                out[first:] = self._data[: n - first]
            chunk = Chunk(self._read_index, out, self._pending_lost)
            self._pending_lost = 0
            self._read_index += n
            self._cond.notify_all()
            return chunk

    # -- counters -------------------------------------------------------------------------

    @property
    def write_index(self) -> int:
        """Absolute index of the next sample the producer writes (the live edge)."""
        return self._write_index

    @property
    def overflow_samples(self) -> int:
        return self._overflow_samples

    @property
    def channels_inverted(self) -> bool:
        """Some channel cancelled the others and is mixed in inverted (the consumer says so)."""
        return self._mixdown.inverted

    @property
    def closed(self) -> bool:
        return self._closed
