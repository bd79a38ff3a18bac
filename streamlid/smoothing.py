"""Smoother: steady language probabilities and a current language that does not flicker.

Two jobs, kept apart:
- *Smoothing* for display: an exponential moving average of window probabilities whose weight
  follows stream time (`time_constant_s`), so a pause lets old evidence fade.
- *Deciding* the current language, with hysteresis. Naming a language needs a clear lead
  (`min_confidence`, `min_margin`). Switching to another needs that lead *and* a second,
  independent look: either the previous window already said so, or the window's last
  `confirm_window` seconds (classified separately, see `wants_confirmation`) agree. A single odd
  window can therefore never flip the answer, yet a real switch is confirmed by the first window
  in which the new language dominates: with 3 s windows and a 1 s hop, that is 1.5-2.5 s after
  the switch, where per-window argmax needs 2-3.5 s. After a switch, `min_dwell_s` must pass
  before the next. When the evidence for the current language fades below half of
  `min_confidence` and no other language is clearly heard, twice in a row, the answer
  becomes unknown (None) rather than a guess.
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
    hop_s: float = 1.0  # only used to estimate when a detected switch began


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


def _lead(probs: np.ndarray) -> tuple[int, float, float]:
    """(top index, its probability, its margin over the runner-up)."""
    if len(probs) == 1:
        return 0, float(probs[0]), float(probs[0])
    second, first = np.argpartition(probs, -2)[-2:]
    if probs[second] > probs[first]:
        first, second = second, first
    return int(first), float(probs[first]), float(probs[first] - probs[second])


class Smoother:
    def __init__(self, n_labels: int, settings: SmootherSettings | None = None) -> None:
        self.n_labels = n_labels
        self.settings = settings or SmootherSettings()
        self.reset()

    def reset(self) -> None:
        self._smoothed = np.full(self.n_labels, 1.0 / self.n_labels)
        self._t_last_s: float | None = None
        self._t_start_last_s: float | None = None
        self._previous_top: int | None = None
        self._weak_updates = 0  # consecutive updates in which the current language was weak
        self.current: int | None = None
        self._changed_at_s = -math.inf

    def wants_confirmation(self, probs: np.ndarray) -> bool:
        """True when this window challenges the current language, so its tail is worth a look."""
        top = int(np.argmax(probs))
        return self.current is not None and top != self.current

    def update(
        self,
        t_end_s: float,
        probs: np.ndarray,
        *,
        window_s: float,
        segment_start_s: float,
        confirm: np.ndarray | None = None,
        t_start_s: float | None = None,
    ) -> Decision:
        """Takes one window's probabilities (and, if the worker ran it, its tail's).

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
        confirmed = candidate == self._previous_top or (
            confirm is not None and int(np.argmax(confirm)) == candidate
        )
        self._previous_top = top
        since_s = max(segment_start_s, t_end_s - window_s / 2 - s.hop_s / 2)
        dwell_ok = t_end_s - self._changed_at_s >= s.min_dwell_s

        change: Change | None = None
        if self.current is None:
            lead, p, margin = _lead(self._smoothed)
            if p >= s.min_confidence and margin >= s.min_margin:
                # A first answer covers the whole window (from the segment's start, early on).
                change = Change(None, lead, max(segment_start_s, t_end_s - window_s))
        elif top != self.current and candidate != self.current and confirmed and dwell_ok:
            # The window challenges the current language and the evidence (window and tail
            # together) leads clearly with the newcomer; a tail that still hears the current
            # language makes the current one the evidence's lead, which vetoes the switch.
            _, p, margin = _lead(evidence)
            if p >= s.min_confidence and margin >= s.min_margin:
                change = Change(self.current, candidate, since_s)
                self._smoothed = evidence.copy()  # start the new language from fresh evidence
        # Unknown only when nothing else is clearly heard either (a strong challenger that is
        # not yet confirmed keeps the current language until it is), and, like a switch, only
        # on a second look: one murky window (the first second after a pause, a cough) does
        # not erase the answer.
        elif (
            self._smoothed[self.current] < s.min_confidence / 2
            and _lead(self._smoothed)[1] < s.min_confidence
        ):
            self._weak_updates += 1
            if self._weak_updates >= 2 and dwell_ok:
                change = Change(self.current, None, t_end_s)
        if change is not None or (
            self.current is not None and self._smoothed[self.current] >= s.min_confidence / 2
        ):
            self._weak_updates = 0

        if change is not None:
            self.current = change.current
            self._changed_at_s = t_end_s
        confidence = 0.0 if self.current is None else float(self._smoothed[self.current])
        return Decision(self._smoothed.copy(), self.current, confidence, change)
