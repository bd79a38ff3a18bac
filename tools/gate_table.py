#!/usr/bin/env python3
"""Make the table in docs/speech-gate.md: what the speech gate lets through, per kind of sound.

Each sound of the test corpus (tests/corpus.py: noise, hum, tones, chords, melodies, clicks at
three levels; espeak-ng speech clean and over music) goes through the product's gate at each
engine setting, with the default settings otherwise. The figure is the share of its frames the
gate passes as speech (hangover and onset pad included: what the windows are cut from).
Speech figures count the frames from the first audible sample to the last (espeak pads its
output with silence).

    python tools/gate_table.py            # prints the Markdown table
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the test suite's corpus and speech helpers

ENGINES = ("webrtc", "silero", "both")
SPEECH_LANGUAGES = ("eng", "fra", "deu", "spa")


def passed_share(samples: np.ndarray, engine: str, span: tuple[int, int] | None = None) -> float:
    """Share of frames (inside `span`, sample indices) the gate passes as speech."""
    from streamlid.gate import GateSettings, build_gate

    gate = build_gate(GateSettings(engine=engine))
    frames = gate.feed(0, samples) + gate.flush()
    if span is not None:
        frames = [f for f in frames if span[0] <= f.start_index < span[1]]
    return float(np.mean([f.speech for f in frames]))


def audible_span(samples: np.ndarray) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return int(loud[0]), int(loud[-1])


def rows(folder: Path) -> list[tuple[str, list[float]]]:
    from corpus import KINDS, LEVELS_DBFS, build_corpus

    corpus = build_corpus(folder)
    out = []
    for kind in KINDS:
        for dbfs in LEVELS_DBFS:
            sound = corpus.nonspeech[f"{kind}@{dbfs:g}"]
            out.append((f"{kind} at {dbfs:g} dBFS", [passed_share(sound, e) for e in ENGINES]))
    for snr_db in (None, 20.0, 10.0, 5.0):
        label = "speech, clean" if snr_db is None else f"speech over music, {snr_db:g} dB"
        shares = []
        for engine in ENGINES:
            per_language = []
            for language in SPEECH_LANGUAGES:
                clean = corpus.speech_over_music(language, None)
                mixed = corpus.speech_over_music(language, snr_db)
                per_language.append(passed_share(mixed, engine, audible_span(clean)))
            shares.append(float(np.mean(per_language)))
        out.append((label, shares))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gate-table-") as tmp:
        table = rows(Path(tmp))
    print("| sound | " + " | ".join(ENGINES) + " |")
    print("|---|" + "---:|" * len(ENGINES))
    for label, shares in table:
        print(f"| {label} | " + " | ".join(f"{share:.0%}" for share in shares) + " |")


if __name__ == "__main__":
    main()
