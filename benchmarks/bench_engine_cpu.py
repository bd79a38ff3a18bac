"""The engine's own cost, without the model: CPU share of one core per live stream.

Runs N `--realtime` streams of espeak-ng speech (paced at real time, treated as live) through
the engine with a stand-in model that costs nothing (a fixed answer), and prints the process
CPU time over the wall time, per stream: what the audio path, the speech gate, the windows, the
smoothing, the events and the sinks cost on this machine. The target is under 5 % of one core
per live stream.

    python benchmarks/bench_engine_cpu.py                 # 4 streams, 60 s
    python benchmarks/bench_engine_cpu.py --streams 8 --seconds 120 --no-adaptive-hop
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
RATE_HZ = 16000


class FreeModel:
    """A model that costs nothing: always the first of ten languages, confidently."""

    labels = ("eng", "fra", "deu", "spa", "ita", "por", "nld", "pol", "tur", "swe")

    def __init__(self) -> None:
        self.windows = 0
        self._row = np.full(len(self.labels), 0.02, np.float32)
        self._row[0] = 1.0 - 0.02 * (len(self.labels) - 1)

    def classify(self, windows):
        self.windows += len(windows)
        return np.tile(self._row, (len(windows), 1))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-adaptive-hop", action="store_true")
    parser.add_argument(
        "--rate", type=int, default=48000, help="sample rate of the streams (a mic's is 48 kHz)"
    )
    args = parser.parse_args()

    import soundfile
    from bench_switches import TEXTS, speech_for

    from streamlid.audio.open import open_source
    from streamlid.config import load_config
    from streamlid.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(5)
        paths = []
        for i in range(args.streams):
            code = list(TEXTS)[i % len(TEXTS)]
            audio = speech_for(code, folder, args.seconds, rng)
            if args.rate != RATE_HZ:
                import soxr

                audio = soxr.resample(audio, RATE_HZ, args.rate)
            path = folder / f"stream{i}.wav"
            soundfile.write(str(path), audio, args.rate, subtype="PCM_16")
            paths.append(path)
        overrides = {"ui": "none", "realtime": True}
        if args.no_adaptive_hop:
            overrides["adaptive_hop"] = False
        config = load_config(overrides=overrides)
        model = FreeModel()
        sources = [open_source(str(p), realtime=True) for p in paths]
        engine = Engine(config, sources, model, [])
        cpu_before, wall_before = cpu_s(), time.monotonic()
        engine.run()
        cpu_used, wall = cpu_s() - cpu_before, time.monotonic() - wall_before

    share = cpu_used / wall
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"{args.streams} live streams x {args.seconds:g} s at {args.rate} Hz, stand-in model "
        f"(no cost), adaptive "
        f"hop {'off' if args.no_adaptive_hop else 'on'}: {model.windows} windows"
    )
    print(
        f"CPU {cpu_used:.1f} s in {wall:.1f} s wall = {100 * share:.1f} % of one core, "
        f"{100 * share / args.streams:.2f} % per stream (target < 5 %)"
    )


if __name__ == "__main__":
    main()
