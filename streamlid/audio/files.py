"""Audio files and network streams: soundfile for WAV, FLAC, OGG and AIFF, ffmpeg for the rest.

Files are streamed block by block, never loaded whole, so a two-hour recording costs the same
memory as a two-second one. MP3 goes through ffmpeg even where libsndfile could read it: its
libmpg123 prints C-level errors straight onto the terminal (over the live view) for valid
low-rate files and gives up silently on damaged ones. A file whose decoding ends short of what
its header promised is reported, never passed off as a short recording.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioSourceError
from ..printable import printable
from . import SAMPLE_RATE_HZ
from .feeds import STEADY_S, Backoff, FeedPacer, FeedSettings
from .ffmpeg import REAP_TIMEOUT_S, FfmpegChild
from .ring import RingBuffer
from .source import BLOCK_S, Pacer, Source
from .urls import (
    FILE_PROTOCOLS,
    PIPE_PROTOCOLS,
    RESUMABLE_SCHEMES,
    URL_PREFIXES,
    for_ffmpeg,
    is_url,
    looks_like_url,
    protocol_whitelist,
    redact,
    scheme_of,
)

# Ask ffmpeg for exactly what the model wants: one resampling, done by it.
FFMPEG_RATE_HZ = SAMPLE_RATE_HZ
# ffmpeg hands on two channels, mixed to mono by the ring's mixdown (mixdown.py), which hears
# a pair that cancels: `-ac 1` would make an inverted right channel silence. Mono comes out as
# two equal channels at its own level (`-ac 2` would lower it by 3 dB); surround keeps its
# front, centre and side or back channels.
FFMPEG_STEREO = "pan=stereo|FL<FL+FC+SL+BL|FR<FR+FC+SR+BR"
FFMPEG_CHANNELS_N = 2
# What libsndfile reads itself; everything else (MP3 included) goes to ffmpeg when it exists.
# Sample rates a recording may have: a header outside them is damaged (2**31 - 1 Hz asked the
# reader for an 80 GB block). 768 kHz is the fastest converters'; 1 kHz is below any speech.
MIN_RATE_HZ, MAX_RATE_HZ = 1_000, 768_000
SOUNDFILE_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif")
# Decoding may end this much short of the header's length without a word (encoder padding,
# rounding in a container's duration field).
SHORT_TOLERANCE_S = 0.5
SHORT_TOLERANCE_FRACTION = 0.01
# Writers that cannot seek back (pipes, crashed recorders) leave 0 or a huge placeholder as the
# data size: not a promise.
WAV_PLACEHOLDER_BYTES = 0x7FFF0000
FEED_PROBE_BYTES = 32768  # enough for ffmpeg to recognise any audio stream format
# ffmpeg resumes a file cut short at once, then after 1 s, 3 s, 7 s … up to its
# reconnect_delay_max (120 s by default): a server that advertises ranges but answers them
# wrongly (the whole file again, a wrong Content-Range) failed every try, and the feed sat
# through the whole --stall-timeout before the cut was said. Two tries (at once and after
# 1 s) resume a real drop; then ffmpeg gives up itself and the cut is said at once.
RESUME_DELAY_MAX_S = 1
HEADER_WAIT_S = 2.0  # ffmpeg says its input's header before its first audio: a bound only
# Feeds whose live form has no length but whose end gives them one (a live HLS playlist given
# its end): a file without a length in its header (an Opus file) is no live stream.
PLAYLISTS = ("hls", "dash")
# Less audio than this from a whole input, amid decoding errors, is ffmpeg finding no audio in
# bytes that are none: random bytes named .mp3 give a frame or two of noise among hundreds of
# errors (and too little to tell a language from, whatever it is).
NOT_AUDIO_S = 0.5
INVALID_DATA = "Invalid data found when processing input"  # ffmpeg's verdict on non-audio
WRITER_WAIT_SAID_S = 0.5  # a named pipe without a writer this long is said to be waiting
# An MP4 (the default M4A too) keeps its index at its end unless made with +faststart; what
# cannot seek (a pipe, a server without range requests) never reaches it.
FASTSTART_FIX = "move the index to the front (ffmpeg -i IN -c copy -movflags +faststart OUT)"


def open_file_source(
    spec: str, *, realtime: bool, feed: FeedSettings | None = None, track: int = 0
) -> Source:
    """A source for a path or URL, validated now so a bad input fails before the model loads.
    `track`: which of several audio tracks is heard (1 = the first; 0: the default one)."""
    if is_url(spec):
        return FfmpegSource(spec, realtime=realtime, feed=feed, track=track)
    path = Path(spec)
    if not path.exists():
        if looks_like_url(spec):  # not a file but a URL of a scheme no feed is read over
            raise AudioSourceError(
                f"{redact(spec)!r} is a URL of a kind streamlid does not read "
                f"({scheme_of(spec)}://); give one that starts with {', '.join(URL_PREFIXES)}"
            )
        raise AudioSourceError(_missing(spec, path))
    if path.is_dir():
        raise AudioSourceError(f"{spec!r} is a folder, not an audio file; name a file in it.")
    if not os.access(path, os.R_OK):
        raise AudioSourceError(f"Audio file {spec!r} is not readable; check its permissions.")
    info = path.stat()
    if stat.S_ISFIFO(info.st_mode):
        return open_pipe_source(spec, realtime=realtime, track=track)
    if not stat.S_ISREG(info.st_mode):  # /dev/zero would be silence for ever; a socket, nothing
        raise AudioSourceError(
            f"{spec!r} is a device or special file, not an audio file; give a recording, or "
            "for a sound card, mic:NAME."
        )
    if info.st_size == 0:
        raise AudioSourceError(f"Audio file {spec!r} is empty (0 bytes); give a recording.")
    has_ffmpeg = shutil.which("ffmpeg") is not None
    if track > 1 and not has_ffmpeg:
        raise AudioSourceError(
            f"Choosing audio track {track} of {spec!r} needs ffmpeg, which is not installed; "
            "install ffmpeg (e.g. `apt install ffmpeg`) or leave out --track."
        )
    # libsndfile reads a file's first track only: another one is ffmpeg's to find.
    if track <= 1 and (path.suffix.lower() in SOUNDFILE_SUFFIXES or not has_ffmpeg):
        try:
            return SoundFileSource(path, realtime=realtime)
        except _NotForSoundFile:
            pass
    return FfmpegSource(spec, realtime=realtime, track=track)


def _missing(spec: str, path: Path) -> str:
    """Why a path names no file. A link is there, so "does not exist" sent the user looking
    for a file they could see: a link whose target is gone, or a loop of links, is said as
    such."""
    if not path.is_symlink():
        return f"Audio file {spec!r} does not exist; check the path."
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{spec!r} is a symbolic link in a loop of links; point it at an audio file."
    return (
        f"{spec!r} is a symbolic link to {os.readlink(path)!r}, which does not exist; "
        "point it at an audio file."
    )


@dataclass(frozen=True)
class PipeInput:
    """A stream with no size and no second reading (a FIFO, standard input), which ffmpeg reads
    as its standard input: `head` (bytes already read from `fd` to recognise it), then `fd`;
    `owned`: the source closes `fd` at its end (a FIFO it opened, not standard input)."""

    fd: int
    head: bytes = b""
    owned: bool = False


def open_pipe_source(spec: str, *, realtime: bool, track: int = 0) -> Source:
    """A FIFO named as a path (`<(cat talk.wav)`, `mkfifo`): it has no size to judge and cannot
    be probed and then read again, so ffmpeg decodes it as it comes, telling the format from
    its bytes."""
    if shutil.which("ffmpeg") is None:
        raise AudioSourceError(
            f"{spec!r} is a pipe, which only ffmpeg can decode as it comes, and ffmpeg is not "
            "installed; install ffmpeg (e.g. `apt install ffmpeg`) or give the file itself."
        )
    # A named FIFO waits here for its writer, as `cat` would; a wait that lasts is said, so
    # the run does not look hung before the model has even loaded (`<(cat x)` never waits).
    said = threading.Timer(
        WRITER_WAIT_SAID_S,
        lambda: print(
            f"{printable(spec)!r} is a named pipe with no writer yet; waiting for one "
            "(Ctrl-C stops).",
            file=sys.stderr,
            flush=True,
        ),
    )
    said.daemon = True  # it only ever prints one line; cancelled and joined below
    said.start()
    try:
        fd = os.open(spec, os.O_RDONLY)
    finally:
        said.cancel()
        said.join()
    return FfmpegSource(spec, realtime=realtime, pipe=PipeInput(fd, owned=True), track=track)


def _disposition(stream: dict[str, Any], flag: str) -> bool:
    return bool((stream.get("disposition") or {}).get(flag))


def _track_length_s(stream: dict[str, Any]) -> float | None:
    """An audio track's length as ffprobe gives it: its own duration, or Matroska's DURATION
    tag ("00:00:08.700000000"); None when the file does not say."""
    try:
        return float(stream["duration"])
    except (KeyError, TypeError, ValueError):
        pass
    try:
        h, m, sec = str((stream.get("tags") or {}).get("DURATION")).split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def decoded_all(decoded_s: float, promised_s: float) -> bool:
    """Whether decoding reached the length a header promises (within encoder padding)."""
    return decoded_s >= promised_s - max(SHORT_TOLERANCE_S, SHORT_TOLERANCE_FRACTION * promised_s)


def short_decode_message(
    decoded_s: float, promised_s: float | None, decoder_said: str | None = None
) -> str | None:
    """The warning for a decode that ended short of the header's promise, or None.
    `decoder_said`: the decoder's last complaint, when it skipped damaged data on the way."""
    if promised_s is None or promised_s <= 0 or decoded_all(decoded_s, promised_s):
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


def found_no_audio(total: int, child: FfmpegChild) -> bool:
    """Whether an input that ended having given `total` samples held no audio ffmpeg could
    decode: none at all, or next to none amid errors."""
    return total == 0 or (total < NOT_AUDIO_S * FFMPEG_RATE_HZ and child.errors_n > 0)


def ffmpeg_verdict(child: FfmpegChild, *, named: bool = True) -> str:
    """ffmpeg's word on why it decoded nothing: its first "invalid data" line (later lines
    are knock-on errors, such as a filter graph with no input to configure), else its first.
    `named`: the input has a name ffmpeg could guess from (a pipe has none)."""
    said = next((p for p in child.problems if INVALID_DATA in p), None)
    first = child.problems[0] if child.problems else "no error given"
    if said is None and child.format_guessed:
        guess = "only a guess from its name" if named else "only a guess"
        return f"no format in its bytes, {guess}; then: {first}"
    return said or first


def no_audio_message(length: int, child: FfmpegChild) -> str:
    """Why a resource the server sent whole gave no audio, with the fix where it is known."""
    message = (
        f"the server sent all {length} bytes of it, but ffmpeg decoded no audio from them "
        f"({ffmpeg_verdict(child)})"
    )
    if is_mp4(child):
        message += (
            "; an MP4/M4A whose index is at its end can only be read from a server that "
            f"answers range requests: serve it from one, or {FASTSTART_FIX}"
        )
    return message


def no_such_track_message(spec: str, track: int, tracks_n: int) -> str:
    """A --track beyond a probed file's `tracks_n` audio tracks."""
    if tracks_n == 1:
        return f"{redact(spec)!r} has one audio track, so no track {track}; leave out --track."
    return (
        f"{redact(spec)!r} has {tracks_n} audio tracks, so no track {track}; give --track 1 to "
        f"{tracks_n}, or 0 for the one marked as the default."
    )


NO_SUCH_TRACK = (  # of a feed or pipe, found only when ffmpeg reads it
    "it has no audio track {track}; give a smaller --track, or 0 for the one marked as the default"
)


def missing_track(child: FfmpegChild) -> bool:
    """ffmpeg refused the `-map 0:a:N` of a track the input does not have."""
    return any("matches no streams" in problem for problem in child.problems)


def is_mp4(child: FfmpegChild) -> bool:
    return "mp4" in (child.input_format or "").split(",")


def cut_short_message(child: FfmpegChild) -> str:
    """Why a file served over HTTP ends before its length: its connection dropped and the rest
    could not be fetched without fetching it all again."""
    assert child.cut_short is not None
    got, length = child.cut_short
    if child.resumes_n:
        how = "resuming it with a range request failed"
    else:
        how = "the server does not resume downloads (range requests)"
    return (
        f"the file was cut short at {got} of {length} bytes and {how}; "
        "it ends there (fetching it again would hear its start twice)"
    )


class _NotForSoundFile(Exception):
    pass


class SoundFileSource(Source):
    """WAV, FLAC, OGG (and MP3 with a recent libsndfile), any rate, channels and sample format."""

    def __init__(self, path: Path, *, realtime: bool) -> None:
        super().__init__()
        import soundfile

        try:
            # By its bytes: a name that is not UTF-8 ("caf\udce9.wav") is a file like any other.
            self._file = soundfile.SoundFile(os.fsencode(path))
        except soundfile.LibsndfileError as exc:
            if path.suffix.lower() in (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif"):
                # The extension says libsndfile should read it: it is damaged, not exotic.
                raise AudioSourceError(
                    f"Audio file {str(path)!r} cannot be decoded ({exc.error_string}); "
                    "it may be truncated, corrupt or not audio."
                ) from None
            raise _NotForSoundFile from None
        if self._file.frames == 0:
            self._file.close()
            raise AudioSourceError(f"Audio file {str(path)!r} contains no audio samples.")
        if not MIN_RATE_HZ <= self._file.samplerate <= MAX_RATE_HZ:
            self._file.close()
            raise AudioSourceError(
                f"Audio file {str(path)!r} says its sample rate is {self._file.samplerate} Hz, "
                f"outside any recording's ({MIN_RATE_HZ} to {MAX_RATE_HZ} Hz); its header is "
                "damaged: export the recording again."
            )
        self.name = path.name
        self.description = str(path)
        self.sample_rate_hz = int(self._file.samplerate)
        self.live = realtime
        self._realtime = realtime
        # FLAC and OGG report the header's length; for WAV libsndfile reports only what is
        # there, so the header is read for its promise.
        self._frames = self._file.frames
        self._promised_frames = max(self._frames, wav_promised_frames(path) or 0)
        self._start_frame = 0
        self._path = path
        self._child: FfmpegChild | None = None  # decoding on past damage (ffmpeg.py owns it)
        self._child_lock = threading.Lock()

    def start_at(self, t_s: float) -> None:
        """Reads from `t_s` seconds into the file on (before `start()`): a reader restarted
        elsewhere (a cluster's ingest actor) resumes where the last one stopped."""
        self._start_frame = min(self._frames, max(0, round(t_s * self.sample_rate_hz)))
        self._opened().seek(self._start_frame)

    def release(self) -> None:
        self._file.close()

    def _opened(self) -> Any:
        """The file, opened again after `release()`, where it was left."""
        if self._file.closed:
            import soundfile

            self._file = soundfile.SoundFile(os.fsencode(self._path))
            self._file.seek(self._start_frame)
        return self._file

    def _run(self, ring: RingBuffer) -> None:
        block = max(1, int(self.sample_rate_hz * BLOCK_S))
        pacer = Pacer(self.sample_rate_hz, self._stop) if self._realtime else None
        rate = self.sample_rate_hz
        decoded = self._start_frame
        file = self._opened()
        while not self.stopping:
            try:
                frames = file.read(block, dtype="float32", always_2d=True)
            except Exception as exc:  # damaged data surfaces here, mid-file
                self._decode_past_damage(ring, pacer, decoded, str(exc))
                return
            if len(frames) == 0:
                message = short_decode_message(decoded / rate, self._promised_frames / rate)
                if message:
                    self._notice("warning", f"{self.description}: {message}")
                return
            decoded += len(frames)
            if pacer is not None:
                pacer.wait_for(len(frames))
            ring.write(frames, block=not self.live, stop=self._stop)

    def _decode_past_damage(
        self, ring: RingBuffer, pacer: Pacer | None, damaged_at: int, said: str
    ) -> None:
        """libsndfile ends a file at its first damaged frame (a FLAC that lost sync); ffmpeg
        finds the next good one. It decodes on from where libsndfile stopped, at the file's
        own rate and channels, so the stream goes on as one."""
        rate, promised = self.sample_rate_hz, self._promised_frames
        failed = (
            f"decoding failed at {damaged_at / rate:.1f} s of {promised / rate:.1f} s ({said}): "
            "the file is damaged"
        )
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise AudioSourceError(failed + "; install ffmpeg to decode past the damage")
        channels = self._file.channels
        args = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info"]
        args += ["-protocol_whitelist", FILE_PROTOCOLS, "-ss", f"{damaged_at / rate:.6f}"]
        args += ["-i", "file:" + str(self._path.absolute()), "-vn", "-f", "f32le"]
        args += ["-ac", str(channels), "-ar", str(rate), "-"]
        with self._child_lock:
            if self.stopping:
                return
            child = self._child = FfmpegChild(ffmpeg, args, self.name)
        frame_bytes = 4 * channels
        block_bytes = frame_bytes * max(1, int(rate * BLOCK_S))
        carry = b""  # part of a frame from a read that split one
        decoded = damaged_at
        try:
            while not self.stopping and (data := child.read(block_bytes, 60.0)) != b"":
                if data is None:  # a slow decode, not an end
                    continue
                data = carry + data
                usable = len(data) - len(data) % frame_bytes
                carry = data[usable:]
                frames = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels)
                decoded += len(frames)
                if pacer is not None:
                    pacer.wait_for(len(frames))
                ring.write(frames, block=not self.live, stop=self._stop)
        finally:
            with self._child_lock:
                self._child = None
            child.close()
        if self.stopping:
            return
        if decoded == damaged_at:  # nothing good after it either
            raise AudioSourceError(failed)
        self._notice(
            "warning",
            f"{self.description}: the audio is damaged at {damaged_at / rate:.1f} s ({said}); "
            f"ffmpeg decoded on past it, skipping {max(0, promised - decoded) / rate:.1f} s "
            f"of {promised / rate:.1f} s",
        )

    def stop(self) -> None:
        super().stop()
        with self._child_lock:
            if self._child is not None:
                self._child.kill()  # a reader waiting on it returns at once

    def close(self) -> None:
        self._file.close()


class FfmpegSource(Source):
    """Anything ffmpeg decodes (MP3, M4A, video files, HTTP/RTMP/SRT streams), as 16 kHz mono.

    The child is owned (ffmpeg.py): drained while it runs, killed from `stop()` itself (so a
    reader blocked on a stalled URL returns at once) and always reaped. A local file is given to
    ffmpeg as `file:` plus its absolute path with only the file protocol allowed, so no name is
    ever a protocol; a URL gets its scheme's protocols (its scheme in lower case) and a read
    timeout. A URL is a live feed: its end, a drop or a stall is followed by reconnecting
    (feeds.py), unless it was a finite resource the server delivered whole (`_read_whole`; never
    one that was live, as a live HLS playlist given its end: it is down until it is live again) or
    one whose connection dropped short of its length: ffmpeg resumes that with a range request
    where the server accepts them, and otherwise it ends there with a warning."""

    def __init__(
        self,
        spec: str,
        *,
        realtime: bool,
        feed: FeedSettings | None = None,
        pipe: PipeInput | None = None,
        track: int = 0,
    ) -> None:
        super().__init__()
        self._ffmpeg = shutil.which("ffmpeg")
        self._url = is_url(spec)
        shown = redact(spec)
        if self._ffmpeg is None:
            raise AudioSourceError(
                f"{shown!r} is not a format soundfile reads and ffmpeg is not installed; "
                "install ffmpeg (e.g. `apt install ffmpeg`) or convert the file to WAV or FLAC."
            )
        self._spec = spec  # the real URL: for the ffmpeg child only, never for output
        self._pipe = pipe  # a FIFO or standard input, read as pipe:0
        if pipe is not None:
            self._input = "pipe:0"
        elif self._url:
            self._input = for_ffmpeg(spec)
        else:
            self._input = "file:" + str(Path(spec).absolute())
        # A pipe from `<(cmd)` is /dev/fd/63: "63" alone would name nothing.
        by_fd = pipe is not None and Path(spec).parent.name == "fd"
        self.name = shown if self._url or by_fd else Path(spec).name
        self.description = shown
        self.sample_rate_hz = FFMPEG_RATE_HZ
        # Like a file: live (paced, dropped rather than waited for) only with --realtime.
        self.live = realtime
        self._realtime = realtime
        self._settings = feed or FeedSettings()
        self._child: FfmpegChild | None = None
        self._child_lock = threading.Lock()
        self._last_audio_at: float | None = None  # wall time of the last audio read
        self._promised_s: float | None = None
        self._asked_track = track  # 1 = the first audio track; 0: the one marked as the default
        # Which audio track (ffmpeg's a:N) is heard: of a file, chosen when probed; of a feed or
        # a pipe, which cannot be probed first, the one asked for (else ffmpeg's own pick).
        self._track: int | None = track - 1 if track else None
        self._track_note: str | None = None  # ...said once the stream runs, if there is a choice
        if not self._url and pipe is None:
            self._promised_s = self._probe()

    # -- the child ------------------------------------------------------------------------

    def _args(self) -> list[str]:
        # A feed's child also says, at verbose level, how many bytes of its input it read.
        level = "level+verbose" if self._url else "level+info"
        args = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", level]
        if self._url:
            args += ["-protocol_whitelist", protocol_whitelist(self._input)]
            args += ["-rw_timeout", str(self._settings.rw_timeout_us)]
            # Start from the first second of a feed (not 5 s of probing, as long as a stall),
            # and hand on each packet as it is decoded.
            args += ["-probesize", str(FEED_PROBE_BYTES), "-analyzeduration", "1000000"]
            args += ["-flush_packets", "1"]
            if scheme_of(self._input) in RESUMABLE_SCHEMES:
                # A response with a length (a file) that drops is resumed where it stopped with
                # a range request, if the server accepts them; its decoding never notices.
                args += ["-reconnect", "1", "-reconnect_delay_max", str(RESUME_DELAY_MAX_S)]
        else:
            args += ["-protocol_whitelist", PIPE_PROTOCOLS if self._pipe else FILE_PROTOCOLS]
            if self._realtime:
                args.append("-re")  # ffmpeg paces a local decode itself
        chosen = [] if self._track is None else ["-map", f"0:a:{self._track}"]
        return [
            *args,
            "-i",
            self._input,
            *chosen,
            "-vn",
            "-af",
            FFMPEG_STEREO,
            "-f",
            "s16le",
            "-ar",
            str(FFMPEG_RATE_HZ),
            "-",
        ]

    def _spawn(self, binary: str, args: list[str], stdin: int | None = None) -> FfmpegChild | None:
        """A new child, unless stopping (checked under the lock `stop()` takes: none is left)."""
        with self._child_lock:
            if self.stopping:
                return None
            self._child = FfmpegChild(binary, args, self.name, stdin)
            return self._child

    def _reap(self) -> int | None:
        with self._child_lock:
            child, self._child = self._child, None
        return child.close() if child is not None else None

    def stop(self) -> None:
        super().stop()
        with self._child_lock:
            if self._child is not None:
                self._child.kill()

    def join(self, timeout_s: float) -> bool:
        ended = super().join(timeout_s)
        if not ended:  # the reader is stuck elsewhere: still, no child outlives the run
            with self._child_lock:
                if self._child is not None:
                    self._child.kill()
        return ended

    def close(self) -> None:
        self._reap()
        if self._pipe is not None and self._pipe.owned:
            os.close(self._pipe.fd)

    def _feed_child(self, child: FfmpegChild, pipe: PipeInput) -> None:
        """The bytes read to recognise the stream, then the rest of it, into the child's
        standard input; ends at the stream's end (closing it tells ffmpeg), the child's, or a
        stop (the child killed: a blocked write fails at once)."""
        assert child.process.stdin is not None
        out = child.process.stdin.fileno()
        try:
            data = pipe.head
            while data:
                while data:
                    data = data[os.write(out, data) :]
                while not self.stopping and child.process.poll() is None:
                    if select.select([pipe.fd], [], [], 0.1)[0]:
                        data = os.read(pipe.fd, 65536)
                        break
        except OSError:  # the child is gone (EPIPE): its own verdict is what is reported
            pass
        finally:
            child.process.stdin.close()

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
                "-protocol_whitelist",
                FILE_PROTOCOLS,
                "-select_streams",
                "a",
                "-show_entries",
                "stream=codec_type,duration:stream_tags=DURATION:stream_disposition=default"
                ":format=duration",
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
        if len(streams) > 1 or self._asked_track:
            return self._choose_track(streams)
        if "Estimating duration" in result.stderr:  # a guess from the bit rate, not a promise
            return None
        for value in (streams[0].get("duration"), (info.get("format") or {}).get("duration")):
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
        return None

    def _choose_track(self, streams: list[dict[str, Any]]) -> float | None:
        """A file with several audio tracks (a film's dubs, a commentary): the one marked as
        the default is heard, as a player plays it and as ffmpeg picks it from a pipe (so a
        file gives the same answer by its path and piped in), else the first; said once.
        Returns that track's own length: the file's may be another track's, and a shorter
        track would then look damaged."""
        if self._asked_track:
            if self._asked_track > len(streams):
                raise AudioSourceError(
                    no_such_track_message(self._spec, self._asked_track, len(streams))
                )
            self._track, why = self._asked_track - 1, "as asked"
        else:
            marked = [i for i, stream in enumerate(streams) if _disposition(stream, "default")]
            self._track = marked[0] if marked else 0
            why = "the default" if marked else "none is marked as the default"
        if len(streams) > 1:
            self._track_note = (
                f"{len(streams)} audio tracks; listening to track {self._track + 1} ({why})"
            )
        return _track_length_s(streams[self._track])

    # -- reading --------------------------------------------------------------------------

    def _pump(
        self,
        child: FfmpegChild,
        ring: RingBuffer,
        pacer: FeedPacer | None,
        stall_s: float | None,
        on_audio: Callable[[], bool] | None = None,
    ) -> tuple[int, bool]:
        """Copies the child's audio into the ring until its output ends or it stalls (nothing
        for `stall_s`), or `on_audio` (told of the first audio) refuses it. Returns (samples
        delivered, stalled)."""
        frame_bytes = 2 * FFMPEG_CHANNELS_N
        block_bytes = frame_bytes * int(FFMPEG_RATE_HZ * BLOCK_S)
        total = 0  # frames
        carry = b""  # part of a frame from a read that split one
        while not self.stopping:
            data = child.read(block_bytes, stall_s if stall_s is not None else 60.0)
            if data is None:
                if stall_s is None:
                    continue  # a local decode may be slow; only a feed can stall
                return total, True
            if not data:
                break
            data = carry + data
            usable = len(data) - len(data) % frame_bytes
            carry = data[usable:]
            if usable == 0:
                continue
            samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
            samples = samples.reshape(-1, FFMPEG_CHANNELS_N)
            if total == 0 and on_audio is not None:
                if not on_audio():
                    break
            elif (
                pacer is not None
                and self._last_audio_at is not None
                and (
                    said := pacer.close_gap(ring, time.monotonic() - self._last_audio_at)
                    or pacer.catch_up(ring)
                )
            ):
                self._notice("warning", f"{self.description}: {said}")
            total += len(samples)
            if pacer is not None:
                pacer.wait_for(len(samples))
            self._last_audio_at = time.monotonic()
            ring.write(samples, block=not self.live, stop=self._stop)
        return total, False

    def _run(self, ring: RingBuffer) -> None:
        if self._url:
            self._run_feed(ring)
        else:
            self._run_file(ring)

    def _run_file(self, ring: RingBuffer) -> None:
        if self._track_note is not None:
            self._notice("info", f"{self.description}: {self._track_note}")
        pipe = self._pipe
        stdin = None if pipe is None else subprocess.PIPE if pipe.head else pipe.fd
        child = self._spawn(self._ffmpeg or "ffmpeg", self._args(), stdin)
        if child is None:
            return
        feeder = None
        if pipe is not None and pipe.head:
            feeder = threading.Thread(
                target=self._feed_child, args=(child, pipe), name=f"ffmpeg-stdin-{self.name}"
            )
            feeder.start()
        try:
            total, _ = self._pump(child, ring, None, None)
        finally:
            if feeder is not None:  # it ends within 0.1 s of the child's end or a stop
                feeder.join(REAP_TIMEOUT_S)
        if self.stopping:
            return
        code = child.wait_exit(REAP_TIMEOUT_S)
        reason = child.last_problem or f"ffmpeg exited with code {code}"
        self._reap()
        self._refuse_if_no_such_track(child, total)  # a pipe's
        if child.errors_n and found_no_audio(total, child):
            if pipe is not None and is_mp4(child):  # ffmpeg calls it "invalid data"
                raise AudioSourceError(
                    "it is an MP4/M4A whose index is at its end, which cannot be read from a "
                    f"pipe: give its path instead, or {FASTSTART_FIX}"
                )
            raise AudioSourceError(
                f"it is not audio that ffmpeg can decode "
                f"({ffmpeg_verdict(child, named=pipe is None)}); give an "
                "audio or video file"
            )
        if total == 0:
            raise AudioSourceError(f"no audio decoded ({reason})")
        said = reason if child.last_problem or code != 0 else None
        short = short_decode_message(total / FFMPEG_RATE_HZ, self._promised_s, said)
        if short:
            self._notice("warning", f"{self.description}: {short}")
        elif code != 0:
            self._notice("warning", f"{self.description}: ffmpeg ended early ({reason})")
        elif child.errors_n:  # it went on past damaged frames: the audio has holes
            self._notice(
                "warning",
                f"{self.description}: ffmpeg skipped damaged data {child.errors_n} "
                f"time{'s' if child.errors_n != 1 else ''} (last: {reason}); parts of the file "
                "are missing",
            )

    def _run_feed(self, ring: RingBuffer) -> None:
        """Connect, read, and on any end other than a stop: report, back off, reconnect."""
        settings = self._settings
        backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        pacer = FeedPacer(FFMPEG_RATE_HZ, self._stop) if self._realtime else None
        attempt = 0  # retries since the feed last delivered audio
        flaps = 0  # spells in a row shorter than STEADY_S: each next wait twice as long
        up_since: float | None = None  # wall time the audio came (back)
        ever_connected = False
        started = time.monotonic()  # a feed that never came up is down from here
        down_since: float | None = None  # wall time the audio stopped (None: up)
        reason = ""
        was_live = False  # a playlist came without a length in time: not a recording
        ended_live = False  # ...and now it is one

        def on_audio() -> bool:
            nonlocal attempt, down_since, ever_connected, up_since, was_live, ended_live
            assert child is not None
            child.header_read.wait(HEADER_WAIT_S)
            if was_live and child.duration_s is not None:
                ended_live = True  # its audio is the past (an HLS playlist ended): refused
                return False
            was_live = was_live or (child.duration_s is None and child.input_format in PLAYLISTS)
            up_since = time.monotonic()
            if not ever_connected:  # at last, if it was down from the start: that outage too
                outage_s = 0.0 if down_since is None else time.monotonic() - down_since
                self._feed("connected", reason, attempt, round(outage_s, 3))
            elif down_since is not None:
                outage_s = time.monotonic() - down_since
                if pacer is not None:  # the reconnecting itself took stream time
                    pacer.fill_silence(ring)
                self._feed("recovered", reason, attempt, round(outage_s, 3))
            ever_connected, attempt, down_since = True, 0, None
            return True

        child: FfmpegChild | None = None
        while not self.stopping:
            child = self._spawn(self._ffmpeg or "ffmpeg", self._args())
            if child is None:
                return
            ended_live = False
            total, stalled = self._pump(child, ring, pacer, settings.stall_timeout_s, on_audio)
            if self.stopping:
                return
            if ended_live:
                child.kill()
            code = None if stalled or ended_live else child.wait_exit(1.0)
            self._reap()
            # A live feed's end is a drop however it ended (a live HLS playlist given its end).
            if not (stalled or was_live) and self._read_whole(child, code, total):
                return  # a finite resource (a file served over HTTP), read to its end
            if self.stopping:  # while the server was asked for the resource's length
                return
            if child.cut_short is not None:
                # A file cut short that ffmpeg could not resume: fetched again, it would start
                # from its beginning, and its audio would be heard (and counted) twice.
                self._notice("warning", f"{self.description}: {cut_short_message(child)}")
                return
            if not ever_connected and total == 0 and child.input_format is None:
                self._refuse_if_not_audio(child)
            # What the server sends has fewer tracks: asking again gets the same answer.
            self._refuse_if_no_such_track(child, total)
            if ended_live:
                reason = "the live stream has ended: the server serves a finished recording"
            elif stalled:
                reason = f"no audio for {settings.stall_timeout_s:g} s (stalled)"
            elif code is not None and code < 0 and not child.live_cut:  # ffmpeg was ended
                reason = f"ffmpeg was ended by signal {-code}"
            elif child.server_closed and total:
                # ffmpeg's last word here is "<url>: Input/output error", which says nothing of why.
                reason = "the server ended the stream"
            elif child.connection_problem:
                reason = child.connection_problem
            elif total:
                reason = "the server ended the stream"
            else:
                reason = f"no audio (ffmpeg exited with code {code})"
            now = time.monotonic()
            if down_since is None:  # it was up until its last audio, or it never came up
                down_since = (self._last_audio_at or now) if ever_connected else started
                self._feed("disconnected", reason, attempt, round(now - down_since, 3))
            # How long it was up this time, if it was (a steady spell starts the waits afresh).
            spell_s = None if up_since is None else (self._last_audio_at or now) - up_since
            up_since = None
            if spell_s is not None and spell_s >= STEADY_S:
                flaps = 0
            attempt += 1
            if 0 <= settings.reconnect_attempts < attempt:
                tried = attempt - 1
                raise AudioSourceError(
                    f"the feed is down ({reason}); gave up after {tried} "
                    f"reconnect attempt{'s' if tried != 1 else ''}"
                )
            delay_s = backoff.delay_s(attempt + flaps)
            if spell_s is not None and spell_s < STEADY_S:
                flaps += 1  # the next drop this soon after coming back waits twice as long
            self._feed(
                "retrying",
                f"{reason}; attempt {attempt} in {delay_s:.1f} s",
                attempt,
                round(now - down_since, 3),
            )
            self._wait_out(delay_s, ring, pacer)

    def _read_whole(self, child: FfmpegChild, code: int | None, total: int) -> bool:
        """Whether the connection that just ended delivered the whole of a finite resource (a
        file served over HTTP): then its end is the stream's end, not a drop to reconnect after.

        The signs, cheapest first: the audio reached the length the input declares; or ffmpeg
        reached the input's end without an error and the server gives the resource a length
        (ffmpeg checks a Content-Length itself: a response cut short ends on an error, and so
        does any response without a length that is not chunked); or, when no audio came at
        all, ffmpeg read as many bytes as that length. A live stream has no length, so it is
        reconnected however it ended. Raises when the whole resource held no audio ffmpeg
        could decode: fetching it again would fetch the same bytes."""
        if child.duration_s and decoded_all(total / FFMPEG_RATE_HZ, child.duration_s):
            return True  # an exact length (MP3, WAV, FLAC): no need to ask the server
        ended_cleanly = code == 0 and not child.input_failed
        # A resource fetched whole that ffmpeg opened but got no audio from (an MP4 whose index
        # is at its end, from a server that cannot seek): ffmpeg stops on an error after it.
        opened_but_silent = (
            found_no_audio(total, child)
            and child.input_format is not None
            and bool(child.bytes_read)
        )
        if not (ended_cleanly or opened_but_silent):
            return False
        # A response that was cut short, then resumed, gave its length on the way.
        length = child.cut_short[1] if child.cut_short else self._resource_length()
        if length is None or not (ended_cleanly or (child.bytes_read or 0) >= length):
            return False
        if found_no_audio(total, child):
            raise AudioSourceError(no_audio_message(length, child))
        return True

    def _refuse_if_no_such_track(self, child: FfmpegChild, total: int) -> None:
        """A feed or pipe (not probed first) that lacks the --track asked for: ffmpeg refused
        its `-map 0:a:N` and decoded nothing."""
        if total == 0 and self._track is not None and missing_track(child):
            raise AudioSourceError(NO_SUCH_TRACK.format(track=self._track + 1))

    def _refuse_if_not_audio(self, child: FfmpegChild) -> None:
        """A URL that has never given audio, and whose first answer ffmpeg could not even
        recognise as a format (a web page, random bytes), is the wrong URL: reconnecting to it
        for ever would only say the same. A feed that once gave audio is waited for instead."""
        if child.format_guessed or any(INVALID_DATA in problem for problem in child.problems):
            raise AudioSourceError(
                f"what the server sends is not audio that ffmpeg can decode "
                f"({ffmpeg_verdict(child)}); check that the URL is the audio stream itself, "
                "not a web page about it"
            )

    def _resource_length(self) -> int | None:
        """The length in bytes the server gives the resource (its Content-Length); None for a
        live stream, which has none, or when ffprobe cannot tell. Asked of ffprobe, as an
        owned child (a stop ends it at once), only once a connection has ended."""
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return None
        args = [
            "-v",
            "level+error",
            "-protocol_whitelist",
            protocol_whitelist(self._input),
            "-rw_timeout",
            str(self._settings.rw_timeout_us),
            "-probesize",
            str(FEED_PROBE_BYTES),
            "-show_entries",
            "format=size",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
            "-i",
            self._input,
        ]
        child = self._spawn(ffprobe, args)
        if child is None:
            return None
        answer = b""
        deadline = time.monotonic() + self._settings.stall_timeout_s
        while data := child.read(4096, max(0.0, deadline - time.monotonic())):
            answer += data
        self._reap()
        try:
            length = int(answer.strip())
        except ValueError:  # "N/A": no length
            return None
        return length if length > 0 else None

    def _wait_out(self, delay_s: float, ring: RingBuffer, pacer: FeedPacer | None) -> None:
        """Waits before a retry; with --realtime, keeps the stream on the wall clock with
        silence meanwhile (the outage is a gap of no speech in stream time)."""
        deadline = time.monotonic() + delay_s
        while not self.stopping:
            if pacer is not None:
                pacer.fill_silence(ring)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, BLOCK_S * 2))
