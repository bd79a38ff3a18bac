"""Live latency with the full-size model: `--realtime` speech with pauses and switches.

Plays N minutes of espeak-ng speech (turns of 5-20 s in changing languages, some separated by
pauses, some not) through the engine at real time, as a live feed, with the full-size
mms-lid-256 architecture (random weights: speed does not depend on them), and prints:
answer latency (window cut -> answer) median/p95/max, the largest lag behind live, the longest
gap between answers during speech, windows classified and skipped, the effective hop, RSS at
start and end with its slope after a minute's warm-up and over the last half (sampled every
10 s, tools/memwatch.py), and the median batch-1 forward time of a full window, which the
latency targets are stated against (p95 <= 1.5x one forward pass, never above --max-lag, an
answer at least every 2.5 s of speech).

    python benchmarks/bench_live.py --model /work/bench-models/mms-lid-256-random --minutes 10
    python benchmarks/bench_live.py --model ... --minutes 2 --no-adaptive-hop   # for comparison
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tools"))
if "--baseline" not in sys.argv:  # --baseline: the streamlid on PYTHONPATH (an older checkout)
    sys.path.insert(0, str(ROOT))
from memwatch import MemoryTimeline, rss_mb  # noqa: E402

RATE_HZ = 16000
FULL_S = 3.0  # a full window with the default settings
MEMORY_EVERY_S = 10.0
MEMORY_WARM_UP_S = 60.0  # the first minute's passes meet most window lengths for the first time


def turns_audio(folder: Path, minutes: float, seed: int) -> tuple[np.ndarray, int]:
    """Speech turns of 5-20 s; after about a third of them a pause of 1.5-4 s. Returns the
    audio and the number of switches."""
    from bench_switches import TEXTS, speech_for

    rng = np.random.default_rng(seed)
    codes = list(TEXTS)
    parts, total_s, previous, switches = [np.zeros(RATE_HZ, np.float32)], 1.0, None, 0
    while total_s < minutes * 60:
        code = str(rng.choice([c for c in codes if c != previous]))
        seconds = float(rng.uniform(5.0, 20.0))
        parts.append(speech_for(code, folder, seconds, rng))
        switches += previous is not None
        previous = code
        total_s += seconds
        if rng.random() < 0.35:
            pause_s = float(rng.uniform(1.5, 4.0))
            parts.append(np.zeros(round(pause_s * RATE_HZ), np.float32))
            total_s += pause_s
    return np.concatenate(parts)[: round(minutes * 60 * RATE_HZ)], switches


class TimedModel:
    """The classifier, timing each call by batch size and input length."""

    def __init__(self, model) -> None:
        self._model = model
        self.labels = model.labels
        self.calls: list[tuple[int, int, float]] = []  # (batch, samples, seconds)
        self._lock = threading.Lock()

    def classify(self, windows):
        started = time.perf_counter()
        probs = self._model.classify(windows)
        seconds = time.perf_counter() - started
        with self._lock:
            self.calls.append((len(windows), max(len(w) for w in windows), seconds))
        return probs


class Collector:
    def __init__(self) -> None:
        self.events: list = []

    def handle(self, event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def longest_gap_s(events) -> tuple[float, float]:
    """(longest stream time between two answers inside one stretch of speech, longest time
    from speech onset to the first answer), answers placed where they were published."""
    from streamlid.events import Prediction, SpeechChange

    segments, start = [], None
    for e in events:
        if isinstance(e, SpeechChange):
            if e.speech and start is None:
                start = e.t_s
            elif not e.speech and start is not None:
                segments.append((start, e.t_s))
                start = None
    answers = sorted(p.t_end_s + (p.lag_s or 0.0) for p in events if isinstance(p, Prediction))
    gap = first = 0.0
    for a, b in segments:
        inside = [t for t in answers if a <= t <= b]
        if b - a < 3.0:
            continue  # a short burst may end before any answer is due
        points = [a, *inside, b]
        gaps = np.diff(points)
        if len(gaps) > 2:
            gap = max(gap, float(np.max(gaps[1:-1])) if len(gaps) > 2 else 0.0)
        if inside:
            first = max(first, inside[0] - a)
    return gap, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/work/bench-models/mms-lid-256-random")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--max-lag", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-adaptive-hop", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument(
        "--baseline", action="store_true", help="run the streamlid found on PYTHONPATH instead"
    )
    args = parser.parse_args()

    rss_start = rss_mb()
    from streamlid.audio.open import open_source
    from streamlid.classifier import Classifier
    from streamlid.config import load_config
    from streamlid.engine import Engine
    from streamlid.events import Prediction, Status, Summary

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        audio, switches = turns_audio(Path(tmp), args.minutes, args.seed)
        import soundfile

        wav = Path(tmp) / "live.wav"
        soundfile.write(str(wav), audio, RATE_HZ, subtype="PCM_16")
        model = TimedModel(
            Classifier(args.model, device="cpu", dtype=args.dtype, announce=lambda m: None)
        )
        model.classify([np.zeros(round(FULL_S * RATE_HZ), np.float32)])  # warm up
        model.calls.clear()
        rss_loaded = rss_mb()
        overrides = {"ui": "none", "realtime": True, "max_lag": args.max_lag}
        if args.no_adaptive_hop:
            overrides["adaptive_hop"] = False
        config = load_config(overrides=overrides)
        sink = Collector()
        load_before = os.getloadavg()[0]
        memory = MemoryTimeline(MEMORY_EVERY_S, MEMORY_WARM_UP_S)
        memory.start()
        done = threading.Event()

        def sample_until_done() -> None:
            while not done.wait(MEMORY_EVERY_S):
                memory.sample()

        sampler = threading.Thread(target=sample_until_done, name="memory-sampler")
        sampler.start()
        started = time.monotonic()
        try:
            Engine(config, [open_source(str(wav), realtime=True)], model, [sink]).run()
        finally:
            done.set()
            sampler.join()
        memory.sample()
        wall_s = time.monotonic() - started
        rss_end = rss_mb()

    predictions = [e for e in sink.events if isinstance(e, Prediction)]
    statuses = [e for e in sink.events if isinstance(e, Status)]
    summary = next(e for e in sink.events if isinstance(e, Summary)).streams[0]
    latencies = sorted(p.latency_s for p in predictions)
    lags = [p.lag_s for p in predictions if p.lag_s is not None]
    full = [s for n, length, s in model.calls if n == 1 and length == round(FULL_S * RATE_HZ)]
    forward_s = statistics.median(full) if full else float("nan")
    gap_s, first_s = longest_gap_s(sink.events)
    p95 = float(np.percentile(latencies, 95))
    cpu = Path("/proc/cpuinfo").read_text()
    model_name = next(
        (line.split(":", 1)[1].strip() for line in cpu.splitlines() if "model name" in line), "?"
    )
    import streamlid

    print(f"streamlid from {Path(streamlid.__file__).parent}")
    print(f"machine: {model_name}, {os.cpu_count()} cores; load average before {load_before:.1f}")
    print(
        f"model {args.model} ({args.dtype}); {args.minutes:g} min of --realtime speech, "
        f"{switches} switches; adaptive hop {'off' if args.no_adaptive_hop else 'on'}; "
        f"max-lag {args.max_lag:g} s; wall {wall_s:.0f} s"
    )
    print(f"batch-1 forward, full 3 s window: median {forward_s:.2f} s ({len(full)} passes)")
    print(
        f"answer latency: median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, "
        f"max {latencies[-1]:.2f} s  (p95 / forward = {p95 / forward_s:.2f}; target <= 1.5)"
    )
    print(f"max lag behind live: {max(lags):.2f} s (max-lag {args.max_lag:g} s)")
    print(
        f"longest gap between answers during speech: {gap_s:.2f} s; "
        f"longest wait from speech onset to the first answer: {first_s:.2f} s"
    )
    skipped = statuses[-1].skipped_windows if statuses else 0
    print(
        f"windows classified {len(predictions)}, skipped {skipped}, "
        # getattr: the script also measures older streamlid versions (PYTHONPATH) as a baseline
        f"effective hop {getattr(summary, 'hop_mean_s', None)} s; "
        f"forward passes {len(model.calls)}"
    )
    print(f"RSS: start {rss_start:.0f} MB, model loaded {rss_loaded:.0f} MB, end {rss_end:.0f} MB")
    memory.report()
    inputs = {(n, length) for n, length, _ in model.calls}
    print(f"distinct (windows, samples) inputs given to the classifier: {len(inputs)}")


if __name__ == "__main__":
    main()
