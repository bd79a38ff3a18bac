"""IngestShard: a Ray actor that runs the normal per-feed pipeline (sources, ring, gate,
windows, smoothing: streamlid's own Engine) for its share of the feeds, with the model behind
a RemoteModel, and hands its events to the driver through a bounded outbox.

The driver pulls (`take`); the outbox is bounded, so an actor whose driver falls behind slows
its own engine (meters are dropped first), never grows without bound. An actor that dies is
restarted by Ray (`max_restarts`); the driver then calls `start` again with where each feed had
got to, and files resume from there.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..bus import enqueue
from ..config import AlertSettings, Config, feed_settings
from ..errors import StreamlidError
from ..events import Event, Summary
from .remote import RemoteModel
from .serving import model_handle

OUTBOX_EVENTS = 4096
FILE_TIMEOUT_S = 120.0  # files in fast mode wait this long for an answer; live: --max-lag


@dataclass(frozen=True)
class FeedSpec:
    """One feed of a shard: the source spec, its [[streams]] name and its alert settings."""

    spec: str
    name: str | None = None
    alerts: AlertSettings | None = None
    track: int | None = None  # None: the run's --track


class Outbox:
    """The engine's one sink in an actor: a bounded queue the driver empties."""

    def __init__(self, capacity: int = OUTBOX_EVENTS) -> None:
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=capacity)
        self.dropped_levels = 0

    def handle(self, event: Event) -> None:
        # Other events wait for the driver to take some: the engine slows down, nothing is
        # dropped. (A driver gone for good kills this actor.)
        if not enqueue(self._queue, event):
            self.dropped_levels += 1

    def close(self) -> None:
        pass  # the engine closes its sinks after the summary; the driver may still take

    def take(self, max_n: int, wait_s: float) -> list[Event]:
        events: list[Event] = []
        try:
            events.append(self._queue.get(timeout=wait_s))
            while len(events) < max_n:
                events.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return events

    def empty(self) -> bool:
        return self._queue.empty()


class IngestShard:
    """The actor's class (driver.py wraps it with `ray.remote`); its methods are called by
    the driver, a few at a time (a threaded actor), never by the pipeline itself."""

    def __init__(self, config: Config, feeds: Sequence[FeedSpec], shard_n: int) -> None:
        self._config = config
        self._feeds = list(feeds)
        self.shard_n = shard_n
        self._engine: Any = None
        self._model: RemoteModel | None = None
        self._outbox = Outbox()
        self._names: list[str] = []

    def start(self, resume_s: dict[str, float]) -> tuple[list[str], str | None]:
        """Opens the feeds and starts the engine. `resume_s`: stream time each feed (by name)
        had reached before this actor was restarted; files seek there. Returns the feed names,
        and a one-line error instead when a feed cannot be opened (nothing then runs)."""
        from ..audio.files import SoundFileSource
        from ..audio.open import open_source
        from ..engine import Engine, unique_names

        if self._engine is not None:
            return self._names, None
        config = self._config
        try:
            sources = []
            settings = feed_settings(config)
            for feed in self._feeds:
                track = config.track if feed.track is None else feed.track
                source = open_source(
                    feed.spec, realtime=config.realtime, feed=settings, track=track
                )
                if feed.name is not None:
                    source.name = feed.name
                sources.append(source)
        except StreamlidError as exc:
            return [], str(exc)
        names = unique_names(sources)
        alerts = {}
        for name, feed, source in zip(names, self._feeds, sources, strict=True):
            if isinstance(source, SoundFileSource) and resume_s.get(name, 0.0) > 0:
                source.start_at(resume_s[name])
            if feed.alerts is not None:
                alerts[name] = feed.alerts
        handle = model_handle()
        labels = handle.labels.remote().result()
        info = handle.info.remote().result()
        live = any(source.live for source in sources)
        self._model = RemoteModel(
            handle, labels, timeout_s=config.max_lag if live else FILE_TIMEOUT_S
        )
        self._engine = Engine(config, sources, self._model, [self._outbox], info, alerts=alerts)
        self._names = list(self._engine.streams)
        self._engine.start()
        return self._names, None

    def take(self, max_n: int = 512, wait_s: float = 0.5) -> tuple[list[Event], bool]:
        """Events so far (waits up to `wait_s` for the first), and whether the shard is done:
        its engine finished and every event handed over. The engine's own Summary stays here:
        the driver sums up every feed itself."""
        events = [e for e in self._outbox.take(max_n, wait_s) if not isinstance(e, Summary)]
        done = self._engine is None or (self._engine.wait(0.0) and self._outbox.empty())
        return events, done

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.stop()

    def reset_smoothing(self) -> None:
        if self._engine is not None:
            self._engine.reset_smoothing()

    def load(self) -> dict[str, Any]:
        """For `streamlid cluster status`: feeds, queue depth, answers and failures."""
        import ray

        counts = self._model.counts if self._model is not None else None
        return {
            "shard": self.shard_n,
            "feeds": self._names or [f.name or f.spec for f in self._feeds],
            "queued_windows": 0 if self._engine is None else self._engine.queued_windows,
            "answered": 0 if counts is None else counts.answered_n,
            "timed_out": 0 if counts is None else counts.timed_out_n,
            "failed": 0 if counts is None else counts.failed_n,
            "retried": 0 if counts is None else counts.retried_n,
            "latency_p50_s": None if self._model is None else self._model.latency_s(0.5),
            "latency_p95_s": None if self._model is None else self._model.latency_s(0.95),
            "node": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "running": self._engine is not None and self._engine.running,
            "dropped_levels": self._outbox.dropped_levels,
        }
