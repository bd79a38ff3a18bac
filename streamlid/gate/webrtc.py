"""webrtcvad as a detector: 10/20/30 ms int16 frames, aggressiveness 0-3, answers 0 or 1."""

from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE_HZ
from .detectors import WebrtcSettings


class WebrtcDetector:
    def __init__(self, settings: WebrtcSettings | None = None) -> None:
        import webrtcvad

        settings = settings or WebrtcSettings()
        settings.check()
        self._settings = settings
        self._make = webrtcvad.Vad
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self.frame_n = SAMPLE_RATE_HZ * settings.frame_ms // 1000

    def speech_probability(self, frame: np.ndarray) -> float:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return 1.0 if self._vad.is_speech(pcm, SAMPLE_RATE_HZ) else 0.0

    def reset(self) -> None:
        # webrtcvad adapts its noise model to what it has heard: a fresh one starts clean.
        self._vad = self._make(self._settings.aggressiveness)
