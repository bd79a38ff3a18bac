"""What keeps a network feed going: its settings, the reconnect backoff and the pacer.

A feed that drops, ends (a live URL has no end) or stalls is reconnected with exponential
backoff and jitter, forever by default; each disconnect, retry and recovery is reported through
the source's feed callback (the engine turns it into a `FeedState` event).

Stream time over an outage: with --realtime a feed's stream time follows the wall clock, so the
outage is written into the stream as silence, paced, and every later event keeps a stream time
that matches the wall clock. In fast mode stream time counts the audio received; the outage is
only reported (FeedState.outage_s, and the summary's per-stream outage seconds).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .ring import RingBuffer

# -- settings ---------------------------------------------------------------------------------

FOREVER = -1  # reconnect_attempts: never give up
# A feed that comes back and drops again within this much audio (a flapping server, one that
# replays the start of a recording) is retried after a growing wait, as if it had stayed down;
# one that held this long starts again from reconnect_min.
STEADY_S = 10.0
# A feed that paces itself may run this much ahead of the wall clock (a server's burst is
# delivered at real time, not dropped) and catches up at this speed when behind (clock drift,
# a burst after a hiccup), so its backlog never grows without bound.
BURST_ALLOWANCE_S = 1.0
CATCH_UP_SPEED = 1.25
# A live producer quiet this long between two reads, then going on, left a gap in its audio
# (reads come every 50 ms while it flows): with --realtime the gap is filled with silence, so
# stream time stays on the wall clock, and said when it is this long or longer.
GAP_FILLED_S = 1.0
GAP_SAID_S = 2.0
# A producer that keeps coming slower than real time (a feed short of bandwidth, a server that
# underruns) leaves gaps each too short to fill: once they add up to this much behind the wall
# clock, the shortfall is silence too, said at most once per SLOW_SAID_EVERY_S.
BEHIND_FILLED_S = 3.0
SLOW_SAID_EVERY_S = 600.0


@dataclass(frozen=True)
class FeedSettings:
    """How network feeds are watched and reconnected (built from the Config in one place)."""

    stall_timeout_s: float = 10.0  # no audio this long: the feed is stalled
    reconnect_min_s: float = 0.5  # first retry after this long, doubling up to
    reconnect_max_s: float = 30.0
    reconnect_attempts: int = FOREVER  # retries in a row before giving up (-1: forever)

    @property
    def rw_timeout_us(self) -> int:
        """ffmpeg's own read timeout: just past ours, so a stall is ours to report."""
        return int((self.stall_timeout_s + 2.0) * 1_000_000)


class Backoff:
    """Delays between retries: min, 2*min, 4*min … up to max, each with up to 25% jitter
    downward, so a hundred feeds dropped by one server do not all knock again together."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max(min_s, max_s)
        self._rng = rng or random.Random()

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1, 2, …)."""
        base = min(self.max_s, self.min_s * 2.0 ** max(0, attempt - 1))
        return max(self.min_s, base * (1.0 - 0.25 * self._rng.random()))


class FeedPacer:
    """Delivers audio no faster than real time (plus a small burst allowance), measured from
    the first sample, and at most CATCH_UP_SPEED times real time while the feed is behind.

    A server that sends 20 s at connect (Icecast's burst) is thus heard at real time: windows
    come at the pace the model was sized for, none is superseded. `fill_to_now()` returns how many
    samples of silence keep the stream on the wall clock during an outage; `fill_silence()`
    writes them, `close_gap()` for a live producer that paused and went on (a network feed's
    hiccup, a pipe's writer)."""

    def __init__(
        self,
        rate_hz: int,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_hz
        self._stop = stop
        self._clock = clock
        self._t0: float | None = None
        self._delivered = 0  # samples handed on since t0
        self._last = 0.0  # wall time at which the schedule last allowed a sample
        self._slow_said_at: float | None = None  # wall time the shortfall was last said

    def wait_for(self, n_samples: int) -> None:
        """Blocks (until stop) until n_samples more may be delivered."""
        now = self._clock()
        if self._t0 is None:
            self._t0 = self._last = now
        self._delivered += n_samples
        due = self._t0 + self._delivered / self._rate - BURST_ALLOWANCE_S
        # Behind the wall clock: catch up, but no faster than CATCH_UP_SPEED.
        self._last = max(due, self._last + n_samples / (self._rate * CATCH_UP_SPEED))
        delay = self._last - now
        if delay > 0:
            self._stop.wait(delay)

    def credit(self, n_samples: int) -> None:
        """Counts silence written to cover an outage: delivered now, without waiting."""
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        self._delivered += n_samples
        self._last = max(self._last, now)

    def fill_to_now(self) -> int:
        """Samples of silence that bring the stream back to the wall clock (0 when not behind
        or not started)."""
        if self._t0 is None:
            return 0
        behind = round((self._clock() - self._t0) * self._rate) - self._delivered
        return max(0, behind)

    def fill_silence(self, ring: RingBuffer) -> int:
        """Silence up to the wall clock, for time the feed had no audio (the samples written).
        Waits for room rather than overwrite: a long stall's silence is not audio lost."""
        if not (n := self.fill_to_now()):
            return 0
        self.credit(n)
        ring.write(np.zeros(n, np.float32), block=True, stop=self._stop)
        return n

    def close_gap(self, ring: RingBuffer, quiet_s: float) -> str | None:
        """A live producer that sent nothing for `quiet_s` and then went on (shorter than a
        stall): the audio of the gap never comes, so the gap is silence in stream time, as an
        outage's is; else every later event would keep the delay, hiccup after hiccup. Returns
        what to say of it, or None (short, or a producer's timely bursts, which are not behind)."""
        if quiet_s < GAP_FILLED_S:
            return None
        filled_s = self.fill_silence(ring) / self._rate
        if filled_s < GAP_SAID_S:
            return None
        return (
            f"no audio for {quiet_s:.1f} s, then it went on; {filled_s:.1f} s of silence keep "
            "stream time on the wall clock"
        )

    def catch_up(self, ring: RingBuffer) -> str | None:
        """A producer whose audio keeps coming, but slower than real time, in gaps too short
        for close_gap: once it is BEHIND_FILLED_S behind the wall clock the shortfall is
        silence, else its stream time (and every event's) would fall further behind without
        end, unsaid. Returns what to say of it (at most once per SLOW_SAID_EVERY_S), or None."""
        if self.fill_to_now() < BEHIND_FILLED_S * self._rate:
            return None
        filled_s = self.fill_silence(ring) / self._rate
        now = self._clock()
        if self._slow_said_at is not None and now - self._slow_said_at < SLOW_SAID_EVERY_S:
            return None
        self._slow_said_at = now
        return (
            f"its audio comes slower than real time ({filled_s:.1f} s short); silence "
            "fills the shortfall to keep stream time on the wall clock; check the feed's "
            "bandwidth or its server"
        )
