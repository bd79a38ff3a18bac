"""StreamsReducer: the one place where events are folded into per-stream figures.

The summary, the live view, the timeline CSV, the metrics and the alerts all read it, so they
cannot disagree. A monitor runs for weeks, so every figure here takes bounded memory:

- latency quantiles come from a fixed-size reservoir (exact while it is not full), plus fixed
  histogram buckets for the metrics;
- speech time per language is folded into totals as soon as no later language change can
  reach back to it (a change's `since_s` is at most half a window and a hop before its
  decision, so speech older than FOLD_HORIZON_S behind the newest answer is final);
- the timeline's language segments keep the newest SEGMENTS_MAX per stream.

Honest books: speech heard before the first language is decided is credited to "undecided",
not to the first language named (a change's `since_s` still reaches back to where the
language is estimated to have started).
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .events import (
    Event,
    FeedState,
    LanguageChange,
    LanguageScore,
    Level,
    Prediction,
    SpeechChange,
    Status,
    StreamAlert,
    StreamEnded,
    StreamStarted,
    StreamSummary,
)
from .languages import language_name

UNKNOWN = "unknown"  # speech while the smoother named no language
UNDECIDED = "undecided"  # speech before the first decision
RESERVOIR_N = 4096  # latency samples kept per stream: p95 within ~0.7 percentile points
FOLD_HORIZON_S = 60.0  # speech this far behind the newest answer is credited for good
SEGMENTS_MAX = 10_000  # language segments kept per stream for the timeline CSV
RECENT_S = 30.0  # the live view's windows/s and latency cover this much recent wall time
RECENT_MAX = 4096  # ... and at most this many answers
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def short_reason(reason: str, names: tuple[str, ...]) -> str:
    """A feed's reason without the URL that ffmpeg puts before it (the summary names the
    stream already): "Server returned 404 Not Found"."""
    for name in names:
        if name and reason.startswith(name + ": "):
            return reason[len(name) + 2 :]
    return reason


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on a sorted list."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class QuantileReservoir:
    """A uniform sample of at most `capacity` values (Vitter's algorithm R): constant memory
    however many values arrive, exact quantiles until it is full. Seeded, so runs repeat."""

    def __init__(self, capacity: int = RESERVOIR_N, seed: int = 0) -> None:
        self.capacity = capacity
        self.count = 0
        self._values: list[float] = []
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        if len(self._values) < self.capacity:
            self._values.append(value)
            return
        slot = self._random.randrange(self.count)
        if slot < self.capacity:
            self._values[slot] = value

    def quantile(self, q: float) -> float | None:
        """The q-th percentile (0-100) of the values seen, or None before the first."""
        if not self._values:
            return None
        return percentile(sorted(self._values), q)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class Segment:
    """A stretch of one language (from its change's `since_s` to the next one's)."""

    stream: str
    start_s: float
    end_s: float
    language: str  # a code, or "unknown"
    mean_confidence: float | None  # mean smoothed confidence of the answers naming it


@dataclass(frozen=True)
class StreamFigures:
    """What every reader sees of one stream at one moment (a copy: safe on any thread)."""

    stream: str
    source: str
    live: bool
    t_s: float  # newest stream time of any event (a file's reader runs ahead of the model)
    heard_s: float  # stream time the gate and the model have reached: the alerts' clock
    speech: bool
    speech_s: float
    speech_ratio: float  # speech time over stream time
    silent_since_s: float | None
    language: str | None
    language_name: str
    confidence: float
    since_s: float | None  # stream time when the current language began
    windows: int
    skipped_windows: int
    overflow_s: float
    lag_s: float | None
    latency_median_s: float | None  # the whole run
    latency_p95_s: float | None
    recent_latency_median_s: float | None  # the last RECENT_S of wall time
    recent_latency_p95_s: float | None
    recent_windows_per_s: float | None
    latency_buckets: tuple[int, ...]  # cumulative counts per LATENCY_BUCKETS_S, then +Inf
    latency_sum_s: float
    feed_state: str  # "" (no feed events), "connected", "disconnected", "retrying", "recovered"
    feed_down_since_wall: float | None  # monotonic time the feed went down, while down
    ended: bool  # its input ended (read to its end, or failed for good): no audio will come
    reconnects: int
    outage_s: float  # the outage going on included: a feed down from its start counts too
    feed_reason: str
    alerts_active: tuple[str, ...]  # kinds
    alert_messages: tuple[str, ...]  # the active alerts' messages, oldest first
    alerts_total: int


@dataclass(frozen=True)
class StreamNow:
    """The few figures the alerts look at after every event: cheap to copy (no quantiles)."""

    stream: str
    heard_s: float  # the speech gate's clock (it runs ahead of the model on a file)
    answered_s: float  # the model's clock: the newest answer's end
    speech: bool
    silent_since_s: float | None
    language: str | None
    language_name: str
    since_s: float | None
    feed_state: str
    feed_reason: str
    feed_down_since_wall: float | None
    ended: bool


@dataclass
class _Stream:
    name: str
    started_wall: float
    source: str = ""
    live: bool = False
    t_s: float = 0.0
    heard_s: float = 0.0
    # speech and its books
    open_since_s: float | None = None  # the open speech segment began here
    open_credited_to_s: float = 0.0  # ... and is credited up to here
    closed_s: float = 0.0  # closed speech, all languages
    pending: deque[tuple[float, float]] = field(default_factory=deque)  # not credited yet
    by_language: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    code: str = UNDECIDED  # what speech from `code_since_s` on is credited to
    code_since_s: float = 0.0
    answered_to_s: float = 0.0  # newest answer's end: the folding clock
    silent_since_s: float | None = 0.0
    changes: int = 0
    # now
    language: str | None = None
    language_name: str = UNKNOWN
    confidence: float = 0.0
    since_s: float | None = None
    prob_sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    # segments for the timeline
    segments: deque[Segment] = field(default_factory=lambda: deque(maxlen=SEGMENTS_MAX))
    seg_code: str | None = None
    seg_start_s: float = 0.0
    seg_conf_sum: float = 0.0
    seg_conf_n: int = 0
    # health
    windows: int = 0
    status_windows: int = 0
    skipped: int = 0
    overflow_s: float = 0.0
    lag_s: float | None = None
    latency: QuantileReservoir = field(default_factory=QuantileReservoir)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RECENT_MAX))
    hop_sum_s: float = 0.0  # each window's own hop (not the first of a segment)
    hop_n: int = 0
    # feed and alerts
    ended: bool = False
    feed_state: str = ""
    down_since_wall: float | None = None
    connected: bool = False  # a feed that delivered audio at least once
    down_reason: str = ""  # why the feed last went down (its "disconnected" reason)
    reconnects: int = 0
    outage_s: float = 0.0  # closed outages (the one still going on: since down_since_wall)
    feed_reason: str = ""
    alerts_active: dict[str, str] = field(default_factory=dict)  # kind -> message
    alerts_total: int = 0


class StreamsReducer:
    """A sink: folds events into per-stream figures; readers call `figures()`, `summaries()`
    and `segments()` from any thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}

    # -- events ------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        stream = getattr(event, "stream", "")
        if not stream:
            return  # the Summary, and notices for every stream
        with self._lock:
            s = self._streams.get(stream)
            if s is None:
                s = self._streams[stream] = _Stream(stream, started_wall=self._clock())
            if isinstance(event, (Prediction, SpeechChange, LanguageChange, Level)):
                heard = event.t_end_s if isinstance(event, Prediction) else event.t_s
                s.heard_s = max(s.heard_s, heard)
            if isinstance(event, Prediction):
                self._prediction(s, event)
            elif isinstance(event, SpeechChange):
                self._speech(s, event)
            elif isinstance(event, LanguageChange):
                self._change(s, event)
            elif isinstance(event, Status):
                self._advance(s, event.t_s)
                if event.lag_s is not None:
                    s.lag_s = event.lag_s
                s.overflow_s = max(s.overflow_s, event.overflow_s)
                s.skipped = max(s.skipped, event.skipped_windows)
                s.status_windows = max(s.status_windows, event.windows)
            elif isinstance(event, FeedState):
                self._feed(s, event)
            elif isinstance(event, StreamAlert):
                if event.active:
                    s.alerts_active[event.kind] = event.message
                    s.alerts_total += 1
                else:
                    s.alerts_active.pop(event.kind, None)
            elif isinstance(event, StreamStarted):
                s.source, s.live = event.source, event.live
                s.started_wall = self._clock()
            elif isinstance(event, StreamEnded):
                s.ended = True
                # A feed given up on: its outage ends with it, not at the run's end.
                s.outage_s += self._down_for_s(s)
                s.down_since_wall = None

    def close(self) -> None:
        pass

    def _advance(self, s: _Stream, t_s: float) -> None:
        s.t_s = max(s.t_s, t_s)

    def _speech(self, s: _Stream, event: SpeechChange) -> None:
        self._advance(s, event.t_s)
        if event.speech and s.open_since_s is None:
            s.open_since_s = event.t_s
            s.open_credited_to_s = max(event.t_s, s.code_since_s)
            s.silent_since_s = None
        elif not event.speech and s.open_since_s is not None:
            s.closed_s += max(0.0, event.t_s - s.open_since_s)
            if event.t_s > s.open_credited_to_s:
                s.pending.append((s.open_credited_to_s, event.t_s))
            s.open_since_s = None
            s.silent_since_s = event.t_s

    def _change(self, s: _Stream, event: LanguageChange) -> None:
        self._advance(s, event.t_s)
        s.changes += 1
        code = event.language or UNKNOWN
        # A later change cannot take effect before an earlier one, nor before what is folded.
        since = max(event.since_s, s.code_since_s)
        self._credit_until(s, since)
        s.code, s.code_since_s = code, since
        s.since_s = None if event.language is None else since
        self._close_segment(s, since)
        s.seg_code, s.seg_start_s = code, since
        if s.language == event.language:  # the answer that made the change comes before it
            s.seg_conf_sum, s.seg_conf_n = s.confidence, 1

    def _credit_until(self, s: _Stream, until_s: float) -> None:
        """Credits the speech before `until_s` to the current code, for good."""
        while s.pending and s.pending[0][0] < until_s:
            a, b = s.pending.popleft()
            end = min(b, until_s)
            s.by_language[s.code] += end - a
            if b > until_s:
                s.pending.appendleft((until_s, b))
                break
        if s.open_since_s is not None and s.open_credited_to_s < until_s:
            end = min(until_s, max(s.t_s, s.open_credited_to_s))
            s.by_language[s.code] += end - s.open_credited_to_s
            s.open_credited_to_s = max(s.open_credited_to_s, until_s)

    def _prediction(self, s: _Stream, event: Prediction) -> None:
        self._advance(s, event.t_end_s)
        s.answered_to_s = max(s.answered_to_s, event.t_end_s)
        fold_to = s.answered_to_s - FOLD_HORIZON_S
        if fold_to > s.code_since_s:
            self._credit_until(s, fold_to)
            s.code_since_s = fold_to  # no change can reach back beyond it any more
        s.windows += 1
        if s.code == UNDECIDED and event.language is None:
            # The first answer named no language: from its window on, the speech is unknown
            # (answered, and no language found), no longer undecided (not yet answered).
            since = max(event.t_start_s, s.code_since_s)
            self._credit_until(s, since)
            s.code, s.code_since_s = UNKNOWN, since
        if event.hop_s is not None:
            s.hop_sum_s += event.hop_s
            s.hop_n += 1
        if event.language != s.language:  # its change event follows with the better `since_s`
            s.since_s = None if event.language is None else event.t_start_s
        s.language, s.language_name, s.confidence = (
            event.language,
            event.language_name,
            event.confidence,
        )
        if event.lag_s is not None:
            s.lag_s = event.lag_s
        for score in event.top:
            s.prob_sums[score.code] += score.probability
        if s.seg_code is not None and (event.language or UNKNOWN) == s.seg_code:
            s.seg_conf_sum += event.confidence
            s.seg_conf_n += 1
        latency = event.latency_s
        s.latency.add(latency)
        s.latency_sum_s += latency
        s.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, latency)] += 1
        now = self._clock()
        s.recent.append((now, latency))
        while s.recent and s.recent[0][0] < now - RECENT_S:
            s.recent.popleft()

    def _close_segment(self, s: _Stream, end_s: float) -> None:
        if s.seg_code is not None and end_s > s.seg_start_s:
            s.segments.append(self._segment(s, end_s))
        s.seg_conf_sum, s.seg_conf_n = 0.0, 0

    def _segment(self, s: _Stream, end_s: float) -> Segment:
        assert s.seg_code is not None
        mean = s.seg_conf_sum / s.seg_conf_n if s.seg_conf_n else None
        return Segment(s.name, s.seg_start_s, end_s, s.seg_code, mean)

    def _feed(self, s: _Stream, event: FeedState) -> None:
        self._advance(s, event.t_s)
        if event.state == "disconnected":
            s.down_reason = short_reason(event.reason, (s.name, s.source))
        if event.state in ("disconnected", "retrying"):
            if s.down_since_wall is None:
                # Down since the audio stopped (a stall is seen only after stall_timeout; a
                # feed never up is down from its start), not since this report of it.
                s.down_since_wall = self._clock() - max(0.0, event.outage_s)
        else:
            if event.state == "recovered":
                s.reconnects += 1
            s.connected = True
            # The outage that ends here ("connected": a feed down from its start, or 0); at
            # least what the figures said of it while it went on, so their total never falls.
            s.outage_s += max(0.0, event.outage_s, self._down_for_s(s))
            s.down_since_wall = None
        s.feed_state, s.feed_reason = event.state, event.reason

    # -- readers -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return list(self._streams)

    def figures(self, stream: str | None = None) -> list[StreamFigures]:
        """Every stream's figures now (or the one named)."""
        with self._lock:
            now = self._clock()
            return [
                self._figures(s, now)
                for name, s in self._streams.items()
                if stream is None or name == stream
            ]

    def now(self, stream: str | None = None) -> list[StreamNow]:
        """Every stream's (or the named one's) current state, without the statistics."""
        with self._lock:
            return [
                StreamNow(
                    stream=s.name,
                    heard_s=s.heard_s,
                    answered_s=s.answered_to_s,
                    speech=s.open_since_s is not None,
                    silent_since_s=s.silent_since_s,
                    language=s.language,
                    language_name=s.language_name,
                    since_s=s.since_s,
                    feed_state=s.feed_state,
                    feed_reason=s.feed_reason,
                    feed_down_since_wall=s.down_since_wall,
                    ended=s.ended,
                )
                for name, s in self._streams.items()
                if stream is None or name == stream
            ]

    def _figures(self, s: _Stream, now: float) -> StreamFigures:
        recent = sorted(latency for wall, latency in s.recent if wall >= now - RECENT_S)
        span_s = min(RECENT_S, max(1.0, now - s.started_wall))
        speech_s = s.closed_s + self._open_s(s)
        cumulative, total = [], 0
        for count in s.buckets:
            total += count
            cumulative.append(total)
        return StreamFigures(
            stream=s.name,
            source=s.source,
            live=s.live,
            t_s=s.t_s,
            heard_s=s.heard_s,
            speech=s.open_since_s is not None,
            speech_s=speech_s,
            speech_ratio=speech_s / s.t_s if s.t_s > 0 else 0.0,
            silent_since_s=s.silent_since_s,
            language=s.language,
            language_name=s.language_name,
            confidence=s.confidence,
            since_s=s.since_s,
            windows=max(s.windows, s.status_windows),
            skipped_windows=s.skipped,
            overflow_s=s.overflow_s,
            lag_s=s.lag_s,
            latency_median_s=s.latency.quantile(50),
            latency_p95_s=s.latency.quantile(95),
            recent_latency_median_s=percentile(recent, 50) if recent else None,
            recent_latency_p95_s=percentile(recent, 95) if recent else None,
            recent_windows_per_s=len(recent) / span_s if s.windows else None,
            latency_buckets=tuple(cumulative),
            latency_sum_s=s.latency_sum_s,
            feed_state=s.feed_state,
            feed_down_since_wall=s.down_since_wall,
            ended=s.ended,
            reconnects=s.reconnects,
            outage_s=s.outage_s + self._down_for_s(s),
            feed_reason=s.feed_reason,
            alerts_active=tuple(s.alerts_active),
            alert_messages=tuple(s.alerts_active.values()),
            alerts_total=s.alerts_total,
        )

    def _down_for_s(self, s: _Stream) -> float:
        """The outage still going on (up to now: at the end, up to the stop)."""
        return 0.0 if s.down_since_wall is None else max(0.0, self._clock() - s.down_since_wall)

    @staticmethod
    def _open_s(s: _Stream) -> float:
        if s.open_since_s is None:
            return 0.0
        return max(0.0, s.t_s - s.open_since_s)

    def speech_by_language(self, stream: str) -> dict[str, float]:
        """Seconds of speech per code ("unknown", "undecided"), largest first, so far."""
        with self._lock:
            return self._by_language(self._streams[stream])

    @staticmethod
    def _by_language(s: _Stream) -> dict[str, float]:
        totals = defaultdict(float, s.by_language)
        for a, b in s.pending:
            totals[s.code] += b - a
        if s.open_since_s is not None and s.t_s > s.open_credited_to_s:
            totals[s.code] += s.t_s - s.open_credited_to_s
        return dict(sorted(((k, v) for k, v in totals.items() if v > 0), key=lambda kv: -kv[1]))

    def summaries(self, top: int = 5) -> tuple[StreamSummary, ...]:
        with self._lock:
            return tuple(self._summary(s, top) for s in self._streams.values())

    def _summary(self, s: _Stream, top: int) -> StreamSummary:
        median, p95 = s.latency.quantile(50), s.latency.quantile(95)
        means = sorted(s.prob_sums.items(), key=lambda kv: -kv[1])[:top]
        return StreamSummary(
            stream=s.name,
            source=s.source,
            duration_s=round(s.t_s, 3),
            speech_s=round(s.closed_s + self._open_s(s), 3),
            speech_s_by_language={k: round(v, 3) for k, v in self._by_language(s).items()},
            changes=s.changes,
            windows=s.windows,
            skipped_windows=s.skipped,
            overflow_s=round(s.overflow_s, 3),
            latency_median_s=None if median is None else round(median, 4),
            latency_p95_s=None if p95 is None else round(p95, 4),
            mean_probabilities=tuple(
                LanguageScore(code, language_name(code), round(total / max(1, s.windows), 6))
                for code, total in means
            ),
            hop_mean_s=round(s.hop_sum_s / s.hop_n, 3) if s.hop_n else None,
            outage_s=round(s.outage_s + self._down_for_s(s), 3),
            reconnects=s.reconnects,
            never_connected=bool(s.feed_state) and not s.connected,
            down_reason=s.down_reason,
            feed=bool(s.feed_state),
        )

    def segments(self) -> list[Segment]:
        """Every stream's kept segments, oldest first, the current one ending now."""
        with self._lock:
            found: list[Segment] = []
            for s in self._streams.values():
                found.extend(s.segments)
                if s.seg_code is not None and s.t_s > s.seg_start_s:
                    found.append(self._segment(s, s.t_s))
            return found
