"""Test audio: speech from espeak-ng, written in the formats users feed streamlid.

espeak-ng speech is real audio as far as the speech gate, the ring buffer and the pipeline are
concerned; it says nothing about the model's accuracy (the test models have random weights).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE_HZ = 16000

# One sentence per voice, long enough for several 3 s windows.
SENTENCES = {
    "en": (
        "The quick brown fox jumps over the lazy dog, and the dog does not seem to mind it. "
        "She sells sea shells by the sea shore, and the shells she sells are surely sea shells."
    ),
    "fr": (
        "Le petit chat dort au soleil pendant que les enfants jouent dans le jardin. "
        "Nous irons demain au marche pour acheter des pommes et du pain frais."
    ),
}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_wav(text: str, voice: str, workdir: Path) -> Path:
    """espeak-ng's own WAV of `text` (22.05 kHz mono), as someone making a test file has it."""
    workdir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(f"{voice}:{text}".encode()).hexdigest()[:10]
    raw = workdir / f"espeak-{voice}-{digest}.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-w", str(raw), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return raw


def synthesize(text: str, voice: str, workdir: Path) -> np.ndarray:
    """Speech for `text` as 16 kHz mono float32 (espeak-ng writes 22.05 kHz WAV)."""
    raw = espeak_wav(text, voice, workdir)
    samples, rate = soundfile.read(str(raw), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    return resample(mono, rate, SAMPLE_RATE_HZ)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    if from_hz == to_hz:
        return samples.astype(np.float32)
    return soxr.resample(samples.astype(np.float32), from_hz, to_hz).astype(np.float32)


def silence(seconds: float, rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    return np.zeros(round(seconds * rate_hz), dtype=np.float32)


def speech_onset_s(samples: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> float:
    """Stream time of the first clearly audible sample (espeak pads its output slightly)."""
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    assert len(loud), "no audible sample"
    return float(loud[0]) / rate_hz


def write_wav(
    path: Path,
    samples_16k: np.ndarray,
    *,
    rate_hz: int = SAMPLE_RATE_HZ,
    channels: int = 1,
    subtype: str = "PCM_16",
    format: str | None = None,
) -> float:
    """Writes 16 kHz mono samples at another rate / channel count / sample format; returns
    the duration in seconds of what was written."""
    data = resample(samples_16k, SAMPLE_RATE_HZ, rate_hz)
    if channels > 1:
        # Not identical channels: the second is quieter, so a mixdown is really exercised.
        data = np.stack([data] + [data * 0.5] * (channels - 1), axis=1)
    soundfile.write(str(path), data, rate_hz, subtype=subtype, format=format)
    return len(data) / rate_hz


def encode_with_ffmpeg(source: Path, target: Path, *codec_args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *codec_args, str(target)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def probe_duration_s(path: Path) -> float:
    """What ffprobe says a (compressed) file lasts."""
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return float(result.stdout.strip())


def to_s16le(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
