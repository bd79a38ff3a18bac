"""Multichannel to mono, robust to a channel wired in reverse polarity.

A plain mean of a stereo pair whose right channel is the left one inverted (a miswired
broadcast chain) is silence: the speech is never heard. So each channel is added with the sign
that agrees with the first channel: a sign flips when, with the sign it has, the channel and the
first one cancel (their sum far quieter than the two of them). The test costs two dot products
per block; a flipped sign fades in across its block, so the switch makes no click. Every source
(files, ffmpeg's output, the microphone) hands its frames to the ring, which mixes them here.
"""

from __future__ import annotations

import numpy as np

# Cancelling: the sum's energy under a tenth (-10 dB) of the two channels' energies. Natural
# stereo never comes near it (equal channels would need a correlation under -0.9).
CANCEL_RATIO = 0.1
# Mean square under -70 dBFS (per channel pair): too quiet to judge, the signs are kept.
JUDGE_FLOOR_MS = 1e-7


class Mixdown:
    """Feed (frames x channels) blocks in order; get mono float32 blocks. One per stream."""

    def __init__(self) -> None:
        self._signs: np.ndarray | None = None  # +1 or -1 per channel; the first is always +1
        self.inverted = False  # some channel was ever added inverted: the run says so once

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        n, channels = frames.shape
        if channels == 1:
            return frames[:, 0]
        if self._signs is None or len(self._signs) != channels:
            self._signs = np.ones(channels, dtype=np.float32)
        first = frames[:, 0]
        dots = first @ frames  # [0] is the first channel's energy
        energies = np.einsum("ij,ij->j", frames, frames)
        pair = energies[0] + energies[1:]
        summed = pair + 2 * self._signs[1:] * dots[1:]
        cancel = (summed < CANCEL_RATIO * pair) & (pair > JUDGE_FLOOR_MS * n)
        old = self._signs / channels
        if not cancel.any():
            return (frames @ old).astype(np.float32, copy=False)
        self._signs[1:][cancel] *= -1
        self.inverted = True
        fade = np.linspace(0.0, 1.0, n, dtype=np.float32)
        mono = frames @ old + (frames @ (self._signs / channels - old)) * fade
        return mono.astype(np.float32, copy=False)
