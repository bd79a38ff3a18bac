"""Soak (not a test): a week of synthetic events per feed through the monitoring half, fast.

Pushes what the worker and front ends would publish for N feeds over D days (one answer per
second of speech, gate changes, language switches, status, outages) through the real event bus
into the shared per-stream figures, the alert watch, a JSONL sink and plain lines (both to
/dev/null: the point is their memory, not the disk), scrapes the metrics collector and rewrites
the timeline CSV every simulated hour, and prints the process's resident memory as it goes.
The target: under 50 MB of growth in all after warm-up (the first simulated hour).

    PYTHONPATH=. python tools/soak_week.py [--days 7] [--feeds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

from memwatch import rss_mb

from streamlid.alerts import AlertWatch
from streamlid.bus import EventBus
from streamlid.config import AlertSettings
from streamlid.events import (
    FeedState,
    LanguageChange,
    LanguageScore,
    Level,
    Prediction,
    SpeechChange,
    Status,
    StreamStarted,
    Summary,
)
from streamlid.languages import language_name
from streamlid.metrics import StreamsCollector
from streamlid.sinks import JsonlSink, PlainPrinter
from streamlid.streams import StreamsReducer
from streamlid.timeline import TimelineCsv

HOUR_S = 3600
LANGUAGES = ("eng", "fra", "deu", "spa")


def scores(code: str, p: float) -> tuple[LanguageScore, ...]:
    rest = [c for c in LANGUAGES if c != code]
    left = (1.0 - p) / len(rest)
    return (
        LanguageScore(code, language_name(code), p),
        *(LanguageScore(c, language_name(c), left) for c in rest),
    )


class Feed:
    """One feed's script: speech with pauses, a language for minutes at a time (sometimes an
    unexpected one), a long silence now and then, an outage every six hours."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.language = "eng"
        self.speech = False
        self.next_switch_s = 300.0

    def second(self, t: int, publish) -> None:
        rng, name = self.rng, self.name
        silent_stretch = t % 1800 >= 1740  # a minute of dead air every half hour
        want_speech = not silent_stretch and rng.random() > 0.05
        if want_speech != self.speech:
            publish(SpeechChange(name, float(t), want_speech))
            self.speech = want_speech
        if self.speech:
            if t >= self.next_switch_s:
                previous = self.language
                self.language = rng.choices(LANGUAGES, weights=(5, 5, 1, 1))[0]
                self.next_switch_s = t + rng.uniform(120, 900)
                if self.language != previous:
                    publish(
                        LanguageChange(
                            name,
                            float(t),
                            t - 1.5,
                            previous,
                            self.language,
                            language_name(self.language),
                            0.8,
                        )
                    )
            p = rng.uniform(0.6, 0.99)
            top = scores(self.language, p)
            publish(
                Prediction(
                    name,
                    t - 3.0,
                    float(t),
                    top,
                    top,
                    self.language,
                    language_name(self.language),
                    p,
                    rng.lognormvariate(-3.0, 0.5),
                    rng.uniform(0.1, 1.0),
                )
            )
        publish(Level(name, float(t), -20.0 if self.speech else -70.0, self.speech))  # 1 of 10
        publish(Status(name, float(t), rng.uniform(0.1, 1.0), 0.0, 0, t))
        if t % (6 * HOUR_S) == 3 * HOUR_S:
            publish(FeedState(name, float(t), "disconnected", "connection reset by peer", 0, 0))
        elif t % (6 * HOUR_S) == 3 * HOUR_S + 90:
            publish(FeedState(name, float(t), "recovered", "", 4, 90.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--feeds", type=int, default=3)
    args = parser.parse_args()

    figures = StreamsReducer()
    settings = AlertSettings(("eng", "fra"), 30.0, 45.0, 0.0)  # down: wall time, not simulated
    bus: EventBus
    watch = AlertWatch(figures, lambda event: bus.publish(event), settings)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed at the end
    jsonl = JsonlSink(os.devnull)
    counter = {"alerts": 0}

    class CountAlerts:
        def handle(self, event) -> None:
            if type(event).__name__ == "StreamAlert":
                counter["alerts"] += 1

        def close(self) -> None:
            pass

    bus = EventBus([figures, watch, jsonl, PlainPrinter(devnull), CountAlerts()])
    bus.start()
    folder = tempfile.mkdtemp(prefix="soak-week-")
    timeline = TimelineCsv(os.path.join(folder, "timeline.csv"), figures)
    collector = StreamsCollector(figures)
    feeds = [Feed(f"feed{i + 1}", seed=i) for i in range(args.feeds)]
    for feed in feeds:
        bus.publish(
            StreamStarted(feed.name, f"http://radio/{feed.name}", 16000, True, "m", "c", "f")
        )

    total_s = int(args.days * 24 * HOUR_S)
    started = time.monotonic()
    baseline_mb = None
    print(f"{args.feeds} feeds x {args.days:g} days = {total_s * args.feeds / 3600:.0f} h of audio")
    print(f"{'simulated':>10} {'rss MB':>8} {'growth':>8} {'events/s':>9} {'segments':>9}")
    for t in range(1, total_s + 1):
        for feed in feeds:
            feed.second(t, bus.publish)
        if t % HOUR_S == 0:
            assert bus.flush(30.0)
            rows = timeline.write()
            metrics = list(collector.collect())
            now_mb = rss_mb()
            if baseline_mb is None:
                baseline_mb = now_mb  # after the first hour: imports and caches are warm
            if t % (12 * HOUR_S) == 0 or t == HOUR_S:
                rate = jsonl.lines / (time.monotonic() - started)
                print(
                    f"{t / 86400:9.2f}d {now_mb:8.1f} {now_mb - baseline_mb:+8.1f} "
                    f"{rate:9.0f} {rows:9d}",
                    flush=True,
                )
            assert metrics
    bus.publish(Summary(figures.summaries(), time.monotonic() - started, "end of input"))
    bus.stop()
    bus.join(30.0)
    end_mb = rss_mb()
    growth = end_mb - (baseline_mb or end_mb)
    summary = figures.summaries()[0]
    print(
        f"done in {time.monotonic() - started:.0f} s wall: {jsonl.lines} events, "
        f"{counter['alerts']} alert events, feed1 {summary.windows} windows, latency p50 "
        f"{summary.latency_median_s} s p95 {summary.latency_p95_s} s, books "
        f"{ {k: round(v / 3600, 1) for k, v in summary.speech_s_by_language.items()} } h"
    )
    print(
        f"memory: {baseline_mb:.1f} MB after the first hour, {end_mb:.1f} MB at the end: "
        f"growth {growth:+.1f} MB (target < 50 MB)"
    )
    devnull.close()
    return 0 if growth < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
