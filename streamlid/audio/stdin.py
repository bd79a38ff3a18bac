"""Raw 16 kHz mono s16le PCM on standard input (`streamlid listen -`).

For piping from other tools: `ffmpeg -i URL -f s16le -ac 1 -ar 16000 - | streamlid listen -`.
"""

from __future__ import annotations

import os
import select
import sys
import time

import numpy as np

from ..errors import AudioSourceError
from . import SAMPLE_RATE_HZ
from .ring import RingBuffer
from .source import BLOCK_S, GAP_FILLED_S, GAP_SAID_S, Pacer, Source

STDIN_RATE_HZ = SAMPLE_RATE_HZ  # the format is fixed: 16 kHz mono s16le


def _stdin_fd() -> int:
    """Standard input's descriptor, or a clear error when the shell closed it (`<&-`)."""
    try:
        fd = sys.stdin.fileno()  # sys.stdin is None when fd 0 was closed at start-up
        os.fstat(fd)
    except (AttributeError, ValueError, OSError):
        raise AudioSourceError(
            "Standard input is closed, so `-` has no audio to read; pipe raw 16 kHz mono s16le "
            "into streamlid (e.g. `ffmpeg -i IN -f s16le -ac 1 -ar 16000 - | streamlid listen -`) "
            "or give a file or URL instead."
        ) from None
    return fd


class StdinSource(Source):
    def __init__(self, *, realtime: bool, fd: int | None = None) -> None:
        super().__init__()
        self._fd = _stdin_fd() if fd is None else fd
        self.name = "stdin"
        self.description = "standard input (16 kHz mono s16le)"
        self.sample_rate_hz = STDIN_RATE_HZ
        self.live = realtime
        self._realtime = realtime

    def _run(self, ring: RingBuffer) -> None:
        block_bytes = 2 * int(STDIN_RATE_HZ * BLOCK_S)
        pacer = Pacer(STDIN_RATE_HZ, self._stop) if self._realtime else None
        carry = b""  # an odd byte left over from a read that split a sample
        last_read_at = None
        while not self.stopping:
            # select() with a timeout so that stop() is noticed even when no data arrives.
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self._fd, block_bytes)
            if not data:
                return
            data = carry + data
            usable = len(data) - len(data) % 2
            carry = data[usable:]
            samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
            if pacer is not None:
                if last_read_at is not None:
                    self._close_gap(ring, pacer, time.monotonic() - last_read_at)
                pacer.wait_for(len(samples))
                last_read_at = time.monotonic()
            ring.write(samples, block=not self.live, stop=self._stop)

    def _close_gap(self, ring: RingBuffer, pacer: Pacer, quiet_s: float) -> None:
        """Live (--realtime), a writer that paused and went on: its audio of the pause never
        comes, so the pause is silence in stream time, which stays on the wall clock, as a
        network feed's (files.py)."""
        if quiet_s < GAP_FILLED_S:
            return
        if n := pacer.fill_to_now(at_most_s=quiet_s):
            # Waits for room: silence must not overwrite audio not yet read.
            ring.write(np.zeros(n, np.float32), block=True, stop=self._stop)
        if n >= GAP_SAID_S * STDIN_RATE_HZ:  # a writer in big, timely chunks is not behind
            self._notice(
                "warning",
                f"{self.description}: no audio for {quiet_s:.1f} s, then it went on; "
                f"{n / STDIN_RATE_HZ:.1f} s of silence keep stream time on the wall clock",
            )
