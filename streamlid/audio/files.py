"""Audio files and network streams: soundfile for what libsndfile reads, ffmpeg for the rest.

Files are streamed block by block, never loaded whole, so a two-hour recording costs the same
memory as a two-second one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..errors import AudioSourceError
from . import SAMPLE_RATE_HZ
from .ring import RingBuffer
from .source import BLOCK_S, Pacer, Source

# Ask ffmpeg for exactly what the model wants: one resampling, done by it.
FFMPEG_RATE_HZ = SAMPLE_RATE_HZ
URL_PREFIXES = ("http://", "https://", "rtmp://", "rtsp://", "srt://", "udp://", "tcp://")


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
    try:
        return SoundFileSource(path, realtime=realtime)
    except _NotForSoundFile:
        return FfmpegSource(spec, realtime=realtime)


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

    def _run(self, ring: RingBuffer) -> None:
        block = max(1, int(self.sample_rate_hz * BLOCK_S))
        pacer = Pacer(self.sample_rate_hz, self._stop) if self._realtime else None
        while not self.stopping:
            try:
                frames = self._file.read(block, dtype="float32", always_2d=True)
            except Exception as exc:  # truncated data surfaces here, mid-file
                raise AudioSourceError(
                    f"read failed after {self._file.tell()} frames: {exc}"
                ) from None
            if len(frames) == 0:
                return
            if pacer is not None:
                pacer.wait_for(len(frames))
            ring.write(frames, block=not self.live, stop=self._stop)

    def close(self) -> None:
        self._file.close()


class FfmpegSource(Source):
    """Anything ffmpeg decodes (MP3, M4A, video files, HTTP/RTMP/SRT streams), as 16 kHz mono."""

    def __init__(self, spec: str, *, realtime: bool) -> None:
        super().__init__()
        self._ffmpeg = shutil.which("ffmpeg")
        if self._ffmpeg is None:
            raise AudioSourceError(
                f"{spec!r} is not a format soundfile reads and ffmpeg is not installed; "
                "install ffmpeg (e.g. `apt install ffmpeg`) or convert the file to WAV or FLAC."
            )
        self._spec = spec
        self.name = spec if is_url(spec) else Path(spec).name
        self.description = spec
        self.sample_rate_hz = FFMPEG_RATE_HZ
        # A network stream is live whatever the flag says: it cannot wait for us.
        self.live = realtime or is_url(spec)
        self._realtime = realtime
        self._process: subprocess.Popen[bytes] | None = None
        if not is_url(spec):
            self._probe()

    def _probe(self) -> None:
        """Fails now, with ffmpeg's reason, on a file ffmpeg cannot decode or with no audio."""
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return
        result = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
                self._spec,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise AudioSourceError(
                f"Audio file {self._spec!r} cannot be decoded ({reason}); "
                "it may be truncated, corrupt or not audio."
            )
        if "audio" not in result.stdout:
            raise AudioSourceError(f"{self._spec!r} has no audio stream; give a file with sound.")

    def _run(self, ring: RingBuffer) -> None:
        args = [self._ffmpeg or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
        if self._realtime and not is_url(self._spec):
            args.append("-re")  # ffmpeg paces the decode itself
        args += [
            "-i",
            self._spec,
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
        if code != 0 or total == 0:
            assert self._process.stderr is not None
            lines = self._process.stderr.read().decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"ffmpeg exited with code {code}"
            if total == 0:
                raise AudioSourceError(f"no audio decoded ({reason})")
            self._notice("warning", f"{self.description}: ffmpeg ended early ({reason})")

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process is not None:
            for pipe in (self._process.stdout, self._process.stderr):
                if pipe is not None:
                    pipe.close()
