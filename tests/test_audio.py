"""Audio inputs: every common file format and rate comes out as the same stream of 16 kHz
speech, with the stream's duration right, through the whole pipeline."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import SAMPLE_RATE_HZ, encode_with_ffmpeg, silence, to_s16le, write_wav

from streamlid.audio.files import FfmpegSource, SoundFileSource
from streamlid.audio.open import open_source
from streamlid.audio.ring import RingBuffer
from streamlid.audio.stdin import StdinSource
from streamlid.gate import GateSettings, build_gate

DURATION_TOLERANCE_S = 0.1

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt install ffmpeg)"
)


@pytest.fixture(scope="module")
def source_audio(espeak) -> np.ndarray:
    """Speech with a little silence around it, 16 kHz mono."""
    return np.concatenate([silence(0.7), espeak.samples("en"), silence(0.4)])


def _wav(**kwargs):
    def make(folder: Path, audio: np.ndarray) -> tuple[Path, float]:
        fmt = kwargs.get("format")
        suffix = {"FLAC": ".flac", "OGG": ".ogg"}.get(fmt, ".wav")
        path = folder / f"input{suffix}"
        return path, write_wav(path, audio, **kwargs)

    return make


def _ffmpeg(suffix: str, *codec: str):
    def make(folder: Path, audio: np.ndarray) -> tuple[Path, float]:
        wav = folder / "master.wav"
        duration_s = write_wav(wav, audio, rate_hz=44100)
        path = folder / f"input{suffix}"
        encode_with_ffmpeg(wav, path, *codec)
        return path, duration_s

    return make


FORMATS = {
    "wav-16k": _wav(),
    "wav-8k": _wav(rate_hz=8000),
    "wav-44k1": _wav(rate_hz=44100),
    "wav-48k": _wav(rate_hz=48000),
    "wav-stereo": _wav(rate_hz=44100, channels=2),
    "wav-24bit": _wav(rate_hz=48000, subtype="PCM_24"),
    "wav-float32": _wav(subtype="FLOAT"),
    "flac": _wav(rate_hz=44100, format="FLAC", subtype="PCM_16"),
    "ogg-vorbis": _wav(rate_hz=44100, format="OGG", subtype="VORBIS"),
    "mp3": _ffmpeg(".mp3", "-c:a", "libmp3lame", "-b:a", "96k"),
    "m4a": _ffmpeg(".m4a", "-c:a", "aac", "-b:a", "96k"),
}


@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_format_gives_predictions_and_the_right_duration(
    kind, source_audio, tmp_path, run_pipeline
):
    if kind in ("mp3", "m4a") and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt install ffmpeg)")
    path, duration_s = FORMATS[kind](tmp_path, source_audio)
    sink = run_pipeline([path])
    (stream,) = sink.summary.streams
    assert stream.duration_s == pytest.approx(duration_s, abs=DURATION_TOLERANCE_S)
    assert sink.predictions, f"no predictions for {kind}"
    # The same speech is found in every format: its length does not depend on the container.
    speech_s = len(source_audio) / SAMPLE_RATE_HZ - 1.1
    assert stream.speech_s == pytest.approx(speech_s, abs=0.6)
    assert all(p.t_end_s <= duration_s + DURATION_TOLERANCE_S for p in sink.predictions)


def read_all(source) -> tuple[np.ndarray, int]:
    ring = RingBuffer(60 * source.sample_rate_hz)
    source.start(ring, lambda severity, message: None)
    assert source.join(30.0)
    chunks = []
    while (chunk := ring.read(1 << 20, timeout_s=0.0)) is not None:
        assert chunk.lost_before == 0
        chunks.append(chunk.samples)
    return np.concatenate(chunks), source.sample_rate_hz


def test_soundfile_source_delivers_mono_at_the_file_rate(source_audio, tmp_path):
    path = tmp_path / "stereo.wav"
    write_wav(path, source_audio, rate_hz=48000, channels=2)
    source = open_source(str(path), realtime=False)
    assert isinstance(source, SoundFileSource)
    assert source.live is False
    samples, rate = read_all(source)
    assert rate == 48000
    assert samples.ndim == 1
    assert len(samples) == round(len(source_audio) * 48000 / SAMPLE_RATE_HZ)


@needs_ffmpeg
def test_ffmpeg_source_delivers_16k_mono(source_audio, tmp_path):
    path, duration_s = FORMATS["m4a"](tmp_path, source_audio)
    source = open_source(str(path), realtime=False)
    assert isinstance(source, FfmpegSource)
    samples, rate = read_all(source)
    assert rate == SAMPLE_RATE_HZ
    assert len(samples) / rate == pytest.approx(duration_s, abs=DURATION_TOLERANCE_S)


def test_realtime_files_are_live(source_audio, tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, source_audio)
    assert open_source(str(path), realtime=True).live is True


def test_stdin_source_reassembles_samples_split_across_reads(espeak):
    """A read that ends in the middle of a 16-bit sample must not shift every later sample."""
    audio = espeak.samples("en")[: 2 * SAMPLE_RATE_HZ]
    data = to_s16le(audio)
    expected = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    read_fd, write_fd = os.pipe()
    source = StdinSource(realtime=False, fd=read_fd)
    ring = RingBuffer(10 * SAMPLE_RATE_HZ)
    try:
        source.start(ring, lambda severity, message: None)
        os.write(write_fd, data[:1001])  # 500 samples and half of the next
        deadline = time.monotonic() + 10.0
        while ring.write_index < 500:
            assert time.monotonic() < deadline, "the source did not read the first part"
            time.sleep(0.01)
        view = data[1001:]
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
        os.close(write_fd)
        write_fd = -1
        assert source.join(10.0)
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        source.stop()
        source.join(5.0)
        os.close(read_fd)
    chunks = []
    while (chunk := ring.read(1 << 20, timeout_s=0.0)) is not None:
        chunks.append(chunk.samples)
    np.testing.assert_array_equal(np.concatenate(chunks), expected)


def test_speech_running_to_the_end_of_the_file_is_classified(espeak, tmp_path, run_pipeline):
    """End of input flushes the windower: the last words of a file get a window even when it
    ends between two regular windows."""
    cut_s = 4.7  # windows are due at 4 s and 5 s of speech; 0.7 s after the 4 s one is new
    audio = espeak.samples("en")[: round(cut_s * SAMPLE_RATE_HZ)]
    gate = build_gate(GateSettings())
    frames = gate.feed(0, audio) + gate.flush()
    speech_s = sum(len(f.samples) for f in frames if f.speech) / SAMPLE_RATE_HZ
    # precondition: the gate hears speech throughout (espeak's quiet first frame excepted)
    assert frames[-1].speech and speech_s >= cut_s - 0.05, speech_s
    path = tmp_path / "cut.wav"
    write_wav(path, audio)
    sink = run_pipeline([path])
    assert sink.predictions[-1].t_end_s == pytest.approx(cut_s, abs=0.05)
