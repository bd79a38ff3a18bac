"""Scheduling rules for the worker, as pure functions and small classes the tests call too.

A live stream only cares about now. The worker therefore answers the newest window of each live
stream and supersedes older ones, never starts a forward pass whose answer would come out later
than `max_lag`, batches only where batching was measured to pay off, and classifies less often
while the language is settled (the adaptive hop).

A file not played in real time has no "now": nobody waits for its answers, only their accuracy
and the total compute count. Its windows are therefore cut on the base hop's grid, as a fixed
hop cuts them, and the worker classifies only some of them while the language is settled (up
to side by side windows, `file-max-hop`); the others are held, and classified after all, in
order, as soon as a classified window does not find the language settled (`holds`,
`is_settled`). Switches and speech time then come out as with the fixed hop.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from .config import Config

SAMPLES_KEPT_N = 9  # forward times remembered per batch size (median of these)
PAYS_OFF_RATIO = 0.9  # a bigger batch must cost at most this share per window of the smaller
FRESH_S = 0.25  # a window this close to live is the freshest there is: never skipped as stale
HOP_SLACK_S = 0.05  # windows end on speech-gate frame edges (up to 30 ms): hops jitter
HELD_MAX_N = 15  # the file schedule's settled hop spans at most this many held base hops + 1
DOUBT_TAIL_MAX_SHARE = 0.25  # doubtful windows' tails: only while a pass takes <= this of a hop


class ForwardTimes:
    """Running estimate of one forward pass's wall time for each batch size actually used."""

    def __init__(self) -> None:
        self._samples: dict[int, deque[float]] = {}

    def record(self, batch_n: int, seconds: float) -> None:
        self._samples.setdefault(batch_n, deque(maxlen=SAMPLES_KEPT_N)).append(seconds)

    def measured(self, batch_n: int) -> float | None:
        samples = self._samples.get(batch_n)
        return statistics.median(samples) if samples else None

    def predict_s(self, batch_n: int) -> float:
        """The measured median for this size; otherwise the nearest smaller measured size scaled
        up linearly (no gain from batching assumed until measured); 0.0 before any measurement."""
        measured = self.measured(batch_n)
        if measured is not None:
            return measured
        smaller = [n for n in self._samples if n < batch_n]
        if smaller:
            n = max(smaller)
            return self.measured(n) * batch_n / n  # type: ignore[operator]
        larger = [n for n in self._samples if n > batch_n]
        if larger:
            n = min(larger)
            return self.measured(n) * batch_n / n  # type: ignore[operator]
        return 0.0


def batch_sizes(cap_n: int) -> list[int]:
    """The batch sizes the worker uses: powers of two up to the cap, and the cap itself."""
    sizes, n = [], 1
    while n < cap_n:
        sizes.append(n)
        n *= 2
    return [*sizes, cap_n]


def proven_batch_n(times: ForwardTimes, cap_n: int) -> int:
    """Largest batch size measured to cost clearly less per window than the one below it.

    Batch 1 is always allowed. On a CPU that gains nothing from batching (batch 2 costs twice
    batch 1) this stays 1; on a GPU it climbs as each size proves itself."""
    best, best_per_window = 1, times.measured(1)
    if best_per_window is None:
        return 1
    for n in batch_sizes(cap_n)[1:]:
        t = times.measured(n)
        if t is None or t / n > PAYS_OFF_RATIO * best_per_window:
            break
        best, best_per_window = n, t / n
    return best


def choose_batch_n(
    times: ForwardTimes,
    ready_n: int,
    cap_n: int,
    max_lag_s: float | None = None,
    explore: bool = True,
) -> int:
    """How many of `ready_n` waiting windows to classify in one pass (live streams waiting).

    Up to the proven size; when more windows wait than that, one pass at the next size is tried
    (`explore`) so that a size that would pay off gets measured at all. With `max_lag_s`, no
    bigger batch than one whose predicted time leaves a fresh window's answer within the lag."""
    if ready_n <= 1:
        return 1
    proven = proven_batch_n(times, cap_n)
    n = min(ready_n, proven)
    if ready_n > proven and explore:
        bigger = [size for size in batch_sizes(cap_n) if size > proven]
        if bigger and times.measured(bigger[0]) is None:
            n = min(ready_n, bigger[0])
    if max_lag_s is not None:
        while n > 1 and FRESH_S + times.predict_s(n) > max_lag_s:
            n //= 2
    return n


def too_late(age_s: float, predicted_s: float, max_lag_s: float) -> bool:
    """True when a live window's answer would come out more than `max_lag_s` after its end.

    `age_s` is how long ago (stream time) the window ended; `predicted_s` the forward time of
    the batch it would join. A window cut just now is never too late: nothing fresher exists,
    and skipping it would leave a model slower than `max_lag` answering nothing at all."""
    return age_s > FRESH_S and age_s + predicted_s > max_lag_s


def newest_first(windows_n: int) -> tuple[int, int]:
    """(index kept, windows superseded) for a live stream with `windows_n` waiting: the newest
    is classified, every older one is superseded (counted as skipped)."""
    return windows_n - 1, max(0, windows_n - 1)


@dataclass(frozen=True)
class HopSettings:
    adaptive: bool = True
    hop_s: float = 1.0  # the base hop: after a confident answer, and always when not adaptive
    min_hop_s: float = 0.25  # after a challenge, an uncertain answer or no language
    max_hop_s: float = 3.0  # while the language is settled
    confident_p: float = 0.7  # window and smoothed probability of the language to call it settled
    # A window's tail is re-checked while the window gives the current language less than this
    # (`confirm-below`; 0 re-checks only windows that name another language, as the file
    # schedule and a fixed hop do). The default re-checks every window short of sure: a
    # switch's first second barely moves a 3 s window, while its last 1.5 s already hear the
    # newcomer, so a high bar hears switches sooner, for more passes (docs/performance.md, "The
    # larger stand-in adopted": with `sure-tail` 0.8, median switch 1.33 s against 1.79 s for
    # 0.7 without it, at 1.5x the passes), where a pass is quick enough: `unsure_tail_p`.
    tail_check_p: float = 0.95
    # The hop grows past the base hop only once the current language has held this much speech
    # since it was named: a language just named is the likeliest to give way again soon (a
    # long hop there would hear a quick switch late), while a long stretch of one language pays
    # for the growth. Counted from the change, not from the last unsure window: a small model
    # is unsure now and then within one language, and each such window would start it again.
    grow_after_s: float = 10.0


def hop_settings(config: Config) -> HopSettings:
    """The adaptive hop's settings; `min-hop` and `max-hop` are taken relative to the hop and
    the window (a settled hop longer than the window would leave speech unheard)."""
    return HopSettings(
        adaptive=config.adaptive_hop,
        hop_s=config.hop,
        min_hop_s=min(config.min_hop, config.hop),
        max_hop_s=min(max(config.max_hop, config.hop), config.window),
        confident_p=min(1.0, config.min_confidence + config.min_margin),
        # A fixed hop re-checks only windows that name another language, as it always has.
        tail_check_p=config.confirm_below if config.adaptive_hop else 0.0,
    )


def unsure_tail_p(settings: HopSettings, forward_s: float) -> float:
    """The `confirm-below` bar in force, given the measured time of one forward pass (0 before
    any). A window that names the current language, only doubtfully, has its tail re-checked
    only while a pass takes at most DOUBT_TAIL_MAX_SHARE of the base hop: the re-check is one
    more pass before the answer, which a small or GPU-borne model pays in milliseconds, but the
    full-size model on a CPU (a pass about as long as the hop) in half a pass of delay on every
    doubtful answer and a longer hop, for switches heard a few tenths of a second sooner. A
    window that names another language always has its tail checked (`wants_tail_check`)."""
    return settings.tail_check_p if forward_s <= DOUBT_TAIL_MAX_SHARE * settings.hop_s else 0.0


def on_file_schedule(config: Config, live: bool) -> bool:
    """Whether a stream follows the file schedule: adaptive hop on, not live (a file not played
    in real time), and the live schedule not asked for (`live-schedule`)."""
    return config.adaptive_hop and not live and not config.live_schedule


def file_hop_settings(config: Config) -> HopSettings:
    """The file schedule's settings. Its windows lie on the base hop's grid, so its shortest
    hop is the base hop; the settled hop grows to `file-max-hop` (capped at the window: side
    by side windows still hear every sample) from the first settled window on, without the
    live wait of `grow_after_s`: a switch that a long hop hears late costs nothing here, since
    the held windows before it are classified before it is. At most HELD_MAX_N windows are
    held (a 30 s window at a 0.1 s hop would otherwise hold 300 of them).

    Settled here is the bar for naming a language (`min-confidence`), not the live schedule's
    stricter one (`min-confidence + min-margin`): a live stream pays for a missed doubt in
    switch delay, a file only in windows classified after all, and a classified window below
    that bar still has its held windows classified. Measured on the 10-minute file benchmark
    with the trained test model: 0.40x the fixed hop's windows against 0.56x, and the same
    speech time per language to the 10 ms either way."""
    longest_s = min(config.window, config.hop * (HELD_MAX_N + 1))
    return HopSettings(
        adaptive=config.adaptive_hop,
        hop_s=config.hop,
        min_hop_s=config.hop,
        max_hop_s=min(max(config.file_max_hop, config.hop), longest_s),
        confident_p=config.min_confidence,
        tail_check_p=0.0,  # the file schedule shows the smoother what a fixed hop does
        grow_after_s=0.0,
    )


def holds(
    target_hop_s: float, held_s: float, hop_s: float | None, base_hop_s: float, full: bool
) -> bool:
    """Whether the file schedule leaves a window unclassified for now (held: classified after
    all if the next classified window does not find the language settled, else never).

    `held_s`: speech since the last classified window up to this one's predecessor; `hop_s`:
    this window's own. The first window of a segment (no hop) and early windows (not yet
    full) are always classified, as they are with a fixed hop. Otherwise a window is held
    while it, and the next one a base hop later, stay within `target_hop_s` of the last
    classified window: classified windows are then at most the target apart (at most the
    window: no speech goes unheard)."""
    if hop_s is None or not full:
        return False
    return held_s + hop_s + base_hop_s <= target_hop_s + HOP_SLACK_S


def is_settled(
    settings: HopSettings,
    *,
    current: int | None,
    window_top: int,
    window_p_current: float,
    confidence: float,
    tail_top: int | None = None,
    tail_p_current: float | None = None,
) -> bool:
    """The window, and its tail if one was checked, agree with the current language,
    confidently. A tail that names nobody clearly is no agreement: the newcomer of a switch is
    often murky in its first second (the tail's top still the current language at 0.3-0.5),
    and a settled hop there looked again a whole hop later."""
    return (
        current is not None
        and window_top == current
        and tail_top in (None, current)
        and (tail_p_current is None or tail_p_current >= settings.confident_p)
        and window_p_current >= settings.confident_p
        and confidence >= settings.confident_p
    )


def next_hop_s(
    settings: HopSettings,
    previous_hop_s: float,
    *,
    current: int | None,
    window_top: int,
    window_p_current: float,
    confidence: float,
    tail_top: int | None = None,
    tail_p_current: float | None = None,
    held_s: float = math.inf,
) -> float:
    """Seconds of new speech to wait for before this stream's next window.

    Settled (see `is_settled`): the base hop, and once the current language has held
    `grow_after_s` of speech (`held_s`, see `held_for_s`) the hop doubles up to `max_hop_s`.
    A challenger in the window or its tail, an unsure window or no named language: look again
    after `min_hop_s`; but unsure with no challenger heard after a hop longer than the base
    one: the base hop. Not adaptive: always the base hop."""
    s = settings
    if not s.adaptive:
        return s.hop_s
    settled = is_settled(
        s,
        current=current,
        window_top=window_top,
        window_p_current=window_p_current,
        confidence=confidence,
        tail_top=tail_top,
        tail_p_current=tail_p_current,
    )
    if not settled:
        challenged = current is None or window_top != current or tail_top not in (None, current)
        # Unsure after a hop longer than the base one, yet neither the window nor its tail
        # (checked in such a window) hears anyone else: back to the base hop, not the minimum.
        # A small model is unsure now and then within one language, and looking every quarter
        # second each time cost more passes than the long hop saved; at the base hop and
        # below, the minimum hop stays (measured: the base hop there reported some switches
        # 0.7 s later).
        if not challenged and previous_hop_s > s.hop_s:
            return s.hop_s
        return s.min_hop_s
    if previous_hop_s < s.hop_s or held_s < s.grow_after_s:
        return min(s.hop_s, s.max_hop_s)
    return min(s.max_hop_s, max(s.hop_s, previous_hop_s * 2))


def held_for_s(previous_s: float, changed: bool, added_s: float) -> float:
    """Speech since the stream's current language was named, after a window that added
    `added_s` of speech and `changed` the answer (or not)."""
    return 0.0 if changed else previous_s + added_s


class HopMeter:
    """The effective hop of one stream: mean speech between the last few windows actually
    classified (what `status` events and the live view show; the summary averages them all)."""

    def __init__(self, recent_n: int = 8) -> None:
        self._recent: deque[float] = deque(maxlen=recent_n)

    def add(self, hop_s: float) -> None:
        self._recent.append(hop_s)

    @property
    def recent_s(self) -> float | None:
        return sum(self._recent) / len(self._recent) if self._recent else None
