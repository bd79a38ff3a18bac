"""The per-stream reducer: honest books, bounded memory, quantiles that hold."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

from streamlid.events import (
    FeedState,
    LanguageChange,
    LanguageScore,
    Prediction,
    SpeechChange,
    StreamAlert,
)
from streamlid.streams import (
    FOLD_HORIZON_S,
    RESERVOIR_N,
    SEGMENTS_MAX,
    UNDECIDED,
    QuantileReservoir,
    StreamsReducer,
)


def prediction(t_end_s: float, language: str | None, latency_s: float = 0.1, conf=0.9):
    score = (LanguageScore(language or "eng", "x", conf),)
    return Prediction(
        "a",
        t_end_s - 3.0,
        t_end_s,
        score,
        score,
        language,
        language or "unknown",
        conf if language else 0.0,
        latency_s,
        None,
    )


def change(t_s: float, since_s: float, previous: str | None, language: str | None):
    return LanguageChange("a", t_s, since_s, previous, language, language or "unknown", 0.9)


def test_speech_before_the_first_decision_is_undecided_not_the_first_language():
    """The issue's case: a first answer that came late (windows skipped) named German, and the
    French and English before it were credited to German. Now they are undecided."""
    r = StreamsReducer()
    r.handle(SpeechChange("a", 0.0, True))
    r.handle(SpeechChange("a", 25.0, False))  # French
    r.handle(SpeechChange("a", 26.0, True))
    r.handle(SpeechChange("a", 47.0, False))  # English
    r.handle(SpeechChange("a", 48.0, True))  # German from here
    r.handle(prediction(75.0, "deu"))
    r.handle(change(75.0, 72.5, None, "deu"))
    r.handle(SpeechChange("a", 79.0, False))
    books = r.speech_by_language("a")
    assert books[UNDECIDED] == pytest.approx(25.0 + 21.0 + 24.5)
    assert books["deu"] == pytest.approx(79.0 - 72.5)
    summary = r.summaries()[0]
    assert summary.speech_s == pytest.approx(77.0)
    assert sum(summary.speech_s_by_language.values()) == pytest.approx(77.0)


def test_speech_answered_without_a_language_is_unknown_not_undecided():
    """Music through a gate that lets it pass: answered, but no language named. Only the
    speech before the first answer's window is undecided."""
    r = StreamsReducer()
    r.handle(SpeechChange("a", 0.0, True))
    for t_end_s in (5.0, 6.0, 7.0, 8.0):
        r.handle(prediction(t_end_s, None))
    r.handle(SpeechChange("a", 30.0, False))
    assert r.speech_by_language("a") == pytest.approx({UNDECIDED: 2.0, "unknown": 28.0})
    assert r.summaries()[0].changes == 0


def test_a_change_reaches_back_to_its_since_and_splits_a_segment():
    r = StreamsReducer()
    r.handle(SpeechChange("a", 1.0, True))
    r.handle(prediction(4.0, "fra"))
    r.handle(change(4.0, 1.0, None, "fra"))
    r.handle(prediction(14.0, "fra"))
    r.handle(prediction(16.0, "fra"))
    r.handle(change(16.0, 12.0, "fra", "eng"))  # English since 12 s, in the same speech
    r.handle(SpeechChange("a", 20.0, False))
    books = r.speech_by_language("a")
    assert books == pytest.approx({"fra": 11.0, "eng": 8.0})
    segments = r.segments()
    assert [(s.language, s.start_s, s.end_s) for s in segments] == [
        ("fra", 1.0, 12.0),
        ("eng", 12.0, 20.0),
    ]
    assert segments[0].mean_confidence == pytest.approx(0.9)


def test_a_segment_ended_right_after_its_change_has_the_confidence_that_made_it():
    """The answer that makes a change comes before its change event; a run stopped before the
    next answer must still give the new segment that answer's confidence, not none."""
    r = StreamsReducer()
    r.handle(SpeechChange("a", 0.0, True))
    r.handle(prediction(3.0, "eng", conf=0.8))
    r.handle(change(3.0, 0.0, None, "eng"))
    r.handle(prediction(9.0, "fra", conf=0.6))
    r.handle(change(9.0, 7.5, "eng", "fra"))
    r.handle(SpeechChange("a", 9.5, False))
    segments = r.segments()
    assert [(s.language, s.mean_confidence) for s in segments] == [
        ("eng", pytest.approx(0.8)),
        ("fra", pytest.approx(0.6)),
    ]


def test_books_fold_old_speech_and_stay_exact_over_many_segments():
    """Hours of alternating speech and silence: totals add up and nothing grows."""
    r = StreamsReducer()
    t = 0.0
    r.handle(prediction(0.0, "fra"))
    r.handle(change(0.0, 0.0, None, "fra"))
    for _ in range(5000):
        r.handle(SpeechChange("a", t, True))
        r.handle(prediction(t + 2.0, "fra"))
        r.handle(SpeechChange("a", t + 2.0, False))
        t += 3.0
    stream = r._streams["a"]
    assert len(stream.pending) <= FOLD_HORIZON_S / 3.0 + 2
    assert r.speech_by_language("a")["fra"] == pytest.approx(5000 * 2.0)


def test_latency_quantiles_are_exact_when_few_and_bounded_when_many():
    small = QuantileReservoir()
    values = [0.1, 0.2, 0.3, 0.4, 1.0]
    for v in values:
        small.add(v)
    assert small.quantile(50) == pytest.approx(float(np.median(values)))
    assert small.quantile(95) == pytest.approx(float(np.percentile(values, 95)))

    big = QuantileReservoir()
    rng = random.Random(7)
    for _ in range(1_000_000):
        big.add(rng.expovariate(10.0))  # median ln2/10 = 0.0693, p95 ln20/10 = 0.2996
    assert len(big) == RESERVOIR_N
    assert big.count == 1_000_000
    assert big.quantile(50) == pytest.approx(0.0693, rel=0.06)
    assert big.quantile(95) == pytest.approx(0.2996, rel=0.06)


def test_a_million_answers_leave_the_reducer_the_same_size():
    r = StreamsReducer()
    r.handle(SpeechChange("a", 0.0, True))

    def size() -> int:
        s = r._streams["a"]
        return sum(
            len(getattr(s, name))
            for name in ("pending", "segments", "recent", "buckets", "prob_sums", "by_language")
        ) + sys.getsizeof(s.latency._values)

    rng = random.Random(1)
    languages = ["fra", "eng", "deu"]
    sizes = []
    for i in range(1_000_000):
        t = i * 1.0
        r.handle(prediction(t, languages[(i // 50) % 3], latency_s=rng.random()))
        if i % 50 == 0:
            r.handle(change(t, t - 1.0, None, languages[(i // 50) % 3]))
        if i in (SEGMENTS_MAX * 60, 999_999):
            sizes.append(size())
    assert sizes[0] == sizes[1]
    figures = r.figures("a")[0]
    assert figures.windows == 1_000_000
    assert figures.latency_buckets[-1] == 1_000_000
    assert len(r.segments()) == SEGMENTS_MAX + 1  # the kept ones and the current one
    assert figures.latency_p95_s == pytest.approx(0.95, abs=0.02)


def test_outage_seconds_count_the_outage_going_on_and_never_fall():
    """A scrape of streamlid_outage_seconds_total while a feed is down (one that never came up
    above all) counts the outage so far, as the summary does; and the recovery's own figure,
    measured a moment earlier by the source, does not take back what was already counted."""
    now = [100.0]
    r = StreamsReducer(clock=lambda: now[0])
    r.handle(FeedState("a", 0.0, "disconnected", "Connection refused", 0, 0.5))
    now[0] = 130.0
    assert r.figures("a")[0].outage_s == pytest.approx(30.5)
    now[0] = 131.0
    down_s = r.figures("a")[0].outage_s
    r.handle(FeedState("a", 0.0, "connected", "", 4, 30.9))  # measured before the last scrape
    assert r.figures("a")[0].outage_s >= down_s
    now[0] = 200.0
    assert r.figures("a")[0].outage_s == pytest.approx(31.5)  # up again: no longer counting


def test_feed_and_alert_events_count():
    r = StreamsReducer()
    r.handle(FeedState("a", 5.0, "disconnected", "server closed", 0, 0.0))
    assert r.figures("a")[0].feed_down_since_wall is not None
    r.handle(FeedState("a", 5.0, "recovered", "", 2, 12.5))
    r.handle(StreamAlert("a", 6.0, "silence", True, "no speech for 60 s"))
    figures = r.figures("a")[0]
    assert (figures.reconnects, figures.outage_s, figures.feed_down_since_wall) == (1, 12.5, None)
    assert figures.alerts_active == ("silence",) and figures.alerts_total == 1
    r.handle(StreamAlert("a", 9.0, "silence", False, "speech again"))
    figures = r.figures("a")[0]
    assert figures.alerts_active == () and figures.alerts_total == 1


def test_stream_up_is_0_while_its_feed_is_down_and_once_its_input_has_ended():
    """An operator's first question of a monitor: which streams are coming in? A feed given up
    on, or a file read to its end, still read as a stream with its last lag and language."""
    from prometheus_client import CollectorRegistry

    from streamlid.events import StreamEnded
    from streamlid.metrics import StreamsCollector

    r = StreamsReducer()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamsCollector(r))

    def up(stream: str) -> float | None:
        return registry.get_sample_value("streamlid_stream_up", {"stream": stream})

    r.handle(SpeechChange("file", 0.0, True))
    r.handle(FeedState("feed", 0.0, "connected", "", 0, 0.0))
    assert (up("file"), up("feed")) == (1.0, 1.0)
    r.handle(FeedState("feed", 9.0, "disconnected", "server closed", 0, 0.0))
    r.handle(StreamEnded("file", 12.0))
    assert (up("file"), up("feed")) == (0.0, 0.0)
    r.handle(FeedState("feed", 11.0, "recovered", "", 1, 2.0))
    assert up("feed") == 1.0
