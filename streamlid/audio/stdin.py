"""Raw 16 kHz mono s16le PCM on standard input (`streamlid listen -`), or an audio file's bytes.

For piping from other tools: `ffmpeg -i URL -f s16le -ac 1 -ar 16000 - | streamlid listen -`.
A container piped in as it is (`cat talk.wav | streamlid listen -`) is recognised by its first
bytes (sniff.py) and decoded by ffmpeg, as a file would be, rather than heard as noise.
"""

from __future__ import annotations

import os
import select
import shutil
import sys
import time

import numpy as np

from ..errors import AudioSourceError
from . import SAMPLE_RATE_HZ
from .feeds import FeedPacer
from .ring import RingBuffer
from .sniff import SNIFF_BYTES, bytes_to_decide, container_of
from .source import BLOCK_S, Source

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
    def __init__(self, *, realtime: bool, fd: int | None = None, track: int = 0) -> None:
        super().__init__()
        self._fd = _stdin_fd() if fd is None else fd
        self.name = "stdin"
        self.description = "standard input (16 kHz mono s16le)"
        self.sample_rate_hz = STDIN_RATE_HZ
        self.live = realtime
        self._realtime = realtime
        self._track = track  # of a container piped in (0: ffmpeg's pick, its default track)
        self._decoder: Source | None = None  # the ffmpeg reader of a container, once found

    def stop(self) -> None:
        super().stop()
        if (decoder := self._decoder) is not None:
            decoder.stop()  # kills its child, which a reader may be waiting on

    def _read(self, max_bytes: int) -> bytes:
        """Up to max_bytes; b"" at the end of input or on a stop."""
        while not self.stopping:
            # select() with a timeout so that stop() is noticed even when no data arrives.
            if select.select([self._fd], [], [], 0.1)[0]:
                return os.read(self._fd, max_bytes)
        return b""

    def _read_head(self) -> bytes:
        """The first bytes, as many as tell a container from PCM (fewer at the end of input)."""
        head = b""
        while len(head) < bytes_to_decide(head) and (data := self._read(SNIFF_BYTES - len(head))):
            head += data
        return head

    def _run(self, ring: RingBuffer) -> None:
        data = self._read_head()
        if (container := container_of(data)) is not None:
            self._decode(ring, data, container)
            return
        if len(data) < 2 and not self.stopping:  # not one sample: the producer gave nothing
            raise AudioSourceError(
                "it ended before any audio came; check the command that writes into it"
            )
        if self._track > 1:
            raise AudioSourceError(
                f"it is raw PCM, one track, so no track {self._track}; leave out --track, or "
                "pipe in the file itself so that its tracks can be told apart"
            )
        block_bytes = 2 * int(STDIN_RATE_HZ * BLOCK_S)
        # A writer is a live producer, paced and kept on the wall clock as a network feed is.
        pacer = FeedPacer(STDIN_RATE_HZ, self._stop) if self._realtime else None
        carry = b""  # an odd byte left over from a read that split a sample
        last_read_at = None
        while data and not self.stopping:
            data = carry + data
            usable = len(data) - len(data) % 2
            carry = data[usable:]
            samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
            if pacer is not None:
                quiet_s = 0.0 if last_read_at is None else time.monotonic() - last_read_at
                if said := pacer.close_gap(ring, quiet_s) or pacer.catch_up(ring):
                    self._notice("warning", f"{self.description}: {said}")
                pacer.wait_for(len(samples))
                last_read_at = time.monotonic()
            ring.write(samples, block=not self.live, stop=self._stop)
            data = self._read(block_bytes)

    def _decode(self, ring: RingBuffer, head: bytes, container: str) -> None:
        """A container's bytes on stdin: ffmpeg decodes them as it would the file, in this
        thread, with this source's ring, notices and stop."""
        if shutil.which("ffmpeg") is None:
            raise AudioSourceError(
                f"standard input carries {container} audio, not raw 16 kHz mono s16le, and "
                "ffmpeg, which would decode it, is not installed; install ffmpeg (e.g. `apt "
                "install ffmpeg`) or give the file's path instead of piping it."
            )
        from .files import FfmpegSource, PipeInput

        # The run said "16 kHz mono s16le" when it started, before any byte had come: put it right.
        self._notice(
            "info", f"standard input carries {container} audio, not raw PCM: ffmpeg decodes it"
        )
        self.description = f"standard input ({container}, decoded by ffmpeg)"
        decoder = FfmpegSource(
            self.name, realtime=self._realtime, pipe=PipeInput(self._fd, head), track=self._track
        )
        decoder.name, decoder.description = self.name, self.description
        decoder.connect(ring, self._notice)
        self._decoder = decoder
        if self.stopping:  # a stop() that came before _decoder was set did not reach it
            decoder.stop()
        try:
            decoder._run(ring)  # in this thread: the stdin source is its owner
        finally:
            decoder.close()
