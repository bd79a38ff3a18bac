"""Audio files and network streams: soundfile for WAV, FLAC, OGG and AIFF, ffmpeg for the rest.

Files are streamed block by block, never loaded whole, so a two-hour recording costs the same
memory as a two-second one. MP3 goes through ffmpeg even where libsndfile could read it: its
libmpg123 prints C-level errors straight onto the terminal (over the live view) for valid
low-rate files and gives up silently on damaged ones. A file whose decoding ends short of what
its header promised is reported, never passed off as a short recording.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from ..errors import AudioSourceError
from . import SAMPLE_RATE_HZ
from .ring import RingBuffer
from .source import BLOCK_S, Pacer, Source

# Ask ffmpeg for exactly what the model wants: one resampling, done by it.
FFMPEG_RATE_HZ = SAMPLE_RATE_HZ
URL_PREFIXES = ("http://", "https://", "rtmp://", "rtsp://", "srt://", "udp://", "tcp://")
# What libsndfile reads itself; everything else (MP3 included) goes to ffmpeg when it exists.
SOUNDFILE_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif")
# Decoding may end this much short of the header's length without a word (encoder padding,
# rounding in a container's duration field).
SHORT_TOLERANCE_S = 0.5
SHORT_TOLERANCE_FRACTION = 0.01
# Writers that cannot seek back (pipes, crashed recorders) leave 0 or a huge placeholder as the
# data size: not a promise.
WAV_PLACEHOLDER_BYTES = 0x7FFF0000
STDERR_LINES_KEPT = 20  # ffmpeg's last words, for the message when it fails


def is_url(spec: str) -> bool:
    return spec.lower().startswith(URL_PREFIXES)


def open_file_source(spec: str, *, realtime: bool) -> Source:
    """A source for a path or URL, validated now so a bad input fails before the model loads."""
    if is_url(spec):
        return FfmpegSource(spec, realtime=realtime)
    path = Path(spec)
    if not path.exists():
        raise AudioSourceError(f"Audio file {spec!r} does not exist; check the path.")
    if path.is_dir():
        raise AudioSourceError(f"{spec!r} is a folder, not an audio file; name a file in it.")
    if not os.access(path, os.R_OK):
        raise AudioSourceError(f"Audio file {spec!r} is not readable; check its permissions.")
    if path.stat().st_size == 0:
        raise AudioSourceError(f"Audio file {spec!r} is empty (0 bytes); give a recording.")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES or shutil.which("ffmpeg") is None:
        try:
            return SoundFileSource(path, realtime=realtime)
        except _NotForSoundFile:
            pass
    return FfmpegSource(spec, realtime=realtime)


def short_decode_message(
    decoded_s: float, promised_s: float | None, decoder_said: str | None = None
) -> str | None:
    """The warning for a decode that ended short of the header's promise, or None.
    `decoder_said`: the decoder's last complaint, when it skipped damaged data on the way."""
    if promised_s is None or promised_s <= 0:
        return None
    if decoded_s >= promised_s - max(SHORT_TOLERANCE_S, SHORT_TOLERANCE_FRACTION * promised_s):
        return None
    if decoder_said:
        return (
            f"only {decoded_s:.1f} s of the {promised_s:.1f} s its header promises could be "
            f"decoded ({decoder_said}): the file is damaged"
        )
    return f"decoding stopped at {decoded_s:.1f} s of {promised_s:.1f} s: the file is damaged"


def wav_promised_frames(path: Path) -> int | None:
    """Frames the `data` chunk of a RIFF/WAVE header promises (libsndfile reports only what is
    really there); None for other files and for headers written while streaming (0 or ~4 GB
    placeholders)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            for _ in range(64):  # a header has a handful of chunks before the audio
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if kind == b"fmt ":
                    fmt = handle.read(size + size % 2)
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                    continue
                if kind == b"data":
                    if block_align <= 0 or size == 0 or size >= WAV_PLACEHOLDER_BYTES:
                        return None
                    return size // block_align
                handle.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return None
    return None


class _NotForSoundFile(Exception):
    pass


class SoundFileSource(Source):
    """WAV, FLAC, OGG (and MP3 with a recent libsndfile), any rate, channels and sample format."""

    def __init__(self, path: Path, *, realtime: bool) -> None:
        super().__init__()
        import soundfile

        try:
            self._file = soundfile.SoundFile(str(path))
        except soundfile.LibsndfileError as exc:
            if path.suffix.lower() in (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif"):
                # The extension says libsndfile should read it: it is damaged, not exotic.
                raise AudioSourceError(
                    f"Audio file {str(path)!r} cannot be decoded ({exc.error_string}); "
                    "it may be truncated or corrupt."
                ) from None
            raise _NotForSoundFile from None
        if self._file.frames == 0:
            self._file.close()
            raise AudioSourceError(f"Audio file {str(path)!r} contains no audio samples.")
        self.name = path.name
        self.description = str(path)
        self.sample_rate_hz = int(self._file.samplerate)
        self.live = realtime
        self._realtime = realtime
        # FLAC and OGG report the header's length; for WAV libsndfile reports only what is
        # there, so the header is read for its promise.
        self._promised_frames = max(self._file.frames, wav_promised_frames(path) or 0)

    def _run(self, ring: RingBuffer) -> None:
        block = max(1, int(self.sample_rate_hz * BLOCK_S))
        pacer = Pacer(self.sample_rate_hz, self._stop) if self._realtime else None
        rate = self.sample_rate_hz
        decoded = 0
        while not self.stopping:
            try:
                frames = self._file.read(block, dtype="float32", always_2d=True)
            except Exception as exc:  # damaged data surfaces here, mid-file
                raise AudioSourceError(
                    f"decoding failed at {decoded / rate:.1f} s of "
                    f"{self._promised_frames / rate:.1f} s ({exc}): the file is damaged"
                ) from None
            if len(frames) == 0:
                message = short_decode_message(decoded / rate, self._promised_frames / rate)
                if message:
                    self._notice("warning", f"{self.description}: {message}")
                return
            decoded += len(frames)
            if pacer is not None:
                pacer.wait_for(len(frames))
            ring.write(frames, block=not self.live, stop=self._stop)

    def close(self) -> None:
        self._file.close()


class FfmpegSource(Source):
    """Anything ffmpeg decodes (MP3, M4A, video files, HTTP/RTMP/SRT streams), as 16 kHz mono.

    The child is owned: its stderr is drained by a thread of this source while it runs (kept,
    never shown raw), it is killed from the stop path and always reaped."""

    def __init__(self, spec: str, *, realtime: bool) -> None:
        super().__init__()
        self._ffmpeg = shutil.which("ffmpeg")
        if self._ffmpeg is None:
            raise AudioSourceError(
                f"{spec!r} is not a format soundfile reads and ffmpeg is not installed; "
                "install ffmpeg (e.g. `apt install ffmpeg`) or convert the file to WAV or FLAC."
            )
        self._spec = spec
        # A local name goes to ffmpeg as file:NAME, so that no name (`concat:…`, `subfile,…`,
        # `-x`) is ever read as a protocol or an option.
        self._input = spec if is_url(spec) else "file:" + str(Path(spec).absolute())
        self.name = spec if is_url(spec) else Path(spec).name
        self.description = spec
        self.sample_rate_hz = FFMPEG_RATE_HZ
        # A network stream is live whatever the flag says: it cannot wait for us.
        self.live = realtime or is_url(spec)
        self._realtime = realtime
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._stderr_thread: threading.Thread | None = None
        self._promised_s: float | None = None
        if not is_url(spec):
            self._promised_s = self._probe()

    def _probe(self) -> float | None:
        """Fails now, with ffmpeg's reason, on a file ffmpeg cannot decode or with no audio;
        returns the duration the header promises (None when ffprobe only estimates it)."""
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return None
        result = subprocess.run(
            [
                ffprobe,
                "-v",
                "warning",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=codec_type,duration:format=duration",
                "-of",
                "json",
                self._input,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
            check=False,
        )
        try:
            info = json.loads(result.stdout or "{}")
        except json.JSONDecodeError:
            info = {}
        streams = info.get("streams") or []
        if result.returncode != 0 or not isinstance(streams, list):
            reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise AudioSourceError(
                f"Audio file {self._spec!r} cannot be decoded ({reason}); "
                "it may be truncated, corrupt or not audio."
            )
        if not any(s.get("codec_type") == "audio" for s in streams):
            raise AudioSourceError(f"{self._spec!r} has no audio stream; give a file with sound.")
        if "Estimating duration" in result.stderr:  # a guess from the bit rate, not a promise
            return None
        for value in (streams[0].get("duration"), (info.get("format") or {}).get("duration")):
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
        return None

    def _run(self, ring: RingBuffer) -> None:
        args = [self._ffmpeg or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
        if self._realtime and not is_url(self._spec):
            args.append("-re")  # ffmpeg paces the decode itself
        args += [
            "-i",
            self._input,
            "-vn",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(FFMPEG_RATE_HZ),
            "-",
        ]
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name=f"ffmpeg-stderr-{self.name}", daemon=True
        )
        self._stderr_thread.start()
        assert self._process.stdout is not None
        block_bytes = 2 * int(FFMPEG_RATE_HZ * BLOCK_S)
        total = 0
        while not self.stopping:
            data = self._process.stdout.read(block_bytes)
            if not data:
                break
            data = data[: len(data) - len(data) % 2]
            samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            total += len(samples)
            ring.write(samples, block=not self.live, stop=self._stop)
        if self.stopping:
            return
        code = self._process.wait()
        self._stderr_thread.join(5.0)  # ffmpeg has exited: its stderr ends now
        lines = list(self._stderr_lines)
        reason = lines[-1] if lines else f"ffmpeg exited with code {code}"
        if total == 0:
            raise AudioSourceError(f"no audio decoded ({reason})")
        said = reason if lines or code != 0 else None
        short = short_decode_message(total / FFMPEG_RATE_HZ, self._promised_s, said)
        if short:
            self._notice("warning", f"{self.description}: {short}")
        elif code != 0:
            self._notice("warning", f"{self.description}: ffmpeg ended early ({reason})")

    def _drain_stderr(self) -> None:
        """Reads ffmpeg's messages as they come, so a chatty child never blocks on a full pipe
        and nothing of it reaches the terminal; keeps the last few for the report."""
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                self._stderr_lines.append(line)

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        if self._process is not None:
            self._process.wait()
            if self._stderr_thread is not None:
                self._stderr_thread.join(5.0)
            for pipe in (self._process.stdout, self._process.stderr):
                if pipe is not None:
                    pipe.close()
