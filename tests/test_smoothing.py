"""Smoother: scripted window probabilities, no model.

A stream is scripted as "which language is spoken when". Each window's probabilities mix the
languages in proportion to how much of the window each one fills, and so does the tail of the
last `confirm_window` seconds, which is passed as `confirm=` only when the product's rule
(`wants_tail_check`) asks for it, exactly as the worker does. Window times
come from the real Windower. The last test runs the real Worker with a stand-in model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
from harness import make_config
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlid.audio import SAMPLE_RATE_HZ
from streamlid.audio.ring import RingBuffer
from streamlid.events import LanguageChange, Prediction
from streamlid.smoothing import Change, Decision, Smoother, SmootherSettings, wants_tail_check
from streamlid.stream import StreamState
from streamlid.windowqueue import WindowQueues
from streamlid.windows import Window, Windower
from streamlid.worker import Worker

N_LABELS = 8
CONFIRM_S = 1.5  # the default confirm-window
SWITCH_BOUND_S = 2.5  # a clean switch is reported within this much stream time

Probs = Callable[[float, float], np.ndarray]  # (t_start_s, t_end_s) -> probabilities


def pure(language: int, p: float = 0.9) -> np.ndarray:
    """What a window entirely in `language` scores: p for it, the rest spread evenly."""
    probs = np.full(N_LABELS, (1.0 - p) / (N_LABELS - 1))
    probs[language] = p
    return probs


def share_after(t_start_s: float, t_end_s: float, switch_s: float) -> float:
    """Fraction of [t_start_s, t_end_s] that lies after `switch_s`."""
    length = t_end_s - t_start_s
    return float(np.clip(t_end_s - max(t_start_s, switch_s), 0.0, length) / length)


def clean_switch(a: int, b: int, switch_s: float) -> Probs:
    def probs(t_start_s: float, t_end_s: float) -> np.ndarray:
        f = share_after(t_start_s, t_end_s, switch_s)
        return (1.0 - f) * pure(a) + f * pure(b)

    return probs


def speech_windows(
    spans: list[tuple[float, float]], window_s: float = 3.0, hop_s: float = 1.0
) -> list[Window]:
    """The windows the real Windower cuts from speech at the given (start, end) stream times."""
    windower = Windower(window_s, hop_s, min_speech_s=1.0, pause_s=1.0)
    frame_n = SAMPLE_RATE_HZ // 50  # 20 ms
    frame = np.zeros(frame_n, np.float32)
    end_n = round(spans[-1][1] * SAMPLE_RATE_HZ)
    windows = []
    for index in range(0, end_n, frame_n):
        t = index / SAMPLE_RATE_HZ
        speaking = any(a <= t < b for a, b in spans)
        windows += windower.feed(index, frame, speaking)
    return windows + windower.flush()


def run_smoother(
    windows: list[Window],
    probs: Probs,
    tail: Probs | None = None,
    smoother: Smoother | None = None,
    tails: bool = True,
    **settings_: float,
) -> list[tuple[Window, Decision]]:
    """Feeds every window as the worker does, one window per batch; `tail` scores the
    confirmation tail (defaults to the same script as the windows); `tails=False` as for
    windows too short for a tail."""
    smoother = smoother or Smoother(N_LABELS, SmootherSettings(**settings_))
    tail = tail or probs
    confirm_n = round(CONFIRM_S * SAMPLE_RATE_HZ)
    out = []
    for window in windows:
        p = probs(window.t_start_s, window.t_end_s)
        confirm = None
        top = int(np.argmax(p))
        if tails and wants_tail_check(smoother.current, top, len(window.samples), confirm_n):
            confirm = tail(window.t_end_s - CONFIRM_S, window.t_end_s)
        decision = smoother.update(
            window.t_end_s,
            p,
            window_s=window.duration_s,
            segment_start_s=window.segment_start_s,
            confirm=confirm,
            t_start_s=window.t_start_s,
            hop_s=window.hop_s,
        )
        out.append((window, decision))
    return out


def changes(run: list[tuple[Window, Decision]]) -> list[tuple[float, int | None, int | None]]:
    return [(w.t_end_s, d.change.previous, d.change.current) for w, d in run if d.change]


PHASES_S = [round(0.1 * i, 1) for i in range(10)]


@pytest.mark.parametrize("phase_s", PHASES_S)
@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 0), (5, 2)])
@pytest.mark.parametrize("hop_s", [1.0, 0.5])
def test_clean_switch_is_reported_within_bound(phase_s, a, b, hop_s):
    switch_s = 10.0 + phase_s
    windows = speech_windows([(0.0, 20.0)], window_s=3.0, hop_s=hop_s)
    run = run_smoother(windows, clean_switch(a, b, switch_s))
    found = changes(run)
    assert found[0] == (windows[0].t_end_s, None, a), "A is named by the first window"
    assert len(found) == 2, f"expected one switch and no flicker, got {found}"
    t_s, previous, current = found[1]
    assert (previous, current) == (a, b)
    assert switch_s < t_s <= switch_s + SWITCH_BOUND_S + 1e-9
    # Never "unknown" in between: the answer goes straight from A to B.
    assert all(d.current is not None for _, d in run)
    # The estimated start of B is close to the true switch (the summary relies on it).
    change = next(d.change for w, d in run if w.t_end_s == t_s)
    assert abs(change.since_s - switch_s) <= hop_s / 2 + 0.5 + 1e-9


def test_without_confirmation_tails_a_switch_still_comes_but_later():
    """The tails are what make the switch fast; without them two windows must agree."""
    switch_s = 10.0
    windows = speech_windows([(0.0, 20.0)])
    smoother = Smoother(N_LABELS)
    run = []
    for window in windows:
        p = clean_switch(0, 1, switch_s)(window.t_start_s, window.t_end_s)
        run.append(
            (
                window,
                smoother.update(
                    window.t_end_s,
                    p,
                    window_s=window.duration_s,
                    segment_start_s=window.segment_start_s,
                ),
            )
        )
    with_tails = changes(run_smoother(windows, clean_switch(0, 1, switch_s)))[1][0]
    without = changes(run)[1][0]
    assert with_tails < without <= switch_s + 3.5


@settings(max_examples=150, deadline=None)
@given(
    position=st.integers(1, 18),
    outlier=st.integers(1, N_LABELS - 1),
    strength=st.floats(0.5, 1.0),
    tail_kind=st.sampled_from(["a", "none", "weak"]),
    hop_s=st.sampled_from([1.0, 0.5]),
)
def test_a_single_outlier_window_never_flips_the_answer(
    position, outlier, strength, tail_kind, hop_s
):
    """Full windows are independent looks: one odd one never moves the answer. (A growing
    first window is not: see the revision test below.)"""
    a = 0
    windows = speech_windows([(0.0, 15.0)], hop_s=hop_s)
    full = [w for w in windows if w.duration_s >= 3.0 - 1e-6]
    odd = full[min(position, len(full) - 1)]

    def probs(t_start_s: float, t_end_s: float) -> np.ndarray:
        if (t_start_s, t_end_s) == (odd.t_start_s, odd.t_end_s):
            return pure(outlier, strength)
        return pure(a)

    def tail(t_start_s: float, t_end_s: float) -> np.ndarray:
        if tail_kind == "weak":  # the tail leans A, without conviction
            return 0.6 * pure(a) + 0.4 * pure(outlier)
        return pure(a)

    run = run_smoother(windows, probs, tail, tails=tail_kind != "none")
    assert [d.current for _, d in run] == [a] * len(run)


@pytest.mark.parametrize("hop_s", [1.0, 0.5])
def test_a_growing_first_window_revises_its_first_answer_without_a_second_look(hop_s):
    """The first answer after a pause comes from one second of speech. The windows after it
    start at the same moment and hold all of its audio and more: a fuller look at the same
    speech, not a second opinion, so their clear lead replaces the guess at once instead of
    waiting out a switch's hysteresis (a stand-in model heard French in the first second of
    "Good morning" and the English answer then came 2.2 s after the onset)."""
    windows = speech_windows([(1.0, 12.0)], hop_s=hop_s)
    first, second = windows[0], windows[1]
    assert second.t_start_s == first.t_start_s and second.duration_s > first.duration_s

    def probs(t_start_s: float, t_end_s: float) -> np.ndarray:
        return pure(3, 0.8) if t_end_s == first.t_end_s else pure(0, 0.6)

    run = run_smoother(windows, probs, tails=False)
    assert changes(run) == [(first.t_end_s, None, 3), (second.t_end_s, 3, 0)]
    # Unclear fuller windows leave the first answer as it is.
    unclear = run_smoother(
        windows,
        lambda t0, t1: pure(3, 0.8) if t1 == first.t_end_s else np.full(N_LABELS, 0.125),
        tails=False,
    )
    assert changes(unclear)[:1] == [(first.t_end_s, None, 3)]
    assert all(d.current == 3 for w, d in unclear if w.t_start_s == first.t_start_s)


def test_two_agreeing_windows_do_switch():
    """The counterpart of the outlier test: without tails, the same odd answer twice in a row
    is a switch (the second window confirms the first)."""
    windows = speech_windows([(0.0, 15.0)])
    odd = {windows[8].t_end_s, windows[9].t_end_s}
    run = run_smoother(windows, lambda t0, t1: pure(3) if t1 in odd else pure(0), tails=False)
    assert changes(run)[1] == (windows[9].t_end_s, 0, 3)


def test_one_murky_window_does_not_erase_the_answer_but_two_do():
    """Dropping to unknown takes a second look too: a single window where no language stands
    out keeps the current one; murk that lasts makes the answer unknown."""
    windows = speech_windows([(0.0, 20.0)])
    murky = np.full(N_LABELS, 1.0 / N_LABELS)
    once = {windows[8].t_end_s}
    run = run_smoother(
        windows, lambda t0, t1: murky if t1 in once else pure(0), time_constant_s=0.3
    )
    assert [(p, c) for _, p, c in changes(run)] == [(None, 0)]

    lasting = {w.t_end_s for w in windows[8:12]}
    run = run_smoother(
        windows, lambda t0, t1: murky if t1 in lasting else pure(0), time_constant_s=0.3
    )
    found = changes(run)
    assert [(p, c) for _, p, c in found][:2] == [(None, 0), (0, None)]
    assert found[1][0] == windows[9].t_end_s  # on the second murky window, not the first


def test_a_tail_that_still_hears_the_current_language_vetoes_the_switch():
    """Two windows in a row lean to another language, but the second one's last 1.5 s is
    clearly still the current language: that is a wobble, not a switch."""
    windows = speech_windows([(0.0, 15.0)])
    odd = {windows[8].t_end_s, windows[9].t_end_s}
    run = run_smoother(
        windows,
        lambda t0, t1: pure(3, 0.45) if t1 in odd else pure(0),
        tail=lambda t0, t1: pure(0, 0.95),
    )
    assert [(p, c) for _, p, c in changes(run)] == [(None, 0)]


@pytest.mark.parametrize(
    "probs",
    [
        np.full(N_LABELS, 1.0 / N_LABELS),  # uniform
        np.array([0.45, 0.40, 0.03, 0.03, 0.03, 0.02, 0.02, 0.02]),  # weak lead
        np.array([0.58, 0.40, 0.01, 0.01, 0.0, 0.0, 0.0, 0.0]),  # confident but no margin
    ],
    ids=["uniform", "weak", "no-margin"],
)
def test_weak_evidence_stays_unknown(probs):
    run = run_smoother(speech_windows([(0.0, 20.0)]), lambda t0, t1: probs)
    assert all(d.current is None and d.change is None for _, d in run)
    assert all(d.confidence == 0.0 for _, d in run)
    np.testing.assert_allclose(run[-1][1].smoothed, probs, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.floats(0.0, 1.0), min_size=N_LABELS, max_size=N_LABELS),
        min_size=1,
        max_size=12,
    )
)
def test_no_window_reaching_min_confidence_means_no_answer(rows):
    """Windows that each give every language less than min_confidence never name one."""
    cleaned = []
    for row in rows:
        p = np.asarray(row) + 1e-3
        p = p / p.sum()
        if p.max() < 0.5:
            cleaned.append(p)
    if not cleaned:
        return
    windows = speech_windows([(0.0, 3.0 + len(cleaned))])[: len(cleaned)]
    by_end = {w.t_end_s: p for w, p in zip(windows, cleaned, strict=False)}
    run = run_smoother(windows, lambda t0, t1: by_end[t1])
    assert all(d.current is None for _, d in run)
    for _, d in run:
        assert d.smoothed.sum() == pytest.approx(1.0)


def test_first_answer_comes_from_the_first_window_of_a_stream():
    windows = speech_windows([(5.0, 12.0)])  # five seconds of silence first
    run = run_smoother(windows, lambda t0, t1: pure(4))
    first_window, first = run[0]
    assert first.change is not None
    assert (first.change.previous, first.change.current) == (None, 4)
    assert first_window.t_end_s == pytest.approx(6.0)
    assert first.change.since_s == pytest.approx(5.0)  # the language began with the speech


def test_after_a_pause_an_unknown_stream_answers_on_the_first_window():
    spans = [(0.0, 5.0), (8.0, 14.0)]
    windows = speech_windows(spans)
    uniform = np.full(N_LABELS, 1.0 / N_LABELS)
    run = run_smoother(windows, lambda t0, t1: uniform if t1 <= 5.0 else pure(2))
    before = [d for w, d in run if w.t_end_s <= 5.0]
    after = [(w, d) for w, d in run if w.t_end_s > 8.0]
    assert all(d.current is None for d in before)
    first_window, first = after[0]
    assert first_window.segment_start_s == pytest.approx(8.0)
    assert first_window.t_end_s == pytest.approx(9.0)
    assert first.change is not None and first.change.current == 2


def test_after_a_pause_in_another_language_the_answer_switches_straight_to_it():
    """A then a pause then B: the first window of the new segment challenges A, the next one,
    half a hop later, confirms B. The answer goes from A to B without passing through
    unknown, so a pause never produces two change events."""
    spans = [(0.0, 5.0), (8.0, 14.0)]
    windows = speech_windows(spans)
    run = run_smoother(windows, lambda t0, t1: pure(0) if t1 <= 5.0 else pure(1))
    assert run[0][1].current == 0
    after = [(w, d) for w, d in run if w.t_end_s > 8.0]
    assert after[0][1].current == 0
    assert after[1][1].current == 1
    assert after[1][0].t_end_s - after[0][0].t_end_s == pytest.approx(0.5)
    assert [(p, c) for _, p, c in changes(run)] == [(None, 0), (0, 1)]


def test_after_a_pause_in_the_same_language_the_answer_holds():
    spans = [(0.0, 5.0), (8.0, 14.0)]
    run = run_smoother(speech_windows(spans), lambda t0, t1: pure(0))
    assert [d.current for _, d in run] == [0] * len(run)
    assert len(changes(run)) == 1


@pytest.mark.parametrize("min_dwell_s", [0.0, 5.0])
def test_dwell_time_is_respected(min_dwell_s):
    """A for 8 s, B for 3 s, then A again: with a long dwell the switch back waits."""

    def script(t_start_s: float, t_end_s: float) -> np.ndarray:
        f = share_after(t_start_s, t_end_s, 8.0) - share_after(t_start_s, t_end_s, 11.0)
        return (1.0 - f) * pure(0) + f * pure(1)

    run = run_smoother(speech_windows([(0.0, 25.0)]), script, min_dwell_s=min_dwell_s)
    found = changes(run)
    assert [(p, c) for _, p, c in found] == [(None, 0), (0, 1), (1, 0)]
    gaps = np.diff([t for t, _, _ in found[1:]])
    assert gaps[0] >= min_dwell_s - 1e-9
    if min_dwell_s == 0.0:
        assert gaps[0] < 5.0, "the scenario must be one where the dwell matters"


def test_smoothed_follows_time_not_window_count():
    """Over the same stream time, many close windows move the estimate as much as few."""
    a, b = pure(0), pure(1)

    def smoothed_after(hop_s: float) -> np.ndarray:
        smoother = Smoother(N_LABELS, SmootherSettings(time_constant_s=2.0))
        smoother.update(1.0, a, window_s=1.0, segment_start_s=0.0)
        t = 1.0
        while t < 3.0 - 1e-9:
            t += hop_s
            decision = smoother.update(t, b, window_s=3.0, segment_start_s=0.0)
        return decision.smoothed

    np.testing.assert_allclose(smoothed_after(1.0), smoothed_after(0.25), atol=1e-9)


def test_reset_forgets_everything():
    smoother = Smoother(N_LABELS)
    smoother.update(1.0, pure(3), window_s=1.0, segment_start_s=0.0)
    assert smoother.current == 3
    smoother.reset()
    assert smoother.current is None
    assert not wants_tail_check(smoother.current, 5, 48000, 24000)


def test_a_reset_is_no_change_of_language():
    """After `r` the first answer naming the language heard before is no change (it was counted
    as one, from None); naming another is a change from the one before the reset."""
    smoother = Smoother(N_LABELS)
    first = smoother.update(1.0, pure(3), window_s=1.0, segment_start_s=0.0)
    assert first.change is not None and first.change.previous is None  # a first answer
    smoother.reset()
    decisions = [
        smoother.update(t, pure(3), window_s=3.0, segment_start_s=0.0) for t in (4.0, 5.0, 6.0)
    ]
    assert [d.change for d in decisions] == [None, None, None]
    assert decisions[0].current == 3 and smoother.current == 3

    smoother.reset()
    decision = smoother.update(7.0, pure(5), window_s=3.0, segment_start_s=7.0 - 3.0)
    assert decision.change is not None
    assert (decision.change.previous, decision.change.current) == (3, 5)
    smoother.reset()
    smoother.reset()  # twice before an answer: the language before still counts
    decision = smoother.update(8.0, pure(6), window_s=3.0, segment_start_s=5.0)
    assert decision.change is not None and decision.change.previous == 5


# -- the real worker, with a stand-in model -----------------------------------------------------


class SignModel:
    """Scores audio by its content: positive samples are language 0, negative ones language 1,
    so a window (or tail) scores in proportion to how much of it each language fills."""

    labels = tuple(f"l{i:02d}" for i in range(N_LABELS))

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def classify(self, windows: list[np.ndarray]) -> np.ndarray:
        self.calls.append([len(w) for w in windows])
        return np.stack(
            [(1 - f) * pure(0) + f * pure(1) for f in (np.mean(w < 0) for w in windows)]
        )


@pytest.mark.parametrize("phase_s", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("batch", [1, 8])
def test_worker_reports_a_clean_switch_within_bound(phase_s, batch):
    switch_s = 10.0 + phase_s
    config = make_config(batch=batch)
    windower = Windower(config.window, config.hop, config.min_speech, config.pause)
    frame_n = SAMPLE_RATE_HZ * config.vad_frame_ms // 1000
    queues = WindowQueues()
    queues.add_stream("s", capacity=10_000, live=False)
    stop = threading.Event()
    for index in range(0, 20 * SAMPLE_RATE_HZ, frame_n):
        t = np.arange(index, index + frame_n) / SAMPLE_RATE_HZ
        frame = np.where(t < switch_s, 0.5, -0.5).astype(np.float32)
        for window in windower.feed(index, frame, True):
            queues.put("s", window, stop)
    queues.close_stream("s")

    model = SignModel()
    source = SimpleNamespace(live=False, sample_rate_hz=SAMPLE_RATE_HZ)
    state = StreamState("s", source, RingBuffer(SAMPLE_RATE_HZ), Smoother(N_LABELS))
    events, errors = [], []
    worker = Worker(
        model,
        {"s": state},
        queues,
        config,
        events.append,
        stop,
        on_error=errors.append,
    )
    worker.start()
    assert worker.join(30.0)
    assert errors == []

    switches = [e for e in events if isinstance(e, LanguageChange)]
    assert [(e.previous, e.language) for e in switches] == [(None, "l00"), ("l00", "l01")]
    # Windows end on speech-gate frame edges (30 ms), so allow one frame past the bound.
    frame_s = config.vad_frame_ms / 1000
    assert switch_s < switches[1].t_s <= switch_s + SWITCH_BOUND_S + frame_s + 1e-9
    predictions = [e for e in events if isinstance(e, Prediction)]
    assert state.windows == len(predictions) > 10
    assert all(len(p.top) == config.top for p in predictions)
    assert max(max(c) for c in model.calls) == round(config.window * SAMPLE_RATE_HZ)
    tails = [n for call in model.calls for n in call if n == round(CONFIRM_S * SAMPLE_RATE_HZ)]
    assert tails, "the switch was confirmed with a tail"


# A tail that names language 2 clearly (0.7, well ahead of the rest) but not surely: it takes
# two such looks to switch (with `sure_tail` off, the default, or at 0.8).
CLEAR_TAIL_2 = pure(2, 0.7)


def test_tails_that_hear_a_newcomer_twice_switch_before_the_whole_window_does():
    """A switch in the last second or two of a window: the window still leans to the current
    language, but its tail, all new speech, hears the newcomer clearly, though not surely. One
    such tail is not enough (a cough, a name); two, half a second of speech apart, are."""
    smoother = Smoother(N_LABELS)
    for t in (3.0, 4.0, 5.0):
        smoother.update(t, pure(0), window_s=3.0, segment_start_s=0.0, hop_s=1.0)
    leaning_a = 0.6 * pure(0) + 0.4 * pure(2)
    first = smoother.update(
        5.25, leaning_a, window_s=3.0, segment_start_s=0.0, confirm=CLEAR_TAIL_2, hop_s=0.25
    )
    assert first.change is None and smoother.current == 0
    second = smoother.update(
        5.75, leaning_a, window_s=3.0, segment_start_s=0.0, confirm=CLEAR_TAIL_2, hop_s=0.5
    )
    assert second.change is not None and (second.change.previous, second.current) == (0, 2)
    # A lone odd tail, then tails that hear the current language again: no switch.
    smoother = Smoother(N_LABELS)
    for t in (3.0, 4.0, 5.0):
        smoother.update(t, pure(0), window_s=3.0, segment_start_s=0.0, hop_s=1.0)
    for t, tail in ((5.25, CLEAR_TAIL_2), (5.75, pure(0)), (6.25, CLEAR_TAIL_2)):
        decision = smoother.update(
            t, leaning_a, window_s=3.0, segment_start_s=0.0, confirm=tail, hop_s=0.5
        )
        assert decision.change is None


def settled_on_language_0() -> Smoother:
    smoother = Smoother(N_LABELS)
    for t in (3.0, 4.0, 5.0):
        smoother.update(t, pure(0), window_s=3.0, segment_start_s=0.0, hop_s=1.0)
    assert smoother.current == 0
    return smoother


@pytest.mark.parametrize(
    ("share_of_newcomer", "switched"),
    # 60/40: the window leans to the current language without naming it clearly, so three
    # clear tails, half a second of speech apart, switch. 80/20: the window still names it
    # clearly and outweighs its tails (a second of Italian that a small model hears as Spanish).
    [(0.4, [(5.75, 0, 2)]), (0.2, [])],
)
def test_a_window_that_still_names_the_language_clearly_outweighs_a_row_of_tails(
    share_of_newcomer, switched
):
    smoother = settled_on_language_0()
    window = (1.0 - share_of_newcomer) * pure(0) + share_of_newcomer * pure(2)
    changed = []
    for t in (5.25, 5.5, 5.75):
        decision = smoother.update(
            t, window, window_s=3.0, segment_start_s=0.0, confirm=CLEAR_TAIL_2, hop_s=0.25
        )
        if decision.change:
            changed.append((t, decision.change.previous, decision.change.current))
    assert changed == switched


@pytest.mark.parametrize("window_share_of_newcomer", [0.4, 0.2])
def test_one_tail_that_names_a_newcomer_surely_switches_at_once(window_share_of_newcomer):
    """With `sure_tail` (0.8), a tail, all recent speech, that names a newcomer surely (0.9)
    switches on that one look, even while the whole window, mostly older speech, still names
    the current language: the second look would cost half a second of speech at every switch.
    The switch is placed within the tail, not at the window's start."""
    smoother = settled_on_language_0()
    smoother.settings = SmootherSettings(sure_tail=0.8)
    window = (1.0 - window_share_of_newcomer) * pure(0) + window_share_of_newcomer * pure(2)
    decision = smoother.update(
        5.25, window, window_s=3.0, segment_start_s=0.0, confirm=pure(2), hop_s=0.25
    )
    assert decision.change == Change(0, 2, 5.25 - 1.5)
    assert decision.current == 2 and decision.confidence == pytest.approx(0.9)


@pytest.mark.parametrize(("sure_tail", "tail_p"), [(0.8, 0.7), (1.0, 1.0)])
def test_a_tail_below_sure_tail_waits_for_a_second_look(sure_tail, tail_p):
    smoother = settled_on_language_0()
    smoother.settings = SmootherSettings(sure_tail=sure_tail)
    window = 0.6 * pure(0) + 0.4 * pure(2)
    decision = smoother.update(
        5.25, window, window_s=3.0, segment_start_s=0.0, confirm=pure(2, tail_p), hop_s=0.25
    )
    assert decision.change is None and smoother.current == 0


def test_tails_that_name_nobody_clearly_make_no_row():
    """A row of tails counts only clear ones: tails that merely lean to a newcomer (0.45
    against 0.30), then one clear tail, are one look at it, not three (the old rule switched
    here, half a second into a murky stretch of one language)."""
    smoother = settled_on_language_0()
    window = 0.8 * pure(0) + 0.2 * pure(2)

    def tail(p_newcomer: float, p_current: float) -> np.ndarray:
        probs = np.full(N_LABELS, (1.0 - p_newcomer - p_current) / (N_LABELS - 2))
        probs[2], probs[0] = p_newcomer, p_current
        return probs

    for t, confirm in ((5.25, tail(0.45, 0.30)), (5.5, tail(0.45, 0.30)), (5.75, tail(0.6, 0.2))):
        decision = smoother.update(
            t, window, window_s=3.0, segment_start_s=0.0, confirm=confirm, hop_s=0.25
        )
        assert decision.change is None


@pytest.mark.parametrize(
    ("window_s", "p", "sure_tail", "named"),
    [
        (1.0, 0.68, 0.8, False),  # one short look, not sure: wait for a fuller one
        (1.0, 0.85, 0.8, True),  # one short look, sure
        (2.0, 0.68, 0.8, True),  # a window longer than a tail: the usual bar
        (1.0, 0.68, 1.0, True),  # sure-tail off: the usual bar
    ],
)
def test_a_first_answer_from_one_short_look_needs_sure_tail(window_s, p, sure_tail, named):
    """The early answer (a window of `min-speech`, no longer than a tail) is a single short
    look, like a tail: it names a language alone only as surely as a tail switches alone."""
    smoother = Smoother(N_LABELS, SmootherSettings(sure_tail=sure_tail, short_look_s=1.5))
    decision = smoother.update(
        window_s, pure(1, p), window_s=window_s, segment_start_s=0.0, t_start_s=0.0
    )
    assert (decision.current == 1) is named
    assert decision.current in (None, 1)
