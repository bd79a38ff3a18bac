"""AlertWatch: raises and clears per-stream alerts from the shared per-stream figures.

A sink placed right after the `StreamsReducer` on the event bus: after every event of a stream
it looks at that stream's figures, and on the bus's tick at every stream (a feed that is down
sends no events). What it finds it publishes as `StreamAlert` events, which the bus delivers to
every sink, so alerts reach the JSONL, the plain log, the live view, the metrics and the
`--on-alert` command alike.

Unexpected language and silence are measured in stream time (the audio's own clock, so a file
in fast mode alerts where its audio says so, not where its reader has got to): an unexpected
language on the model's clock (as far as it has answered), silence on the speech gate's. A feed
that is down is measured in wall time, since no audio arrives to measure it by.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .config import AlertSettings
from .events import ALERT_ENDED, Event, StreamAlert
from .languages import language_name
from .streams import StreamNow, StreamsReducer

UNEXPECTED = "unexpected-language"
SILENCE = "silence"
DOWN = "down"
KINDS = (UNEXPECTED, SILENCE, DOWN)


@dataclass
class _Active:
    onset: float  # stream time (or wall time for DOWN) the condition began
    language: str | None


class AlertWatch:
    def __init__(
        self,
        figures: StreamsReducer,
        publish: Callable[[Event], None],
        default: AlertSettings,
        per_stream: Mapping[str, AlertSettings] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._figures = figures
        self._publish = publish
        self._default = default
        self._per_stream = dict(per_stream or {})
        self._clock = clock
        self._active: dict[tuple[str, str], _Active] = {}

    def settings(self, stream: str) -> AlertSettings:
        return self._per_stream.get(stream, self._default)

    def handle(self, event: Event) -> None:
        stream = getattr(event, "stream", "")
        if stream and not isinstance(event, StreamAlert):
            for figures in self._figures.now(stream):
                self._check(figures)

    def tick(self) -> None:
        for figures in self._figures.now():
            self._check(figures)

    def close(self) -> None:
        pass

    def _check(self, f: StreamNow) -> None:
        if f.ended:
            self._clear_ended(f)
            return
        settings = self.settings(f.stream)
        if settings.expected_languages and settings.unexpected_after_s > 0:
            expected = {code.casefold() for code in settings.expected_languages}
            unexpected = f.language is not None and f.language.casefold() not in expected
            # The language is known as far as the model has answered: its clock, not the gate's.
            onset = f.since_s if f.since_s is not None else f.answered_s
            self._update(
                f, UNEXPECTED, unexpected, onset, f.answered_s, settings.unexpected_after_s
            )
        if settings.silence_after_s > 0:
            silent = not f.speech and f.silent_since_s is not None
            onset = f.silent_since_s if f.silent_since_s is not None else f.heard_s
            self._update(f, SILENCE, silent, onset, f.heard_s, settings.silence_after_s)
        if settings.down_after_s > 0:
            down = f.feed_down_since_wall is not None
            onset = f.feed_down_since_wall if f.feed_down_since_wall is not None else 0.0
            self._update(f, DOWN, down, onset, self._clock(), settings.down_after_s)

    def _clear_ended(self, f: StreamNow) -> None:
        """A stream that ended (its last answer in) holds no alert: nothing it still measures
        can end one, so each would read as active for ever (in the metrics, to Alertmanager)."""
        for kind in KINDS:
            active = self._active.pop((f.stream, kind), None)
            if active is None:
                continue
            t_s = f.answered_s if kind == UNEXPECTED else f.heard_s  # as `_update` says it
            lasted_s = max(0.0, (self._clock() if kind == DOWN else t_s) - active.onset)
            message = f"{ALERT_ENDED} ({kind} for {lasted_s:.0f} s)"
            alert = StreamAlert(
                f.stream, round(t_s, 3), kind, False, message, active.language, round(lasted_s, 3)
            )
            self._publish(alert)

    def _update(
        self, f: StreamNow, kind: str, holds: bool, onset: float, now: float, after_s: float
    ) -> None:
        """`now` and `onset` on the kind's clock; the event says `t_s` on that clock too (stream
        time for the audio's kinds, the gate's for a feed down)."""
        t_s = round(now if kind == UNEXPECTED else f.heard_s, 3)  # as the other events: to 1 ms
        key = (f.stream, kind)
        active = self._active.get(key)
        if holds and active is None and now - onset >= after_s:
            # Only an unexpected language names one; silence and a feed down have none.
            self._active[key] = _Active(onset, f.language if kind == UNEXPECTED else None)
            message = _raised(f, kind, now - onset, self.settings(f.stream))
            language = self._active[key].language
            self._publish(
                StreamAlert(f.stream, t_s, kind, True, message, language, round(now - onset, 3))
            )
        elif not holds and active is not None:
            del self._active[key]
            lasted_s = max(0.0, now - active.onset)
            self._publish(
                StreamAlert(
                    f.stream,
                    t_s,
                    kind,
                    False,
                    _recovered(kind, lasted_s),
                    active.language,
                    round(lasted_s, 3),
                )
            )


def _raised(f: StreamNow, kind: str, for_s: float, settings: AlertSettings) -> str:
    if kind == UNEXPECTED:
        expected = ", ".join(settings.expected_languages)
        name = language_name(f.language) if f.language else "unknown"
        return f"{name} ({f.language}) for {for_s:.0f} s; expected {expected}"
    if kind == SILENCE:
        return f"no speech for {for_s:.0f} s"
    why = f" ({f.feed_reason})" if f.feed_reason else ""
    return f"feed down for {for_s:.0f} s{why}"


def _recovered(kind: str, lasted_s: float) -> str:
    what = {UNEXPECTED: "an expected language again", SILENCE: "speech again", DOWN: "feed back"}
    return f"{what[kind]} after {lasted_s:.0f} s"
