"""Worker: windows from every stream -> one batched forward pass -> smoothing -> events.

The only thread that touches the model, the only one that writes a stream's `skipped_windows`
and the only one that publishes `Status`. It schedules for the present (see scheduler.py): the
newest window of each live stream, never a pass whose answer would come out later than
`max_lag` (such a window is skipped and counted), batches only as big as measured to pay off;
after each answer it sets the stream's next hop (the adaptive hop), which its front end reads.

A file on the file schedule (see scheduler.py) sends every window of the base hop's grid; the
worker classifies those its settled hop asks for and holds the others, which it classifies
after all, in order, when the next classified window does not find the language settled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .config import Config
from .events import Event, LanguageChange, LanguageScore, Prediction, Status
from .gate import admitted
from .languages import language_name
from .scheduler import (
    ForwardTimes,
    HopMeter,
    HopSettings,
    choose_batch_n,
    file_hop_settings,
    held_for_s,
    holds,
    hop_settings,
    is_settled,
    next_hop_s,
    on_file_schedule,
    too_late,
    unsure_tail_p,
)
from .smoothing import wants_tail_check
from .stream import StreamState
from .threads import join_thread
from .windowqueue import WindowQueues
from .windows import Window

STATUS_EVERY_S = 1.0


class Model(Protocol):
    """Probabilities [N, L] for N windows. A row of NaN means that window got no answer (a
    remote model timed out or lost it, cluster/remote.py): the worker counts it as skipped."""

    labels: tuple[str, ...]

    def classify(self, windows: list[np.ndarray]) -> np.ndarray: ...


def answered(probs: np.ndarray) -> bool:
    """False for a row that carries no answer (see Model)."""
    return bool(np.isfinite(probs).all())


def top_scores(labels: tuple[str, ...], probs: np.ndarray, k: int) -> tuple[LanguageScore, ...]:
    order = np.argsort(-probs, kind="stable")[:k]
    return tuple(
        LanguageScore(labels[i], language_name(labels[i]), round(float(probs[i]), 6)) for i in order
    )


class Worker:
    def __init__(
        self,
        model: Model,
        streams: dict[str, StreamState],
        queues: WindowQueues,
        config: Config,
        publish: Callable[[Event], None],
        stop: threading.Event,
        on_error: Callable[[str], None],
    ) -> None:
        self._model = model
        self._labels = tuple(model.labels)
        self._streams = streams
        self._queues = queues
        self._cfg = config
        self._publish = publish
        self._stop = stop
        self._on_error = on_error
        self._confirm_n = round(config.confirm_window * SAMPLE_RATE_HZ)
        self._hop_settings = hop_settings(config)
        self._file_hop_settings = file_hop_settings(config)
        self._window_n = round(config.window * SAMPLE_RATE_HZ)
        # Streams on the file schedule, and the windows each holds (`holds` keeps classified
        # windows at most the window, and at most HELD_MAX_N + 1 base hops, apart).
        self._on_file_schedule = {
            name: on_file_schedule(config, state.live) for name, state in streams.items()
        }
        self._held: dict[str, list[Window]] = {name: [] for name in streams}
        self._forward_times = ForwardTimes()  # per batch size, as measured on this machine
        self._hops = {name: HopMeter() for name in streams}
        self._last_status_at: dict[str, float] = {}
        self._reported: dict[str, tuple[int, float]] = {}
        self.reset_requested = threading.Event()  # set by Engine.reset_smoothing()
        self._thread = threading.Thread(target=self._main, name="worker")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Idempotent, any thread: the worker ends after the batch in hand."""
        self._stop.set()

    def join(self, timeout_s: float | None) -> bool:
        return join_thread(self._thread, timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                if self.reset_requested.is_set():
                    self.reset_requested.clear()
                    for state in self._streams.values():
                        state.smoother.reset()
                taken = self._queues.take(self._batch_n(), timeout_s=0.1)
                if taken is None:
                    break  # every stream ended and every window is answered
                for name, superseded_n in taken.superseded.items():
                    self._streams[name].skipped_windows += superseded_n
                if taken.windows:
                    try:
                        self._run_batch(taken.windows)
                    finally:
                        self._queues.done(name for name, _ in taken.windows)
                for name in taken.ended:
                    # What the file schedule still holds of an ended stream ends its last
                    # segment, answered before the stream is said to have ended.
                    if self._held[name]:
                        self._close_held(self._streams[name])
                self._queues.finish(taken.ended)
                self._report_status(force=False)
            self._report_status(force=True)
        except Exception as exc:
            self._on_error(f"classification failed: {type(exc).__name__}: {exc}")

    def _batch_n(self) -> int:
        """Files alone batch freely; with a live stream waiting, only as far as measured to pay
        off and as the lag allows."""
        live_n, file_n = self._queues.ready_counts()
        if live_n == 0:
            return self._cfg.batch
        return choose_batch_n(
            self._forward_times, live_n + file_n, self._cfg.batch, max_lag_s=self._cfg.max_lag
        )

    def _fresh(self, batch: list[tuple[str, Window]]) -> list[tuple[str, Window]]:
        """Leaves out (and counts) live windows whose answer would come out too late."""
        predicted_s = self._forward_times.predict_s(len(batch))
        fresh = []
        for name, window in batch:
            state = self._streams[name]
            age_s = state.live_edge_s() - window.t_end_s
            if state.live and too_late(age_s, predicted_s, self._cfg.max_lag):
                state.skipped_windows += 1
            else:
                fresh.append((name, window))
        return fresh

    def _run_batch(self, batch: list[tuple[str, Window]]) -> None:
        # Not speech enough by the detector: nothing is said about it (the model would name
        # a language for noise or music as readily as for speech).
        batch = [(n, w) for n, w in batch if admitted(w, self._cfg.min_speech_share)]
        batch = self._fresh(batch)
        if not batch:
            return
        planned = self._first_pass(batch)
        first = [(n, w) for n, w in batch if id(w) in planned]
        known: dict[int, np.ndarray] = {}
        if first:  # a file's batch may be all held windows: no pass for nothing
            probs = self._classify([window.samples for _, window in first])
            known = {id(window): row for (_, window), row in zip(first, probs, strict=True)}
        for name, window in batch:
            state = self._streams[name]
            if self._on_file_schedule[name]:
                self._file_window(state, window, known.get(id(window)))
            else:
                row = known[id(window)]
                self._decide(state, window, row, self._tail(state, window, row))

    def _classify(self, inputs: list[np.ndarray]) -> np.ndarray:
        started = time.perf_counter()
        probs = self._model.classify(inputs)
        self._forward_times.record(len(inputs), time.perf_counter() - started)
        return probs

    def _holds(self, state: StreamState, held_s: float, window: Window) -> bool:
        full = len(window.samples) >= self._window_n
        return holds(state.next_hop_s, held_s, window.hop_s, self._cfg.hop, full)

    def _first_pass(self, batch: list[tuple[str, Window]]) -> set[int]:
        """The windows of the batch's first forward pass: all but those of file-schedule
        streams, and of each of those the first window its schedule classifies (whether the
        ones after it are classified depends on its answer)."""
        ids: set[int] = set()
        held_s: dict[str, float] = {}
        planned: set[str] = set()  # file-schedule streams whose first classified window is in
        for name, window in batch:
            if not self._on_file_schedule[name]:
                ids.add(id(window))
                continue
            if name in planned:
                continue
            if name not in held_s:
                held_s[name] = sum(w.hop_s or 0.0 for w in self._held[name])
            if self._holds(self._streams[name], held_s[name], window):
                held_s[name] += window.hop_s or 0.0
            else:
                ids.add(id(window))
                planned.add(name)
        return ids

    def _file_window(self, state: StreamState, window: Window, probs: np.ndarray | None) -> None:
        """One window of the file schedule, in order: held, or classified (`probs` when the
        first pass did it already)."""
        held = self._held[state.name]
        if window.hop_s is None and held:
            self._close_held(state)  # a new segment: the last one's held windows come first
        if self._holds(state, sum(w.hop_s or 0.0 for w in held), window):
            held.append(window)
            return
        self._classified(
            state, window, self._classify([window.samples])[0] if probs is None else probs
        )

    def _classified(self, state: StreamState, window: Window, probs: np.ndarray) -> None:
        """A classified window of the file schedule. If it finds the language settled, the
        held windows before it are left out (its hop then spans them: the effective hop);
        otherwise they are classified first, in order, so the smoother sees what a fixed hop
        shows it wherever the answer may change."""
        held = self._held[state.name]
        if held:
            current, top = state.smoother.current, int(np.argmax(probs))
            settled = is_settled(
                self._file_hop_settings,
                current=current,
                window_top=top,
                window_p_current=0.0 if current is None else float(probs[current]),
                confidence=state.smoother.confidence,
            )
            if settled:
                span_s = sum(w.hop_s or 0.0 for w in held) + (window.hop_s or 0.0)
                window = replace(window, hop_s=span_s)
            else:
                rows = self._classify([w.samples for w in held])
                for earlier, row in zip(held, rows, strict=True):
                    self._decide(state, earlier, row, self._tail(state, earlier, row))
            held.clear()
        self._decide(state, window, probs, self._tail(state, window, probs))

    def _close_held(self, state: StreamState) -> None:
        """The end of a segment (or of the file): its last held window is classified, so its
        speech is heard, and the rest with it if the answer may change there."""
        last = self._held[state.name].pop()
        self._classified(state, last, self._classify([last.samples])[0])

    def _schedule(self, state: StreamState) -> HopSettings:
        """The stream's hop settings: the file schedule's or the live schedule's."""
        return self._file_hop_settings if self._on_file_schedule[state.name] else self._hop_settings

    def _tail(self, state: StreamState, window: Window, probs: np.ndarray) -> np.ndarray | None:
        """The window's tail, classified when `wants_tail_check` says so. Asked window by window,
        after the earlier windows of the batch have moved the smoother, so a window gets the
        same second look in a batch of eight (fast file mode) as alone (live)."""
        if not answered(probs):
            return None
        top, current = int(np.argmax(probs)), state.smoother.current
        p_current = 1.0 if current is None else float(probs[current])
        # The live schedule also doubtful ones, where the model is quick enough to afford it.
        unsure_p = unsure_tail_p(self._schedule(state), self._forward_times.predict_s(1))
        n = len(window.samples)
        if not wants_tail_check(current, top, n, self._confirm_n, p_current, unsure_p):
            return None
        tail = self._model.classify([window.samples[-self._confirm_n :]])[0]
        return tail if answered(tail) else None  # no second look: the window alone decides

    def _decide(
        self, state: StreamState, window: Window, probs: np.ndarray, confirm: np.ndarray | None
    ) -> None:
        if not answered(probs):
            state.skipped_windows += 1  # no answer came (a remote model ran out of time)
            return
        decision = state.smoother.update(
            window.t_end_s,
            probs,
            window_s=window.duration_s,
            segment_start_s=window.segment_start_s,
            confirm=confirm,
            t_start_s=window.t_start_s,
            hop_s=window.hop_s,
        )
        state.windows += 1
        if window.hop_s is not None:
            self._hops[state.name].add(window.hop_s)
        state.held_s = held_for_s(
            state.held_s,
            decision.change is not None,
            window.duration_s if window.hop_s is None else window.hop_s,
        )
        state.next_hop_s = next_hop_s(
            self._schedule(state),
            state.next_hop_s,
            current=decision.current,
            window_top=int(np.argmax(probs)),
            window_p_current=0.0 if decision.current is None else float(probs[decision.current]),
            confidence=decision.confidence,
            tail_top=None if confirm is None else int(np.argmax(confirm)),
            tail_p_current=(
                None
                if confirm is None or decision.current is None
                else float(confirm[decision.current])
            ),
            held_s=state.held_s,
        )
        labels, k = self._labels, self._cfg.top
        code = None if decision.current is None else labels[decision.current]
        lag = state.live_edge_s() - window.t_end_s if state.live else None
        state.lag_s = None if lag is None else round(max(0.0, lag), 3)
        self._publish(
            Prediction(
                stream=state.name,
                t_start_s=round(window.t_start_s, 3),
                t_end_s=round(window.t_end_s, 3),
                top=top_scores(labels, probs, k),
                smoothed=top_scores(labels, decision.smoothed, k),
                language=code,
                language_name=language_name(code),
                confidence=round(decision.confidence, 6),
                latency_s=round(time.monotonic() - window.formed_at, 4),
                lag_s=state.lag_s,
                hop_s=None if window.hop_s is None else round(window.hop_s, 3),
                speech_prob=round(window.speech_prob, 3),
            )
        )
        if decision.change is not None:
            change = decision.change
            previous = None if change.previous is None else labels[change.previous]
            self._publish(
                LanguageChange(
                    stream=state.name,
                    t_s=round(window.t_end_s, 3),
                    since_s=round(change.since_s, 3),
                    previous=previous,
                    language=code,
                    language_name=language_name(code),
                    confidence=round(decision.confidence, 6),
                )
            )

    def _report_status(self, force: bool) -> None:
        now = time.monotonic()
        for name, state in self._streams.items():
            counters = (state.skipped_windows, state.overflow_s)
            due = now - self._last_status_at.get(name, 0.0) >= STATUS_EVERY_S
            if not (force or due or counters != self._reported.get(name)):
                continue
            self._last_status_at[name] = now
            self._reported[name] = counters
            edge = state.live_edge_s()
            lag = None
            if state.live:
                oldest = self._queues.oldest_end_s(name)
                lag = state.lag_s if oldest is None else round(max(0.0, edge - oldest), 3)
            hop_s = self._hops[name].recent_s
            self._publish(
                Status(
                    name,
                    round(edge, 3),
                    lag,
                    round(state.overflow_s, 3),
                    state.skipped_windows,
                    state.windows,
                    hop_s=None if hop_s is None else round(hop_s, 3),
                )
            )
