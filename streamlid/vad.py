"""SpeechGate: which audio is speech, frame by frame, with hangover so word gaps stay open.

webrtcvad decides on 10/20/30 ms int16 frames. Two guards sit around it: an energy floor, because
the model's feature extractor normalises every window to unit variance (so near-silence and hiss
would look like speech to it), and a hangover that keeps the gate open through short pauses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE_HZ

SILENCE_DBFS = -120.0  # level reported for digital silence (log of zero)


@dataclass(frozen=True)
class GatedFrame:
    start_index: int  # absolute 16 kHz sample index of samples[0]
    samples: np.ndarray
    speech: bool  # the gate's verdict, hangover included
    voiced: bool  # webrtcvad and the energy floor agree on this frame alone
    level_dbfs: float


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
        aggressiveness: int = 2,
        frame_ms: int = 30,
        hangover_s: float = 0.3,
        energy_floor_dbfs: float = -50.0,
    ) -> None:
        import webrtcvad

        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad takes 10, 20 or 30 ms frames")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.frame_n = SAMPLE_RATE_HZ * frame_ms // 1000
        self._hangover_frames = round(hangover_s * 1000 / frame_ms)
        self._energy_floor_dbfs = energy_floor_dbfs
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0
        self._frames_since_voiced = self._hangover_frames + 1  # start closed

    def feed(self, start_index: int, samples: np.ndarray) -> list[GatedFrame]:
        """Gates `samples`, which start at absolute index `start_index`. A gap in the indices
        (lost audio) closes the gate and drops the partial frame before it."""
        if len(self._pending) and start_index != self._pending_start + len(self._pending):
            self.reset()
        if len(self._pending) == 0:
            self._pending_start = start_index
            self._pending = samples
        else:
            self._pending = np.concatenate([self._pending, samples])
        n_frames = len(self._pending) // self.frame_n
        frames = []
        for i in range(n_frames):
            frame = self._pending[i * self.frame_n : (i + 1) * self.frame_n]
            frames.append(self._gate(self._pending_start + i * self.frame_n, frame))
        used = n_frames * self.frame_n
        self._pending = self._pending[used:].copy() if used else self._pending
        self._pending_start += used
        return frames

    def _gate(self, start_index: int, frame: np.ndarray) -> GatedFrame:
        level = level_dbfs(frame)
        voiced = False
        if level >= self._energy_floor_dbfs:
            pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
            voiced = self._vad.is_speech(pcm, SAMPLE_RATE_HZ)
        self._frames_since_voiced = 0 if voiced else self._frames_since_voiced + 1
        speech = self._frames_since_voiced <= self._hangover_frames
        return GatedFrame(start_index, frame, speech, voiced, level)
