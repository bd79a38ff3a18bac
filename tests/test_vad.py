"""SpeechGate: silence and hiss are never speech, espeak speech is, hangover bridges word gaps,
and a gap in the sample indices (lost audio) starts the gate afresh."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import silence, speech_onset_s
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlid.vad import SAMPLE_RATE_HZ, SpeechGate, level_dbfs

FRAME_MS = 30
FRAME_N = SAMPLE_RATE_HZ * FRAME_MS // 1000


class ScriptedVad:
    """Stands in for webrtcvad: answers from a script, one verdict per call."""

    def __init__(self, verdicts: list[bool]) -> None:
        self._verdicts = list(verdicts)

    def is_speech(self, pcm: bytes, rate_hz: int) -> bool:
        assert rate_hz == SAMPLE_RATE_HZ
        assert len(pcm) == 2 * FRAME_N
        return self._verdicts.pop(0)


def loud_frames(n_frames: int) -> np.ndarray:
    """Audio well above the energy floor, so the (scripted) VAD gets asked about every frame."""
    t = np.arange(n_frames * FRAME_N) / SAMPLE_RATE_HZ
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rms = 10 ** (dbfs / 20)
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, rms, round(seconds * SAMPLE_RATE_HZ)).astype(np.float32)


def test_digital_silence_is_never_speech():
    gate = SpeechGate(aggressiveness=0)  # the most permissive setting
    frames = gate.feed(0, silence(3.0))
    assert len(frames) == 3 * SAMPLE_RATE_HZ // FRAME_N
    assert not any(f.speech or f.voiced for f in frames)


@pytest.mark.parametrize("dbfs", [-80.0, -60.0, -55.0])
def test_noise_below_the_energy_floor_is_never_speech(dbfs):
    gate = SpeechGate(aggressiveness=0, energy_floor_dbfs=-50.0)
    frames = gate.feed(0, noise(3.0, dbfs))
    assert frames
    assert all(f.level_dbfs < -50.0 for f in frames)
    assert not any(f.speech for f in frames)


def test_energy_floor_is_what_keeps_quiet_audio_out():
    """The same quiet speech passes once the floor is lowered below its level."""
    gate = SpeechGate(energy_floor_dbfs=-50.0)
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    quiet = (0.001 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # about -63 dBFS
    gate._vad = ScriptedVad([True] * 100)
    assert not any(f.voiced for f in gate.feed(0, quiet))
    low_floor = SpeechGate(energy_floor_dbfs=-80.0)
    low_floor._vad = ScriptedVad([True] * 100)
    assert all(f.voiced for f in low_floor.feed(0, quiet))


def test_level_dbfs_of_known_signals():
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    full_scale_sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    assert level_dbfs(full_scale_sine) == pytest.approx(-3.01, abs=0.05)
    assert level_dbfs(0.1 * full_scale_sine) == pytest.approx(-23.01, abs=0.05)
    assert level_dbfs(silence(0.1)) == level_dbfs(np.zeros(0, np.float32))


def test_espeak_speech_is_speech(espeak):
    voice = espeak.samples("en")
    audio = np.concatenate([silence(1.0), voice, silence(1.0)])
    frames = SpeechGate().feed(0, audio)
    start_s = np.array([f.start_index / SAMPLE_RATE_HZ for f in frames])
    end_s = start_s + FRAME_MS / 1000
    is_speech = np.array([f.speech for f in frames])
    onset_s = speech_onset_s(audio)
    voice_end_s = 1.0 + len(voice) / SAMPLE_RATE_HZ
    assert not is_speech[end_s <= onset_s].any(), "leading silence was called speech"
    assert is_speech[(start_s >= onset_s) & (end_s <= voice_end_s)].mean() > 0.8
    # Once the hangover (0.3 s) has run out, the trailing silence is not speech.
    assert not is_speech[start_s >= voice_end_s + 0.35].any()


@pytest.mark.parametrize("voice", ["en", "fr"])
def test_frames_carry_contiguous_absolute_indices(espeak, voice):
    start = 123_456
    frames = SpeechGate().feed(start, espeak.samples(voice))
    assert [f.start_index for f in frames] == [start + i * FRAME_N for i in range(len(frames))]
    assert all(len(f.samples) == FRAME_N for f in frames)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 2000), min_size=1, max_size=20))
def test_chunking_does_not_change_the_verdicts(cuts):
    audio = np.concatenate([loud_frames(20), silence(0.3), loud_frames(20)])
    whole = SpeechGate().feed(0, audio)
    gate = SpeechGate()
    pieces, position = [], 0
    for n in [*cuts, len(audio)]:
        chunk = audio[position : position + n]
        pieces += gate.feed(position, chunk)
        position += len(chunk)
        if position >= len(audio):
            break
    assert [(f.start_index, f.speech, f.voiced) for f in pieces] == [
        (f.start_index, f.speech, f.voiced) for f in whole
    ]


def test_hangover_keeps_the_gate_open_for_exactly_its_length():
    hangover_frames = 5
    gate = SpeechGate(frame_ms=FRAME_MS, hangover_s=hangover_frames * FRAME_MS / 1000)
    script = [True] * 4 + [False] * 8 + [True] * 2 + [False] * 3
    gate._vad = ScriptedVad(script)
    frames = gate.feed(0, loud_frames(len(script)))
    assert [f.voiced for f in frames] == script
    expected = [True] * 4 + [True] * hangover_frames + [False] * 3 + [True] * 2 + [True] * 3
    assert [f.speech for f in frames] == expected


def test_gate_starts_closed():
    gate = SpeechGate(hangover_s=0.3)
    gate._vad = ScriptedVad([False] * 5)
    assert not any(f.speech for f in gate.feed(0, loud_frames(5)))


def _long_voiced_run(frames, length: int) -> int:
    """Index of the first frame of a run of `length` voiced frames."""
    run = 0
    for i, frame in enumerate(frames):
        run = run + 1 if frame.voiced else 0
        if run == length:
            return i - length + 1
    raise AssertionError("no long voiced run in the test speech")


@pytest.mark.parametrize(("hangover_s", "gap_is_speech"), [(0.3, True), (0.0, False)])
def test_hangover_bridges_a_short_gap_in_real_speech(espeak, hangover_s, gap_is_speech):
    audio = espeak.samples("en")
    first = _long_voiced_run(SpeechGate().feed(0, audio), 8)
    cut_n = (first + 4) * FRAME_N  # in the middle of a voiced run, on a frame boundary
    gap_s = 0.15  # a word gap, shorter than the default hangover
    gapped = np.concatenate([audio[:cut_n], silence(gap_s), audio[cut_n:]])
    frames = SpeechGate(hangover_s=hangover_s).feed(0, gapped)
    gap = [f for f in frames if cut_n <= f.start_index < cut_n + round(gap_s * SAMPLE_RATE_HZ)]
    assert len(gap) == round(gap_s * 1000 / FRAME_MS)
    assert not any(f.voiced for f in gap)
    assert all(f.speech == gap_is_speech for f in gap)


def test_a_gap_in_the_indices_closes_the_gate_and_drops_the_partial_frame():
    gate = SpeechGate(hangover_s=0.3)
    gate._vad = ScriptedVad([True] * 3)
    opened = gate.feed(0, loud_frames(3))
    assert opened[-1].speech
    partial = gate.feed(3 * FRAME_N, np.zeros(100, np.float32))  # less than a frame: held back
    assert partial == []
    resume_at = 3 * FRAME_N + 100 + 5000  # 5000 samples were lost
    after = gate.feed(resume_at, silence(2 * FRAME_MS / 1000))
    assert [f.start_index for f in after] == [resume_at, resume_at + FRAME_N]
    assert not any(f.speech for f in after), "hangover must not bridge lost audio"


def test_contiguous_silence_after_speech_does_get_the_hangover():
    """The counterpart of the test above: without the index gap the gate stays open."""
    gate = SpeechGate(hangover_s=0.3)
    gate._vad = ScriptedVad([True] * 3)
    gate.feed(0, loud_frames(3))
    after = gate.feed(3 * FRAME_N, silence(2 * FRAME_MS / 1000))
    assert all(f.speech for f in after)


def test_reset_forgets_pending_audio_and_closes_the_gate():
    gate = SpeechGate(hangover_s=0.3)
    gate._vad = ScriptedVad([True] * 3)
    gate.feed(0, loud_frames(3))
    gate.feed(3 * FRAME_N, np.zeros(100, np.float32))
    gate.reset()
    frames = gate.feed(10_000, silence(FRAME_MS / 1000))
    assert [f.start_index for f in frames] == [10_000]
    assert not frames[0].speech


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_frame_lengths(frame_ms):
    gate = SpeechGate(frame_ms=frame_ms)
    frames = gate.feed(0, silence(0.3))
    assert all(len(f.samples) == SAMPLE_RATE_HZ * frame_ms // 1000 for f in frames)
    assert len(frames) == 300 // frame_ms


def test_unsupported_frame_length_is_refused():
    with pytest.raises(ValueError):
        SpeechGate(frame_ms=25)
