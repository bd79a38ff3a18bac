"""webrtcvad first, silero behind it: silero is asked only about audio webrtcvad lets through.

webrtcvad is nearly free and rejects quiet rooms and plain silence; silero costs more and tells
speech from noise and music, which webrtcvad cannot. The gate runs on webrtcvad's frames (10,
20 or 30 ms), so windows fall on the same frame edges as with webrtcvad alone. silero reads the
same audio in its own 512-sample blocks, carried across frames so it hears the stream in order;
a frame webrtcvad passes gets the probability of the newest block silero has judged, and the
blocks that end inside a rejected frame are never judged (that is the saving).
"""

from __future__ import annotations

import numpy as np

from .detectors import Detector


class TwoStageDetector:
    def __init__(self, first: Detector, second: Detector) -> None:
        self._first = first
        self._second = second
        self.frame_n = first.frame_n
        self.reset()

    def speech_probability(self, frame: np.ndarray) -> float:
        passed = self._first.speech_probability(frame) >= 0.5
        audio = np.concatenate([self._carry, frame]) if len(self._carry) else frame
        block = self._second.frame_n
        ends = len(audio) // block * block
        self._carry = audio[ends:].copy()
        if not passed:
            self._latest = None  # the newest block went unjudged
            return 0.0
        for i in range(0, ends, block):
            self._latest = self._second.speech_probability(audio[i : i + block])
        # A frame in which no block ended keeps the newest judged block's answer; right after
        # a rejected stretch there is none yet, and the frame counts as not speech.
        return 0.0 if self._latest is None else self._latest

    def reset(self) -> None:
        self._carry = np.zeros(0, dtype=np.float32)
        self._latest: float | None = None
        self._first.reset()
        self._second.reset()
