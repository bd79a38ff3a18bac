"""The speech-detector seam: what a detector must offer the gate, and each engine's settings.

A detector answers one question about one frame of 16 kHz float32 audio: how likely is this
speech (0 to 1). webrtcvad answers 0 or 1 on 10/20/30 ms frames; silero-vad answers a
probability on 512-sample frames. The gate turns probabilities into decisions, so every
detector, real or scripted in a test, is driven the same way.

Settings live here, one frozen object per engine, and are checked here only: the config module
calls `check_detector_settings` and the gate's factory builds from the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ConfigError

VAD_ENGINES = ("webrtc", "silero", "both")
WEBRTC_FRAME_MS = (10, 20, 30)
WEBRTC_LEVELS = (0, 1, 2, 3)
SILERO_FRAME_N = 512  # the only frame silero-vad takes at 16 kHz (32 ms)
HYSTERESIS = 0.15  # speech ends below threshold - 0.15, as silero's VADIterator does


class Detector(Protocol):
    """A speech detector: fixed frame length, a probability per frame, state that resets."""

    frame_n: int  # samples per frame at 16 kHz

    def speech_probability(self, frame: np.ndarray) -> float:
        """Probability (0 to 1) that `frame` (float32, exactly `frame_n` samples) is speech."""
        ...

    def reset(self) -> None:
        """Forgets everything heard so far (after lost audio, or for a new stream)."""
        ...


@dataclass(frozen=True)
class WebrtcSettings:
    aggressiveness: int = 2  # key `vad`
    frame_ms: int = 30  # key `vad-frame-ms`

    def check(self) -> None:
        if self.aggressiveness not in WEBRTC_LEVELS:
            raise ConfigError(
                f"vad = {self.aggressiveness!r} is not allowed: use 0, 1, 2 or 3 "
                "(webrtcvad's aggressiveness)."
            )
        if self.frame_ms not in WEBRTC_FRAME_MS:
            raise ConfigError(
                f"vad-frame-ms = {self.frame_ms!r} is not allowed: use 10, 20 or 30 "
                "(the frames webrtcvad takes)."
            )


@dataclass(frozen=True)
class SileroSettings:
    threshold: float = 0.5  # key `speech-threshold`: speech starts at or above it

    def check(self) -> None:
        if not HYSTERESIS < self.threshold < 1.0:
            raise ConfigError(
                f"speech-threshold = {self.threshold!r} is not allowed: use more than "
                f"{HYSTERESIS} and less than 1 (speech ends {HYSTERESIS} below it)."
            )


@dataclass(frozen=True)
class GateSettings:
    engine: str = "both"  # key `vad-engine`
    webrtc: WebrtcSettings = WebrtcSettings()
    silero: SileroSettings = SileroSettings()
    hangover_s: float = 0.3
    energy_floor_dbfs: float = -50.0
    min_speech_share: float = 0.5

    def check(self) -> None:
        if self.engine not in VAD_ENGINES:
            raise ConfigError(
                f"vad-engine = {self.engine!r} is not allowed: use webrtc, silero or both."
            )
        self.webrtc.check()
        self.silero.check()
        if not 0.0 <= self.min_speech_share <= 1.0:
            raise ConfigError(
                f"min-speech-share = {self.min_speech_share!r} is not allowed: use 0 to 1."
            )

    @property
    def threshold(self) -> float:
        """Where speech starts. webrtcvad says 0 or 1, so any threshold in (0, 1] reads it."""
        return self.silero.threshold if self.engine != "webrtc" else 0.5
