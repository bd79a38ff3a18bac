"""StreamFrontend: ring buffer -> 16 kHz -> speech gate -> windows, in one thread per stream.

Cheap work only (resampling, the speech gate, slicing), so it keeps pace with the audio even
while the model is busy; the ring therefore overflows only if this thread itself is starved.

A live stream's next window is held until the model is done with its previous one, then cut
from the freshest speech (the hop stretches to what the model sustains). A file in fast mode
on the file schedule (scheduler.py) is cut on the base hop's grid, as a fixed hop cuts it, and
reads on while the worker decides which windows to classify. One on the live schedule
(`live-schedule`) waits for each answer before reading on, since the answer sets the next
hop: its windows are then the same however fast the machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .config import Config
from .events import Event, Level, Notice, SpeechChange, StreamEnded
from .gate import SILENCE_DBFS, GatedFrame, SpeechTrack, build_gate, gate_settings, quiet_advice
from .scheduler import hop_settings, on_file_schedule
from .stream import StreamState
from .threads import join_thread
from .windowqueue import WindowQueues
from .windows import Window, Windower

READ_BLOCK_S = 0.1
LEVEL_EVERY_S = 0.1  # meter refresh, wall time
NOTICE_EVERY_S = 5.0  # at most one overflow warning per stream this often
NONFINITE = "input contains NaN/Inf samples; they are treated as silence"
# A stream with no speech this far in (stream time) is checked once for being too quiet: a
# laptop mic with its gain down hears nothing, and the view shows only an idle meter.
QUIET_CHECK_S = 10.0
INVERTED = (
    "the input's channels cancel each other out (one is wired in reverse polarity): "
    "it is mixed in inverted so that the audio is heard"
)


class Resampler:
    """Streaming resampler to 16 kHz (soxr keeps state across chunks: no clicks at edges)."""

    def __init__(self, rate_hz: int) -> None:
        self._rate = rate_hz
        self._stream = None
        self.reset()

    def reset(self) -> None:
        if self._rate != SAMPLE_RATE_HZ:
            import soxr

            self._stream = soxr.ResampleStream(
                self._rate, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ"
            )

    def __call__(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


class StreamFrontend:
    def __init__(
        self,
        state: StreamState,
        config: Config,
        queues: WindowQueues,
        publish: Callable[[Event], None],
        stop: threading.Event,
    ) -> None:
        self.state = state
        self._cfg = config
        self._queues = queues
        self._publish = publish
        self._stop = stop
        self._rate = state.source.sample_rate_hz
        self._resample = Resampler(self._rate)
        self._gate = build_gate(gate_settings(config))
        self._track = SpeechTrack(keep_s=config.ring_seconds)  # each window's speech share
        self._speech_prob = 0.0
        # The adaptive hop moves this stream's windows only on the live schedule; the file
        # schedule cuts the base hop's grid and leaves the choice to the worker.
        self._adaptive = config.adaptive_hop and not on_file_schedule(config, state.live)
        self._windower = Windower(
            config.window,
            config.hop,
            config.min_speech,
            config.pause,
            min_step_s=hop_settings(config).min_hop_s if self._adaptive else 0.0,
        )
        state.next_hop_s = config.hop
        self._index = 0  # next 16 kHz sample index (stream time * 16000)
        self._speech = False
        self._level_frames: list[float] = []
        self._last_level_at = 0.0
        self._last_notice_at = -NOTICE_EVERY_S
        self._nonfinite_warned = False
        self._loudest_dbfs = SILENCE_DBFS  # until the quiet check: the loudest frame so far
        self._heard_speech = False
        self._quiet_checked = False
        self._inverted_said = False
        self._thread = threading.Thread(target=self._main, name=f"frontend-{state.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Idempotent, any thread. The stop event is the run's: all front ends end together."""
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        return join_thread(self._thread, timeout_s)

    def _main(self) -> None:
        input_ended = False
        try:
            input_ended = self._run()
        finally:
            self._queues.close_stream(self.state.name)
            self.state.ended_at_s = self._index / SAMPLE_RATE_HZ
            if self._speech:
                self._publish(SpeechChange(self.state.name, self.state.ended_at_s, False))
            if input_ended:  # views show an ended stream as ended, not as listening
                # After its last answer, so the end is final: the alerts clear on it, and no
                # late answer raises one again on a stream nobody listens to any more.
                self._queues.wait_finished(self.state.name, self._stop)
                self._publish(StreamEnded(self.state.name, self.state.ended_at_s))

    def _run(self) -> bool:
        """True when the input ended; False when the run stopped it."""
        ring = self.state.ring
        block = max(1, int(self._rate * READ_BLOCK_S))
        while not self._stop.is_set():
            chunk = ring.read(block, timeout_s=0.1)
            if chunk is None and self.state.source.stopping:
                # The run stopped the source (its ring closes before the run's stop reaches
                # this thread): a stop, not the input's end.
                return False
            if chunk is None:  # end of input: classify what is left
                self._process(self._resample(np.zeros(0, np.float32), last=True))
                self._on_frames(self._gate.flush())
                for window in self._windower.flush():
                    self._queue(window)
                return True
            if chunk.lost_before:
                self._on_overflow(chunk.lost_before)
            if ring.channels_inverted and not self._inverted_said:
                self._inverted_said = True
                self._notice("warning", INVERTED)
            if len(chunk.samples):
                self._process(self._resample(self._sanitize(chunk.samples)))
        return False

    def _sanitize(self, samples: np.ndarray) -> np.ndarray:
        """NaN/Inf would poison the resampler and the model: silence them, and say so once."""
        if np.isfinite(samples).all():
            return samples
        if not self._nonfinite_warned:
            self._nonfinite_warned = True
            self._notice("warning", NONFINITE)
        return np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)

    def _on_overflow(self, lost: int) -> None:
        lost_s = lost / self._rate
        self.state.overflow_s += lost_s
        # The lost audio still took stream time: skip ahead so later events keep true times,
        # and start the gate, windows and resampler afresh after the gap.
        self._index += round(lost_s * SAMPLE_RATE_HZ)
        self._resample.reset()
        self._gate.reset()
        self._track.reset()
        self._windower.reset()
        now = time.monotonic()
        if now - self._last_notice_at >= NOTICE_EVERY_S:
            self._last_notice_at = now
            self._notice(
                "warning",
                f"audio dropped: {lost_s:.2f} s lost because the pipeline fell behind "
                f"({self.state.overflow_s:.1f} s so far)",
            )

    def _process(self, samples: np.ndarray) -> None:
        if len(samples) == 0:
            return
        frames = self._gate.feed(self._index, samples)
        self._index += len(samples)
        self._on_frames(frames)

    def _on_frames(self, frames: list[GatedFrame]) -> None:
        name = self.state.name
        for frame in frames:
            if frame.speech != self._speech:
                self._speech = frame.speech
                self._publish(SpeechChange(name, frame.start_index / SAMPLE_RATE_HZ, frame.speech))
            self._level_frames.append(frame.level_dbfs)
            self._loudest_dbfs = max(self._loudest_dbfs, frame.level_dbfs)
            self._heard_speech = self._heard_speech or frame.speech
            self._track.add(frame)
            self._speech_prob = frame.speech_prob
            ready = True
            if self.state.live:
                ready = self._queues.idle(name)
            if self._adaptive:
                self._windower.set_hop_s(self.state.next_hop_s)
            windows = self._windower.feed(frame.start_index, frame.samples, frame.speech, ready)
            for window in windows:
                self._queue(window)
        if not self._quiet_checked and self._index >= QUIET_CHECK_S * SAMPLE_RATE_HZ:
            self._check_quiet()
        now = time.monotonic()
        if frames and now - self._last_level_at >= LEVEL_EVERY_S:
            self._last_level_at = now
            # Report the loudest recent frame: a meter should show peaks people can react to.
            t_s, peak_dbfs = self._index / SAMPLE_RATE_HZ, max(self._level_frames)
            self._publish(Level(name, t_s, peak_dbfs, self._speech, round(self._speech_prob, 3)))
            self._level_frames.clear()
        elif len(self._level_frames) > 100:
            del self._level_frames[:-10]

    def _check_quiet(self) -> None:
        """Once: a stream with no speech so far that is quiet next to the energy floor is said
        to be, with what to change (`identify` says the same of a quiet file)."""
        self._quiet_checked = True
        advice = quiet_advice(self._loudest_dbfs, self._cfg.energy_floor)
        if advice is not None and not self._heard_speech:
            self._notice(
                "warning",
                f"no speech in the first {QUIET_CHECK_S:g} s, and {advice}, or turn the input up",
            )

    def _queue(self, window: Window) -> None:
        window = self._track.measured(window)
        self._queues.put(self.state.name, window, self._stop)
        if self._adaptive and not self.state.live:
            self._queues.wait_idle(self.state.name, self._stop)  # the answer sets the next hop

    def _notice(self, severity: str, message: str) -> None:
        self._publish(Notice(self.state.name, self._index / SAMPLE_RATE_HZ, severity, message))
