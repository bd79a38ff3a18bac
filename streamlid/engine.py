"""Engine: builds every thread and queue of a run, and its one stop path.

    source threads -> RingBuffer -> frontend threads -> WindowQueues -> worker -> EventBus -> sinks

The threads belong to a `Supervisor` (run.py), in that order. `start()` starts them; `stop()`
(a signal, `q`, a fatal error, stdout's reader leaving) asks the producers to finish; end of
input finishes them naturally. Either way `wait()`, on the caller's thread, joins them,
publishes the Summary last, and ends the bus, which closes the sinks so every file is flushed.
The finishing never runs on a pipeline thread, so it can be neither a callback that a stuck
thread never reaches nor one that races the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence

from .alerts import AlertWatch
from .audio.ring import RingBuffer
from .audio.source import Source
from .bus import EventBus, Sink
from .config import AlertSettings, Config, alert_settings
from .events import Event, FeedState, Notice, StreamStarted, Summary
from .frontend import StreamFrontend
from .printable import printable
from .run import (
    END_OF_INPUT,
    INTERRUPTED,
    OUTPUT_CLOSED,
    Supervisor,
    run_summary,
    settle_outputs,
)
from .smoothing import Smoother, SmootherSettings
from .stream import StreamState
from .streams import StreamsReducer
from .threads import RunToEnd, ThreadOwner
from .windowqueue import WindowQueues
from .worker import Model, Worker

log = logging.getLogger(__name__)
FILE_QUEUE_WINDOWS = 16  # a file stream may run this far ahead of the model


def unique_names(sources: Sequence[Source]) -> list[str]:
    """Stream names as sources call themselves, made unique ("a.wav", "a.wav#2")."""
    names: list[str] = []
    for source in sources:
        base = printable(source.name)  # shown on terminals: no escape sequences from a file name
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


class Engine(RunToEnd):
    def __init__(
        self,
        config: Config,
        sources: Sequence[Source],
        model: Model,
        sinks: Sequence[Sink],
        model_info: tuple[str, str, str] = ("", "", ""),
        figures: StreamsReducer | None = None,
        alerts: Mapping[str, AlertSettings] | None = None,
    ) -> None:
        """`figures`: the run's per-stream figures, when outputs outside the bus read them
        too. `alerts`: per-stream alert settings by stream name (others: the global options)."""
        if not sources:
            raise ValueError("an engine needs at least one source")
        super().__init__()
        self.config = config
        self._model_info = model_info  # (model, device, dtype) for events
        self._stop = threading.Event()
        self._stop_reason: str | None = None
        # The per-stream figures come first: every later sink may read them.
        self.figures = figures if figures is not None else StreamsReducer()
        self.alerts = AlertWatch(self.figures, self.publish, alert_settings(config), alerts)
        self._bus = EventBus([self.figures, self.alerts, *sinks], on_failure=self._output_failed)
        self._queues = WindowQueues()
        self.errors: list[str] = []  # a stream or the model failed
        self.output_errors: list[str] = []  # an output could not be written (the run went on)
        self.summary: Summary | None = None
        self._started_at = 0.0
        self._lock = threading.Lock()
        self._supervisor = Supervisor()
        self._drains: list = []

        settings = SmootherSettings(
            time_constant_s=config.smoothing,
            min_confidence=config.min_confidence,
            min_margin=config.min_margin,
            min_dwell_s=config.min_dwell,
            sure_tail=config.sure_tail,
            short_look_s=config.confirm_window,
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
            source.connect(ring, self._source_notice(name), self._feed_report(name))
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
        )
        for state in self.streams.values():
            self._supervisor.add(f"source thread {state.name}", state.source)
        for frontend in self._frontends:
            self._supervisor.add(f"front end {frontend.state.name}", frontend)
        self._supervisor.add("worker", self._worker)
        self._supervisor.add("event thread", self._bus)

    # -- lifecycle --------------------------------------------------------------------------

    def attach(self, name: str, owner: ThreadOwner, *, drain: bool = False) -> None:
        """A thread that serves the run beside the pipeline (the live view, the key reader):
        started before it, ended after the sinks have closed. Before `start()` only.

        `drain`: the owner acts on events and may report back (the --on-alert command): before
        the summary, the engine gives it DRAIN_TIMEOUT_S to finish what it was handed, so its
        reports still reach the outputs. It has `drain(timeout_s) -> bool`."""
        self._supervisor.add(name, owner)
        if drain:
            self._drains.append(owner)

    def start(self) -> None:
        self._started_at = time.monotonic()
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
        try:
            self._supervisor.start()  # the bus first, the sources last
        except BaseException:  # e.g. a Ctrl-C while threads start: what started must stop
            self.stop(INTERRUPTED)
            raise

    def stop(self, reason: str = INTERRUPTED) -> None:
        """Asks the sources, front ends and worker to finish; safe from any thread, any number
        of times (the first reason is the one the summary gives)."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
        self._supervisor.stop(through=self._worker)

    def _join_main(self, timeout_s: float | None) -> bool:
        """The worker ends last of the run's threads (see `RunToEnd.wait`)."""
        return self._worker.join(timeout_s)

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

    def _feed_report(self, stream: str):
        def report(state: str, reason: str, attempt: int, outage_s: float) -> None:
            t_s = self.streams[stream].live_edge_s()
            self.publish(FeedState(stream, t_s, state, reason, attempt, outage_s))

        return report

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.publish(Notice("", 0.0, "error", message))
        self.stop(f"error: {message}")

    def _output_failed(self, message: str, reader_left: bool) -> None:
        """From the event thread: an output failed. The others go on, and so does the run,
        unless it was stdout and its reader has left: then nobody is listening."""
        if reader_left:
            self.stop(OUTPUT_CLOSED)
        else:
            self.output_errors.append(message)

    def _finish(self) -> None:
        """The worker has ended: all input is done, or we are stopping. Either way the sources
        and front ends must end too; then the summary, then the outputs."""
        try:
            self.stop(self._stop_reason or END_OF_INPUT)
            self._supervisor.join(through=self._worker)
            reason = settle_outputs(self._bus, self._drains, self._stop_reason, self.errors)
            self.summary = run_summary(
                self.figures, self.config.top, self._started_at, reason, self._model_info
            )
            self._bus.publish(self.summary)
        finally:  # even if interrupted (a library caller's Ctrl-C): no thread left running
            self._supervisor.end()  # the bus delivers the summary and closes the sinks
