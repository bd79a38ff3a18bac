"""Windower: sliding windows over the speech in a stream, early ones first.

Windows cover speech only: frames the gate calls silence are left out, so a window of 3 s holds
3 s of speech even when it spans short pauses (its stream times then span more). A pause of
`pause_s` or more ends the segment; the next speech starts afresh, with early windows (from
`min_speech_s`, every half hop) so the first answer after a pause comes quickly and can be
confirmed by the next one half a hop later. Once a window is full it slides by `hop_s`.

The hop may change between windows (`set_hop_s`: the adaptive hop), and a consumer that is not
ready for a window (the model still busy with this stream's previous one) defers it
(`ready=False`): the window is then cut from the freshest speech once it is ready, so a slow
model stretches the hop instead of piling windows up. Each window carries its own hop.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .audio import SAMPLE_RATE_HZ


@dataclass(frozen=True)
class Window:
    t_start_s: float  # stream time of the first sample
    t_end_s: float  # stream time just after the last sample
    samples: np.ndarray  # float32, 16 kHz, speech only
    segment_start_s: float  # stream time at which this speech segment began
    hop_s: float | None = None  # speech since the previous window of its segment (None: first)
    formed_at: float = field(default_factory=time.monotonic)  # for latency figures
    # Set by the frontend from the speech gate's frames (1.0: not measured, e.g. in tests).
    speech_prob: float = 1.0  # mean speech probability of the window's frames
    speech_share: float = 1.0  # share of the window the detector called speech

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


class Windower:
    def __init__(
        self,
        window_s: float = 3.0,
        hop_s: float = 1.0,
        min_speech_s: float = 1.0,
        pause_s: float = 1.0,
        min_step_s: float = 0.0,
    ) -> None:
        self.window_n = round(window_s * SAMPLE_RATE_HZ)
        self.hop_n = round(hop_s * SAMPLE_RATE_HZ)
        self.base_hop_n = self.hop_n  # early windows never step further apart than with this
        self.min_speech_n = min(round(min_speech_s * SAMPLE_RATE_HZ), self.window_n)
        self.pause_n = round(pause_s * SAMPLE_RATE_HZ)
        self.min_step_n = round(min_step_s * SAMPLE_RATE_HZ)  # floor of the early half hop
        self.reset()

    def set_hop_s(self, hop_s: float) -> None:
        """Changes the hop from the last window on (the adaptive hop); the next window falls
        due `hop_s` of speech after the last one was due."""
        hop_n = max(1, round(hop_s * SAMPLE_RATE_HZ))
        if hop_n == self.hop_n:
            return
        self.hop_n = hop_n
        if self._last_emit_n > 0:
            self._schedule_next(self._last_due_n)

    def reset(self) -> None:
        self._frames: deque[tuple[int, np.ndarray]] = deque()  # (start_index, speech samples)
        self._kept_n = 0
        self._voiced_n = 0  # speech samples in this segment so far
        self._next_emit_n = self.min_speech_n
        self._last_emit_n = 0
        self._last_due_n = 0
        self._segment_start_index: int | None = None
        self._silence_n = 0
        self._in_speech = False
        self._end_pending = False  # an utterance ended and its end is not classified yet

    def feed(
        self, start_index: int, samples: np.ndarray, speech: bool, ready: bool = True
    ) -> list[Window]:
        """One gated frame in; zero or more windows out. `ready=False` defers a due window."""
        if not speech:
            if self._in_speech:
                self._end_pending = True  # classify the end of an utterance too
            self._in_speech = False
            self._silence_n += len(samples)
            pausing = self._segment_start_index is not None and self._silence_n >= self.pause_n
            out = []
            if self._end_pending and (ready or pausing):  # a pause would forget it
                self._end_pending = False
                out = self._flush_if_worth_it()
            if pausing:
                self.reset()
            return out
        if self._segment_start_index is None:
            self._segment_start_index = start_index
        self._in_speech = True
        self._end_pending = False
        self._silence_n = 0
        self._frames.append((start_index, samples))
        self._kept_n += len(samples)
        self._voiced_n += len(samples)
        # Keep just enough frames to cut one full window.
        while self._frames and self._kept_n - len(self._frames[0][1]) >= self.window_n:
            self._kept_n -= len(self._frames.popleft()[1])
        if ready and self._voiced_n >= self._next_emit_n:
            return [self._emit(frame_n=len(samples))]
        return []

    def flush(self) -> list[Window]:
        """End of input: classify trailing speech that no window has covered yet."""
        out = self._flush_if_worth_it()
        self.reset()
        return out

    def _flush_if_worth_it(self) -> list[Window]:
        fresh_n = self._voiced_n - self._last_emit_n
        # Judged by the base hop: a long settled hop must not leave an utterance end unheard.
        if self._voiced_n >= self.min_speech_n and fresh_n >= min(self.hop_n, self.base_hop_n) // 2:
            return [self._emit()]
        return []

    def _emit(self, frame_n: int = 0) -> Window:
        samples = np.concatenate([frame for _, frame in self._frames])[-self.window_n :]
        end_start, end_frame = self._frames[-1]
        end_index = end_start + len(end_frame)
        # Walk back through the kept frames to find where the window's first sample lies.
        remaining = len(samples)
        start_index = end_index - remaining
        for frame_start, frame in reversed(self._frames):
            if remaining <= len(frame):
                start_index = frame_start + len(frame) - remaining
                break
            remaining -= len(frame)
        hop_s = (self._voiced_n - self._last_emit_n) / SAMPLE_RATE_HZ if self._last_emit_n else None
        self._last_emit_n = self._voiced_n
        # Schedule from when this window was due, not from the frame edge that reached it:
        # frames rarely end exactly on the hop (30 ms frames, 1 s hop), and counting from the
        # frame edge would stretch every hop by up to a frame. A flushed window (end of an
        # utterance, before it was due) and a deferred one (the consumer was busy for longer
        # than a frame) schedule from where they ended: the hop stretches to what is sustained.
        due_n = min(self._next_emit_n, self._voiced_n)
        if self._voiced_n - due_n >= max(frame_n, 1):
            due_n = self._voiced_n
        self._schedule_next(due_n)
        assert self._segment_start_index is not None
        return Window(
            t_start_s=start_index / SAMPLE_RATE_HZ,
            t_end_s=end_index / SAMPLE_RATE_HZ,
            samples=samples,
            segment_start_s=self._segment_start_index / SAMPLE_RATE_HZ,
            hop_s=hop_s,
        )

    def _schedule_next(self, due_n: int) -> None:
        self._last_due_n = due_n
        early = self._last_emit_n < self.window_n  # the window is not full yet
        early_step_n = max(1, self.min_step_n, min(self.hop_n, self.base_hop_n) // 2)
        step = early_step_n if early else self.hop_n
        self._next_emit_n = max(due_n + step, self._last_emit_n + 1)
        if early:
            self._next_emit_n = min(self._next_emit_n, self.window_n)
