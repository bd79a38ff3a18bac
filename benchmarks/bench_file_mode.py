"""streamlid's fast file mode against the naive per-window pipeline, on the same audio and model.

The audio: N minutes of espeak-ng speech whose language changes every 30-60 s (seeded), built
into a temp folder. Four runs, one after the other (one model in memory at a time):

1. fast: streamlid's `Engine` on the file, not realtime, with the chosen dtype and the defaults
   (the file schedule: a fixed hop's windows, classified only where the answer may change);
2. fixed hop: the same with `--fixed KEY=VALUE` overrides (default: `adaptive_hop=false`, every
   window of the fixed 1 s hop), the reference for the answers;
3. naive, same dtype: transformers `pipeline("audio-classification")` on every 3 s window at a
   1 s hop over the whole file, one window after another (what the pipeline docs suggest);
4. naive, default fp32: the same as a new user writes it, with no dtype given.

Prints the wall time of each, the speedups of (1) over (3) and (4), and the speech time per
language of (1) against (2) (the target: within 1 % of the speech time).

    python benchmarks/bench_file_mode.py --model /path/to/mms-lid-256 --dtype bfloat16
    python benchmarks/bench_file_mode.py --model tests/assets/tiny-lid --minutes 10
    python benchmarks/bench_file_mode.py --model /work/bench-models/mms-lid-256-random \
        --answers-from tests/assets/tiny-lid --minutes 10 --naive-sample 30

`--naive-sample N` times only the first N naive windows and scales to the whole file (said so
in the output); the naive loop costs the same for every window.

`--answers-from FOLDER`: random weights name no language, so nothing would ever be settled and
the file schedule would classify every window. With this, run (1) does the compute of `--model`
on every window it classifies but takes its answers (and so its schedule) from FOLDER's model,
a trained one; run (2) then uses FOLDER's model alone (its answers are all it is for, and its
wall time is not compared).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import soxr

RATE_HZ = 16000
WINDOW_S = 3.0
HOP_S = 1.0
# espeak voice -> the ISO 639-3 code mms-lid labels it with; one paragraph each (tiled).
VOICES = {
    "fr": (
        "fra",
        "Bonjour à tous, nous allons parler aujourd'hui de la ville, du marché et des enfants "
        "qui jouent dans le jardin après l'école pendant que leurs parents travaillent encore.",
    ),
    "de": (
        "deu",
        "Guten Morgen, heute sprechen wir über die Stadt, den Markt und die Kinder, die nach "
        "der Schule im Garten spielen, während ihre Eltern noch im Büro arbeiten.",
    ),
    "es": (
        "spa",
        "Buenos días a todos, hoy vamos a hablar de la ciudad, del mercado y de los niños que "
        "juegan en el jardín después de la escuela mientras sus padres trabajan.",
    ),
    "en": (
        "eng",
        "Good morning everyone, today we will talk about the city, the market and the children "
        "who play in the garden after school while their parents are still at the office.",
    ),
    "it": (
        "ita",
        "Buongiorno a tutti, oggi parliamo della città, del mercato e dei bambini che giocano "
        "nel giardino dopo la scuola mentre i loro genitori lavorano ancora in ufficio.",
    ),
}


def espeak(voice: str, text: str, folder: Path) -> np.ndarray:
    raw = folder / f"espeak-{voice}.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True
    )
    samples, rate = soundfile.read(str(raw), dtype="float32", always_2d=True)
    return soxr.resample(samples.mean(axis=1), rate, RATE_HZ).astype(np.float32)


def build_audio(folder: Path, minutes: float, seed: int) -> tuple[Path, dict[str, float]]:
    """Speech whose language changes every 30-60 s; returns the file and seconds per language."""
    rng = random.Random(seed)
    voices = {voice: espeak(voice, text, folder) for voice, (_, text) in VOICES.items()}
    parts, truth, total_n, previous = [], {}, round(minutes * 60 * RATE_HZ), None
    while sum(len(p) for p in parts) < total_n:
        voice = rng.choice([v for v in voices if v != previous])
        previous = voice
        n = min(round(rng.uniform(30.0, 60.0) * RATE_HZ), total_n - sum(len(p) for p in parts))
        speech = voices[voice]
        parts.append(np.tile(speech, n // len(speech) + 1)[:n])
        code = VOICES[voice][0]
        truth[code] = truth.get(code, 0.0) + n / RATE_HZ
    path = folder / f"speech-{minutes:g}min.wav"
    soundfile.write(str(path), np.concatenate(parts), RATE_HZ, subtype="PCM_16")
    return path, truth


class Counted:
    """A model counting what it classifies (windows and tails); with `answers`, the compute of
    `model` and the answers of `answers` (see --answers-from)."""

    def __init__(self, model, answers=None) -> None:
        self._model, self._answers = model, answers
        self.labels = (answers or model).labels
        self.inputs = 0

    def classify(self, windows):
        self.inputs += len(windows)
        probs = self._model.classify(windows)
        return probs if self._answers is None else self._answers.classify(windows)


def load(model: str, device: str, dtype: str):
    from streamlid.classifier import Classifier

    return Classifier(model, device=device, dtype=dtype, announce=lambda m: None)


def run_engine(path: Path, model: Counted, settings: dict, overrides: dict) -> tuple:
    from streamlid.audio.open import open_source
    from streamlid.config import load_config
    from streamlid.engine import Engine

    config = load_config(None, {**settings, **overrides})
    source = open_source(str(path), realtime=False)
    model.classify([np.zeros(round(WINDOW_S * RATE_HZ), np.float32)])  # warm-up, as naive's
    model.inputs = 0
    started = time.monotonic()
    summary = Engine(config, [source], model, []).run()
    wall_s = time.monotonic() - started
    stream = summary.streams[0]
    return wall_s, stream, dict(stream.speech_s_by_language)


def run_naive(path: Path, model: str, device: str, dtype: str | None, sample_n: int | None):
    """transformers' pipeline on every 3 s window at a 1 s hop, in turn; (seconds, windows,
    windows timed)."""
    import torch
    from transformers import pipeline

    kwargs = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    classify = pipeline("audio-classification", model=model, device=device, **kwargs)
    audio, _ = soundfile.read(str(path), dtype="float32")
    window_n, hop_n = round(WINDOW_S * RATE_HZ), round(HOP_S * RATE_HZ)
    starts = list(range(0, len(audio) - window_n + 1, hop_n))
    timed = starts[:sample_n] if sample_n else starts
    classify(audio[:window_n])  # warm-up, as the engine's first window is
    started = time.monotonic()
    for start in timed:
        classify({"raw": audio[start : start + window_n], "sampling_rate": RATE_HZ})
    elapsed = time.monotonic() - started
    del classify
    gc.collect()
    return elapsed * len(starts) / len(timed), len(starts), len(timed)


def agreement(fast: dict[str, float], fixed: dict[str, float]) -> tuple[float, str]:
    """Largest difference in one language's speech time, as a share of all speech."""
    total = sum(fixed.values()) or 1.0
    worst, worst_code = 0.0, "-"
    for code in set(fast) | set(fixed):
        diff = abs(fast.get(code, 0.0) - fixed.get(code, 0.0)) / total
        if diff >= worst:
            worst, worst_code = diff, code
    return worst, worst_code


def load_average() -> str:
    """The machine's state at each step: the timings are only as good as it was quiet."""
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint folder (safetensors)")
    parser.add_argument("--dtype", default="bfloat16", help="streamlid's dtype (and naive's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed", nargs="*", default=["adaptive_hop=false"], metavar="KEY=VALUE")
    parser.add_argument("--fast", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--naive-sample", type=int, default=None, metavar="N")
    parser.add_argument("--answers-from", metavar="FOLDER", help="see the docstring")
    args = parser.parse_args()

    import torch

    with tempfile.TemporaryDirectory(prefix="streamlid-bench-") as tmp:
        path, truth = build_audio(Path(tmp), args.minutes, args.seed)
        speech_s = sum(truth.values())
        print(f"audio: {speech_s / 60:.1f} min, {len(truth)} languages, {path.name}", flush=True)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}; "
            f"{load_average()}",
            flush=True,
        )

        settings = {"model": args.model, "device": args.device, "dtype": args.dtype}
        answers = None
        if args.answers_from:
            answers = load(args.answers_from, args.device, "float32")
        fast = Counted(load(args.model, args.device, args.dtype), answers)
        fast_s, fast_stream, fast_langs = run_engine(
            path, fast, settings, parse_overrides(args.fast)
        )
        source = f", answers from {args.answers_from}" if answers is not None else ""
        print(
            f"fast file mode ({args.dtype}{source}): {fast_s:.1f} s, {fast_stream.windows} "
            f"windows, {fast.inputs} inputs with tails, hop {fast_stream.hop_mean_s} s; "
            f"{load_average()}",
            flush=True,
        )
        del fast
        gc.collect()
        if answers is not None:
            fixed = Counted(answers)
            label = f"{args.answers_from} alone, float32"
        else:
            fixed = Counted(load(args.model, args.device, args.dtype))
            label = args.dtype
        fixed_s, fixed_stream, fixed_langs = run_engine(
            path, fixed, settings, parse_overrides(args.fixed)
        )
        print(
            f"fixed hop ({label}): {fixed_s:.1f} s, {fixed_stream.windows} windows, "
            f"{fixed.inputs} inputs with tails, hop {fixed_stream.hop_mean_s} s; "
            f"{load_average()}",
            flush=True,
        )
        print(
            f"forward inputs, fast / fixed hop: {fast_stream.windows}/{fixed_stream.windows} "
            f"windows = {fast_stream.windows / max(1, fixed_stream.windows):.2f}x",
            flush=True,
        )
        del fixed, answers
        gc.collect()
        naive_dtype = "float32" if args.dtype in ("int8", "auto") else args.dtype
        naive_s, naive_n, naive_timed = run_naive(
            path, args.model, args.device, naive_dtype, args.naive_sample
        )
        scaled = f" (scaled from {naive_timed})" if naive_timed < naive_n else ""
        print(
            f"naive ({naive_dtype}): {naive_s:.1f} s, {naive_n} windows{scaled}; {load_average()}",
            flush=True,
        )
        plain_s, plain_n, plain_timed = run_naive(
            path, args.model, args.device, None, args.naive_sample
        )
        scaled = f" (scaled from {plain_timed})" if plain_timed < plain_n else ""
        print(
            f"naive (default fp32): {plain_s:.1f} s, {plain_n} windows{scaled}; {load_average()}",
            flush=True,
        )

    worst, worst_code = agreement(fast_langs, fixed_langs)
    print()
    print(f"speedup vs naive {naive_dtype}: {naive_s / fast_s:.2f}x   (target >= 2x)")
    print(f"speedup vs naive default fp32: {plain_s / fast_s:.2f}x   (target >= 3x)")
    print(
        f"speech time per language, fast vs fixed hop: largest difference {100 * worst:.2f} % "
        f"of speech ({worst_code})   (target <= 1 %)"
    )
    print("language  truth s  fast s  fixed s")
    for code in sorted(set(truth) | set(fast_langs) | set(fixed_langs)):
        print(
            f"{code:8} {truth.get(code, 0):8.1f} {fast_langs.get(code, 0):7.1f} "
            f"{fixed_langs.get(code, 0):8.1f}"
        )


if __name__ == "__main__":
    main()
