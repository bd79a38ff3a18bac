"""Immutable events: the only thing views and sinks ever see of the pipeline.

Every event names its stream and carries stream time in seconds (time since the stream's first
sample, so a file's events line up with the file and a microphone's with the session).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LanguageScore:
    code: str
    name: str
    probability: float


@dataclass(frozen=True)
class StreamStarted:
    """A stream is open and its audio is flowing; says what it is and what listens to it."""

    stream: str
    source: str
    sample_rate_hz: int
    live: bool
    model: str
    device: str
    dtype: str


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one window, and the smoothed state after it."""

    stream: str
    t_start_s: float
    t_end_s: float
    top: tuple[LanguageScore, ...]
    smoothed: tuple[LanguageScore, ...]
    language: str | None  # current decision: ISO 639-3 code, or None for "unknown"
    language_name: str
    confidence: float  # smoothed probability of `language` (0 when unknown)
    latency_s: float  # wall time from the window's last sample being read to this answer
    lag_s: float | None  # how far behind live the answer is (live sources only)
    hop_s: float | None = None  # speech since the previous window of its segment (None: first)
    speech_prob: float = 1.0  # the speech detector's mean probability over the window


@dataclass(frozen=True)
class LanguageChange:
    """The current language switched (to None: the evidence became too weak to name one)."""

    stream: str
    t_s: float  # stream time at which the change was decided
    since_s: float  # best estimate of when the new language started
    previous: str | None
    language: str | None
    language_name: str
    confidence: float


@dataclass(frozen=True)
class SpeechChange:
    """The speech gate opened (speech) or closed (silence)."""

    stream: str
    t_s: float
    speech: bool


@dataclass(frozen=True)
class StreamEnded:
    """The stream's input ended (a file read to its end, a feed given up on): no audio after
    `t_s`, and the model has answered its last windows. Not sent when the run is stopped."""

    stream: str
    t_s: float


@dataclass(frozen=True)
class Level:
    """Input level for meters; frequent and transient, so sinks may ignore it."""

    stream: str
    t_s: float
    level_dbfs: float
    speech: bool
    speech_prob: float | None = None  # the speech detector's latest probability


@dataclass(frozen=True)
class Status:
    """Health of one stream: lag, lost audio and skipped windows (sent when they change and
    about once a second)."""

    stream: str
    t_s: float
    lag_s: float | None
    overflow_s: float  # audio lost because the ring buffer was full
    skipped_windows: int  # windows dropped because the model could not keep up
    windows: int  # windows classified so far
    hop_s: float | None = None  # effective hop: mean speech between the last few windows


@dataclass(frozen=True)
class Notice:
    """Something a person should read: a warning or an error on one stream (or "" for all)."""

    stream: str
    t_s: float
    severity: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class FeedState:
    """A network feed's connection changed: "connected" (first audio; after `outage_s`
    seconds down when its first attempts failed), "disconnected" (it dropped, ended or stalled:
    `reason`), "retrying" (attempt number `attempt`), "recovered" (audio again, after
    `outage_s` seconds without)."""

    stream: str
    t_s: float
    state: str  # "connected" | "disconnected" | "retrying" | "recovered"
    reason: str
    attempt: int
    outage_s: float  # seconds without audio so far (recovered, connected: the whole outage)


ALERT_ENDED = "stream ended"  # how a StreamAlert's message begins when the stream's end cleared it


@dataclass(frozen=True)
class StreamAlert:
    """An alert condition began (`active`) or ended (recovered) on one stream.

    kind: "unexpected-language" (a language outside the expected ones for longer than allowed),
    "silence" (no speech for longer than allowed) or "down" (the feed down for longer than
    allowed). `duration_s`: how long the condition had lasted when this was sent."""

    stream: str
    t_s: float
    kind: str
    active: bool
    message: str
    language: str | None = None  # unexpected-language: the language heard
    duration_s: float = 0.0


@dataclass(frozen=True)
class StreamSummary:
    stream: str
    source: str
    duration_s: float
    speech_s: float
    # code -> seconds; "unknown" while no language was named, "undecided" before the first answer
    speech_s_by_language: dict[str, float]
    changes: int
    windows: int
    skipped_windows: int
    overflow_s: float
    latency_median_s: float | None
    latency_p95_s: float | None
    mean_probabilities: tuple[LanguageScore, ...]  # top-k of the mean window probabilities
    hop_mean_s: float | None = None  # effective hop: mean speech between classified windows
    outage_s: float = 0.0  # network feeds: seconds without audio between drops and recoveries
    reconnects: int = 0  # network feeds: recoveries after a drop or stall
    never_connected: bool = False  # network feeds: down from the start, no audio ever came
    down_reason: str = ""  # network feeds: why it was last down ("" if it never was)
    feed: bool = False  # a network feed or a microphone (it can drop); not a file or stdin


@dataclass(frozen=True)
class Summary:
    """Sent once, last, when the engine stops (end of input, Ctrl-C or error)."""

    streams: tuple[StreamSummary, ...]
    wall_s: float
    reason: str  # "end of input" | "interrupted" | "error: ..."
    model: str = ""
    device: str = ""
    dtype: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


Event = (
    StreamStarted
    | Prediction
    | LanguageChange
    | SpeechChange
    | StreamEnded
    | Level
    | Status
    | Notice
    | FeedState
    | StreamAlert
    | Summary
)

EVENT_TYPES: dict[type, str] = {
    StreamStarted: "started",
    Prediction: "prediction",
    LanguageChange: "change",
    SpeechChange: "speech",
    StreamEnded: "ended",
    Level: "level",
    Status: "status",
    Notice: "notice",
    FeedState: "feed",
    StreamAlert: "alert",
    Summary: "summary",
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a leading "type" key (the JSONL schema in the README)."""
    return {"type": EVENT_TYPES[type(event)], **asdict(event)}
