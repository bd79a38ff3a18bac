"""One owned ffmpeg child: started, drained, read with a timeout, killed from any thread, reaped.

The child runs in its own session, so a terminal's Ctrl-C reaches only us: we decide when it
ends (a stop, a stall) and never mistake our own shutdown for the feed dropping. Its stderr is
drained by a thread while it runs (a full 64 KiB pipe would block it) and only the last lines are
kept, redacted, for messages. `kill()` may be called from the stop path while the reader thread
is blocked waiting for audio: the pipe then ends and the reader returns.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import select
import subprocess
import threading
import time

from .urls import redact

STDERR_LINES_KEPT = 20  # ffmpeg's last words, for the message when it fails
REAP_TIMEOUT_S = 5.0  # a killed child is gone in milliseconds; this is only a bound
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
# "[level] text", after the contexts that wrote it ("[AVIOContext @ 0x…] ", "[in#0/mp3 @ 0x…] ").
_LEVEL = re.compile(r"^(?:\[[^\]\s]+ @ 0x[0-9a-f]+\] )*\[?(\w+)\]\s*")
_INPUT_FORMAT = re.compile(r"^Input #0, (.+?), from ")
_OUTPUT = re.compile(r"^Output #0, ")  # the input's header (its duration) is said before it
# At -loglevel verbose each input closes with its byte count; the top-level input is the last.
_BYTES_READ = re.compile(r"Statistics: (\d+) bytes read")
# How ffmpeg says that reading its input ended on an error rather than at the input's end: an
# HTTP response shorter than its Content-Length (or, without one, any end), and the demuxer's
# error as ffmpeg 6.1+ words it (ffmpeg 5 writes "<input>: <error>", matched in the reader).
_INPUT_FAILED = re.compile(r"Stream ends prematurely|Error during demuxing")
# An HTTP response that ended short of its length: the bytes it had reached, and the length.
# A response with no length (a live stream) ends so too, "should be" its unsigned -1; some
# servers give a live stream a length it never reaches (2147483647 and larger). A response that
# long is not a file to resume but a stream to reconnect to.
_CUT_SHORT = re.compile(r"Stream ends prematurely at (\d+), should be (\d+)")
LIVE_LENGTH_MIN = 2**31 - 1
NO_LENGTH = 2**64 - 1  # what ffmpeg says a response without a length "should be"
# ffmpeg (-reconnect) asks for the rest of that response with a range request: reading goes on.
_RESUMING = re.compile(r"Will reconnect at \d+")
# ffmpeg's warning when nothing in the bytes named a format and it went by the name (.mp3).
_GUESSED = "misdetection possible"
# A connection that failed below HTTP (a host name that does not resolve) ends with ffmpeg's
# "<url>: Input/output error", which says nothing of why; the network layer said it just before.
_GENERIC_FAILURE = "Input/output error"
_NETWORK_CONTEXT = re.compile(r"^\[(?:tcp|udp|tls) @ 0x[0-9a-f]+\] ")


class FfmpegChild:
    """`args` after the ffmpeg (or ffprobe) binary, with the input after `-i`; raw output on
    stdout, `-loglevel level+info` (or `level+verbose`, for `bytes_read`) on stderr. `stdin`:
    what the child reads as `pipe:0` (a descriptor, or subprocess.PIPE to write it), else
    nothing."""

    def __init__(self, ffmpeg: str, args: list[str], name: str, stdin: int | None = None) -> None:
        self._lock = threading.Lock()
        self._killed = False
        self._input = args[args.index("-i") + 1] if "-i" in args else None
        self.problems: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self.duration_s: float | None = None  # what the input says it lasts (None: live)
        self.errors_n = 0  # error lines ffmpeg wrote (a damaged file: one per bad frame)
        self.input_format: str | None = None  # the demuxer's names, once the input is open
        self.input_failed = False  # reading the input ended on an error, not at its end
        self.bytes_read: int | None = None  # what ffmpeg read of its input, once it is closed
        self.cut_short: tuple[int, int] | None = None  # (bytes, length): an HTTP response cut
        self.resumes_n = 0  # range requests ffmpeg made for the rest of a response cut short
        self.live_cut = False  # a live stream with a length it never reaches dropped: killed
        self.server_closed = False  # a response without a length (a live stream) ended
        self.header_read = threading.Event()  # the input's header is read: its duration known
        self.format_guessed = False  # the input's format came from its name, not its bytes
        self.process = subprocess.Popen(
            [ffmpeg, *args],
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name=f"ffmpeg-stderr-{name}", daemon=True
        )
        self._stderr_thread.start()

    def read(self, max_bytes: int, timeout_s: float) -> bytes | None:
        """Up to max_bytes; b"" at the end of output; None when nothing came within timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                ready, _, _ = select.select([self._fd], [], [], min(remaining, 0.1))
            except (OSError, ValueError):  # closed under us by kill()/close()
                return b""
            if ready:
                try:
                    return os.read(self._fd, max_bytes)
                except OSError:
                    return b""
            if self._killed:
                return b""

    def _drain_stderr(self) -> None:
        """Reads ffmpeg's messages as they come; keeps its errors (redacted: they may
        quote the URL), the input's duration, if it has one, and how reading it ended."""
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", errors="replace").strip()
            level_match = _LEVEL.match(line)
            level = level_match.group(1) if level_match else "error"
            text = line
            if level_match:
                text = (line[: level_match.start(1) - 1] + line[level_match.end() :]).strip()
            if self.duration_s is None and (found := _DURATION.search(line)):
                h, m, s = found.groups()
                self.duration_s = int(h) * 3600 + int(m) * 60 + float(s)
            if self.input_format is None and (found := _INPUT_FORMAT.match(text)):
                self.input_format = found.group(1)
            if _OUTPUT.match(text):
                self.header_read.set()
            if found := _BYTES_READ.search(line):
                self.bytes_read = int(found.group(1))
            if found := _CUT_SHORT.search(line):
                length = int(found.group(2))
                if length < LIVE_LENGTH_MIN:
                    self.cut_short = (int(found.group(1)), length)
                elif length == NO_LENGTH:
                    self.server_closed = True
                elif not self.live_cut:
                    # ffmpeg would ask for the rest of it with range requests, which a live
                    # stream's server ignores, until the stall timeout: its drop is the feed's
                    # to reconnect at once, as a live stream without a length is.
                    self.live_cut = True
                    self.kill()
            if _RESUMING.search(line):  # the cut is not the input's end, unless this fails too
                self.resumes_n += 1
                self.input_failed = False
            self.format_guessed = self.format_guessed or _GUESSED in text
            if text and level in ("error", "fatal", "panic"):
                self.input_failed = self.input_failed or self._ends_input(text)
                self.problems.append(redact(text))
                self.errors_n += 1
        self.header_read.set()  # no more to wait for

    def _ends_input(self, error: str) -> bool:
        """Whether an error line says reading the input stopped short (a drop, a reset, a
        timeout), as against a bad frame that ffmpeg skips."""
        if _INPUT_FAILED.search(error):
            return True
        return self._input is not None and error.startswith(self._input + ": ")

    @property
    def last_problem(self) -> str | None:
        return self.problems[-1] if self.problems else None

    @property
    def connection_problem(self) -> str | None:
        """Why a connection failed: ffmpeg's last error, unless that is only "Input/output
        error", then the network layer's own line before it ("Failed to resolve hostname
        radio.example.org: Name or service not known"), without its context."""
        last = self.last_problem
        if last is None or not last.endswith(_GENERIC_FAILURE):
            return last
        for earlier in reversed(list(self.problems)[:-1]):
            if found := _NETWORK_CONTEXT.match(earlier):
                return earlier[found.end() :]
        return last

    def kill(self) -> None:
        """From any thread, any number of times: the child ends now; the reader sees the end."""
        with self._lock:
            self._killed = True
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()

    def close(self) -> int | None:
        """Kills (if still running) and reaps the child; returns its exit code (None: killed by
        us). Idempotent."""
        killed_by_us = self._killed or self.process.poll() is None
        self.kill()
        try:
            code = self.process.wait(REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            code = None
        self._stderr_thread.join(REAP_TIMEOUT_S)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # stdin: unwritten bytes to a dead child
                    pipe.close()
        return None if killed_by_us else code

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code once the child ends by itself (after its output ended), else None."""
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self._stderr_thread.join(REAP_TIMEOUT_S)  # its stderr ends with it
        return code
