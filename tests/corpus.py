"""Sounds that are not speech, and speech over music, synthesised by sox and ffmpeg.

What a speech gate meets in broadcasts and rooms: noise (white, pink, brown: hiss, rain, a fan),
mains hum, tones, chords, melodies on a few instruments, clicks (a keyboard), each at several
levels; and espeak-ng speech clean and over a music bed at a given speech-to-music ratio.
Everything is 16 kHz mono float32, built once into a folder and cached there.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from speech import speech

RATE_HZ = 16000
SOUND_S = 6.0
LEVELS_DBFS = (-12.0, -24.0, -36.0)  # RMS; the quietest is still above the -50 dBFS floor
SPEECH_DBFS = -20.0  # speech level in the speech-over-music mixes
MELODY = ("C4", "E4", "G4", "C5", "A4", "F4", "D4", "G4")  # one bar, 0.3 s a note


def _sox_synth(path: Path, channels: int, *effects: str) -> None:
    """`sox -n` generating `channels` channels (one source each), mixed down to mono. It runs
    at 48 kHz (sox plucks only there) and writes 16 kHz."""
    subprocess.run(
        ["sox", "-r", "48000", "-c", str(channels), "-n", "-r", str(RATE_HZ), "-c", "1"]
        + [str(path), *effects]
        + (["remix", "-"] if channels > 1 else []),
        check=True,
        capture_output=True,
        timeout=60,
    )


def _melody(path: Path, instrument: str) -> None:
    """A looped bar of notes; `instrument` is a sox synth shape (pluck, sawtooth, triangle)."""
    notes: list[str] = []
    for i in range(round(SOUND_S / 0.3)):
        if i:
            notes.append(":")
        notes += ["synth", "0.3", instrument, MELODY[i % len(MELODY)], "fade", "0", "0.3", "0.05"]
    _sox_synth(path, 1, *notes)


def _clicks(path: Path) -> None:
    """Keyboard-like clicks: 4 ms noise bursts at uneven intervals (ffmpeg's aevalsrc)."""
    expr = "if(lt(mod(t*7.3,1.7),0.03)+lt(mod(t*3.1,1.1),0.012),random(0)*2-1,0)"
    source = f"aevalsrc='{expr}':s={RATE_HZ}:d={SOUND_S}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _chord(*freqs_hz: float, shape: str = "sine") -> tuple[int, tuple[str, ...]]:
    args = ["synth", str(SOUND_S)]
    for f in freqs_hz:
        args += [shape, str(f)]
    return len(freqs_hz), tuple(args)


# name -> how sox makes it (channels, effects); each channel is one source, mixed to mono
_SOX_SOUNDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "white-noise": (1, ("synth", str(SOUND_S), "whitenoise")),
    "pink-noise": (1, ("synth", str(SOUND_S), "pinknoise")),
    "brown-noise": (1, ("synth", str(SOUND_S), "brownnoise")),
    "hum-50hz": _chord(50, 100, 150, 200),
    "hum-60hz": _chord(60, 120, 180, 240),
    "sine-440hz": (1, ("synth", str(SOUND_S), "sine", "440")),
    "square-220hz": (1, ("synth", str(SOUND_S), "square", "220")),
    "chord-sine": _chord(261.6, 329.6, 392.0),
    "chord-square": _chord(220.0, 277.2, 329.6, shape="square"),
}
MELODY_INSTRUMENTS = {"melody-pluck": "pluck", "melody-saw": "sawtooth", "melody-tri": "triangle"}
KINDS = (*_SOX_SOUNDS, *MELODY_INSTRUMENTS, "clicks")


def at_level(samples: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return np.clip(samples * (10 ** (dbfs / 20) / rms), -1.0, 1.0).astype(np.float32)


def _read(path: Path) -> np.ndarray:
    samples, rate = soundfile.read(str(path), dtype="float32")
    assert rate == RATE_HZ and samples.ndim == 1, (path, rate, samples.shape)
    return samples


@dataclass(frozen=True)
class Corpus:
    folder: Path
    nonspeech: dict[str, np.ndarray]  # "white-noise@-24" -> samples

    def music(self, seconds: float) -> np.ndarray:
        """A music bed: the plucked melody over a quieter chord, looped to `seconds`."""
        bed = self.nonspeech["melody-pluck@-24"] + 0.5 * self.nonspeech["chord-sine@-24"]
        n = round(seconds * RATE_HZ)
        return np.tile(bed, int(np.ceil(n / len(bed))))[:n]

    def speech_over_music(self, language: str, snr_db: float | None) -> np.ndarray:
        """`language`'s espeak sentence at SPEECH_DBFS, over music `snr_db` below it (None:
        clean speech)."""
        voice = at_level(speech(language, self.folder), SPEECH_DBFS)
        if snr_db is None:
            return voice
        return voice + at_level(self.music(len(voice) / RATE_HZ), SPEECH_DBFS - snr_db)


def build_corpus(folder: Path) -> Corpus:
    """Every non-speech sound at every level (sox/ffmpeg output cached in `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, np.ndarray] = {}
    for kind in KINDS:
        path = folder / f"{kind}.wav"
        if not path.exists():
            if kind in _SOX_SOUNDS:
                _sox_synth(path, *_SOX_SOUNDS[kind][:1], *_SOX_SOUNDS[kind][1])
            elif kind in MELODY_INSTRUMENTS:
                _melody(path, MELODY_INSTRUMENTS[kind])
            else:
                _clicks(path)
        raw = _read(path)
        for dbfs in LEVELS_DBFS:
            made[f"{kind}@{dbfs:g}"] = at_level(raw, dbfs)
    return Corpus(folder, made)
