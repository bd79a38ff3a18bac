"""SpeechGate: which audio is speech, frame by frame, and which windows are worth classifying.

The model has no non-speech class: whatever passes the gate gets a language, so the gate is
where trust starts. A detector (webrtcvad, silero-vad, or both in turn; see `detectors.py`)
gives each frame a speech probability. The gate adds what no detector knows about:

- an energy floor, because the model's feature extractor normalises every window to unit
  variance (so near-silence and hiss would look like speech to it);
- hysteresis, as silero's VADIterator does: speech starts at `threshold` and ends only below
  `threshold - 0.15`, so a probability hovering at the threshold does not flicker;
- a hangover that keeps the gate open through short pauses between words;
- an onset pad: a detector that needs a block of speech before it is sure opens a frame or two
  after the speech began, so the gate holds back `onset_pad_s` of frames and lets them in too
  when speech starts (silero's VADIterator pads its starts the same way). The price is that
  much delay before a frame reaches the windows.

Windows are cut from the frames the gate lets through. `SpeechTrack` remembers each frame's
probability, so a window can say how much of it the detector called speech, and `admitted`
is the one rule for whether that is enough to classify it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from ..audio import SAMPLE_RATE_HZ
from .detectors import (
    HYSTERESIS,
    Detector,
    GateSettings,
    SileroSettings,
    WebrtcSettings,
)

__all__ = [
    "Detector",
    "GateSettings",
    "GatedFrame",
    "SileroSettings",
    "SpeechGate",
    "SpeechTrack",
    "WebrtcSettings",
    "admitted",
    "build_detector",
    "build_gate",
    "gate_settings",
    "level_dbfs",
    "quiet_advice",
]

SILENCE_DBFS = -120.0  # level reported for digital silence (log of zero)
SILERO_ONSET_PAD_S = 0.06  # frames held back and let in when silero hears speech begin
# Audio whose loudest frame is this close to --energy-floor has its speech mostly below it:
# speech peaks some 15 dB above its syllables' tails and the pauses between words.
QUIET_MARGIN_DB = 15.0
MIN_FLOOR_DBFS = -100  # the lowest --energy-floor to suggest


@dataclass(frozen=True)
class GatedFrame:
    start_index: int  # absolute 16 kHz sample index of samples[0]
    samples: np.ndarray
    speech: bool  # the gate's verdict, hangover included
    voiced: bool  # the detector's decision (with hysteresis) on this frame, no hangover
    level_dbfs: float
    speech_prob: float  # the detector's probability (0 below the energy floor)


def quiet_advice(loudest_dbfs: float, energy_floor_dbfs: float) -> str | None:
    """For audio whose loudest frame is `loudest_dbfs`: when it is quiet next to the energy
    floor (frames below it are never speech), that it is and what to change; else None.
    `identify` and the live front end both say it."""
    if not SILENCE_DBFS < loudest_dbfs < energy_floor_dbfs + QUIET_MARGIN_DB:
        return None
    # A floor as far below the loudest frame as a normal recording's is below its own;
    # webrtcvad has a floor of its own too (speech at -60 dBFS passed silero alone).
    floor_dbfs = max(MIN_FLOOR_DBFS, 10 * math.floor((loudest_dbfs - 30) / 10))
    return (
        f"the audio is quiet (its loudest is {loudest_dbfs:.0f} dBFS, and --energy-floor is "
        f"{energy_floor_dbfs:g} dBFS): try --energy-floor {floor_dbfs} --vad-engine silero"
    )


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is about -3 dBFS)."""
    if len(samples) == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


class SpeechGate:
    """Feed 16 kHz float32 audio; get frames labelled speech or not. `reset()` starts over."""

    def __init__(
        self,
        detector: Detector,
        hangover_s: float = 0.3,
        energy_floor_dbfs: float = -50.0,
        threshold: float = 0.5,
        onset_pad_s: float = 0.0,
    ) -> None:
        self._detector = detector
        self.frame_n = detector.frame_n
        self._hangover_frames = round(hangover_s * SAMPLE_RATE_HZ / self.frame_n)
        self._pad_frames = round(onset_pad_s * SAMPLE_RATE_HZ / self.frame_n)
        self._energy_floor_dbfs = energy_floor_dbfs
        self._start_at = threshold
        self._end_below = threshold - HYSTERESIS
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0
        self._voiced = False
        self._frames_since_voiced = self._hangover_frames + 1  # start closed
        self._held: deque[GatedFrame] = deque()  # the onset pad, not yet handed out
        self._was_speech = False
        self._detector.reset()

    def feed(self, start_index: int, samples: np.ndarray) -> list[GatedFrame]:
        """Gates `samples`, which start at absolute index `start_index`. A gap in the indices
        (lost audio) closes the gate and drops the partial frame before it."""
        out: list[GatedFrame] = []
        if len(self._pending) and start_index != self._pending_start + len(self._pending):
            out = self.flush()
        if len(self._pending) == 0:
            self._pending_start = start_index
            self._pending = samples
        else:
            self._pending = np.concatenate([self._pending, samples])
        n_frames = len(self._pending) // self.frame_n
        for i in range(n_frames):
            frame = self._pending[i * self.frame_n : (i + 1) * self.frame_n]
            out += self._pad(self._gate(self._pending_start + i * self.frame_n, frame))
        used = n_frames * self.frame_n
        self._pending = self._pending[used:].copy() if used else self._pending
        self._pending_start += used
        return out

    def flush(self) -> list[GatedFrame]:
        """End of input (or of contiguous input): hands out the held frames and starts over."""
        held = list(self._held)
        self.reset()
        return held

    def _pad(self, frame: GatedFrame) -> list[GatedFrame]:
        opened = frame.speech and not self._was_speech
        self._was_speech = frame.speech
        if opened:  # speech began: the held frames above the floor were its start
            floor = self._energy_floor_dbfs
            self._held = deque(
                replace(f, speech=True) if f.level_dbfs >= floor else f for f in self._held
            )
        self._held.append(frame)
        out = []
        while len(self._held) > self._pad_frames:
            out.append(self._held.popleft())
        return out

    def _gate(self, start_index: int, frame: np.ndarray) -> GatedFrame:
        level = level_dbfs(frame)
        prob = 0.0
        if level >= self._energy_floor_dbfs:
            prob = self._detector.speech_probability(frame)
        if prob >= self._start_at:
            self._voiced = True
        elif prob < self._end_below:
            self._voiced = False
        self._frames_since_voiced = 0 if self._voiced else self._frames_since_voiced + 1
        speech = self._frames_since_voiced <= self._hangover_frames
        return GatedFrame(start_index, frame, speech, self._voiced, level, prob)


class _Span(Protocol):
    """A window as `SpeechTrack.measured` needs it (a dataclass with these fields)."""

    t_start_s: float
    t_end_s: float
    speech_prob: float
    speech_share: float


_SpanT = TypeVar("_SpanT", bound=_Span)


class SpeechTrack:
    """The gate's recent frames, so a window cut from them can be told how speech-like it is.

    Keeps `keep_s` seconds of frames (at least the longest span a window can cover)."""

    def __init__(self, keep_s: float) -> None:
        self._frames: deque[tuple[int, int, bool, float]] = deque()  # start, n, voiced, prob
        self._keep_n = round(keep_s * SAMPLE_RATE_HZ)

    def add(self, frame: GatedFrame) -> None:
        if not frame.speech:
            return  # windows hold speech frames only
        self._frames.append(
            (frame.start_index, len(frame.samples), frame.voiced, frame.speech_prob)
        )
        newest = frame.start_index
        while self._frames and newest - self._frames[0][0] > self._keep_n:
            self._frames.popleft()

    def measure(self, t_start_s: float, t_end_s: float) -> tuple[float, float]:
        """(mean speech probability, share of samples the detector called speech) over the
        speech frames between two stream times; (0, 0) when none is known."""
        start = round(t_start_s * SAMPLE_RATE_HZ)
        end = round(t_end_s * SAMPLE_RATE_HZ)
        total = voiced = 0
        prob_sum = 0.0
        for first, n, is_voiced, prob in self._frames:
            overlap = min(end, first + n) - max(start, first)
            if overlap > 0:
                total += overlap
                voiced += overlap if is_voiced else 0
                prob_sum += prob * overlap
        if total == 0:
            return 0.0, 0.0
        return prob_sum / total, voiced / total

    def measured(self, window: _SpanT) -> _SpanT:
        """`window` with its `speech_prob` and `speech_share` filled in from the frames."""
        prob, share = self.measure(window.t_start_s, window.t_end_s)
        return replace(window, speech_prob=prob, speech_share=share)

    def reset(self) -> None:
        self._frames.clear()


class _Measured(Protocol):
    speech_share: float


def admitted(window: _Measured, min_share: float) -> bool:
    """The one rule: a window is classified only when enough of it is speech by the detector."""
    return window.speech_share >= min_share


def gate_settings(config: Any) -> GateSettings:
    """The gate's settings from a Config (the TOML/CLI keys named in `detectors.py`)."""
    return GateSettings(
        engine=config.vad_engine,
        webrtc=WebrtcSettings(config.vad, config.vad_frame_ms),
        silero=SileroSettings(config.speech_threshold),
        hangover_s=config.hangover,
        energy_floor_dbfs=config.energy_floor,
        min_speech_share=config.min_speech_share,
    )


def build_detector(settings: GateSettings) -> Detector:
    settings.check()
    from .webrtc import WebrtcDetector

    if settings.engine == "webrtc":
        return WebrtcDetector(settings.webrtc)
    from .silero import SileroDetector

    if settings.engine == "silero":
        return SileroDetector()
    from .two_stage import TwoStageDetector

    return TwoStageDetector(WebrtcDetector(settings.webrtc), SileroDetector())


def build_gate(settings: GateSettings) -> SpeechGate:
    """The gate a stream's frontend runs, built from its settings."""
    return SpeechGate(
        build_detector(settings),
        hangover_s=settings.hangover_s,
        energy_floor_dbfs=settings.energy_floor_dbfs,
        threshold=settings.threshold,
        # silero needs about a block (32 ms) of speech to be sure, and judges blocks that end
        # inside a frame: two frames (60 ms at 30 ms) give back the start it hears late.
        onset_pad_s=0.0 if settings.engine == "webrtc" else SILERO_ONSET_PAD_S,
    )
