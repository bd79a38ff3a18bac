"""Real speech for tests: espeak-ng into 16 kHz mono WAV files, and scripted mixtures of
speech and silence with their ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from audio_helpers import espeak_available, synthesize

RATE_HZ = 16000

# Sentences per language; espeak voice -> ISO 639-3 code as the model labels them.
SENTENCES = {
    "fra": (
        "fr",
        "Bonjour à tous, nous allons parler aujourd'hui de la ville, du marché et "
        "des enfants qui jouent dans le jardin après l'école pendant que leurs parents "
        "travaillent encore au bureau.",
    ),
    "deu": (
        "de",
        "Guten Morgen, heute sprechen wir über die Stadt, den Markt und die Kinder, "
        "die nach der Schule im Garten spielen, während ihre Eltern noch im Büro "
        "arbeiten.",
    ),
    "spa": (
        "es",
        "Buenos días a todos, hoy vamos a hablar de la ciudad, del mercado y de los "
        "niños que juegan en el jardín después de la escuela mientras sus padres "
        "todavía trabajan en la oficina.",
    ),
    "eng": (
        "en",
        "Good morning everyone, today we will talk about the city, the market and the "
        "children who play in the garden after school while their parents are still "
        "working at the office.",
    ),
}


def espeak_missing() -> str | None:
    return None if espeak_available() else "espeak-ng is not installed (apt install espeak-ng)"


def speech(language: str, folder: Path, seconds: float | None = None) -> np.ndarray:
    """`language`'s sentence, repeated or cut to `seconds` (espeak leaves no long pauses)."""
    voice, text = SENTENCES[language]
    audio = synthesize(text, voice, folder)
    if seconds is None:
        return audio
    n = round(seconds * RATE_HZ)
    reps = int(np.ceil(n / len(audio)))
    return np.tile(audio, reps)[:n]


@dataclass(frozen=True)
class Segment:
    language: str | None  # None for silence
    start_s: float
    end_s: float


def script(
    parts: list[tuple[str | None, float]], folder: Path, name: str
) -> tuple[Path, list[Segment]]:
    """Concatenates speech and silence, e.g. [("fra", 20), (None, 3), ("deu", 20)], into one
    WAV; returns it with the ground truth."""
    chunks, truth, t = [], [], 0.0
    for language, seconds in parts:
        if language is None:
            chunk = np.zeros(round(seconds * RATE_HZ), dtype=np.float32)
        else:
            chunk = speech(language, folder, seconds)
        chunks.append(chunk)
        truth.append(Segment(language, t, t + seconds))
        t += seconds
    path = folder / f"{name}.wav"
    soundfile.write(str(path), np.concatenate(chunks), RATE_HZ, subtype="PCM_16")
    return path, truth
