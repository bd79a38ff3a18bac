"""Soak for network feeds: N live loopback feeds for M minutes, each dropped and restored K times.

    python tools/soak_feeds.py                         # 8 feeds, 10 minutes, 2 drops each
    python tools/soak_feeds.py --feeds 4 --minutes 2   # a quick look

Every feed is an HTTP server on 127.0.0.1 sending looped espeak speech as MP3 at real time; the
engine listens with --realtime (stream time follows the wall clock, outages are silence in it).
Reports per feed: drops made vs reconnects seen, seconds down (as scheduled) vs outage seconds
counted, stream time vs wall time (lost seconds: stream time not accounted for), windows
classified and skipped; ffmpeg processes left (children, and any ffmpeg anywhere still naming
a feed's port). Memory is sampled every --sample-s (RSS, malloc held and in use, arenas,
threads; tools/memwatch.py) and judged by its slope after the warm-up: flat means RSS grows
less than --max-slope MB/min over the last half of the run. --trace N adds tracemalloc's top N
growths since the warm-up (slows the run).

Ctrl-C or SIGTERM stops the run early and still stops every server and ffmpeg it started.
Exit status 1 when a check fails. Not a unit test: it takes minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

from memwatch import MemoryTimeline  # noqa: E402

from streamlid.audio.open import open_source  # noqa: E402
from streamlid.classifier import Classifier  # noqa: E402
from streamlid.config import feed_settings, load_config  # noqa: E402
from streamlid.engine import Engine  # noqa: E402
from streamlid.events import FeedState, Prediction, Summary  # noqa: E402

TINY_LID = ROOT / "tests" / "assets" / "tiny-lid"
WARM_UP_S = 30.0  # memory is compared from here (model, buffers and caches settled)
LOST_TOLERANCE_S = 3.0  # start-up (connect, probe) and the last partial block


MAX_SLOPE_MB_PER_MIN = 1.0  # "memory flat": RSS over the last half grows slower than this


class Stopped(Exception):
    """SIGTERM: end the run as Ctrl-C does, through the same clean-up."""


def on_sigterm(signum: int, frame: object) -> None:
    raise Stopped


def drop_schedule(
    feeds_n: int, drops_n: int, run_s: float, down_s: float
) -> list[tuple[float, int]]:
    """(seconds from the start, feed) of every drop: spread over the run after the warm-up,
    staggered between feeds."""
    if drops_n <= 0:
        return []
    span_s = run_s - WARM_UP_S - down_s - 10.0
    return sorted(
        (
            WARM_UP_S + span_s * (k + 0.5) / drops_n + (i / feeds_n - 0.5) * span_s / drops_n / 2,
            i,
        )
        for i in range(feeds_n)
        for k in range(drops_n)
    )


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


class ShapeCounter:
    """Counts the distinct input shapes (windows x samples, padding included) the model is
    run on, from a hook on the model itself: each new shape costs its kernel library cached
    kernels."""

    def __init__(self, model: Classifier) -> None:
        self.shapes: set[tuple[int, ...]] = set()
        model._model.register_forward_pre_hook(self._seen, with_kwargs=True)

    def _seen(self, module, args, kwargs) -> None:
        self.shapes.add(tuple(kwargs["input_values"].shape))

    @property
    def lengths(self) -> set[int]:
        return {shape[-1] for shape in self.shapes}


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
    parser.add_argument("--drops", type=int, default=2, help="drops per feed (0: none)")
    parser.add_argument("--down-s", type=float, default=5.0, help="seconds each drop lasts")
    parser.add_argument("--model", default=str(TINY_LID))
    parser.add_argument("--vad-engine", default=None, help="webrtc, silero or both (config's)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="memory sampled this often")
    parser.add_argument("--max-slope", type=float, default=MAX_SLOPE_MB_PER_MIN, help="MB/min")
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc's top N growths")
    args = parser.parse_args()

    from feed_servers import LoopbackFeed, ffmpeg_children, ffmpeg_processes

    signal.signal(signal.SIGTERM, on_sigterm)
    run_s = args.minutes * 60.0
    memory = MemoryTimeline(args.sample_s, WARM_UP_S, trace_top_n=args.trace)
    interrupted = False
    load_start = os.getloadavg()
    feeds: list[LoopbackFeed] = []
    engine: Engine | None = None
    model: ShapeCounter | None = None
    books = Books()
    done = threading.Event()
    thread: threading.Thread | None = None
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            data = speech_mp3(Path(tmp)).read_bytes()
            feeds = [LoopbackFeed(data).start() for _ in range(args.feeds)]
            overrides = {
                "ui": "none",
                "realtime": True,
                "stall_timeout": 5.0,
                "reconnect_min": 0.5,
                "reconnect_max": 2.0,
            }
            if args.vad_engine:
                overrides["vad_engine"] = args.vad_engine
            config = load_config(overrides=overrides)
            feed = feed_settings(config)
            sources = [open_source(f.url, realtime=True, feed=feed) for f in feeds]
            for number, source in enumerate(sources, start=1):
                source.name = f"feed{number}"
            classifier = Classifier(args.model, device="cpu", announce=lambda m: None)
            model = ShapeCounter(classifier)
            engine = Engine(config, sources, classifier, [books])
            schedule = drop_schedule(args.feeds, args.drops, run_s, args.down_s)

            def dropper() -> None:
                for at_s, i in schedule:
                    if done.wait(max(0.0, started + at_s - time.monotonic())):
                        return
                    feeds[i].kill()
                    done.wait(args.down_s)
                    feeds[i].restart()
                    if done.is_set():
                        return

            started = time.monotonic()
            memory.start()
            engine.start()
            thread = threading.Thread(target=dropper, name="dropper")
            thread.start()
            try:
                while time.monotonic() - started < run_s:
                    time.sleep(0.5)
                    if sample := memory.maybe_sample():
                        print(
                            f"{sample.t_s:5.0f} s  RSS {sample.rss_mb:6.1f} MB  "
                            f"threads {sample.threads}",
                            file=sys.stderr,
                            flush=True,
                        )
            finally:
                memory.sample()  # the end, before anything is let go
        except (KeyboardInterrupt, Stopped):
            interrupted = True
            print("interrupted: stopping every feed and ffmpeg", file=sys.stderr)
        finally:
            # Ctrl-C again must not cut the clean-up short: every wait in it is bounded.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            done.set()
            if thread is not None:
                thread.join()  # it restarts a feed it killed before it ends: then all die
            if engine is not None:
                engine.stop()
                engine.wait()
            for f in feeds:
                f.kill()
    wall_s = time.monotonic() - started
    children = ffmpeg_children(os.getpid())
    strays = sorted({pid for f in feeds for pid in ffmpeg_processes(f":{f.port}/")})
    load_end = os.getloadavg()

    failures = []
    print(
        f"{args.feeds} feeds, {wall_s / 60:.1f} min, {args.drops} drops of {args.down_s:g} s each"
        + (" (interrupted)" if interrupted else "")
    )
    print(
        "load average (1/5/15 min) at the start "
        + "/".join(f"{v:.1f}" for v in load_start)
        + ", at the end "
        + "/".join(f"{v:.1f}" for v in load_end)
        + f", on {os.cpu_count()} CPUs"
    )
    summary = books.summary
    if summary is not None and not interrupted:
        print(
            f"{'feed':<7} {'drops':>5} {'reconn':>6} {'down':>6} {'outage':>7} {'stream':>7} "
            f"{'lost':>6} {'windows':>7} {'skipped':>7}"
        )
        for stream in summary.streams:
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
    if memory.samples:
        memory.report()
        judged = memory.after_warm_up()
        if judged:
            first, last = judged[0], judged[-1]
            print(
                f"RSS after warm-up {first.rss_mb:.0f} MB, at the end {last.rss_mb:.0f} MB "
                f"({last.rss_mb - first.rss_mb:+.0f})"
            )
        slope = memory.slope(memory.last_half())
        if slope is not None and slope > args.max_slope and not interrupted:
            failures.append(
                f"memory not flat: RSS grows {slope:.2f} MB/min over the last half "
                f"(limit {args.max_slope:g})"
            )
    if model is not None:
        print(
            f"the model ran on {len(model.lengths)} distinct input lengths, "
            f"{len(model.shapes)} distinct input shapes (windows x samples)"
        )
    print(f"ffmpeg processes left: {len(children)} children, {len(strays)} naming a feed port")
    if children or strays:
        failures.append(f"{len(children) + len(strays)} ffmpeg processes left")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
