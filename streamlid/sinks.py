"""Sinks that write events out: JSON Lines for machines, plain lines for logs and pipes."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from .errors import ConfigError
from .events import (
    Event,
    LanguageChange,
    Level,
    Notice,
    Prediction,
    StreamStarted,
    Summary,
    event_to_dict,
)


def _compact(value: Any) -> Any:
    """Rounds floats to 4 decimals: enough for seconds and probabilities, half the bytes."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    return value


class JsonlSink:
    """One JSON object per line, flushed per event so a killed run leaves whole lines only.

    Level events (meter readings, ten a second) are left out: they describe the display, not
    the audio's language."""

    def __init__(self, target: str) -> None:
        self.target = target
        if target == "-":
            self._out: IO[str] = sys.stdout
            self._owns = False
        else:
            try:
                self._out = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise ConfigError(
                    f"Cannot write --jsonl file {target!r} ({exc.strerror}); check the folder "
                    "exists and is writable."
                ) from None
            self._owns = True
        self.lines = 0

    def handle(self, event: Event) -> None:
        if isinstance(event, Level):
            return
        self._out.write(json.dumps(_compact(event_to_dict(event)), ensure_ascii=False) + "\n")
        self._out.flush()
        self.lines += 1

    def close(self) -> None:
        self._out.flush()
        if self._owns:
            self._out.close()


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


class PlainPrinter:
    """Human-readable lines, one per answer: for pipes, CI logs and `--ui plain`."""

    def __init__(self, out: IO[str] | None = None, show_predictions: bool = True) -> None:
        self._out = out or sys.stdout
        self._show_predictions = show_predictions

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def handle(self, event: Event) -> None:
        if isinstance(event, StreamStarted):
            mode = "live" if event.live else "as fast as the model allows"
            self._print(
                f"[{event.stream}] {event.source} ({event.sample_rate_hz} Hz, {mode}); "
                f"model {event.model} on {event.device}/{event.dtype}"
            )
        elif isinstance(event, Prediction) and self._show_predictions:
            heard = " · ".join(f"{s.code} {_pct(s.probability)}" for s in event.top[:3])
            now = (
                f"{event.language_name} ({event.language}) {_pct(event.confidence)}"
                if event.language
                else "unknown"
            )
            self._print(
                f"[{event.stream}] {event.t_start_s:7.1f}-{event.t_end_s:7.1f}s  "
                f"now: {now:<28} window: {heard}"
            )
        elif isinstance(event, LanguageChange):
            before = event.previous or "unknown"
            after = f"{event.language_name} ({event.language})" if event.language else "unknown"
            self._print(
                f"[{event.stream}] {event.t_s:7.1f}s  language: {before} -> {after} "
                f"(since {event.since_s:.1f}s)"
            )
        elif isinstance(event, Notice):
            where = f"[{event.stream}] " if event.stream else ""
            self._print(f"{where}{event.severity}: {event.message}")
        elif isinstance(event, Summary):
            for line in summary_lines(event):
                self._print(line)

    def close(self) -> None:
        self._out.flush()


def summary_lines(summary: Summary) -> list[str]:
    lines = [f"Summary ({summary.reason}, {summary.wall_s:.1f} s wall time)"]
    for s in summary.streams:
        lines.append(
            f"  {s.stream}: {s.duration_s:.1f} s audio, {s.speech_s:.1f} s speech, "
            f"{s.windows} windows, {s.changes} changes"
        )
        for code, seconds in s.speech_s_by_language.items():
            lines.append(f"    {code:<8} {seconds:7.1f} s")
        if s.latency_median_s is not None:
            lines.append(
                f"    latency median {1000 * s.latency_median_s:.0f} ms, "
                f"p95 {1000 * (s.latency_p95_s or 0):.0f} ms"
            )
        if s.hop_mean_s is not None:
            lines.append(f"    {s.windows} windows, hop {s.hop_mean_s:.2f} s on average")
        if s.skipped_windows or s.overflow_s:
            lines.append(
                f"    skipped {s.skipped_windows} windows, lost {s.overflow_s:.1f} s of audio"
            )
    return lines
