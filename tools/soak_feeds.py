"""Soak for network feeds: N live loopback feeds for M minutes, each dropped and restored K times.

    python tools/soak_feeds.py                         # 8 feeds, 10 minutes, 2 drops each
    python tools/soak_feeds.py --feeds 4 --minutes 2   # a quick look

Every feed is an HTTP server on 127.0.0.1 sending looped espeak speech as MP3 at real time; the
engine listens with --realtime (stream time follows the wall clock, outages are silence in it).
Reports per feed: drops made vs reconnects seen, seconds down (as scheduled) vs outage seconds
counted, stream time vs wall time (lost seconds: stream time not accounted for), windows
classified and skipped; resident memory after warm-up and at the end; ffmpeg processes left.
Exit status 1 when a check fails. Not a unit test: it takes minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from streamlid.audio.open import open_source  # noqa: E402
from streamlid.classifier import Classifier  # noqa: E402
from streamlid.config import feed_settings, load_config  # noqa: E402
from streamlid.engine import Engine  # noqa: E402
from streamlid.events import FeedState, Prediction, Summary  # noqa: E402

TINY_LID = ROOT / "tests" / "assets" / "tiny-lid"
WARM_UP_S = 30.0  # memory is compared from here (model, buffers and caches settled)
LOST_TOLERANCE_S = 3.0  # start-up (connect, probe) and the last partial block


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Books:
    """A sink that keeps counts only (a soak must not grow by keeping events)."""

    def __init__(self) -> None:
        self.states: Counter[tuple[str, str]] = Counter()
        self.predictions: Counter[str] = Counter()
        self.summary: Summary | None = None

    def handle(self, event) -> None:
        if isinstance(event, FeedState):
            self.states[(event.stream, event.state)] += 1
        elif isinstance(event, Prediction):
            self.predictions[event.stream] += 1
        elif isinstance(event, Summary):
            self.summary = event

    def close(self) -> None:
        pass


def speech_mp3(folder: Path) -> Path:
    from audio_helpers import SENTENCES, silence, synthesize
    from feed_servers import make_mp3

    clips = []
    for voice in SENTENCES:
        clips += [synthesize(SENTENCES[voice], voice, folder), silence(1.0)]
    return make_mp3(np.concatenate(clips), folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--drops", type=int, default=2, help="drops per feed")
    parser.add_argument("--down-s", type=float, default=5.0, help="seconds each drop lasts")
    parser.add_argument("--model", default=str(TINY_LID))
    args = parser.parse_args()

    from feed_servers import LoopbackFeed, ffmpeg_children

    run_s = args.minutes * 60.0
    with tempfile.TemporaryDirectory() as tmp:
        data = speech_mp3(Path(tmp)).read_bytes()
        feeds = [LoopbackFeed(data).start() for _ in range(args.feeds)]
        try:
            config = load_config(
                overrides={
                    "ui": "none",
                    "realtime": True,
                    "stall_timeout": 5.0,
                    "reconnect_min": 0.5,
                    "reconnect_max": 2.0,
                }
            )
            feed = feed_settings(config)
            sources = [open_source(f.url, realtime=True, feed=feed) for f in feeds]
            for number, source in enumerate(sources, start=1):
                source.name = f"feed{number}"
            classifier = Classifier(args.model, device="cpu", announce=lambda m: None)
            books = Books()
            engine = Engine(config, sources, classifier, [books])
            # Drops spread over the run, staggered between feeds, none in the warm-up.
            span_s = run_s - WARM_UP_S - args.down_s - 10.0
            schedule = sorted(
                (
                    WARM_UP_S
                    + span_s * (k + 0.5) / args.drops
                    + (i / args.feeds - 0.5) * span_s / args.drops / 2,
                    i,
                )
                for i in range(args.feeds)
                for k in range(args.drops)
            )
            done = threading.Event()

            def dropper() -> None:
                for at_s, i in schedule:
                    if done.wait(max(0.0, started + at_s - time.monotonic())):
                        return
                    feeds[i].kill()
                    if done.wait(args.down_s):
                        feeds[i].restart()
                        return
                    feeds[i].restart()

            rss_warm = None
            started = time.monotonic()
            engine.start()
            thread = threading.Thread(target=dropper, name="dropper")
            thread.start()
            try:
                while time.monotonic() - started < run_s:
                    time.sleep(1.0)
                    if rss_warm is None and time.monotonic() - started >= WARM_UP_S:
                        rss_warm = rss_mb()
            finally:
                done.set()
                thread.join()
                engine.stop()
                engine.wait()
            wall_s = time.monotonic() - started
            rss_end = rss_mb()
            children = ffmpeg_children(os.getpid())
        finally:
            for f in feeds:
                f.kill()

    assert books.summary is not None
    failures = []
    print(
        f"{args.feeds} feeds, {wall_s / 60:.1f} min, {args.drops} drops of {args.down_s:g} s each"
    )
    print(
        f"{'feed':<7} {'drops':>5} {'reconn':>6} {'down':>6} {'outage':>7} {'stream':>7} "
        f"{'lost':>6} {'windows':>7} {'skipped':>7}"
    )
    for stream in books.summary.streams:
        name = stream.stream
        lost_s = wall_s - stream.duration_s
        down_s = args.drops * args.down_s
        print(
            f"{name:<7} {args.drops:>5} {stream.reconnects:>6} {down_s:>5.1f}s "
            f"{stream.outage_s:>6.1f}s {stream.duration_s:>6.1f}s {lost_s:>5.1f}s "
            f"{stream.windows:>7} {stream.skipped_windows:>7}"
        )
        if stream.reconnects != args.drops:
            failures.append(f"{name}: {stream.reconnects} reconnects for {args.drops} drops")
        if stream.outage_s < down_s:
            failures.append(f"{name}: outage {stream.outage_s:.1f} s < {down_s:.1f} s down")
        if abs(lost_s) > LOST_TOLERANCE_S:
            failures.append(f"{name}: {lost_s:.1f} s of stream time unaccounted for")
    growth = rss_end - (rss_warm or rss_end)
    print(f"RSS after warm-up {rss_warm or 0:.0f} MB, at the end {rss_end:.0f} MB ({growth:+.0f})")
    print(f"ffmpeg processes left: {len(children)}")
    if children:
        failures.append(f"{len(children)} ffmpeg processes left")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
