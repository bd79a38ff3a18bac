"""Smoother: steady language probabilities and a current language that does not flicker.

Two jobs, kept apart:
- *Smoothing* for display: an exponential moving average of window probabilities whose weight
  follows stream time (`time_constant_s`), so a pause lets old evidence fade.
- *Deciding* the current language, with hysteresis. Naming a language needs a clear lead
  (`min_confidence`, `min_margin`). Switching to another needs that lead *and* a second,
  independent look: either earlier windows already said so (at least `second_look_s` of speech
  back: with the adaptive hop, windows a quarter second apart hear nearly the same audio), or
  the window's last `confirm_window` seconds (classified separately, see `wants_tail_check`)
  agree. Tails that each clearly hear the newcomer, `second_look_s` apart, also switch while
  the whole window still leans to the current language, unless it still names it clearly
  (then the window, which holds more speech, outweighs its tails); one tail that names the
  newcomer surely (`sure_tail`) switches on that look alone. A single odd full window can
  therefore never flip the answer, yet a real switch is confirmed by the first window in which
  the new language dominates (with 3 s windows and a 1 s hop, 1.5-2.5 s after the switch, where
  per-window argmax needs 2-3.5 s), or sooner by its tails. The growing first windows of a
  segment (each holds the previous one's audio and more) are fuller looks, not second
  opinions: their clear lead replaces a first answer at once. After a switch, `min_dwell_s` must
  pass before the next. When the evidence for the current language fades below half of
  `min_confidence` and no other language is clearly heard, on two looks, the answer becomes
  unknown (None) rather than a guess. Hops vary, so each window brings its own (`hop_s`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmootherSettings:
    time_constant_s: float = 1.0
    min_confidence: float = 0.5
    min_margin: float = 0.2
    min_dwell_s: float = 1.0
    # Two windows count as two looks only this much new speech apart: with the adaptive hop,
    # windows a quarter second apart hear nearly the same audio and would agree by default.
    second_look_s: float = 0.5
    # A tail (the window's end, classified on its own) that names a newcomer at least this
    # surely switches on that one look, saving the half second of speech a second look waits
    # for (1.0: always wait). With the trained test model, together with `confirm-below` 0.95,
    # it brought the median switch from 1.79 s to 1.33 s (docs/performance.md, "The larger
    # stand-in adopted"); a model that hears short speech poorly is wrong too often on one
    # look ("One sure tail").
    sure_tail: float = 0.8
    # A window no longer than a tail (`confirm-window`) is one short look too: a first answer
    # from such a window (the early answer after `min-speech`) needs `sure_tail` as well,
    # when it is on. Every bed-trained test model hears French in the first second of an
    # English "Good morning" over music (0.5-0.7), and English from two seconds on.
    short_look_s: float = 1.5


@dataclass(frozen=True)
class Change:
    previous: int | None
    current: int | None
    since_s: float


@dataclass(frozen=True)
class Decision:
    smoothed: np.ndarray  # [L], sums to 1
    current: int | None  # label index, or None for unknown
    confidence: float  # smoothed probability of `current` (0.0 when unknown)
    change: Change | None


LOOK_SLACK_S = 0.05  # windows end on speech-gate frame edges (up to 30 ms): hops jitter
TAIL_MIN_SHARE = 1.25  # a window must be this many tails long for its tail to be a second look


def wants_tail_check(
    current: int | None,
    top: int,
    window_n: int,
    confirm_n: int,
    p_current: float = 1.0,
    unsure_p: float = 0.0,
) -> bool:
    """Whether a window's last `confirm_n` samples are worth classifying on their own.

    Only a window that may announce a switch is: its top differs from the stream's current
    language (as the smoother stands just before this window), or, with `unsure_p`, it gives
    the current language less than that (a switch may have begun in its last second or two).
    A window barely longer than its tail would only say the same thing twice. The worker and
    the tests both call this."""
    if window_n < confirm_n * TAIL_MIN_SHARE or current is None:
        return False
    return top != current or p_current < unsure_p


def _lead(probs: np.ndarray) -> tuple[int, float, float]:
    """(top index, its probability, its margin over the runner-up)."""
    if len(probs) == 1:
        return 0, float(probs[0]), float(probs[0])
    second, first = np.argpartition(probs, -2)[-2:]
    if probs[second] > probs[first]:
        first, second = second, first
    return int(first), float(probs[first]), float(probs[first] - probs[second])


def clear_lead(probs: np.ndarray, min_confidence: float, min_margin: float) -> int | None:
    """The label `probs` name clearly (at least `min_confidence`, with `min_margin` over the
    runner-up), or None. The smoother and `identify` both decide by it."""
    top, p, margin = _lead(np.asarray(probs, np.float64))
    return top if p >= min_confidence and margin >= min_margin else None


class Smoother:
    def __init__(self, n_labels: int, settings: SmootherSettings | None = None) -> None:
        self.n_labels = n_labels
        self.settings = settings or SmootherSettings()
        self.current: int | None = None
        self._named_before_reset: int | None = None
        self.reset()

    def reset(self) -> None:
        """Starts smoothing afresh (the `r` key): the evidence so far is forgotten. The language
        named before is not: the first answer after the reset that names it again is no change,
        and one that names another is a change from it."""
        if self.current is not None:  # (`r` twice before an answer: still the one before)
            self._named_before_reset = self.current
        self._smoothed = np.full(self.n_labels, 1.0 / self.n_labels)
        self._t_last_s: float | None = None
        self._t_start_last_s: float | None = None
        self._previous_top: int | None = None
        self._streak_top: int | None = None  # the top of the latest windows in a row...
        self._streak_s = 0.0  # ...and the speech from the first of them to the latest
        self._weak_updates = 0  # consecutive updates in which the current language was weak
        self._weak_s = 0.0  # the speech those updates span
        self._since_veto_s = math.inf  # speech since a tail last disagreed with its window
        self._tail_top: int | None = None  # the top of the latest tails in a row...
        self._tail_span_s = 0.0  # ...and the speech from the first of them to the latest
        self.current: int | None = None
        self._changed_at_s = -math.inf

    def _clear_lead(self, probs: np.ndarray) -> int | None:
        """The label `probs` name clearly (`min_confidence`, with `min_margin` over the
        runner-up), or None."""
        return clear_lead(probs, self.settings.min_confidence, self.settings.min_margin)

    def _tail_switch(
        self, sure_tail_top: int | None, look_s: float, holds_current: bool
    ) -> int | None:
        """The newcomer the tails alone switch to, or None: one tail that names it surely
        (`sure_tail`), or tails that have heard it clearly twice, some speech apart, while the
        whole window leans to the current language without naming it clearly any more."""
        if sure_tail_top is not None and sure_tail_top != self.current:
            return sure_tail_top
        row = self._tail_top is not None and self._tail_top != self.current
        if row and self._tail_span_s >= look_s and not holds_current:
            return self._tail_top
        return None

    @property
    def confidence(self) -> float:
        """Smoothed probability of the current language (0.0 when unknown), as it stands."""
        return 0.0 if self.current is None else float(self._smoothed[self.current])

    def update(
        self,
        t_end_s: float,
        probs: np.ndarray,
        *,
        window_s: float,
        segment_start_s: float,
        confirm: np.ndarray | None = None,
        t_start_s: float | None = None,
        hop_s: float | None = None,
    ) -> Decision:
        """Takes one window's probabilities (and, if the worker ran it, its tail's).

        `hop_s` is the speech since the previous window of the segment (None for the first):
        hops vary (adaptive hop, a slow model), so a switch's start is estimated from the
        window's own hop, never from a configured one.

        `t_start_s` lets early windows supersede each other: a window that starts where the
        previous one started holds all of its audio and more, so it replaces that evidence
        instead of being averaged with it (a murky first second no longer delays the first
        answer)."""
        s = self.settings
        probs = np.asarray(probs, dtype=np.float64)
        evidence = probs if confirm is None else 0.5 * (probs + np.asarray(confirm, np.float64))
        nested = (
            t_start_s is not None
            and self._t_start_last_s is not None
            and abs(t_start_s - self._t_start_last_s) < 1e-3
        )
        self._t_start_last_s = t_start_s
        if self._t_last_s is None or nested:
            weight = 1.0
        else:
            dt = max(0.0, t_end_s - self._t_last_s)
            weight = 1.0 - math.exp(-dt / s.time_constant_s) if dt > 0 else 0.5
        self._smoothed = (1.0 - weight) * self._smoothed + weight * evidence
        self._t_last_s = t_end_s

        top = int(np.argmax(probs))
        # The newcomer is whom the evidence favours: usually the window's own top; when the
        # window (part old, part new speech) leans to a neighbour of the new language, say
        # Portuguese for Spanish, its tail, all new speech, settles which one it is.
        candidate = int(np.argmax(evidence))
        added_s = window_s if hop_s is None else hop_s
        if top == self._streak_top:
            self._streak_s += added_s
        else:
            self._streak_top, self._streak_s = top, 0.0
        look_s = s.second_look_s - LOOK_SLACK_S
        second_look = added_s >= look_s
        # A tail that disagreed with its window vetoed a challenge; asking again a quarter
        # second later would mostly re-hear the same tail until it happens to agree, so a tail
        # counts again only once enough new speech has come in.
        self._since_veto_s += added_s
        tail_top = None if confirm is None else int(np.argmax(confirm))
        tail_counts = self._since_veto_s >= look_s
        confirmed = (
            (candidate == self._streak_top and self._streak_s >= look_s)
            or (candidate == self._previous_top and second_look)
            or (tail_top == candidate and tail_counts)
        )
        if tail_top is not None and tail_top != top:
            self._since_veto_s = 0.0
        # A row of tails counts only tails that name their language clearly: one that merely
        # leans to the newcomer (0.4 against 0.3) is no look at it. A window without a tail, or
        # with an unclear one, breaks the row.
        clear_tail_top = None if confirm is None else self._clear_lead(confirm)
        if clear_tail_top is not None and clear_tail_top == self._tail_top:
            self._tail_span_s += added_s
        else:
            self._tail_top, self._tail_span_s = clear_tail_top, 0.0
        # (1.0 is off: a float32 softmax can round a sure answer up to exactly 1.0.)
        sure = confirm is not None and s.sure_tail < 1.0
        sure_tail_top = clear_lead(confirm, s.sure_tail, s.min_margin) if sure else None
        self._previous_top = top
        # The switch lies somewhere in the speech this window added: on average half a hop
        # before the point where the new language fills half the window.
        since_s = max(segment_start_s, t_end_s - window_s / 2 - min(added_s, window_s) / 2)
        dwell_ok = t_end_s - self._changed_at_s >= s.min_dwell_s
        # A window that still names the current language clearly holds it up against a row of
        # tails: a second of one language that a small model hears as its neighbour (Italian
        # as Spanish) fills three tails in a row, while the whole window still hears Italian.
        holds_current = self.current is not None and self._clear_lead(probs) == self.current

        change: Change | None = None
        if self.current is None or nested:
            # A first answer; or a better look at the same speech: a window that holds all of
            # the previous one's audio and more (the growing first window of a segment) is not
            # a second, independent look but a fuller one, so the answer follows its clear lead
            # without the hysteresis a switch needs (a first guess from one second of speech
            # must not hold for seconds against the next half second's clearer answer).
            bar = s.min_confidence
            short = window_s <= s.short_look_s + LOOK_SLACK_S
            if self.current is None and short and s.sure_tail < 1.0:
                bar = max(bar, s.sure_tail)
            lead = clear_lead(self._smoothed, bar, s.min_margin)
            if lead is not None and lead != self.current:
                # A first answer covers the whole window (from the segment's start, early on).
                change = Change(self.current, lead, max(segment_start_s, t_end_s - window_s))
        elif top != self.current and candidate != self.current and confirmed and dwell_ok:
            # The window challenges the current language and the evidence (window and tail
            # together) leads clearly with the newcomer; a tail that still hears the current
            # language makes the current one the evidence's lead, which vetoes the switch.
            if self._clear_lead(evidence) is not None:
                change = Change(self.current, candidate, since_s)
                self._smoothed = evidence.copy()  # start the new language from fresh evidence
        elif (
            tail_switch := self._tail_switch(sure_tail_top, look_s, holds_current)
        ) is not None and dwell_ok:
            # The switch lies within the tail.
            change = Change(self.current, tail_switch, max(segment_start_s, t_end_s - window_s / 2))
            self._smoothed = np.asarray(confirm, np.float64).copy()
        # Unknown only when nothing else is clearly heard either (a strong challenger that is
        # not yet confirmed keeps the current language until it is), and, like a switch, only
        # on a second look: one murky window (the first second after a pause, a cough) does
        # not erase the answer.
        elif (
            self._smoothed[self.current] < s.min_confidence / 2
            and _lead(self._smoothed)[1] < s.min_confidence
        ):
            self._weak_s = 0.0 if self._weak_updates == 0 else self._weak_s + added_s
            self._weak_updates += 1
            if self._weak_updates >= 2 and self._weak_s >= look_s and dwell_ok:
                change = Change(self.current, None, t_end_s)
        if change is not None or (
            self.current is not None and self._smoothed[self.current] >= s.min_confidence / 2
        ):
            self._weak_updates = 0

        if change is not None and self._named_before_reset is not None:
            before, self._named_before_reset = self._named_before_reset, None
            if change.current == before:
                self.current, change = before, None
            else:
                change = Change(before, change.current, change.since_s)
        if change is not None:
            self.current = change.current
            self._changed_at_s = t_end_s
        confidence = 0.0 if self.current is None else float(self._smoothed[self.current])
        return Decision(self._smoothed.copy(), self.current, confidence, change)
