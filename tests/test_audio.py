"""Audio inputs: every common file format and rate comes out as the same stream of 16 kHz
speech, with the stream's duration right, through the whole pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audio_helpers import SAMPLE_RATE_HZ, encode_with_ffmpeg, silence, to_s16le, write_wav

from streamlid.audio.files import FfmpegSource, SoundFileSource, wav_promised_frames
from streamlid.audio.open import open_source
from streamlid.audio.ring import RingBuffer
from streamlid.audio.sniff import SNIFF_BYTES, container_of
from streamlid.audio.stdin import StdinSource
from streamlid.events import Notice
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
    # A whole file is not "damaged": the short-decoding check must not cry wolf.
    assert [n.message for n in sink.of_type(Notice) if n.severity != "info"] == []


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


def _run_stdin(ring: RingBuffer, write, *, realtime: bool, notice=lambda s, m: None) -> None:
    """A StdinSource over a pipe: `write(write_fd)` feeds it, closing the pipe ends it; the
    source is stopped and the pipe closed whatever happens."""
    read_fd, write_fd = os.pipe()
    source = StdinSource(realtime=realtime, fd=read_fd)
    try:
        source.start(ring, notice)
        write(write_fd)
        os.close(write_fd)
        write_fd = -1
        assert source.join(10.0)
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        source.stop()
        source.join(5.0)
        os.close(read_fd)


def test_live_stdin_that_pauses_keeps_stream_time_on_the_wall_clock(espeak):
    """`producer | streamlid listen - --realtime`: the producer writes 1 s, pauses 3 s, writes
    1 s. Its paused audio never comes; stream time kept the 3 s delay for good, in silence."""
    audio = to_s16le(espeak.samples("en")[:SAMPLE_RATE_HZ])
    ring = RingBuffer(20 * SAMPLE_RATE_HZ)
    notices: list[tuple[str, str]] = []

    def write(write_fd: int) -> None:
        os.write(write_fd, audio)
        time.sleep(4.0)  # the producer's 1 s, played, then a 3 s pause
        os.write(write_fd, audio)

    _run_stdin(ring, write, realtime=True, notice=lambda s, m: notices.append((s, m)))
    assert ring.write_index / SAMPLE_RATE_HZ == pytest.approx(5.0, abs=0.4)
    assert len(notices) == 1 and notices[0][0] == "warning", notices
    assert "then it went on" in notices[0][1]


def test_live_stdin_slower_than_real_time_keeps_stream_time_on_the_wall_clock(espeak):
    """A producer that writes at a quarter of real time (0.05 s every 0.2 s), each pause too
    short to be a gap: its shortfall is silence once it adds up, and said. Before, stream
    time fell ever further behind the wall clock, unsaid."""
    audio = to_s16le(espeak.samples("en")[: SAMPLE_RATE_HZ // 20])
    ring = RingBuffer(20 * SAMPLE_RATE_HZ)
    notices: list[tuple[str, str]] = []
    wall_s = 5.0

    def write(write_fd: int) -> None:
        for _ in range(round(wall_s / 0.2)):
            os.write(write_fd, audio)
            time.sleep(0.2)

    _run_stdin(ring, write, realtime=True, notice=lambda s, m: notices.append((s, m)))
    # Without the fill: 1.25 s of audio. The last shortfall under 3 s is not filled yet.
    assert ring.write_index / SAMPLE_RATE_HZ >= wall_s - 3.0 + 0.5
    assert [s for s, _ in notices] == ["warning"], notices
    assert "slower than real time" in notices[0][1]


@needs_ffmpeg
@pytest.mark.parametrize("seed", [0, 1])  # 1: ffmpeg, going by the name, finds a frame or two
def test_random_bytes_named_mp3_are_not_audio_in_one_sentence_and_exit_1(
    seed, tiny_model_dir, tmp_path, run_cli
):
    """They were "no audio decoded (Error configuring filter graph)", or a warning that ffmpeg
    ended early and exit code 0, as if a recording had been heard."""
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(seed).bytes(300_000))
    result = run_cli(path, "--model", tiny_model_dir, "--ui", "none")
    assert result.returncode == 1, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "] error: " in line]
    assert "is not audio that ffmpeg can decode (" in error and "Invalid data" in error
    assert "give an audio or video file" in error
    assert "Traceback" not in result.stderr


@needs_ffmpeg
@pytest.mark.parametrize("suffix", ["mka", "mp4"])
def test_a_file_with_two_audio_tracks_is_heard_on_its_default_and_not_called_damaged(
    suffix, espeak, tiny_model_dir, tmp_path, run_cli
):
    """A one-second jingle as the first track and speech, marked as the default, as the
    second: ffmpeg's own pick was the jingle ("no speech found"), and the file's length, the
    speech's, made it 'damaged'. Piped in, ffmpeg takes the default: the same answer."""
    jingle = tmp_path / "jingle.wav"
    write_wav(jingle, 0.3 * np.sin(np.arange(SAMPLE_RATE_HZ) * 2 * np.pi * 440 / SAMPLE_RATE_HZ))
    speech = espeak.wav("en")
    both = tmp_path / f"two.{suffix}"
    codec = "libvorbis" if suffix == "mka" else "aac"
    tracks = ["-map", "0:a", "-map", "1:a", "-c:a", codec]
    tracks += ["-disposition:a:0", "0", "-disposition:a:1", "default"]
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", jingle, "-i", speech, *tracks, both],
        check=True,
    )
    result = run_cli(both, "--model", tiny_model_dir, "--ui", "plain")
    assert result.returncode == 0, result.stderr
    assert "2 audio tracks; listening to track 2 (the default)" in result.stdout
    assert "damaged" not in result.stdout + result.stderr
    heard_s = float(result.stdout.split(f"two.{suffix}: ")[-1].split(" s audio")[0])
    assert heard_s > 2.0  # the speech, not the one-second jingle


@pytest.fixture
def jingle_then_speech(espeak, tmp_path) -> Path:
    """An .mka whose first track, the default, is a one-second jingle, and whose second is
    speech (a dub, a broadcast's second language)."""
    jingle = tmp_path / "jingle.wav"
    write_wav(jingle, 0.3 * np.sin(np.arange(SAMPLE_RATE_HZ) * 2 * np.pi * 440 / SAMPLE_RATE_HZ))
    both = tmp_path / "dub.mka"
    tracks = ["-map", "0:a", "-map", "1:a", "-c:a", "libvorbis"]
    tracks += ["-disposition:a:0", "default", "-disposition:a:1", "0"]
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", jingle, "-i", espeak.wav("en"), *tracks, both],
        check=True,
    )
    return both


def _heard_s(stdout: str, name: str) -> float:
    return float(stdout.split(f"{name}: ")[-1].split(" s audio")[0])


@needs_ffmpeg
@pytest.mark.parametrize("piped", [False, True], ids=["path", "stdin"])
def test_track_hears_the_audio_track_asked_for_not_the_default(
    piped, jingle_then_speech, tiny_model_dir, run_cli
):
    """Only the default track could be heard: the second language of a broadcast or a film's
    dub was out of reach. `--track 2` hears it, by path or piped in."""
    source, stdin = ("-", jingle_then_speech.read_bytes()) if piped else (jingle_then_speech, None)
    result = run_cli(
        source, "--track", "2", "--model", tiny_model_dir, "--ui", "plain", stdin=stdin
    )
    assert result.returncode == 0, result.stderr
    assert _heard_s(result.stdout, "stdin" if piped else "dub.mka") > 2.0  # the speech
    if not piped:  # a pipe cannot be probed for its tracks first
        assert "2 audio tracks; listening to track 2 (as asked)" in result.stdout


@needs_ffmpeg
@pytest.mark.parametrize("piped", [False, True], ids=["path", "stdin"])
def test_a_track_the_file_does_not_have_is_one_sentence_naming_what_it_has(
    piped, jingle_then_speech, tiny_model_dir, run_cli
):
    source, stdin = ("-", jingle_then_speech.read_bytes()) if piped else (jingle_then_speech, None)
    result = run_cli(source, "--track", "3", "--model", tiny_model_dir, "--ui", "none", stdin=stdin)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    if piped:  # found when ffmpeg reads it
        assert "it has no audio track 3; give a smaller --track" in result.stderr
    else:  # found before the model loads
        assert result.returncode == 2
        assert "has 2 audio tracks, so no track 3; give --track 1 to 2" in result.stderr


@needs_ffmpeg
def test_only_a_container_is_told_apart_from_raw_pcm(source_audio, tmp_path):
    """Raw PCM that opens on a sample of -1 begins with 0xFF 0xFF, an MPEG frame's sync word:
    it stays PCM unless a second frame follows where the first one's length says."""
    wav = tmp_path / "a.wav"
    write_wav(wav, source_audio, rate_hz=44100)
    bare_mp3 = tmp_path / "bare.mp3"  # no ID3 tag: MPEG frames from the first byte
    encode_with_ffmpeg(wav, bare_mp3, "-id3v2_version", "0", "-write_xing", "0")
    assert container_of(wav.read_bytes()[:SNIFF_BYTES]) == "WAV"
    assert container_of(bare_mp3.read_bytes()[:SNIFF_BYTES]) == "MP3"
    rng = np.random.default_rng(0)
    for _ in range(200):
        noise = rng.integers(-300, 300, SNIFF_BYTES // 2, dtype="<i2")
        noise[0] = -1
        assert container_of(noise.tobytes()) is None
    assert container_of(to_s16le(source_audio)[:SNIFF_BYTES]) is None


def test_a_container_on_stdin_without_ffmpeg_is_one_sentence_with_the_fix(
    source_audio, tmp_path, monkeypatch
):
    wav = tmp_path / "a.wav"
    write_wav(wav, source_audio)
    monkeypatch.setattr("streamlid.audio.stdin.shutil.which", lambda name: None)
    ring = RingBuffer(20 * SAMPLE_RATE_HZ)
    notices: list[tuple[str, str]] = []
    _run_stdin(
        ring,
        lambda fd: os.write(fd, wav.read_bytes()[:SNIFF_BYTES]),
        realtime=False,
        notice=lambda s, m: notices.append((s, m)),
    )
    assert ring.write_index == 0  # not a header's worth of clicks
    ((severity, message),) = notices
    assert severity == "error"
    assert "carries WAV audio, not raw 16 kHz mono s16le" in message
    assert "install ffmpeg" in message


def test_stdin_source_reassembles_samples_split_across_reads(espeak):
    """A read that ends in the middle of a 16-bit sample must not shift every later sample."""
    audio = espeak.samples("en")[: 2 * SAMPLE_RATE_HZ]
    data = to_s16le(audio)
    expected = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    ring = RingBuffer(10 * SAMPLE_RATE_HZ)

    def write(write_fd: int) -> None:
        os.write(write_fd, data[:1001])  # 500 samples and half of the next
        deadline = time.monotonic() + 10.0
        while ring.write_index < 500:
            assert time.monotonic() < deadline, "the source did not read the first part"
            time.sleep(0.01)
        view = data[1001:]
        while view:
            written = os.write(write_fd, view)
            view = view[written:]

    _run_stdin(ring, write, realtime=False)
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


# -- damaged files and decoder noise -------------------------------------------------------


def _long_tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: round(len(data) * fraction)])
    return cut


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("mp3", marks=needs_ffmpeg),
        "wav",
    ],
)
def test_a_file_cut_short_of_its_header_is_reported_as_damaged(kind, tmp_path, run_pipeline):
    """The header promises 20 s; a third of the bytes are there. The stream is not passed off
    as a 7 s recording: one warning names where decoding stopped and what was promised."""
    wav = tmp_path / "whole.wav"
    write_wav(wav, _long_tone(20.0))
    if kind == "mp3":
        whole = tmp_path / "whole.mp3"
        encode_with_ffmpeg(wav, whole, "-c:a", "libmp3lame", "-b:a", "64k")  # with a Xing header
    else:
        whole = wav
    sink = run_pipeline([_cut(whole, 1 / 3)])
    (stream,) = sink.summary.streams
    assert stream.duration_s == pytest.approx(20.0 / 3, abs=0.5)
    (warning,) = [n for n in sink.of_type(Notice) if n.severity == "warning"]
    assert "decoding stopped at" in warning.message
    assert "of 20.0 s" in warning.message or "of 20.1 s" in warning.message
    assert "damaged" in warning.message


@needs_ffmpeg
def test_mp3_is_decoded_by_ffmpeg_and_its_noise_stays_off_the_terminal(tmp_path, run_cli):
    """libmpg123 (inside libsndfile) prints C-level errors for this valid 8 kHz, 8 kbit/s MP3
    straight to the terminal; through ffmpeg its stderr is captured, never shown."""
    wav = tmp_path / "tone.wav"
    write_wav(wav, _long_tone(6.0))
    mp3 = tmp_path / "low-rate.mp3"
    encode_with_ffmpeg(wav, mp3, "-ar", "8000", "-c:a", "libmp3lame", "-b:a", "8k")
    assert isinstance(open_source(str(mp3), realtime=False), FfmpegSource)
    result = run_cli(mp3, "--ui", "none", "--model", "tests/assets/tiny-lid")
    assert result.returncode == 0, result.stderr
    assert "mpg123" not in result.stderr
    assert "error" not in result.stderr.lower()


@needs_ffmpeg
def test_a_file_name_is_never_read_by_ffmpeg_as_a_protocol(source_audio, tmp_path, monkeypatch):
    """`concat:x.m4a` is a file here, not ffmpeg's concat protocol over x.m4a."""
    master = tmp_path / "master.wav"
    duration_s = write_wav(master, source_audio)
    monkeypatch.chdir(tmp_path)
    encode_with_ffmpeg(master, tmp_path / "concat:x.m4a", "-c:a", "aac")
    samples, rate = read_all(open_source("concat:x.m4a", realtime=False))
    assert len(samples) / rate == pytest.approx(duration_s, abs=DURATION_TOLERANCE_S)


def test_a_wav_header_written_while_streaming_promises_nothing(tmp_path, run_pipeline):
    """ffmpeg or arecord writing to a pipe cannot seek back: the data size stays a placeholder,
    which is no promise, so a whole file is not called damaged."""
    path = tmp_path / "streamed.wav"
    write_wav(path, _long_tone(3.0))
    assert wav_promised_frames(path) == 3 * SAMPLE_RATE_HZ
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert wav_promised_frames(path) is None
    sink = run_pipeline([path])
    assert sink.summary.streams[0].duration_s == pytest.approx(3.0, abs=0.05)
    assert [n for n in sink.of_type(Notice) if n.severity != "info"] == []


@needs_ffmpeg
def test_a_chatty_ffmpeg_never_stalls_and_its_complaints_become_one_warning(tmp_path):
    """An MP3 damaged every few hundred bytes makes ffmpeg write about 150 KB to stderr, more
    than a pipe holds (64 KB). Undrained, ffmpeg would block on it while we wait for audio: a stall.
    Drained, the audio arrives and ffmpeg's last complaint is quoted in one warning."""
    wav = tmp_path / "tone.wav"
    write_wav(wav, _long_tone(300.0))
    mp3 = tmp_path / "sprinkled.mp3"
    encode_with_ffmpeg(wav, mp3, "-c:a", "libmp3lame", "-b:a", "32k")
    data = bytearray(mp3.read_bytes())
    noise = np.random.default_rng(5)
    for at in range(2000, len(data) - 40, 300):
        data[at : at + 40] = noise.integers(0, 256, 40, dtype=np.uint8).tobytes()
    mp3.write_bytes(bytes(data))

    source = open_source(str(mp3), realtime=False)
    ring = RingBuffer(320 * SAMPLE_RATE_HZ)  # room for all of it: only ffmpeg can stall
    notices: list[tuple[str, str]] = []
    source.start(ring, lambda severity, message: notices.append((severity, message)))
    assert source.join(60.0), "ffmpeg stalled"
    assert source.error is None
    chunks = []
    while (chunk := ring.read(1 << 22, timeout_s=0.0)) is not None:
        chunks.append(chunk.samples)
    assert sum(len(c) for c in chunks) > 10 * SAMPLE_RATE_HZ
    (warning,) = [message for severity, message in notices if severity == "warning"]
    assert "s its header promises could be decoded" in warning and "of the 300." in warning
    assert "Invalid data" in warning or "Header missing" in warning  # ffmpeg's own words


@needs_ffmpeg
def test_a_length_ffprobe_only_estimates_is_no_promise(tmp_path):
    """A VBR MP3 without a Xing header: ffprobe guesses its length from the first frames'
    bit rate (silence first: about 72 s for 30 s). A guess must not turn a whole file into a
    "damaged" one."""
    wav = tmp_path / "silence-then-noise.wav"
    t = np.arange(30 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    noise = np.random.default_rng(2).normal(0, 0.3, len(t))
    write_wav(wav, (np.where(t < 15, 0.0, 1.0) * noise).astype(np.float32).clip(-1, 1))
    mp3 = tmp_path / "vbr.mp3"
    encode_with_ffmpeg(wav, mp3, "-c:a", "libmp3lame", "-q:a", "4", "-write_xing", "0")
    source = open_source(str(mp3), realtime=False)
    notices: list[tuple[str, str]] = []
    ring = RingBuffer(40 * SAMPLE_RATE_HZ)
    source.start(ring, lambda severity, message: notices.append((severity, message)))
    assert source.join(30.0)
    assert notices == []


@needs_ffmpeg
def test_a_streams_table_picks_its_own_track(jingle_then_speech, tiny_model_dir, tmp_path, run_cli):
    """One file, two [[streams]]: the original (default) track and the dub (track = 2)."""
    config = tmp_path / "tracks.toml"
    config.write_text(
        f'[[streams]]\nname = "orig"\nsource = "{jingle_then_speech}"\n'
        f'[[streams]]\nname = "dub"\nsource = "{jingle_then_speech}"\ntrack = 2\n'
    )
    result = run_cli("--config", config, "--model", tiny_model_dir, "--ui", "plain")
    assert result.returncode == 0, result.stderr
    assert _heard_s(result.stdout, "orig") < 1.5 < 2.0 < _heard_s(result.stdout, "dub")


@pytest.mark.parametrize("rate_hz", [2**31 - 1, 1])
def test_a_wav_header_with_an_impossible_sample_rate_is_one_line(rate_hz, tmp_path):
    """2**31 - 1 Hz made the reader ask for an 80 GB block (a MemoryError traceback); 1 Hz
    turned 1000 samples into 17 minutes of "audio"."""
    import struct

    from streamlid.errors import AudioSourceError

    data = np.zeros(2000, "<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate_hz, (rate_hz * 2) % 2**32, 2, 16)
    path = tmp_path / "odd-rate.wav"
    path.write_bytes(
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip
    with pytest.raises(AudioSourceError, match=f"sample rate is {rate_hz} Hz"):
        open_source(str(path), realtime=False)


def test_a_broken_or_looping_link_is_said_as_one_not_as_a_missing_file(tmp_path):
    """`ls` shows the name, yet streamlid said it "does not exist; check the path"."""
    from streamlid.errors import AudioSourceError

    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "gone").symlink_to("talk.wav")
    said = {}
    for name in ("a", "gone", "nothing"):
        with pytest.raises(AudioSourceError) as refused:
            open_source(str(tmp_path / name), realtime=False)
        said[name] = str(refused.value)
    assert "a symbolic link in a loop of links" in said["a"]
    assert "a symbolic link to 'talk.wav', which does not exist" in said["gone"]
    assert said["nothing"].endswith("does not exist; check the path.")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_named_as_a_file_is_one_sentence_not_silence_for_ever(device):
    """/dev/zero reported as "empty (0 bytes)" (its size), as /dev/urandom: neither is a
    recording, and a sound card is reached as mic:NAME."""
    from streamlid.errors import AudioSourceError

    with pytest.raises(AudioSourceError, match="is a device or special file, not an audio file"):
        open_source(device, realtime=False)


def _inverted_stereo(folder: Path, audio: np.ndarray, suffix: str) -> Path:
    """A stereo file whose right channel is the left one inverted (a miswired chain)."""
    wav = folder / "inverted.wav"
    soundfile.write(str(wav), np.stack([audio, -audio], axis=1), SAMPLE_RATE_HZ)
    if suffix == ".wav":
        return wav
    path = folder / f"inverted{suffix}"
    encode_with_ffmpeg(wav, path, "-c:a", "aac", "-b:a", "128k")
    return path


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


@pytest.mark.parametrize("kind", ["soundfile", "ffmpeg", "stdin"])
def test_a_channel_in_reverse_polarity_does_not_cancel_the_speech(kind, source_audio, tmp_path):
    """A plain mean of L and -L is silence: the speech was never heard. Whichever reader
    decodes it, it comes out at the channel's own level."""
    if kind != "soundfile" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt install ffmpeg)")
    path = _inverted_stereo(tmp_path, source_audio, ".m4a" if kind == "ffmpeg" else ".wav")
    if kind == "stdin":  # a WAV on standard input: ffmpeg decodes it
        ring = RingBuffer(60 * SAMPLE_RATE_HZ)
        _run_stdin(ring, lambda fd: os.write(fd, path.read_bytes()), realtime=False)
        chunks = []
        while (chunk := ring.read(1 << 20, timeout_s=0.0)) is not None:
            chunks.append(chunk.samples)
        samples = np.concatenate(chunks)
    else:
        samples, _ = read_all(open_source(str(path), realtime=False))
    assert _rms(samples) == pytest.approx(_rms(source_audio), rel=0.1)


@needs_ffmpeg
def test_ffmpeg_keeps_a_mono_file_at_its_own_level(source_audio, tmp_path):
    """ffmpeg hands on two channels now; its own mono-to-stereo upmix would lower the level
    by 3 dB, and with it what the speech gate hears."""
    wav = tmp_path / "mono.wav"
    write_wav(wav, source_audio)
    path = tmp_path / "mono.mka"
    encode_with_ffmpeg(wav, path, "-c:a", "pcm_s16le")
    samples, _ = read_all(open_source(str(path), realtime=False))
    assert isinstance(open_source(str(path), realtime=False), FfmpegSource)
    assert len(samples) == len(source_audio)
    assert np.abs(samples - source_audio).max() < 2e-4


def test_the_run_says_once_that_the_channels_cancel(source_audio, tmp_path, run_pipeline):
    path = _inverted_stereo(tmp_path, np.tile(source_audio, 2), ".wav")
    sink = run_pipeline([path])
    said = [n for n in sink.of_type(Notice) if "cancel" in n.message]
    assert len(said) == 1 and said[0].severity == "warning"
    (stream,) = sink.summary.streams
    assert stream.speech_s > 2.0
    assert sink.predictions
