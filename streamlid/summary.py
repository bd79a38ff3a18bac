"""SummaryBuilder: the end-of-run summary, built from the same events every sink sees.

Speech time per language comes from the speech gate's segments and the language changes: each
change carries `since_s`, the estimated start of the new language, so the speech heard before
a language was (re)named is credited to it rather than to "unknown".
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .events import (
    Event,
    FeedState,
    LanguageChange,
    LanguageScore,
    Prediction,
    SpeechChange,
    Status,
    StreamStarted,
    StreamSummary,
)
from .languages import language_name

UNKNOWN = "unknown"


@dataclass
class _StreamLog:
    source: str = ""
    speech: list[tuple[float, float]] = field(default_factory=list)  # closed segments
    open_since: float | None = None
    changes: list[tuple[float, str]] = field(default_factory=list)  # (since_s, code)
    latencies: list[float] = field(default_factory=list)
    hops: list[float] = field(default_factory=list)  # each window's own hop (not the first)
    prob_sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    windows: int = 0
    skipped: int = 0
    overflow_s: float = 0.0
    end_s: float = 0.0
    outage_s: float = 0.0  # closed outages
    down_for_s: float = 0.0  # the outage still going on at the end (0 when the feed is up)
    reconnects: int = 0


class SummaryBuilder:
    """A sink: feed it events, then call `build()`."""

    def __init__(self, top: int = 5) -> None:
        self._top = top
        self._streams: dict[str, _StreamLog] = {}

    def _log(self, stream: str) -> _StreamLog:
        return self._streams.setdefault(stream, _StreamLog())

    def handle(self, event: Event) -> None:
        if isinstance(event, StreamStarted):
            self._log(event.stream).source = event.source
        elif isinstance(event, SpeechChange):
            log = self._log(event.stream)
            log.end_s = max(log.end_s, event.t_s)
            if event.speech and log.open_since is None:
                log.open_since = event.t_s
            elif not event.speech and log.open_since is not None:
                log.speech.append((log.open_since, event.t_s))
                log.open_since = None
        elif isinstance(event, LanguageChange):
            log = self._log(event.stream)
            log.changes.append((event.since_s, event.language or UNKNOWN))
        elif isinstance(event, Prediction):
            log = self._log(event.stream)
            log.windows += 1
            log.end_s = max(log.end_s, event.t_end_s)
            log.latencies.append(event.latency_s)
            if event.hop_s is not None:
                log.hops.append(event.hop_s)
            for score in event.top:
                log.prob_sums[score.code] += score.probability
        elif isinstance(event, FeedState):
            log = self._log(event.stream)
            if event.state == "recovered":
                log.outage_s += event.outage_s
                log.reconnects += 1
                log.down_for_s = 0.0
            elif event.state in ("disconnected", "retrying"):
                log.down_for_s = event.outage_s
        elif isinstance(event, Status):
            log = self._log(event.stream)
            log.skipped = max(log.skipped, event.skipped_windows)
            log.overflow_s = max(log.overflow_s, event.overflow_s)
            log.end_s = max(log.end_s, event.t_s)

    def close(self) -> None:
        pass

    def build(self) -> tuple[StreamSummary, ...]:
        return tuple(self._summarise(name, log) for name, log in self._streams.items())

    def _summarise(self, name: str, log: _StreamLog) -> StreamSummary:
        segments = list(log.speech)
        if log.open_since is not None:
            segments.append((log.open_since, max(log.end_s, log.open_since)))
        by_language = _speech_by_language(segments, log.changes)
        latencies = np.array(log.latencies) if log.latencies else None
        means = sorted(log.prob_sums.items(), key=lambda kv: -kv[1])[: self._top]
        return StreamSummary(
            stream=name,
            source=log.source,
            duration_s=round(log.end_s, 3),
            speech_s=round(sum(b - a for a, b in segments), 3),
            speech_s_by_language={k: round(v, 3) for k, v in by_language.items()},
            changes=len(log.changes),
            windows=log.windows,
            skipped_windows=log.skipped,
            overflow_s=round(log.overflow_s, 3),
            latency_median_s=None if latencies is None else round(float(np.median(latencies)), 4),
            latency_p95_s=(
                None if latencies is None else round(float(np.percentile(latencies, 95)), 4)
            ),
            mean_probabilities=tuple(
                LanguageScore(code, language_name(code), round(total / max(1, log.windows), 6))
                for code, total in means
            ),
            hop_mean_s=round(float(np.mean(log.hops)), 3) if log.hops else None,
            outage_s=round(log.outage_s + log.down_for_s, 3),
            reconnects=log.reconnects,
        )


def _speech_by_language(
    segments: list[tuple[float, float]], changes: list[tuple[float, str]]
) -> dict[str, float]:
    """Splits speech segments at the language changes and adds up each language's share."""
    # Changes arrive in decision order; a later change cannot take effect before an earlier one.
    starts: list[float] = []
    codes: list[str] = []
    for since_s, code in changes:
        since_s = max(since_s, starts[-1]) if starts else since_s
        starts.append(since_s)
        codes.append(code)
    totals: dict[str, float] = defaultdict(float)
    for a, b in segments:
        cut = a
        while cut < b:
            i = bisect.bisect_right(starts, cut) - 1
            code = codes[i] if i >= 0 else (codes[0] if codes else UNKNOWN)
            nxt = starts[i + 1] if i + 1 < len(starts) else b
            end = min(b, nxt)
            totals[code] += end - cut
            cut = end
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
