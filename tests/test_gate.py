"""SpeechGate: silence and hiss are never speech, espeak speech is, hysteresis and hangover
hold the gate through word gaps, a gap in the sample indices starts it afresh, and windows are
admitted by how much of them the detector called speech. Scripted detectors come in through the
public seam (`Detector`), the real ones are run on real audio."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from audio_helpers import silence, speech_onset_s
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlid.audio import SAMPLE_RATE_HZ
from streamlid.config import load_config
from streamlid.errors import ConfigError
from streamlid.gate import (
    GateSettings,
    SileroSettings,
    SpeechGate,
    SpeechTrack,
    WebrtcSettings,
    admitted,
    build_gate,
    gate_settings,
    level_dbfs,
)
from streamlid.gate.two_stage import TwoStageDetector
from streamlid.gate.webrtc import WebrtcDetector

FRAME_MS = 30
FRAME_N = SAMPLE_RATE_HZ * FRAME_MS // 1000


class ScriptedDetector:
    """A detector that answers from a script, one probability per frame, and records calls."""

    def __init__(self, probs: list[float], frame_n: int = FRAME_N) -> None:
        self.frame_n = frame_n
        self._probs = list(probs)
        self.asked = 0
        self.resets = 0

    def speech_probability(self, frame: np.ndarray) -> float:
        assert frame.dtype == np.float32 and len(frame) == self.frame_n
        self.asked += 1
        return self._probs.pop(0)

    def reset(self) -> None:
        self.resets += 1


def scripted_gate(probs: list[float], **kwargs) -> SpeechGate:
    return SpeechGate(ScriptedDetector(probs), **kwargs)


def webrtc_gate(**kwargs) -> SpeechGate:
    settings = WebrtcSettings(kwargs.pop("aggressiveness", 2), kwargs.pop("frame_ms", FRAME_MS))
    return SpeechGate(WebrtcDetector(settings), **kwargs)


def loud_frames(n_frames: int, frame_n: int = FRAME_N) -> np.ndarray:
    """Audio well above the energy floor, so the (scripted) detector is asked about every frame."""
    t = np.arange(n_frames * frame_n) / SAMPLE_RATE_HZ
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rms = 10 ** (dbfs / 20)
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, rms, round(seconds * SAMPLE_RATE_HZ)).astype(np.float32)


def test_digital_silence_is_never_speech():
    gate = webrtc_gate(aggressiveness=0)  # the most permissive setting
    frames = gate.feed(0, silence(3.0))
    assert len(frames) == 3 * SAMPLE_RATE_HZ // FRAME_N
    assert not any(f.speech or f.voiced for f in frames)


@pytest.mark.parametrize("dbfs", [-80.0, -60.0, -55.0])
def test_noise_below_the_energy_floor_is_never_speech_and_the_detector_is_not_asked(dbfs):
    detector = ScriptedDetector([1.0] * 200)
    gate = SpeechGate(detector, energy_floor_dbfs=-50.0)
    frames = gate.feed(0, noise(3.0, dbfs))
    assert frames
    assert all(f.level_dbfs < -50.0 and f.speech_prob == 0.0 for f in frames)
    assert not any(f.speech for f in frames)
    assert detector.asked == 0


def test_energy_floor_is_what_keeps_quiet_audio_out():
    """The same quiet audio passes once the floor is lowered below its level."""
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    quiet = (0.001 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # about -63 dBFS
    assert not any(f.voiced for f in scripted_gate([1.0] * 100).feed(0, quiet))
    low_floor = scripted_gate([1.0] * 100, energy_floor_dbfs=-80.0)
    assert all(f.voiced for f in low_floor.feed(0, quiet))


def test_level_dbfs_of_known_signals():
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    full_scale_sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    assert level_dbfs(full_scale_sine) == pytest.approx(-3.01, abs=0.05)
    assert level_dbfs(0.1 * full_scale_sine) == pytest.approx(-23.01, abs=0.05)
    assert level_dbfs(silence(0.1)) == level_dbfs(np.zeros(0, np.float32))


def test_hysteresis_starts_at_the_threshold_and_ends_below_it_less_0_15():
    probs = [0.2, 0.49, 0.5, 0.4, 0.36, 0.34, 0.45, 0.5, 0.1]
    gate = scripted_gate(probs, hangover_s=0.0, threshold=0.5)
    frames = gate.feed(0, loud_frames(len(probs)))
    assert [f.speech_prob for f in frames] == probs
    assert [f.voiced for f in frames] == [False, False, True, True, True, False, False, True, False]
    assert [f.speech for f in frames] == [f.voiced for f in frames]


@pytest.mark.parametrize("engine", ["webrtc", "silero", "both"])
def test_espeak_speech_is_speech_and_the_silence_around_it_is_not(espeak, engine):
    voice = espeak.samples("en")
    audio = np.concatenate([silence(1.0), voice, silence(1.0)])
    gate = build_gate(GateSettings(engine=engine))
    frames = gate.feed(0, audio)
    frame_s = gate.frame_n / SAMPLE_RATE_HZ
    start_s = np.array([f.start_index / SAMPLE_RATE_HZ for f in frames])
    end_s = start_s + frame_s
    is_speech = np.array([f.speech for f in frames])
    onset_s = speech_onset_s(audio)
    voice_end_s = 1.0 + len(voice) / SAMPLE_RATE_HZ
    assert not is_speech[end_s <= onset_s].any(), "leading silence was called speech"
    assert is_speech[(start_s >= onset_s) & (end_s <= voice_end_s)].mean() > 0.8
    # Once the hangover (0.3 s) has run out, the trailing silence is not speech.
    assert not is_speech[start_s >= voice_end_s + 0.35].any()


@pytest.mark.parametrize("engine", ["silero", "both"])
def test_the_neural_detector_rejects_loud_noise_that_webrtcvad_passes(engine):
    loud_noise = noise(4.0, -20.0)
    webrtc = webrtc_gate(aggressiveness=3).feed(0, loud_noise)
    assert np.mean([f.voiced for f in webrtc]) > 0.5, "precondition: webrtcvad is fooled"
    frames = build_gate(GateSettings(engine=engine)).feed(0, loud_noise)
    assert np.mean([f.voiced for f in frames]) < 0.05
    assert max(f.speech_prob for f in frames) < 0.5


class RecordingDetector(ScriptedDetector):
    """Says 0.9 to every block and keeps what it was asked about."""

    def __init__(self, frame_n: int) -> None:
        super().__init__([], frame_n)
        self.blocks: list[np.ndarray] = []

    def speech_probability(self, frame: np.ndarray) -> float:
        self.blocks.append(frame.copy())
        return 0.9


def test_both_asks_silero_only_about_what_webrtcvad_lets_through():
    """The gate runs on webrtcvad's 30 ms frames; silero judges its 512-sample blocks in
    order, and only the blocks that end inside a frame webrtcvad passed."""
    webrtc_voiced = [True] * 4 + [False] * 6 + [True] * 6
    first = ScriptedDetector([float(v) for v in webrtc_voiced])
    second = RecordingDetector(frame_n=512)
    gate = SpeechGate(TwoStageDetector(first, second), hangover_s=0.0)
    audio = loud_frames(len(webrtc_voiced)) * np.linspace(0.5, 1.0, 16 * FRAME_N, dtype=np.float32)
    frames = gate.feed(0, audio)
    assert gate.frame_n == FRAME_N == len(frames[0].samples)

    block_frame = [((k + 1) * 512 - 1) // FRAME_N for k in range(len(audio) // 512)]
    judged = [k for k, f in enumerate(block_frame) if webrtc_voiced[f]]
    assert 0 < len(judged) < len(block_frame)
    assert len(second.blocks) == len(judged)
    for k, block in zip(judged, second.blocks, strict=True):
        np.testing.assert_array_equal(block, audio[k * 512 : (k + 1) * 512])

    probs = [f.speech_prob for f in frames]
    for i, voiced in enumerate(webrtc_voiced):
        # Speech only where webrtcvad passed the frame and silero has judged a block since the
        # last rejected frame.
        since = max([j for j in range(i + 1) if not webrtc_voiced[j]], default=-1)
        heard = any(since < f <= i for f in block_frame)
        assert probs[i] == (0.9 if voiced and heard else 0.0), i
    gate.reset()
    assert first.resets == second.resets >= 1


@pytest.mark.parametrize("voice", ["en", "fr"])
def test_frames_carry_contiguous_absolute_indices(espeak, voice):
    start = 123_456
    frames = webrtc_gate().feed(start, espeak.samples(voice))
    assert [f.start_index for f in frames] == [start + i * FRAME_N for i in range(len(frames))]
    assert all(len(f.samples) == FRAME_N for f in frames)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 2000), min_size=1, max_size=20))
def test_chunking_does_not_change_the_verdicts(cuts):
    audio = np.concatenate([loud_frames(20), silence(0.3), loud_frames(20)])
    whole = webrtc_gate().feed(0, audio)
    gate = webrtc_gate()
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
    script = [True] * 4 + [False] * 8 + [True] * 2 + [False] * 3
    gate = scripted_gate([float(v) for v in script], hangover_s=hangover_frames * FRAME_MS / 1000)
    frames = gate.feed(0, loud_frames(len(script)))
    assert [f.voiced for f in frames] == script
    expected = [True] * 4 + [True] * hangover_frames + [False] * 3 + [True] * 2 + [True] * 3
    assert [f.speech for f in frames] == expected


def test_onset_pad_lets_in_the_held_frames_above_the_floor_when_speech_starts():
    probs = [0.0, 0.0, 0.0, 0.9, 0.9, 0.0]
    audio = loud_frames(len(probs))
    audio[:FRAME_N] = 0.0  # below the energy floor: never let in
    gate = scripted_gate(probs[1:], hangover_s=0.0, onset_pad_s=2 * FRAME_MS / 1000)
    first = gate.feed(0, audio[: 4 * FRAME_N])
    assert [f.start_index for f in first] == [0, FRAME_N]  # two frames held back
    frames = first + gate.feed(4 * FRAME_N, audio[4 * FRAME_N :]) + gate.flush()
    assert [f.start_index // FRAME_N for f in frames] == list(range(len(probs)))
    assert [f.speech for f in frames] == [False, True, True, True, True, False]
    assert [f.voiced for f in frames] == [False, False, False, True, True, False]


def test_without_an_onset_pad_nothing_is_held_back():
    gate = scripted_gate([0.0, 0.0, 0.9])
    assert len(gate.feed(0, loud_frames(3))) == 3
    assert gate.flush() == []


def test_gate_starts_closed():
    assert not any(f.speech for f in scripted_gate([0.0] * 5).feed(0, loud_frames(5)))


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
    first = _long_voiced_run(webrtc_gate().feed(0, audio), 8)
    cut_n = (first + 4) * FRAME_N  # in the middle of a voiced run, on a frame boundary
    gap_s = 0.15  # a word gap, shorter than the default hangover
    gapped = np.concatenate([audio[:cut_n], silence(gap_s), audio[cut_n:]])
    frames = webrtc_gate(hangover_s=hangover_s).feed(0, gapped)
    gap = [f for f in frames if cut_n <= f.start_index < cut_n + round(gap_s * SAMPLE_RATE_HZ)]
    assert len(gap) == round(gap_s * 1000 / FRAME_MS)
    assert not any(f.voiced for f in gap)
    assert all(f.speech == gap_is_speech for f in gap)


def test_a_gap_in_the_indices_closes_the_gate_and_drops_the_partial_frame():
    detector = ScriptedDetector([1.0] * 3 + [0.0] * 2)
    gate = SpeechGate(detector)
    opened = gate.feed(0, loud_frames(3))
    assert opened[-1].speech
    partial = gate.feed(3 * FRAME_N, np.zeros(100, np.float32))  # less than a frame: held back
    assert partial == []
    resume_at = 3 * FRAME_N + 100 + 5000  # 5000 samples were lost
    after = gate.feed(resume_at, silence(2 * FRAME_MS / 1000))
    assert [f.start_index for f in after] == [resume_at, resume_at + FRAME_N]
    assert not any(f.speech for f in after), "hangover must not bridge lost audio"
    assert detector.resets == 2  # built, then reset at the gap


def test_contiguous_silence_after_speech_does_get_the_hangover():
    """The counterpart of the test above: without the index gap the gate stays open."""
    gate = scripted_gate([1.0] * 3)
    gate.feed(0, loud_frames(3))
    after = gate.feed(3 * FRAME_N, silence(2 * FRAME_MS / 1000))
    assert all(f.speech for f in after)


def test_reset_forgets_pending_audio_closes_the_gate_and_resets_the_detector():
    detector = ScriptedDetector([1.0] * 3)
    gate = SpeechGate(detector, hangover_s=0.3)
    gate.feed(0, loud_frames(3))
    gate.feed(3 * FRAME_N, np.zeros(100, np.float32))
    resets = detector.resets
    gate.reset()
    assert detector.resets == resets + 1
    frames = gate.feed(10_000, silence(FRAME_MS / 1000))
    assert [f.start_index for f in frames] == [10_000]
    assert not frames[0].speech


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_webrtc_frame_lengths(frame_ms):
    frames = webrtc_gate(frame_ms=frame_ms).feed(0, silence(0.3))
    assert all(len(f.samples) == SAMPLE_RATE_HZ * frame_ms // 1000 for f in frames)
    assert len(frames) == 300 // frame_ms


def test_silero_frames_are_512_samples_and_carry_a_probability(espeak):
    frames = build_gate(GateSettings(engine="silero")).feed(0, espeak.samples("en"))
    assert all(len(f.samples) == 512 for f in frames)
    probs = [f.speech_prob for f in frames]
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert max(probs) > 0.9 and len(set(probs)) > 10  # a probability, not a 0/1 verdict


def test_silero_runs_on_one_thread_without_changing_torch_threads_elsewhere():
    import torch

    before = torch.get_num_threads()
    seen: list[int] = []
    gate = build_gate(GateSettings(engine="silero"))

    def run() -> None:
        gate.feed(0, noise(0.5, -20.0))
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    later: list[int] = []
    fresh = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    fresh.start()
    fresh.join()
    assert seen == [1]
    assert torch.get_num_threads() == before and later == [before]


def test_speech_track_measures_the_share_and_probability_of_a_span():
    probs = [0.9, 0.9, 0.2, 0.2, 0.9, 0.9, 0.1, 0.1]
    gate = scripted_gate(probs, hangover_s=0.3)
    track = SpeechTrack(keep_s=10.0)
    frames = gate.feed(0, loud_frames(len(probs)))
    for frame in frames:
        track.add(frame)
    frame_s = FRAME_N / SAMPLE_RATE_HZ
    prob, share = track.measure(0.0, len(probs) * frame_s)
    assert share == pytest.approx(4 / 8)  # frames 2-3 and 6-7 are hangover, not speech
    assert prob == pytest.approx(np.mean(probs))
    assert track.measure(0.0, 2 * frame_s) == (pytest.approx(0.9), 1.0)
    assert track.measure(100.0, 101.0) == (0.0, 0.0)


def test_speech_track_forgets_frames_older_than_it_keeps():
    track = SpeechTrack(keep_s=1.0)
    gate = scripted_gate([1.0] * 100)
    for frame in gate.feed(0, loud_frames(100)):  # 3 s
        track.add(frame)
    assert track.measure(0.0, 1.0) == (0.0, 0.0)
    assert track.measure(2.5, 3.0)[1] == 1.0


@pytest.mark.parametrize(("share", "min_share", "expected"), [(0.5, 0.5, True), (0.49, 0.5, False)])
def test_admission_is_by_speech_share(share, min_share, expected):
    class Measured:
        speech_share = share

    assert admitted(Measured(), min_share) is expected


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"vad-engine": "neural"}, ["vad-engine", "'neural'", "webrtc, silero or both"]),
        ({"vad": 7}, ["vad", "7", "0, 1, 2 or 3"]),
        ({"vad-frame-ms": 25}, ["vad-frame-ms", "10, 20 or 30"]),
        ({"speech-threshold": 0.1}, ["speech-threshold", "0.1", "less than 1"]),
        ({"speech-threshold": 1.0}, ["speech-threshold", "1.0"]),
        ({"min-speech-share": 1.5}, ["min-speech-share", "1.5", "0 to 1"]),
    ],
)
def test_detector_settings_are_refused_with_the_key_and_what_is_allowed(overrides, words):
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=overrides)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_config_builds_the_gate_settings():
    config = load_config(
        overrides={"vad-engine": "silero", "vad": 1, "speech-threshold": 0.6, "hangover": 0.2}
    )
    settings = gate_settings(config)
    assert settings == GateSettings(
        engine="silero",
        webrtc=WebrtcSettings(1, 30),
        silero=SileroSettings(0.6),
        hangover_s=0.2,
        energy_floor_dbfs=-50.0,
        min_speech_share=0.5,
    )
    assert build_gate(settings).frame_n == 512
    assert build_gate(GateSettings(engine="webrtc", webrtc=WebrtcSettings(1, 10))).frame_n == 160


class CountingModel:
    labels = ("eng", "fra")

    def __init__(self) -> None:
        self.lengths: list[int] = []

    def classify(self, windows: list[np.ndarray]) -> np.ndarray:
        self.lengths += [len(w) for w in windows]
        return np.tile([0.9, 0.1], (len(windows), 1))


def test_the_worker_classifies_only_admitted_windows_and_reports_their_speech_probability():
    from types import SimpleNamespace

    from harness import make_config

    from streamlid.audio.ring import RingBuffer
    from streamlid.events import Prediction
    from streamlid.smoothing import Smoother
    from streamlid.stream import StreamState
    from streamlid.windowqueue import WindowQueues
    from streamlid.windows import Window
    from streamlid.worker import Worker

    config = make_config(min_speech_share=0.5)
    queues = WindowQueues()
    queues.add_stream("s", capacity=100, live=False)
    stop = threading.Event()
    shares = [0.9, 0.2, 0.5, 0.49, 1.0]
    for i, share in enumerate(shares):
        window = Window(
            i, i + 3.0, np.zeros(3 * SAMPLE_RATE_HZ, np.float32), 0.0,
            speech_prob=share - 0.05, speech_share=share,
        )  # fmt: skip
        queues.put("s", window, stop)
    queues.close_stream("s")
    source = SimpleNamespace(live=False, sample_rate_hz=SAMPLE_RATE_HZ)
    state = StreamState("s", source, RingBuffer(SAMPLE_RATE_HZ), Smoother(2))
    events, errors, model = [], [], CountingModel()
    worker = Worker(model, {"s": state}, queues, config, events.append, stop, errors.append)
    worker.start()
    assert worker.join(10.0) and errors == []
    predictions = [e for e in events if isinstance(e, Prediction)]
    assert [p.t_start_s for p in predictions] == [0, 2, 4]
    assert [p.speech_prob for p in predictions] == [0.85, 0.45, 0.95]
    whole = [n for n in model.lengths if n == 3 * SAMPLE_RATE_HZ]  # not the tail re-checks
    assert len(whole) == 3 and state.windows == 3
