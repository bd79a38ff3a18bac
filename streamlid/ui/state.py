"""ViewState: what the live view knows, built from events alone. No drawing, no terminal.

`handle()` runs on the event thread for every event, so it only updates a few fields under a
lock. `snapshot()` copies what a frame needs into frozen dataclasses; the renderer works on
that copy, on its own thread, while events keep arriving.

Two clocks meet here. The timeline, the "since" of a language and the gate state use stream
time (seconds of audio, carried by every event); rates, latency figures and how long a warning
stays on screen use wall time (`clock`, monotonic), because they describe the machine.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..events import (
    Event,
    FeedState,
    LanguageChange,
    LanguageScore,
    Level,
    Notice,
    Prediction,
    SpeechChange,
    Status,
    StreamEnded,
    StreamStarted,
    Summary,
)
from ..languages import language_name
from ..sinks import feed_state_text
from ..streams import StreamFigures, StreamsReducer

RECENT_LOSS_S = 10.0  # dropped audio or skipped windows warn for this long after they happen
NOTICE_SHOW_S = 10.0  # a warning Notice stays on screen this long
ERROR_SHOW_S = 60.0  # an error Notice stays on screen this long
LEVEL_STALE_S = 2.0  # no meter reading for this long: the meter shows no signal
BAR_ORDER_MARGIN = 0.015  # two bars swap places only when the lower one leads by this much
TIMELINE_BUCKETS_MAX = 480  # stream-time resolution of the timeline (60 s -> 0.25 s buckets)
TIMELINE_BUCKET_MIN_S = 0.25
HISTORY_NOTICES = 1000

# Timeline bucket values besides a language code.
SILENCE = ""
UNCLEAR = "?"  # speech, but no language named (not yet classified, or unknown)

# Colours for languages: distinct from each other, from red/yellow (warnings) and grey (silence).
PALETTE = (
    "dodger_blue1",
    "green3",
    "magenta",
    "dark_orange",
    "cyan",
    "medium_purple1",
    "spring_green1",
    "hot_pink",
    "gold3",
    "deep_sky_blue4",
    "chartreuse3",
    "orchid",
)
UNKNOWN_COLOUR = "grey62"


class ColourBook:
    """Gives each language a colour on first sight and keeps it, so bars, timeline and legend
    agree and the eye can follow a language. When the palette runs out, the colour of the
    language seen longest ago is reused."""

    def __init__(self, palette: tuple[str, ...] = PALETTE) -> None:
        self._palette = palette
        self._colours: dict[str, str] = {}
        self._seen: dict[str, int] = {}
        self._tick = 0

    def colour(self, code: str | None) -> str:
        if code is None or code in (SILENCE, UNCLEAR):
            return UNKNOWN_COLOUR
        self._tick += 1
        self._seen[code] = self._tick
        colour = self._colours.get(code)
        if colour is None:
            used = set(self._colours.values())
            free = [c for c in self._palette if c not in used]
            if free:
                colour = free[0]
            else:
                oldest = min(self._colours, key=lambda c: self._seen.get(c, 0))
                colour = self._colours.pop(oldest)
            self._colours[code] = colour
        return colour

    def peek(self, code: str) -> str:
        return self._colours.get(code, UNKNOWN_COLOUR)


@dataclass(frozen=True)
class Bar:
    code: str
    name: str
    probability: float
    colour: str


@dataclass(frozen=True)
class Alert:
    severity: str  # "warning" | "error"
    message: str


@dataclass(frozen=True)
class StreamSnapshot:
    name: str
    source: str
    live: bool
    model: str
    device: str
    dtype: str
    t_s: float  # newest stream time seen
    # now
    speech: bool
    identifying: bool  # speech, but no answer for it yet
    language: str | None
    language_name: str
    confidence: float
    language_colour: str
    since_s: float | None  # when the current language began (stream time)
    last_language_name: str | None  # for "no speech": what was heard last
    silent_for_s: float | None
    # top languages (smoothed), in stable order
    bars: tuple[Bar, ...]
    # timeline: `timeline_buckets` buckets of `bucket_s` from timeline_start_s; the values up to
    # now (a code, SILENCE or UNCLEAR), so len(timeline) < timeline_buckets until it is full
    timeline: tuple[str, ...]
    timeline_buckets: int
    timeline_start_s: float
    timeline_s: float
    bucket_s: float
    changes: tuple[tuple[float, str, str], ...]  # (since_s, code, colour) inside the timeline
    legend: tuple[tuple[str, str, str], ...]  # (code, name, colour) in order of appearance
    # input
    level_dbfs: float | None
    speech_prob: float | None  # the speech detector's latest probability (None: not known)
    # health
    windows: int
    windows_per_s: float | None
    latency_median_s: float | None
    latency_p95_s: float | None
    lag_s: float | None
    overflow_s: float
    skipped_windows: int
    warnings: tuple[Alert, ...]
    hop_s: float | None = None  # effective hop: speech between the last few answers
    ended_at_s: float | None = None  # the input ended here (a file read to its end)
    feed_down: bool = False  # a network feed or a microphone, down now


@dataclass(frozen=True)
class ViewSnapshot:
    streams: tuple[StreamSnapshot, ...]
    notices: tuple[Alert, ...]  # for every stream (Notice.stream == "")
    summary: Summary | None = None


def stable_order(previous: list[str], probs: dict[str, float], margin: float) -> list[str]:
    """Codes sorted by probability, except that neighbours only swap when the lower one leads
    by more than `margin`: a 31%/30% pair does not trade places on every refresh."""
    order = [c for c in previous if c in probs]
    order += sorted((c for c in probs if c not in order), key=lambda c: -probs[c])
    swapped = True
    while swapped:  # ends: every swap moves probability mass strictly forward
        swapped = False
        for i in range(len(order) - 1):
            a, b = order[i], order[i + 1]
            if probs[b] > probs[a] + margin:
                order[i], order[i + 1] = b, a
                swapped = True
    return order


@dataclass
class _Stream:
    name: str
    source: str = ""
    live: bool = False
    model: str = ""
    device: str = ""
    dtype: str = ""
    started_wall: float = 0.0
    t_s: float = 0.0
    origin_s: float = 0.0  # the timeline starts here (0, or where it was last reset)
    speech: bool = False
    speech_since_s: float | None = None
    speech_marked_to_s: float = 0.0
    answered_since_open: bool = False
    silent_since_s: float | None = None
    language: str | None = None
    language_name: str = "unknown"
    confidence: float = 0.0
    last_language_name: str | None = None
    smoothed: tuple[LanguageScore, ...] = ()
    bar_order: list[str] = field(default_factory=list)
    predicted_to_s: float = 0.0
    speech_buckets: set[int] = field(default_factory=set)
    codes: dict[int, str] = field(default_factory=dict)
    changes: list[tuple[float, str]] = field(default_factory=list)
    level_dbfs: float | None = None
    speech_prob: float | None = None
    level_wall: float = -math.inf
    hop_s: float | None = None  # effective hop, from the worker's status events
    overflow_s: float = 0.0
    skipped: int = 0
    losses: deque[tuple[float, float, int]] = field(default_factory=deque)  # (wall, s, windows)
    notices: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=20))
    feed_down: str | None = None  # a network feed's state while it is down
    ended_at_s: float | None = None


class ViewState:
    """Per-stream view model, fed by events (a Sink), read through `snapshot()`.

    The health figures (windows, rate, latency, lag, feed, alerts) are the run's
    `StreamsReducer`'s, shared with the summary and the other outputs when `figures` is given
    (then the bus feeds it before this view); without it the view folds its own."""

    def __init__(
        self,
        *,
        top: int = 5,
        timeline_s: float = 60.0,
        lag_warning_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        figures: StreamsReducer | None = None,
    ) -> None:
        self._own_figures = figures is None
        self.figures = StreamsReducer(clock=clock) if figures is None else figures
        self.top = top
        self.timeline_s = timeline_s
        self.bucket_s = max(TIMELINE_BUCKET_MIN_S, timeline_s / TIMELINE_BUCKETS_MAX)
        self.lag_warning_s = lag_warning_s
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._colours = ColourBook()
        self._notices: deque[tuple[float, str, str]] = deque(maxlen=20)
        # recent warnings and errors for the exit summary (bounded: runs last for days)
        self.history: deque[Notice] = deque(maxlen=HISTORY_NOTICES)
        self.notices_total = 0
        self.summary: Summary | None = None

    # -- events ------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if self._own_figures:
            self.figures.handle(event)
        with self._lock:
            now = self._clock()
            if isinstance(event, Summary):
                self.summary = event
                return
            if isinstance(event, Notice):
                self._notice(event, now)
                return
            s = self._stream(event.stream, now)
            if isinstance(event, Level):
                s.level_dbfs = event.level_dbfs
                s.speech_prob = event.speech_prob
                s.level_wall = now
                self._advance(s, event.t_s)
            elif isinstance(event, Prediction):
                self._prediction(s, event, now)
            elif isinstance(event, SpeechChange):
                self._speech(s, event)
            elif isinstance(event, LanguageChange):
                self._change(s, event)
            elif isinstance(event, Status):
                self._status(s, event, now)
            elif isinstance(event, FeedState):
                # While a feed is down its state heads the stream's warnings; gone once it is up.
                down = event.state in ("disconnected", "retrying")
                s.feed_down = f"feed {feed_state_text(event)}" if down else None
            elif isinstance(event, StreamEnded):
                self._advance(s, event.t_s)
                s.ended_at_s = event.t_s
            elif isinstance(event, StreamStarted):
                s.source, s.live, s.model = event.source, event.live, event.model
                s.device, s.dtype = event.device, event.dtype
                s.started_wall = now

    def close(self) -> None:
        pass

    def reset(self) -> None:
        """Forgets the current language, bars and timeline (the health figures stay)."""
        with self._lock:
            for s in self._streams.values():
                s.origin_s = s.t_s
                s.language, s.language_name, s.confidence = None, "unknown", 0.0
                s.last_language_name = None
                s.smoothed, s.bar_order = (), []
                s.speech_buckets.clear()
                s.codes.clear()
                s.changes.clear()
                s.answered_since_open = False
                s.predicted_to_s = s.t_s
                s.speech_marked_to_s = s.t_s
                if s.speech_since_s is not None:
                    s.speech_since_s = s.t_s

    def _stream(self, name: str, now: float) -> _Stream:
        s = self._streams.get(name)
        if s is None:
            s = self._streams[name] = _Stream(name, started_wall=now)
        return s

    def _buckets(self, a_s: float, b_s: float) -> range:
        """Indices of the buckets that [a_s, b_s) touches."""
        if b_s <= a_s:
            return range(0)
        return range(math.floor(a_s / self.bucket_s), math.ceil(b_s / self.bucket_s))

    def _advance(self, s: _Stream, t_s: float) -> None:
        """Moves the stream's clock on; an open speech segment grows with it."""
        if t_s > s.t_s:
            s.t_s = t_s
        if s.speech_since_s is not None and s.t_s > s.speech_marked_to_s:
            start = max(s.speech_since_s, s.speech_marked_to_s, s.origin_s)
            s.speech_buckets.update(self._buckets(start, s.t_s))
            s.speech_marked_to_s = s.t_s
        self._prune(s)

    def _prune(self, s: _Stream) -> None:
        if len(s.speech_buckets) + len(s.codes) < 4 * TIMELINE_BUCKETS_MAX:
            return
        first = math.floor((s.t_s - self.timeline_s) / self.bucket_s) - 1
        s.speech_buckets = {i for i in s.speech_buckets if i >= first}
        s.codes = {i: c for i, c in s.codes.items() if i >= first}
        keep_from = s.t_s - self.timeline_s
        s.changes = [c for c in s.changes if c[0] >= keep_from]

    def _speech(self, s: _Stream, event: SpeechChange) -> None:
        self._advance(s, event.t_s)
        if event.speech and s.speech_since_s is None:
            s.speech_since_s = event.t_s
            s.speech_marked_to_s = event.t_s
            s.answered_since_open = False
            s.silent_since_s = None
        elif not event.speech and s.speech_since_s is not None:
            start = max(s.speech_since_s, s.origin_s)
            s.speech_buckets.update(self._buckets(start, event.t_s))
            s.speech_since_s = None
            s.silent_since_s = event.t_s
            if s.language is not None:
                s.last_language_name = s.language_name
        s.speech = event.speech

    def _prediction(self, s: _Stream, event: Prediction, now: float) -> None:
        self._advance(s, event.t_end_s)
        start = max(event.t_start_s, s.predicted_to_s, s.origin_s)
        value = event.language or UNCLEAR
        for i in self._buckets(start, event.t_end_s):
            if i in s.speech_buckets:
                s.codes[i] = value
        s.predicted_to_s = max(s.predicted_to_s, event.t_end_s)
        if event.language is not None:
            self._colours.colour(event.language)
        s.language, s.language_name, s.confidence = (
            event.language,
            event.language_name,
            event.confidence,
        )
        s.answered_since_open = True
        s.smoothed = event.smoothed[: self.top]
        probs = {score.code: score.probability for score in s.smoothed}
        s.bar_order = stable_order(s.bar_order, probs, BAR_ORDER_MARGIN)
        for code in s.bar_order:
            self._colours.colour(code)

    def _change(self, s: _Stream, event: LanguageChange) -> None:
        self._advance(s, event.t_s)
        since = max(event.since_s, s.origin_s)
        value = event.language or UNCLEAR
        # The decision comes late; the speech since `since_s` was this language all along.
        for i in self._buckets(since, event.t_s):
            if i in s.speech_buckets:
                s.codes[i] = value
        if event.language is not None:
            s.changes.append((since, event.language))
            self._colours.colour(event.language)

    def _status(self, s: _Stream, event: Status, now: float) -> None:
        self._advance(s, event.t_s)
        # Only what the view adds to the figures: the effective hop, and when losses happened
        # (to warn for a while).
        if event.hop_s is not None:
            s.hop_s = event.hop_s
        lost_s = event.overflow_s - s.overflow_s
        skipped = event.skipped_windows - s.skipped
        if lost_s > 1e-9 or skipped > 0:
            s.losses.append((now, max(0.0, lost_s), max(0, skipped)))
        s.overflow_s = max(s.overflow_s, event.overflow_s)
        s.skipped = max(s.skipped, event.skipped_windows)

    def _notice(self, event: Notice, now: float) -> None:
        if event.severity not in ("warning", "error"):
            return
        self.history.append(event)
        self.notices_total += 1
        entry = (now, event.severity, event.message)
        if event.stream and event.stream in self._streams:
            self._streams[event.stream].notices.append(entry)
        else:
            self._notices.append(entry)

    # -- snapshot ----------------------------------------------------------------------------

    def snapshot(self) -> ViewSnapshot:
        with self._lock:
            now = self._clock()
            streams = tuple(self._snapshot_stream(s, now) for s in self._streams.values())
            notices = _visible(self._notices, now)
            return ViewSnapshot(streams, notices, self.summary)

    def _snapshot_stream(self, s: _Stream, now: float) -> StreamSnapshot:
        # Timeline: anchored at its origin until full, then scrolling with "now" at the right.
        end_s = max(s.t_s, s.origin_s + self.timeline_s)
        start_s = end_s - self.timeline_s
        first = math.floor(start_s / self.bucket_s)
        n = round(self.timeline_s / self.bucket_s)
        filled = min(n, max(0, math.ceil(s.t_s / self.bucket_s) - first))
        timeline = [
            s.codes.get(i, UNCLEAR) if i in s.speech_buckets else SILENCE
            for i in range(first, first + filled)
        ]
        legend: dict[str, None] = {}
        for value in timeline:
            if value not in (SILENCE, UNCLEAR):
                legend.setdefault(value, None)
        changes = tuple(  # (the origin plus 60 s, minus 60 s, may miss the origin by an ulp)
            (t, code, self._colours.peek(code))
            for t, code in s.changes
            if t >= start_s - self.bucket_s / 2
        )

        found = self.figures.figures(s.name)
        figures = found[0] if found else None
        colours = self._colours
        bars = []
        probs = {score.code: score for score in s.smoothed}
        for code in s.bar_order:
            score = probs[code]
            bars.append(Bar(code, score.name, score.probability, colours.peek(code)))
        return StreamSnapshot(
            name=s.name,
            source=s.source,
            live=s.live,
            model=s.model,
            device=s.device,
            dtype=s.dtype,
            t_s=s.t_s,
            speech=s.speech,
            identifying=s.speech and not s.answered_since_open and s.language is None,
            language=s.language,
            language_name=s.language_name,
            confidence=s.confidence,
            language_colour=colours.peek(s.language) if s.language else UNKNOWN_COLOUR,
            # the run's figures: a reset of the view does not move when the language began
            since_s=figures.since_s if figures else None,
            last_language_name=s.last_language_name,
            silent_for_s=None if s.silent_since_s is None else s.t_s - s.silent_since_s,
            bars=tuple(bars),
            timeline=tuple(timeline),
            timeline_buckets=n,
            timeline_start_s=first * self.bucket_s,
            timeline_s=self.timeline_s,
            bucket_s=self.bucket_s,
            changes=changes,
            legend=tuple((code, _name_of(s, code), colours.peek(code)) for code in legend),
            level_dbfs=s.level_dbfs if now - s.level_wall <= LEVEL_STALE_S else None,
            speech_prob=s.speech_prob if now - s.level_wall <= LEVEL_STALE_S else None,
            windows=figures.windows if figures else 0,
            windows_per_s=figures.recent_windows_per_s if figures else None,
            latency_median_s=figures.recent_latency_median_s if figures else None,
            latency_p95_s=figures.recent_latency_p95_s if figures else None,
            lag_s=figures.lag_s if figures else None,
            overflow_s=s.overflow_s,
            skipped_windows=s.skipped,
            warnings=self._warnings(s, figures, now),
            hop_s=s.hop_s,
            ended_at_s=s.ended_at_s,
            feed_down=s.feed_down is not None,
        )

    def _warnings(self, s: _Stream, figures: StreamFigures | None, now: float) -> tuple[Alert, ...]:
        """Errors and active alerts first, then what the figures say (feed down, behind,
        dropping), then recent notices."""
        notices = _visible(s.notices, now)
        found = [w for w in notices if w.severity == "error"]
        lag_s = figures.lag_s if figures else None
        if s.feed_down:
            found.insert(0, Alert("error", s.feed_down))
        if figures is not None:
            found += [Alert("error", f"alert: {message}") for message in figures.alert_messages]
        if lag_s is not None and lag_s > self.lag_warning_s:
            found.append(Alert("warning", f"falling behind: answers come {lag_s:.1f} s after live"))
        recent = [loss for loss in s.losses if loss[0] >= now - RECENT_LOSS_S]
        while s.losses and s.losses[0][0] < now - RECENT_LOSS_S:
            s.losses.popleft()
        lost_s = sum(loss[1] for loss in recent)
        skipped = sum(loss[2] for loss in recent)
        if lost_s > 0:
            found.append(Alert("warning", f"audio dropped: {lost_s:.1f} s lost in the last 10 s"))
        if skipped:
            found.append(
                Alert(
                    "warning",
                    f"model too slow: {skipped} window{'s' if skipped != 1 else ''} "
                    "skipped in the last 10 s",
                )
            )
        for w in notices:
            # The front end's own "audio dropped" notices repeat the figure above.
            if w.severity == "error" or (lost_s > 0 and w.message.startswith("audio dropped")):
                continue
            found.append(w)
        return tuple(found)


def _visible(entries: deque[tuple[float, str, str]], now: float) -> tuple[Alert, ...]:
    """Notices still on screen, newest first, each message once."""
    shown: dict[tuple[str, str], None] = {}
    for wall, severity, message in reversed(entries):
        keep_s = ERROR_SHOW_S if severity == "error" else NOTICE_SHOW_S
        if now - wall <= keep_s:
            shown.setdefault((severity, message), None)
    return tuple(Alert(severity, message) for severity, message in shown)


def _name_of(s: _Stream, code: str) -> str:
    for score in s.smoothed:
        if score.code == code:
            return score.name
    if code == s.language:
        return s.language_name
    return language_name(code)
