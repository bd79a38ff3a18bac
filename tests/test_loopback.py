"""Real capture without a microphone: streamlid's own MicrophoneSource records a PulseAudio
virtual device while paplay plays known speech into it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from speech import RATE_HZ, espeak_missing, speech
from virtual_mic import VirtualMic

from streamlid.audio.ring import RingBuffer

pytestmark = pytest.mark.loopback  # run alone, after the rest: scripts/test


@pytest.fixture(scope="module")
def virtual_mic():
    reason = VirtualMic.unavailable_reason() or espeak_missing()
    if reason:
        pytest.skip(f"virtual microphone not available: {reason}")
    mic = VirtualMic()
    try:
        mic.start()
    except Exception as exc:
        mic.stop()
        pytest.skip(f"virtual microphone could not be created here: {exc}")
    yield mic
    mic.stop()


def _record(mic: VirtualMic, wav, seconds_after: float = 0.8):
    """Starts streamlid's microphone source, plays `wav`, returns the recorded 16 kHz audio and
    the notices the source sent."""
    from streamlid.audio.mic import MicrophoneSource

    source = MicrophoneSource(None)
    ring = RingBuffer(60 * source.sample_rate_hz)
    notices: list[tuple[str, str]] = []
    source.start(ring, lambda severity, message: notices.append((severity, message)))
    try:
        time.sleep(0.5)
        mic.play(wav)
        time.sleep(seconds_after)
    finally:
        source.stop()
        assert source.join(3.0), "the capture thread did not stop"
    chunks = []
    while (chunk := ring.read(1 << 20, timeout_s=0.0)) is not None and len(chunk.samples):
        chunks.append(chunk.samples)
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if source.sample_rate_hz != RATE_HZ:
        import soxr

        audio = soxr.resample(audio, source.sample_rate_hz, RATE_HZ)
    return audio, notices, ring


def _align(played: np.ndarray, recorded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The overlapping parts of both signals, shifted by the lag that lines them up best.

    The lag may be negative: an idle PulseAudio monitor misses the first ~20 ms it is sent."""
    n = 1 << int(np.ceil(np.log2(len(played) + len(recorded))))
    xcorr = np.fft.irfft(np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(played, n)), n)
    lag = int(np.argmax(xcorr))
    if lag > n // 2:
        lag -= n  # circular index of a negative lag
    if lag >= 0:
        rec, ref = recorded[lag:], played
    else:
        rec, ref = recorded, played[-lag:]
    m = min(len(rec), len(ref))
    return ref[:m], rec[:m]


def test_microphone_source_records_what_was_played(virtual_mic, tmp_path):
    played = speech("fra", tmp_path, seconds=4.0)
    wav = tmp_path / "fra.wav"
    import soundfile

    soundfile.write(str(wav), played, RATE_HZ, subtype="PCM_16")
    recorded, notices, ring = _record(virtual_mic, wav)

    assert ring.overflow_samples == 0
    assert not [n for n in notices if n[0] == "error"], notices
    reference, aligned = _align(played, recorded)
    # Duration: all of it except the ~20 ms an idle PulseAudio monitor needs to wake up.
    assert len(aligned) >= len(played) - 0.1 * RATE_HZ
    # Same waveform: correlation over the whole recording and over each half-second block.
    assert np.corrcoef(reference, aligned)[0, 1] > 0.98
    block = RATE_HZ // 2
    voiced_blocks = [
        np.corrcoef(reference[i : i + block], aligned[i : i + block])[0, 1]
        for i in range(block, len(aligned) - block, block)
        if np.std(reference[i : i + block]) > 0.01
    ]
    assert voiced_blocks and min(voiced_blocks) > 0.95
    # Same level, within 1 dB.
    level = 20 * np.log10(np.std(aligned) / np.std(reference))
    assert abs(level) < 1.0


def test_a_microphone_pair_in_reverse_polarity_is_heard(virtual_mic, tmp_path):
    """A stereo capture whose right channel is the left one inverted: one channel asked of the
    host API (its own mixdown) or a plain mean would be silence."""
    played = speech("fra", tmp_path, seconds=3.0)
    wav = tmp_path / "inverted.wav"
    import soundfile

    soundfile.write(str(wav), np.stack([played, -played], axis=1), RATE_HZ, subtype="PCM_16")
    recorded, notices, ring = _record(virtual_mic, wav)
    assert not [n for n in notices if n[0] == "error"], notices
    reference, aligned = _align(played, recorded)
    assert abs(np.corrcoef(reference, aligned)[0, 1]) > 0.95
    assert abs(20 * np.log10(np.std(aligned) / np.std(reference))) < 1.0
    assert ring.channels_inverted


def test_device_that_vanishes_is_reported_and_reconnected(virtual_mic, tmp_path, capfd):
    from streamlid.audio.mic import MicrophoneSource

    if virtual_mic.other_sources():
        pytest.skip("PulseAudio has other sources; it would move the stream there, not drop it")

    source = MicrophoneSource(None)
    ring = RingBuffer(60 * source.sample_rate_hz)
    notices: list[tuple[str, str]] = []
    states: list[tuple[str, int, float]] = []  # (state, attempt, outage_s), as a feed's
    seen = threading.Event()

    def feed(state: str, reason: str, attempt: int, outage_s: float) -> None:
        states.append((state, attempt, outage_s))
        seen.set()

    source.connect(ring, lambda severity, message: notices.append((severity, message)), feed)
    source.start()
    try:
        time.sleep(0.5)
        assert states == [("connected", 0, 0.0)]
        seen.clear()
        virtual_mic.unplug()
        assert seen.wait(8.0), "no feed state after the device vanished"
        assert states[1][0] == "disconnected"
        time.sleep(1.5)  # a few failed attempts while the device is gone
        virtual_mic.plug()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and states[-1][0] != "recovered":
            time.sleep(0.1)
        assert states[-1][0] == "recovered" and states[-1][2] >= 1.5, states
        assert not [n for n in notices if n[0] == "error"], notices
        # Audio flows again through the reopened stream.
        before = ring.write_index
        virtual_mic.play(
            tmp_path / "fra.wav" if (tmp_path / "fra.wav").exists() else _wav(tmp_path)
        )
        assert ring.write_index - before > source.sample_rate_hz  # more than a second arrived
    finally:
        source.stop()
        assert source.join(3.0)
    assert source.error is None
    # Each failed attempt made ALSA and PortAudio print two lines of their own on stderr, every
    # second for as long as the device was gone. Left: the three lines PortAudio's own stream
    # thread prints once, as the device vanishes, outside any call of ours.
    chatter = capfd.readouterr().err
    assert "ALSA lib" not in chatter and chatter.count("Expression '") <= 3, chatter[-2000:]


def test_no_input_source_left_is_one_clear_error_without_alsa_chatter(virtual_mic, capfd):
    # PulseAudio runs but has no capture source (the sink is gone): the ALSA "default" device
    # is still listed, and opening it fails whatever the rate.
    from streamlid.audio.mic import MicrophoneSource
    from streamlid.errors import AudioSourceError

    if virtual_mic.other_sources():
        pytest.skip("PulseAudio has other sources; the default device would open one of them")
    virtual_mic.unplug()
    try:
        capfd.readouterr()
        with pytest.raises(AudioSourceError) as caught:
            MicrophoneSource(None)
    finally:
        virtual_mic.plug()
    message = str(caught.value)
    assert "cannot be opened" in message and "accepts neither" not in message
    chatter = capfd.readouterr().err
    assert "ALSA lib" not in chatter and "Expression '" not in chatter, chatter[-2000:]


def _wav(folder):
    import soundfile

    path = folder / "fra.wav"
    soundfile.write(str(path), speech("fra", folder, seconds=3.0), RATE_HZ, subtype="PCM_16")
    return path


def test_pipeline_through_the_microphone_hears_the_language(virtual_mic, tmp_path, classifier):
    """The whole live path: PortAudio capture -> ring -> gate -> windows -> model -> events.

    With the trained test model (tests/assets/tiny-lid) the language must be right; with only
    the random one, the timing of speech and answers is still checked."""
    from pathlib import Path

    import soundfile
    from harness import ListSink, make_config

    from streamlid.audio.mic import MicrophoneSource
    from streamlid.classifier import Classifier
    from streamlid.engine import Engine
    from streamlid.events import LanguageChange, SpeechChange

    tiny_lid = Path(__file__).parent / "assets" / "tiny-lid"
    trained = (tiny_lid / "model.safetensors").exists()
    model = (
        Classifier(str(tiny_lid), device="cpu", dtype="float32", announce=lambda m: None)
        if trained
        else classifier
    )
    played = speech("deu", tmp_path, seconds=6.0)
    wav = tmp_path / "deu.wav"
    soundfile.write(str(wav), played, RATE_HZ, subtype="PCM_16")

    sink = ListSink()
    engine = Engine(make_config(), [MicrophoneSource(None)], model, [sink])
    engine.start()
    try:
        time.sleep(0.5)
        virtual_mic.play(wav)
        time.sleep(1.0)
    finally:
        engine.stop()
        assert engine.wait(5.0)

    opened = [e for e in sink.of_type(SpeechChange) if e.speech]
    assert opened, "the speech gate never opened"
    predictions = sink.predictions
    assert len(predictions) >= 4  # 6 s of speech: early answers, then one a second
    assert all(p.lag_s is not None and p.lag_s < 2.0 for p in predictions)  # live, keeping up
    assert predictions[0].t_end_s - opened[0].t_s <= 1.5  # first answer soon after onset
    if trained:
        named = [c.language for c in sink.of_type(LanguageChange) if c.language]
        assert named and named[0] == "deu", named
        assert sink.summary.streams[0].speech_s_by_language.get("deu", 0) > 4.0


@pytest.mark.slow
def test_a_fan_through_the_microphone_names_no_language_and_speech_after_it_does(
    virtual_mic, tmp_path, sound_corpus
):
    """20 s of brown noise (a fan) into the virtual microphone: no answer, no language, no
    speech. Then German speech: the trained test model names it."""
    from pathlib import Path

    import soundfile
    from corpus import SOUND_S
    from harness import ListSink, make_config

    from streamlid.audio.mic import MicrophoneSource
    from streamlid.classifier import Classifier
    from streamlid.engine import Engine
    from streamlid.events import LanguageChange, Prediction, SpeechChange

    tiny_lid = Path(__file__).parent / "assets" / "tiny-lid"
    if not (tiny_lid / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    model = Classifier(str(tiny_lid), device="cpu", dtype="float32", announce=lambda m: None)
    fan = np.tile(sound_corpus.nonspeech["brown-noise@-24"], round(20.0 / SOUND_S) + 1)
    fan_wav, speech_wav = tmp_path / "fan.wav", tmp_path / "deu.wav"
    soundfile.write(str(fan_wav), fan[: 20 * RATE_HZ], RATE_HZ, subtype="PCM_16")
    soundfile.write(str(speech_wav), speech("deu", tmp_path, seconds=6.0), RATE_HZ)

    sink = ListSink()
    engine = Engine(make_config(), [MicrophoneSource(None)], model, [sink])
    engine.start()
    try:
        time.sleep(0.5)
        virtual_mic.play(fan_wav)
        during_fan = list(sink.events)
        virtual_mic.play(speech_wav)
        time.sleep(1.5)
    finally:
        engine.stop()
        assert engine.wait(5.0)

    heard = [e for e in during_fan if isinstance(e, (Prediction, LanguageChange, SpeechChange))]
    assert heard == [], heard[:5]
    named = [c.language for c in sink.of_type(LanguageChange) if c.language]
    assert named and named[0] == "deu", named
    by_language = sink.summary.streams[0].speech_s_by_language
    assert by_language.get("deu", 0.0) > 4.0 and set(by_language) == {"deu"}, by_language
