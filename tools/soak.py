"""Soak: push an hour of speech and silence through the engine as fast as it goes, and check
the books balance.

    python tools/soak.py                      # 1 hour, tiny test model
    python tools/soak.py --hours 0.1 --model facebook/mms-lid-256

Reports samples in vs samples accounted for (must be equal), resident memory early in the run
vs at the end (must be flat), events written, speech found vs speech played, and errors (must
be zero). Exit status 1 when a check fails. Not a unit test: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from streamlid.audio.ring import RingBuffer  # noqa: E402
from streamlid.audio.source import Source  # noqa: E402

RATE_HZ = 16000
MIN_MEMORY_CHECK_S = 600.0
TINY_LID = ROOT / "tests" / "assets" / "tiny-lid"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class ScriptedSource(Source):
    """Speech and silence in turns (5-20 s each, random), from a few espeak sentences, as a
    file would deliver it: as fast as the pipeline takes it."""

    def __init__(self, speech: list[np.ndarray], seconds: float, seed: int) -> None:
        super().__init__()
        self.name, self.description = "soak", f"{seconds / 3600:.2f} h of scripted audio"
        self.sample_rate_hz, self.live = RATE_HZ, False
        self._speech, self._n_total = speech, round(seconds * RATE_HZ)
        self._rng = np.random.default_rng(seed)
        self.samples_in = 0
        self.speech_in_s = 0.0
        self.rss_at: dict[float, float] = {}  # stream time (s) -> RSS (MB)

    def _run(self, ring: RingBuffer) -> None:
        talking = True
        while self.samples_in < self._n_total and not self.stopping:
            n = min(round(self._rng.uniform(5, 20) * RATE_HZ), self._n_total - self.samples_in)
            if talking:
                clip = self._speech[self._rng.integers(len(self._speech))]
                chunk = np.resize(clip, n).astype(np.float32)
                self.speech_in_s += n / RATE_HZ
            else:
                chunk = (self._rng.standard_normal(n) * 1e-4).astype(np.float32)  # room hiss
            for start in range(0, n, RATE_HZ):
                piece = chunk[start : start + RATE_HZ]
                self.samples_in += ring.write(piece, block=True, stop=self._stop)
                minute = self.samples_in // (60 * RATE_HZ)
                self.rss_at.setdefault(float(minute * 60), rss_mb())
            talking = not talking


def espeak_clips(folder: Path) -> list[np.ndarray]:
    from audio_helpers import SENTENCES, synthesize

    return [synthesize(text, voice, folder) for voice, text in SENTENCES.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--model", default=None, help="default: tests/assets/tiny-lid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from streamlid.classifier import Classifier
    from streamlid.config import load_config
    from streamlid.engine import Engine
    from streamlid.sinks import JsonlSink

    work = Path(tempfile.mkdtemp(prefix="streamlid-soak-"))
    model_dir = args.model
    if model_dir is None:
        if TINY_LID.exists():
            model_dir = str(TINY_LID)
        else:
            from modelfactory import build_checkpoint

            model_dir = str(build_checkpoint(work / "model"))
    classifier = Classifier(model_dir, device="cpu", announce=lambda m: None)
    source = ScriptedSource(espeak_clips(work), args.hours * 3600, args.seed)
    jsonl = work / "events.jsonl"
    engine = Engine(
        load_config(overrides={"ui": "none"}),
        [source],
        classifier,
        [JsonlSink(str(jsonl))],
        (model_dir, classifier.device, classifier.dtype),
    )

    started = time.monotonic()
    rss_start = rss_mb()
    engine.start()
    while not engine.wait(10.0):
        done = source.samples_in / RATE_HZ
        print(
            f"  {done / 60:6.1f} min of audio in {time.monotonic() - started:6.1f} s, "
            f"RSS {rss_mb():6.0f} MB",
            flush=True,
        )
    wall = time.monotonic() - started
    summary = engine.summary
    assert summary is not None
    stream = summary.streams[0]

    accounted = round(stream.duration_s * RATE_HZ)
    lines = jsonl.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    errors = [e for e in events if e["type"] == "notice" and e["severity"] == "error"]
    errors += [{"message": m} for m in engine.errors + engine.output_errors]
    # Memory after warm-up (allocator pools, thread pools): 5 minutes in, or a fifth of a
    # shorter run.
    warm_s = min(300.0, 0.2 * args.hours * 3600)
    early = [v for t, v in sorted(source.rss_at.items()) if t >= warm_s] or [rss_start]
    rss_early, rss_end = early[0], rss_mb()
    threads = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]

    checks = {
        "samples in == samples accounted for": source.samples_in == accounted,
        "no errors": not errors,
        "no thread left": not threads,
        "summary is the last event": events[-1]["type"] == "summary",
    }
    print(
        f"audio pushed        {source.samples_in / RATE_HZ / 3600:.3f} h "
        f"({source.samples_in} samples) in {wall:.0f} s "
        f"= {source.samples_in / RATE_HZ / wall:.0f}x real time"
    )
    print(
        f"samples accounted   {accounted} (duration {stream.duration_s:.3f} s, "
        f"lost {stream.overflow_s:.3f} s)"
    )
    print(f"speech played/found {source.speech_in_s:.0f} s / {stream.speech_s:.0f} s")
    print(
        f"windows classified  {stream.windows} (skipped {stream.skipped_windows}), "
        f"latency median {stream.latency_median_s} s"
    )
    print(
        f"RSS                 start {rss_start:.0f} MB, after warm-up {rss_early:.0f} MB, "
        f"end {rss_end:.0f} MB"
    )
    print(f"events written      {len(lines)} lines ({jsonl.stat().st_size / 1e6:.1f} MB)")
    print(f"errors              {len(errors)}")
    if threads:
        print(f"threads left        {threads}")
    # Allocator and thread pools settle over the first minutes: judge memory on longer runs.
    if args.hours * 3600 >= MIN_MEMORY_CHECK_S:
        checks["memory flat (end within 25 MB of after warm-up)"] = rss_end - rss_early < 25
    else:
        print(f"memory check        n/a (needs a run of {MIN_MEMORY_CHECK_S / 60:.0f} min or more)")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
