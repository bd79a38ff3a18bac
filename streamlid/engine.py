"""Engine: owns every thread and queue of a run, and its one stop path.

    source threads -> RingBuffer -> frontend threads -> WindowQueues -> worker -> EventBus -> sinks

`start()` starts them; `stop()` (Ctrl-C, SIGTERM, a fatal error) asks all of them to finish;
end of input finishes them naturally. Either way `wait()` joins them, publishes the Summary
last, and closes the sinks so every file is flushed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from .audio.ring import RingBuffer
from .audio.source import Source
from .bus import EventBus, Sink
from .config import Config
from .events import Event, Notice, StreamStarted, Summary
from .frontend import StreamFrontend
from .smoothing import Smoother, SmootherSettings
from .stream import StreamState
from .summary import SummaryBuilder
from .windowqueue import WindowQueues
from .worker import Model, Worker

log = logging.getLogger(__name__)
JOIN_TIMEOUT_S = 2.0
FILE_QUEUE_WINDOWS = 16  # a file stream may run this far ahead of the model


def unique_names(sources: Sequence[Source]) -> list[str]:
    """Stream names as sources call themselves, made unique ("a.wav", "a.wav#2")."""
    names: list[str] = []
    for source in sources:
        name, n = source.name, 1
        while name in names:
            n += 1
            name = f"{source.name}#{n}"
        names.append(name)
    return names


class Engine:
    def __init__(
        self,
        config: Config,
        sources: Sequence[Source],
        model: Model,
        sinks: Sequence[Sink],
        model_info: tuple[str, str, str] = ("", "", ""),
    ) -> None:
        if not sources:
            raise ValueError("an engine needs at least one source")
        self.config = config
        self._model_info = model_info  # (model, device, dtype) for events
        self._stop = threading.Event()
        self._stop_reason: str | None = None
        self._summary_builder = SummaryBuilder(top=config.top)
        self._bus = EventBus([self._summary_builder, *sinks])
        self._queues = WindowQueues()
        self.errors: list[str] = []
        self.summary: Summary | None = None
        self._done = threading.Event()
        self._started_at = 0.0
        self._lock = threading.Lock()

        settings = SmootherSettings(
            time_constant_s=config.smoothing,
            min_confidence=config.min_confidence,
            min_margin=config.min_margin,
            min_dwell_s=config.min_dwell,
        )
        self.streams: dict[str, StreamState] = {}
        self._frontends: list[StreamFrontend] = []
        # A live stream's front end holds its next window until the model is ready, so its
        # queue rarely holds more than one; the bound is for flushed utterance ends.
        live_capacity = max(1, round(config.max_lag / config.hop))
        for name, source in zip(unique_names(sources), sources, strict=True):
            source.name = name
            ring = RingBuffer(round(config.ring_seconds * source.sample_rate_hz))
            state = StreamState(name, source, ring, Smoother(len(model.labels), settings))
            self.streams[name] = state
            self._queues.add_stream(
                name, live_capacity if source.live else FILE_QUEUE_WINDOWS, source.live
            )
            self._frontends.append(
                StreamFrontend(state, config, self._queues, self.publish, self._stop)
            )
        self._worker = Worker(
            model,
            self.streams,
            self._queues,
            config,
            self.publish,
            self._stop,
            on_error=self._fail,
            on_exit=self._finish,
        )

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._bus.start()
        model, device, dtype = self._model_info
        for state in self.streams.values():
            source = state.source
            self.publish(
                StreamStarted(
                    state.name,
                    source.description,
                    source.sample_rate_hz,
                    source.live,
                    model,
                    device,
                    dtype,
                )
            )
        # The worker before the threads it finishes: once it runs, any stop ends cleanly.
        self._worker.start()
        for frontend in self._frontends:
            frontend.start()
        for state in self.streams.values():
            state.source.start(state.ring, self._source_notice(state.name))

    def stop(self, reason: str = "interrupted") -> None:
        """Asks every thread to finish; safe to call from any thread, any number of times."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
        for state in self.streams.values():
            state.source.stop()
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the run is over: threads joined, Summary published, sinks closed.

        The worker thread does the finishing itself, as its last act, so a Ctrl-C that lands
        in the caller's wait can interrupt only the waiting, never the summary."""
        return self._done.wait(timeout_s)

    def run(self) -> Summary:
        """Start, wait for the end of input (or an error), and return the summary."""
        self.start()
        try:
            self.wait()
        finally:
            if not self._done.is_set():
                self.stop()
                self.wait()
        assert self.summary is not None
        return self.summary

    def reset_smoothing(self) -> None:
        """Starts every stream's smoothing afresh (the `r` key). Safe from any thread: the
        worker does it itself, between batches, so no window is half-smoothed."""
        self._worker.reset_requested.set()

    @property
    def queued_windows(self) -> int:
        """Windows waiting for the model, all streams together (bounded by design)."""
        return self._queues.pending()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    # -- internals --------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        self._bus.publish(event)

    def _source_notice(self, stream: str):
        def notice(severity: str, message: str) -> None:
            if severity == "error":
                self.errors.append(message)
            self.publish(Notice(stream, self.streams[stream].live_edge_s(), severity, message))

        return notice

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.publish(Notice("", 0.0, "error", message))
        self.stop(f"error: {message}")

    def _finish(self) -> None:
        """Runs on the worker thread once it has classified its last window."""
        # The worker has ended: either all input is done, or we are stopping. Either way the
        # sources and front ends must end too.
        self.stop(self._stop_reason or "end of input")
        for state in self.streams.values():
            if not state.source.join(JOIN_TIMEOUT_S):
                log.warning(
                    "source thread %s did not stop within %.1f s", state.name, JOIN_TIMEOUT_S
                )
        for frontend in self._frontends:
            if not frontend.join(JOIN_TIMEOUT_S):
                log.warning(
                    "front end %s did not stop within %.1f s", frontend.state.name, JOIN_TIMEOUT_S
                )
        self._bus.flush()  # every event so far has reached the summary builder
        reason = self._stop_reason or "end of input"
        if reason == "end of input" and self.errors:
            reason = f"error: {self.errors[0]}"
        model, device, dtype = self._model_info
        self.summary = Summary(
            streams=self._summary_builder.build(),
            wall_s=round(time.monotonic() - self._started_at, 3),
            reason=reason,
            model=model,
            device=device,
            dtype=dtype,
        )
        self._bus.publish(self.summary)
        self._bus.close()
        self.errors.extend(self._bus.sink_errors)
        self._done.set()
