"""Worker: windows from every stream -> one batched forward pass -> smoothing -> events.

The only thread that touches the model. When a live stream's window is already older than
`max_lag` seconds it is skipped (and counted) instead of classified: the answer would describe
audio the speaker has long moved past, and catching up matters more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .config import Config
from .events import Event, LanguageChange, LanguageScore, Prediction, Status
from .gate import admitted
from .languages import language_name
from .stream import StreamState
from .windowqueue import WindowQueues
from .windows import Window

STATUS_EVERY_S = 1.0


class Model(Protocol):
    labels: tuple[str, ...]

    def classify(self, windows: list[np.ndarray]) -> np.ndarray: ...


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
        if self._thread.ident is None:  # never started: a stop during start-up
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

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
                batch = self._queues.take(self._cfg.batch, timeout_s=0.1)
                if batch is None:
                    break  # every stream ended and every window is classified
                if batch:
                    self._run_batch(batch)
                self._report_status(force=False)
            self._report_status(force=True)
        except Exception as exc:
            self._on_error(f"classification failed: {type(exc).__name__}: {exc}")

    def _fresh(self, batch: list[tuple[str, Window]]) -> list[tuple[str, Window]]:
        fresh = []
        for name, window in batch:
            state = self._streams[name]
            if state.live and state.live_edge_s() - window.t_end_s > self._cfg.max_lag:
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
        probs = self._model.classify([window.samples for _, window in batch])
        confirm = self._confirmations(batch, probs)
        for i, (name, window) in enumerate(batch):
            self._decide(self._streams[name], window, probs[i], confirm.get(i))

    def _confirmations(
        self, batch: list[tuple[str, Window]], probs: np.ndarray
    ) -> dict[int, np.ndarray]:
        """Classifies the tail of each window that may announce a switch.

        Which windows challenge the current language can depend on earlier windows of the same
        batch, so any window whose top differs from the stream's current language, or from an
        earlier window of its stream in this batch, gets its tail checked."""
        wanted: list[int] = []
        seen_tops: dict[str, set[int]] = {}
        for i, (name, window) in enumerate(batch):
            smoother = self._streams[name].smoother
            top = int(np.argmax(probs[i]))
            tops = seen_tops.setdefault(name, set())
            challenges = smoother.wants_confirmation(probs[i]) or (tops and tops != {top})
            tops.add(top)
            if challenges and len(window.samples) >= self._confirm_n * 1.25:
                wanted.append(i)
        if not wanted:
            return {}
        tails = [batch[i][1].samples[-self._confirm_n :] for i in wanted]
        return dict(zip(wanted, self._model.classify(tails), strict=True))

    def _decide(
        self, state: StreamState, window: Window, probs: np.ndarray, confirm: np.ndarray | None
    ) -> None:
        decision = state.smoother.update(
            window.t_end_s,
            probs,
            window_s=window.duration_s,
            segment_start_s=window.segment_start_s,
            confirm=confirm,
            t_start_s=window.t_start_s,
        )
        state.windows += 1
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
            self._publish(
                Status(
                    name,
                    round(edge, 3),
                    lag,
                    round(state.overflow_s, 3),
                    state.skipped_windows,
                    state.windows,
                )
            )
