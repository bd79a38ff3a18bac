"""Windower: which windows come out of gated frames, when, and with which stream times.

Frames carry samples whose value is their absolute sample index, so every window shows exactly
which audio it holds. Most tests use 20 ms frames so that every boundary of the default
settings (1 s, 0.5 s, 3 s) falls on a frame edge and times can be checked exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from streamlid.audio import SAMPLE_RATE_HZ
from streamlid.windows import Window, Windower

EPS_S = 1e-9


def feed_script(
    windower: Windower, script: list[tuple[float, bool]], frame_ms: int = 20
) -> list[Window]:
    """Feeds (seconds, is_speech) spans as gated frames from stream time 0."""
    frame_n = SAMPLE_RATE_HZ * frame_ms // 1000
    index, out = 0, []
    for seconds, is_speech in script:
        for _ in range(round(seconds * 1000 / frame_ms)):
            samples = np.arange(index, index + frame_n, dtype=np.float32)
            out += windower.feed(index, samples, is_speech)
            index += frame_n
    return out


def speech_spans(script: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    spans, t = [], 0.0
    for seconds, is_speech in script:
        if is_speech:
            spans.append((t, t + seconds))
        t += seconds
    return spans


def stream_time_after_speech(spans: list[tuple[float, float]], speech_s: float) -> float:
    """Stream time at which `speech_s` seconds of speech have been heard."""
    for a, b in spans:
        if speech_s <= (b - a) + EPS_S:
            return a + speech_s
        speech_s -= b - a
    raise AssertionError("beyond the speech in the script")


def stream_time_of_speech_offset(spans: list[tuple[float, float]], speech_s: float) -> float:
    """Stream time of the speech sample that comes `speech_s` seconds into the speech."""
    for a, b in spans:
        if speech_s < (b - a) - EPS_S:
            return a + speech_s
        speech_s -= b - a
    raise AssertionError("beyond the speech in the script")


def emission_points(speech_s: float, window_s: float, hop_s: float, min_speech_s: float):
    """Seconds of segment speech at which windows are due: at min_speech, every half hop
    until the window is full, then every hop."""
    points, v = [], min(min_speech_s, window_s)
    while v <= speech_s + EPS_S:
        points.append(v)
        v = min(v + hop_s / 2, window_s) if v < window_s - EPS_S else v + hop_s
    return points


def assert_holds_exactly(window: Window, spans: list[tuple[float, float]]) -> None:
    """The window's samples are the speech between its start and end, nothing else."""
    indices = window.samples.astype(np.int64)
    assert indices[0] == round(window.t_start_s * SAMPLE_RATE_HZ)
    assert indices[-1] + 1 == round(window.t_end_s * SAMPLE_RATE_HZ)
    assert np.all(np.diff(indices) > 0)
    in_speech = np.zeros(len(indices), dtype=bool)
    for a, b in spans:
        in_speech |= (indices >= round(a * SAMPLE_RATE_HZ)) & (indices < round(b * SAMPLE_RATE_HZ))
    assert in_speech.all(), "a window holds audio the gate called silence"
    # Nothing in between was skipped: every speech sample from first to last is there.
    expected = sum(
        max(0, min(b * SAMPLE_RATE_HZ, indices[-1] + 1) - max(a * SAMPLE_RATE_HZ, indices[0]))
        for a, b in spans
    )
    assert len(indices) == round(expected)


def test_silence_yields_no_windows():
    windower = Windower()
    assert feed_script(windower, [(30.0, False)]) == []
    assert windower.flush() == []


@pytest.mark.parametrize(
    ("window_s", "hop_s", "min_speech_s"),
    [(3.0, 1.0, 1.0), (2.0, 0.4, 0.6), (4.0, 2.0, 1.0), (3.0, 1.0, 3.0)],
)
def test_continuous_speech_early_windows_then_every_hop(window_s, hop_s, min_speech_s):
    script = [(2.0, False), (9.0, True)]
    windows = feed_script(Windower(window_s, hop_s, min_speech_s, pause_s=1.0), script)
    due = emission_points(9.0, window_s, hop_s, min_speech_s)
    assert [w.t_end_s for w in windows] == pytest.approx([2.0 + v for v in due], abs=EPS_S)
    for window, v in zip(windows, due, strict=True):
        assert window.duration_s == pytest.approx(min(v, window_s), abs=EPS_S)
        assert window.t_start_s == pytest.approx(window.t_end_s - window.duration_s, abs=EPS_S)
        assert window.segment_start_s == pytest.approx(2.0, abs=EPS_S)
        assert_holds_exactly(window, speech_spans(script))


def test_default_settings_give_the_first_answer_after_one_second_of_speech():
    windows = feed_script(Windower(), [(0.5, False), (4.0, True)])
    assert [w.t_end_s for w in windows] == pytest.approx([1.5, 2.0, 2.5, 3.0, 3.5, 4.5])


def test_thirty_ms_frames_keep_the_cadence_on_the_hop_grid():
    """With the default 30 ms gate frames the due times do not all fall on frame edges: each
    window comes at the first frame edge at or after it is due, and the hop does not stretch
    (40 s of speech gives the windows of 40 s, not of 39)."""
    frame_s = 0.03
    windows = feed_script(Windower(3.0, 1.0, 1.0), [(40.5, True)], frame_ms=30)
    due = emission_points(40.5, 3.0, 1.0, 1.0)
    assert len(windows) == len(due)
    for window, due_s in zip(windows, due, strict=True):
        assert due_s - EPS_S <= window.t_end_s < due_s + frame_s
        assert window.duration_s == pytest.approx(min(window.t_end_s, 3.0), abs=EPS_S)


def test_short_pauses_are_left_out_of_windows_but_counted_in_stream_time():
    script = [(2.0, True), (0.5, False), (4.0, True)]  # 0.5 s pause < pause_s
    windows = feed_script(Windower(3.0, 1.0, 1.0, pause_s=1.0), script)
    spans = speech_spans(script)
    due = emission_points(6.0, 3.0, 1.0, 1.0)
    assert len(windows) == len(due)
    for window, v in zip(windows, due, strict=True):
        assert window.t_end_s == pytest.approx(stream_time_after_speech(spans, v), abs=EPS_S)
        expected_start = stream_time_of_speech_offset(spans, max(0.0, v - 3.0))
        assert window.t_start_s == pytest.approx(expected_start, abs=EPS_S)
        assert window.segment_start_s == 0.0
        assert_holds_exactly(window, spans)
    # The first full window spans 3.5 s of stream time for its 3 s of speech.
    full = next(w for w in windows if w.duration_s >= 3.0 - EPS_S)
    assert full.t_end_s - full.t_start_s == pytest.approx(3.5, abs=EPS_S)


def test_end_of_an_utterance_is_classified_when_enough_is_new():
    # 4.6 s of speech: windows due at 1, 1.5, 2, 2.5, 3, 4; 0.6 s after the last is new.
    windows = feed_script(Windower(3.0, 1.0, 1.0, pause_s=1.0), [(4.6, True), (0.2, False)])
    assert [w.t_end_s for w in windows][-2:] == pytest.approx([4.0, 4.6])
    assert windows[-1].t_start_s == pytest.approx(1.6)


def test_end_of_an_utterance_is_not_classified_again_when_little_is_new():
    windows = feed_script(Windower(3.0, 1.0, 1.0, pause_s=1.0), [(4.2, True), (0.2, False)])
    assert windows[-1].t_end_s == pytest.approx(4.0)


@pytest.mark.parametrize("pause_s", [1.0, 2.5])
def test_a_long_pause_starts_a_fresh_segment_with_early_windows(pause_s):
    script = [(4.6, True), (pause_s, False), (2.6, True)]
    windows = feed_script(Windower(3.0, 1.0, 1.0, pause_s=1.0), script)
    resume_s = 4.6 + pause_s
    second = [w for w in windows if w.t_end_s > resume_s]
    assert [w.t_end_s - resume_s for w in second] == pytest.approx([1.0, 1.5, 2.0, 2.5])
    for window in second:
        assert window.segment_start_s == pytest.approx(resume_s)
        assert window.t_start_s == pytest.approx(resume_s)  # nothing from before the pause
        assert_holds_exactly(window, speech_spans(script))


def test_a_pause_just_shorter_than_pause_s_continues_the_segment():
    script = [(4.6, True), (0.96, False), (2.6, True)]
    windows = feed_script(Windower(3.0, 1.0, 1.0, pause_s=1.0), script)
    resume_s = 4.6 + 0.96
    second = [w for w in windows if w.t_end_s > resume_s]
    # The last window came at 4.6 s of speech; the next is due a hop later, no early ones.
    assert [w.t_end_s - resume_s for w in second] == pytest.approx([1.0, 2.0])
    assert all(w.segment_start_s == 0.0 for w in second)
    assert all(w.duration_s == pytest.approx(3.0) for w in second)
    assert second[0].t_start_s < 4.6  # reaches back across the pause


def test_flush_classifies_trailing_speech_no_window_covered():
    windower = Windower(3.0, 1.0, 1.0)
    windows = feed_script(windower, [(3.6, True)])
    assert windows[-1].t_end_s == pytest.approx(3.0)
    flushed = windower.flush()
    assert len(flushed) == 1
    assert flushed[0].t_end_s == pytest.approx(3.6)
    assert flushed[0].t_start_s == pytest.approx(0.6)
    assert_holds_exactly(flushed[0], [(0.0, 3.6)])


@pytest.mark.parametrize("speech_s", [3.2, 0.8])
def test_flush_skips_what_is_covered_or_too_short(speech_s):
    # 3.2 s: only 0.2 s is new since the 3 s window (less than half a hop).
    # 0.8 s: less than min_speech, too little to classify at all.
    windower = Windower(3.0, 1.0, 1.0)
    feed_script(windower, [(speech_s, True)])
    assert windower.flush() == []


def test_flush_resets_so_the_next_speech_starts_afresh():
    windower = Windower(3.0, 1.0, 1.0)
    feed_script(windower, [(5.0, True)])
    windower.flush()
    later = []
    index = 10 * SAMPLE_RATE_HZ
    for _ in range(50):  # 1 s of speech in 20 ms frames
        later += windower.feed(index, np.zeros(320, np.float32), True)
        index += 320
    assert len(later) == 1
    assert later[0].segment_start_s == pytest.approx(10.0)
    assert later[0].duration_s == pytest.approx(1.0)


def test_min_speech_longer_than_the_window_is_capped_at_the_window():
    windows = feed_script(Windower(2.0, 1.0, 5.0), [(4.0, True)])
    assert windows[0].t_end_s == pytest.approx(2.0)
