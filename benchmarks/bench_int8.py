"""int8 against fp32 on real speech: top-1 agreement and probability error, trained test model.

The trained test model (tests/assets/tiny-lid, 10 languages) on 3 s windows at a 1 s hop over
espeak-ng speech in five languages; int8 (streamlid's dynamic quantization of the Linear layers)
against fp32 on the very same windows.

    python benchmarks/bench_int8.py
    python benchmarks/bench_int8.py --model FOLDER --seconds 30

For speed, time the dtypes on the full-size architecture with
`streamlid bench --random-weights --dtype int8` (and float32, bfloat16).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from bench_file_mode import RATE_HZ, VOICES, espeak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "tests" / "assets" / "tiny-lid"))
    parser.add_argument("--seconds", type=float, default=20.0, help="speech per language")
    args = parser.parse_args()

    from streamlid.classifier import Classifier

    window_n, hop_n = 3 * RATE_HZ, RATE_HZ
    windows, truth = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for voice, (code, text) in VOICES.items():
            audio = espeak(voice, text, Path(tmp))
            audio = np.tile(audio, int(args.seconds * RATE_HZ / len(audio)) + 1)
            audio = audio[: round(args.seconds * RATE_HZ)]
            for start in range(0, len(audio) - window_n + 1, hop_n):
                windows.append(audio[start : start + window_n])
                truth.append(code)
    quiet = lambda message: None  # noqa: E731
    fp32 = Classifier(args.model, device="cpu", dtype="float32", announce=quiet)
    int8 = Classifier(args.model, device="cpu", dtype="int8", announce=quiet)
    exact, approx = fp32.classify(windows), int8.classify(windows)
    labels = np.array(fp32.labels)
    agree = float(np.mean(exact.argmax(1) == approx.argmax(1)))
    right32 = float(np.mean(labels[exact.argmax(1)] == np.array(truth)))
    right8 = float(np.mean(labels[approx.argmax(1)] == np.array(truth)))
    print(f"{len(windows)} windows of 3 s, {len(VOICES)} languages, model {args.model}")
    print(f"top-1 agreement int8 vs fp32: {100 * agree:.1f} %")
    print(f"largest probability difference: {float(np.abs(approx - exact).max()):.4f}")
    print(f"accuracy: fp32 {100 * right32:.1f} %, int8 {100 * right8:.1f} %")


if __name__ == "__main__":
    main()
