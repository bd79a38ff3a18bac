"""int8 against fp32 on real speech: top-1 agreement and probability error, trained test model.

The trained test model (tests/assets/tiny-lid, 10 languages) on 3 s windows at a 1 s hop over
espeak-ng speech in five languages; int8 (streamlid's dynamic quantization of the Linear layers)
against fp32 on the very same windows.

    python benchmarks/bench_int8.py
    python benchmarks/bench_int8.py --model FOLDER --seconds 30

With `--speed`, it also times fp32, bf16 and int8 against each other on the full-size
architecture cut to `--layers` transformer layers (random weights, all three in memory at once,
runs interleaved A B C A B C so a busy machine slows each alike); the full model is 48 such
layers after the same convolutional front end. For whole-model figures per dtype use
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

DTYPES = ("float32", "bfloat16", "int8")


def interleaved_speed(layers: int, rounds: int) -> None:
    import json
    import statistics
    import time

    from streamlid.classifier import RANDOM_SHAPES, Classifier

    with tempfile.TemporaryDirectory() as tmp:
        shape = Path(tmp)
        config = json.loads((RANDOM_SHAPES["mms-lid-256"] / "config.json").read_text())
        config["num_hidden_layers"] = layers
        (shape / "config.json").write_text(json.dumps(config))
        pre = (RANDOM_SHAPES["mms-lid-256"] / "preprocessor_config.json").read_text()
        (shape / "preprocessor_config.json").write_text(pre)
        models = {
            d: Classifier(str(shape), device="cpu", dtype=d, random_weights=True) for d in DTYPES
        }
    window = [np.random.default_rng(0).normal(0, 0.1, 3 * RATE_HZ).astype(np.float32)]
    times: dict[str, list[float]] = {d: [] for d in DTYPES}
    for model in models.values():
        model.classify(window)  # warm-up
    for _ in range(rounds):
        for dtype, model in models.items():
            started = time.perf_counter()
            model.classify(window)
            times[dtype].append(time.perf_counter() - started)
    base = statistics.median(times["float32"])
    print(f"full-size architecture cut to {layers} layers, one 3 s window, {rounds} rounds")
    for dtype in DTYPES:
        median = statistics.median(times[dtype])
        print(f"{dtype:9} median {1000 * median:7.1f} ms   {base / median:4.2f}x fp32's speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "tests" / "assets" / "tiny-lid"))
    parser.add_argument("--seconds", type=float, default=20.0, help="speech per language")
    parser.add_argument("--speed", action="store_true", help="also time the dtypes")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=15)
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
    if args.speed:
        interleaved_speed(args.layers, args.rounds)


if __name__ == "__main__":
    main()
