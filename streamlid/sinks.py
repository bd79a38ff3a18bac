"""Sinks that write events out: JSON Lines for machines, plain lines for logs and pipes."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import queue
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from .errors import ConfigError, OutputError
from .events import (
    ALERT_ENDED,
    Event,
    FeedState,
    LanguageChange,
    Level,
    Notice,
    Prediction,
    StreamAlert,
    StreamEnded,
    StreamStarted,
    StreamSummary,
    Summary,
    event_to_dict,
)
from .printable import json_utf8, printable


def _open_pipe_with_word(target: str) -> int | None:
    """A named pipe's write end, or None when `target` is not a named pipe. Opening one waits
    for a reader, which may come much later: the wait is said first, so the run does not look
    hung after the model has loaded."""
    try:
        if not stat.S_ISFIFO(os.stat(target).st_mode):
            return None
    except OSError:
        return None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)  # a reader is there already
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
    else:
        os.set_blocking(fd, True)  # the writer thread waits for room; it is its own thread
        return fd
    print(
        f"--jsonl {target!r} is a named pipe with no reader yet; waiting for one (Ctrl-C stops).",
        file=sys.stderr,
        flush=True,
    )
    return os.open(target, os.O_WRONLY)


def _claim(fd: int, target: str, *, append: bool) -> None:
    """Locks a regular file for this run (flock, released when the file is closed or the
    process ends): a second run replacing it would empty the first's events under it, and one
    appending to a file being replaced would mix its lines into another run's. Runs that all
    append share it (whole lines, O_APPEND). Devices and pipes (/dev/null) are not locked."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if append else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(
            f"--jsonl {target!r} is being written by another streamlid run; choose another "
            "path, or stop that run first."
        ) from None
    except OSError:  # a file system without locks: written as before, unguarded
        pass


def _compact(value: Any) -> Any:
    """Rounds floats to 4 decimals: enough for seconds and probabilities, half the bytes."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    return value


STUCK_S = 10.0  # an output that takes no event for this long is given up
CLOSE_WAIT_S = 1.0  # at the end, within the run's bound for stopping the event thread (2 s)
# Small: beyond a burst, a slow reader holds the run back as before (it is not stuck while it
# takes lines), and what is queued at the end is written within the stop's bound.
LINES_QUEUED_MAX = 256


class JsonlSink:
    """One JSON object per line, each written whole as it comes, so a killed run leaves whole
    lines only.

    A write that fails (a full disk) raises OutputError once, after cutting the file back to its
    last whole line; the bus then drops this sink and the run goes on. Level events (meter
    readings, ten a second) are left out: they describe the display, not the audio's language.

    The lines are written by the sink's own thread from a bounded queue: a write that blocks (a
    pipe nobody reads, a hung network disk) would otherwise hold up the event thread and with it
    every other output, the alerts and the metrics. An output that takes no event for STUCK_S is
    given up as a failed one. Its thread is a daemon, as the one thread that may be stuck in a
    write for good: `close()` waits CLOSE_WAIT_S for it, and the process does not wait at exit."""

    def __init__(self, target: str, *, append: bool = False) -> None:
        self.target = target
        self.lines = 0  # written (counted by the writer thread)
        self._fd: int | None = None
        self._whole_bytes = 0  # the file's length after the last whole line
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=LINES_QUEUED_MAX)
        self._failure: OutputError | None = None  # the writer's, raised on the event thread
        self._stuck = False
        self._busy_since: float | None = None  # when the write in hand began (None: idle)
        self._writer = threading.Thread(target=self._write_lines, name="jsonl", daemon=True)
        if target == "-":
            self._out: IO[str] = sys.stdout
            self._writer.start()
            return
        # Always at the end: a file emptied under a running monitor (logrotate's copytruncate)
        # goes on at its new start, not at the old offset behind a hole of NUL bytes.
        # Not O_TRUNC: a file another run is writing is emptied only once it is known not to be.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            pipe_fd = _open_pipe_with_word(target)
            self._fd = os.open(target, flags, 0o666) if pipe_fd is None else pipe_fd
            _claim(self._fd, target, append=append)
            if append:
                self._whole_bytes = os.lseek(self._fd, 0, os.SEEK_END)
                self._end_last_line()
            elif stat.S_ISREG(os.fstat(self._fd).st_mode):
                os.ftruncate(self._fd, 0)
        except OSError as exc:
            raise ConfigError(
                f"Cannot write --jsonl file {target!r} ({exc.strerror}); check the folder "
                "exists and is writable."
            ) from None
        except ConfigError:
            os.close(self._fd)
            raise
        self._writer.start()

    def _end_last_line(self) -> None:
        """Appending after a line cut short (a crash, a power cut) would glue the first new
        event to it: end that line first, so every later line parses."""
        assert self._fd is not None
        if self._whole_bytes == 0:
            return
        with open(self.target, "rb") as handle:
            handle.seek(self._whole_bytes - 1)
            last = handle.read(1)
        if last not in (b"\n", b""):
            self._write(b"\n")

    def handle(self, event: Event) -> None:
        if isinstance(event, Level):
            return
        self._raise_failure()
        if self._busy_s() > STUCK_S:
            raise self._given_up(STUCK_S)
        line = json.dumps(_compact(event_to_dict(event)), ensure_ascii=False) + "\n"
        self._put(json_utf8(line), STUCK_S)

    def _put(self, item: bytes | None, timeout_s: float) -> None:
        try:
            self._queue.put(item, timeout=timeout_s)
        except queue.Full:
            raise self._given_up(timeout_s) from None

    def _given_up(self, waited_s: float) -> OutputError:
        self._stuck = True
        where = "standard output" if self._fd is None else f"file {self.target!r}"
        return OutputError(
            f"The --jsonl {where} took no event for {waited_s:.0f} s (a pipe nobody reads, a "
            f"hung disk?); it was given up after {self.lines} events, and the run went on."
        )

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _write_lines(self) -> None:
        """The writer thread: lines in order until None; after a failure it only empties the
        queue (the event thread raises the failure and drops this sink)."""
        failed = False
        while (data := self._queue.get()) is not None:
            if failed:
                continue
            self._busy_since = time.monotonic()
            try:
                if self._fd is None:
                    self._out.write(data.decode("utf-8"))
                    self._out.flush()
                else:
                    self._write(data)
            except OSError as exc:
                self._failure, failed = self._failed(exc), True
                continue
            finally:
                self._busy_since = None
            self.lines += 1

    def _busy_s(self) -> float:
        """How long the write in hand has taken so far (0 when the writer is idle)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:  # a short write (a disk filling up) is followed by the error
            view = view[os.write(self._fd, view) :]
        self._whole_bytes += len(data)

    def _failed(self, exc: OSError) -> OutputError:
        if exc.errno == errno.EPIPE and self._fd is None:
            return OutputError("the reader of the JSONL output has gone", reader_left=True)
        if exc.errno == errno.EPIPE:  # a named pipe's reader: this output ends, not the run
            return OutputError(
                f"The reader of --jsonl {self.target!r} has gone; it stops after {self.lines} "
                "events."
            )
        reason = exc.strerror or str(exc)
        if self._fd is None:
            return OutputError(
                f"Cannot write the JSONL output to standard output ({reason}); it stops after "
                f"{self.lines} events and its last line may be cut."
            )
        try:
            os.ftruncate(self._fd, self._whole_bytes)
            kept = f"it keeps the first {self.lines} events, each a whole line"
        except OSError:  # not a regular file (/dev/full, a pipe): nothing to cut back
            kept = f"it stops after {self.lines} events and its last line may be cut"
        if self.lines == 0 and self._whole_bytes == 0:
            kept = "nothing was written to it"
        return OutputError(f"Cannot write --jsonl file {self.target!r} ({reason}); {kept}.")

    def close(self) -> None:
        if self._stuck:
            return  # its writer may be blocked in a write for good: the descriptor stays
        self._put(None, STUCK_S)  # every line queued before it is written first
        while self._writer.is_alive():  # a slow reader is waited for while it takes lines
            before = self.lines
            self._writer.join(CLOSE_WAIT_S)
            if self._writer.is_alive() and self.lines == before:
                raise self._given_up(CLOSE_WAIT_S)
        self._raise_failure()
        if self._fd is None:
            try:
                self._out.flush()
            except OSError as exc:
                raise self._failed(exc) from None
            return
        fd, self._fd = self._fd, None
        try:
            os.close(fd)
        except OSError as exc:
            raise OutputError(
                f"Cannot finish --jsonl file {self.target!r} ({exc.strerror}); "
                "its end may be missing."
            ) from None


def check_output_path(
    target: str,
    inputs: Sequence[str],
    *,
    overwrite: bool,
    option: str = "--jsonl",
    ours: Callable[[str], bool] | None = None,
    other_outputs: Mapping[str, str] | None = None,
    append: bool = False,
) -> None:
    """Refuses, before anything is opened for writing, an output that would destroy something:
    one of the inputs (always, whatever the path or link that names it), another output of the
    run (`other_outputs`, by option; neither need exist yet), an --jsonl file another run is
    writing (see `_claim`; `append`: this run would append), or an existing file with content
    unless `overwrite` or `ours` says it is an earlier run's output of this kind (default:
    streamlid events). Devices and pipes (/dev/null, a FIFO) are fine."""
    if target == "-":
        return
    ours = _is_event_file if ours is None else ours
    with contextlib.suppress(OSError):
        if stat.S_ISCHR(os.stat(target).st_mode):
            return  # /dev/null, a terminal: writing there destroys nothing, however often named
    for other_option, other in (other_outputs or {}).items():
        if os.path.realpath(other) == os.path.realpath(target):
            raise ConfigError(
                f"{other_option} and {option} both name {target!r}; one file cannot hold both: "
                "give each its own path."
            )
    for spec in inputs:
        try:
            same = os.path.samefile(spec, target)
        except OSError:  # either does not exist (mic, -, a URL, a new output file)
            continue
        if same:
            raise ConfigError(
                f"The {option} output {target!r} is the input {spec!r}; writing it would destroy "
                "it. Choose another path."
            )
    try:
        info = os.stat(target)
    except FileNotFoundError:
        folder = os.path.dirname(target) or "."
        if not os.path.isdir(folder):
            raise ConfigError(
                f"Cannot write {option} file {target!r}: the folder {folder!r} does not exist; "
                "create it or choose another path."
            ) from None
        check_folder_takes_files(target, option)  # found now, not after the model loads
        return
    except OSError as exc:
        raise ConfigError(f"Cannot write {option} file {target!r} ({exc.strerror}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"The {option} output {target!r} is a folder; give a file path.")
    if stat.S_ISREG(info.st_mode) and not os.access(target, os.W_OK):
        raise ConfigError(
            f"Cannot write {option} file {target!r}: it is read-only to this user (or on a "
            "read-only file system); make it writable or choose another path."
        )
    if option == "--jsonl" and stat.S_ISREG(info.st_mode):
        _check_free(target, append=append)
    if overwrite or not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return
    if ours(target):
        return  # an earlier run's output: re-running to the same file is the usual workflow
    kind = "a streamlid event file" if option == "--jsonl" else f"an earlier {option} output"
    raise ConfigError(
        f"The {option} output {target!r} already exists and is not {kind}; "
        "pass --overwrite (overwrite = true in a config file) to replace it, or choose "
        "another path."
    )


def check_folder_takes_files(target: str, option: str) -> None:
    """Refuses `target` when its folder will not take a new file (read-only, not this user's,
    or a file system such as /sys that refuses even root): tried with a file of our own, there
    and gone at once, as permissions alone do not say it."""
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=folder)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write {option} file {target!r}: its folder {folder!r} takes no new "
            f"files ({exc.strerror or exc}); make it writable or choose another path."
        ) from None
    os.close(fd)
    os.unlink(probe)


def _check_free(target: str, *, append: bool) -> None:
    """An --jsonl file another run is writing is refused now, before the model loads; the
    sink claims it for good when it opens."""
    try:
        fd = os.open(target, os.O_WRONLY)
    except OSError:
        return  # not writable: the sink says why when it opens
    try:
        _claim(fd, target, append=append)
    finally:
        os.close(fd)


def _is_event_file(path: str) -> bool:
    """Every line read is a JSON object with a "type": streamlid's own events (an earlier run's
    output), safe to replace. Anything else (notes, a recording, a half-written file of some
    other tool) is not ours to destroy. Reads at most the first 64 KiB."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return False
    lines = head.split(b"\n")
    if len(head) == 64 * 1024:
        lines = lines[:-1]  # the last line may be cut by the read
    lines = [line for line in lines if line.strip()]
    if not lines:
        return False
    try:
        return all(isinstance(e := json.loads(line), dict) and "type" in e for line in lines)
    except ValueError:
        return False


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


class PlainPrinter:
    """Human-readable lines, one per answer: for pipes, CI logs and `--ui plain`."""

    interactive = False  # no keys, nothing to give back to the terminal

    def __init__(
        self,
        out: IO[str] | None = None,
        show_predictions: bool = True,
        warnings_also_to: IO[str] | None = None,
        run_errors_said_there: bool = False,
    ) -> None:
        self._out = out or sys.stdout
        self._show_predictions = show_predictions
        # The command line says an error of the whole run (an output that cannot be written) on
        # standard error; where these lines go there too (the terminal), they leave it out.
        self._run_errors_said_there = run_errors_said_there
        # Where lines go to a file or pipe (`> log`), a stream's warnings and errors are said on
        # the terminal too: a run that ends with exit code 1 must not end in silence there.
        self._warnings_also_to = warnings_also_to
        self._failed: set[str] = set()  # streams whose error already said that they stopped

    def _print(self, text: str) -> None:
        try:
            self._out.write(text + "\n")
            self._out.flush()
        except OSError as exc:
            reader_left = exc.errno == errno.EPIPE
            name = getattr(self._out, "name", "")
            where = {"<stdout>": "standard output", "<stderr>": "standard error"}.get(name, name)
            raise OutputError(
                f"Cannot write plain lines to {where} ({exc.strerror or exc}); they stop here.",
                reader_left=reader_left,
            ) from None

    def handle(self, event: Event) -> None:
        for line in self._lines(event):
            self._print(line)
        if self._warnings_also_to is not None and is_warning(event):
            with contextlib.suppress(OSError):  # the terminal is a courtesy; the log is the output
                self._warnings_also_to.write("".join(f"{line}\n" for line in self._lines(event)))
                self._warnings_also_to.flush()

    def _lines(self, event: Event) -> list[str]:
        """What `event` says in plain lines (none for what this view leaves out)."""
        lines: list[str] = []
        if isinstance(event, StreamStarted):
            mode = "live" if event.live else "as fast as the model allows"
            lines.append(
                f"[{event.stream}] {printable(event.source)} ({event.sample_rate_hz} Hz, {mode}); "
                f"model {event.model} on {event.device}/{event.dtype}"
            )
        elif isinstance(event, Prediction) and self._show_predictions:
            heard = " · ".join(f"{s.code} {_pct(s.probability)}" for s in event.top[:3])
            now = now_text(event)
            lines.append(
                f"[{event.stream}] {event.t_start_s:7.1f}-{event.t_end_s:7.1f}s  "
                f"now: {now:<32} window: {heard}"
            )
        elif isinstance(event, LanguageChange):
            before = event.previous or "unknown"
            after = f"{event.language_name} ({event.language})" if event.language else "unknown"
            lines.append(
                f"[{event.stream}] {event.t_s:7.1f}s  language: {before} -> {after} "
                f"(since {event.since_s:.1f}s)"
            )
        elif isinstance(event, StreamAlert):
            what = "ALERT" if event.active else "recovered"
            if not event.active and event.message.startswith(ALERT_ENDED):
                what = "cleared"  # not recovered: the stream ended with it
            lines.append(
                f"[{event.stream}] {event.t_s:7.1f}s  {what} {event.kind}: {event.message}"
            )
        elif isinstance(event, Notice):
            if event.stream and event.severity == "error":
                self._failed.add(event.stream)
            run_error = not event.stream and event.severity == "error"
            if not (run_error and self._run_errors_said_there):
                where = f"[{event.stream}] " if event.stream else ""
                lines.append(f"{where}{event.severity}: {event.message}")
        elif isinstance(event, FeedState):
            lines.append(f"[{event.stream}] {event.t_s:7.1f}s  feed {feed_state_text(event)}")
        elif isinstance(event, StreamEnded) and event.stream not in self._failed:
            # As the live view says "ended": among streams that go on, else its answers just stop.
            lines.append(f"[{event.stream}] {event.t_s:7.1f}s  ended: its input is over")
        elif isinstance(event, Summary):
            lines.extend(summary_lines(event))
        return lines

    def close(self) -> None:
        self._out.flush()


def now_text(event: Prediction) -> str:
    """The held language in words. While another leads the smoothed evidence (the second or
    two before a switch is confirmed, or refused), the held one's own share is low, and
    "French (fra) 16%" would read as an answer given at 16 %: it is said to be challenged,
    by whom and how strongly, instead."""
    if not event.language:
        return "unknown"
    held = f"{event.language_name} ({event.language})"
    leader = event.smoothed[0] if event.smoothed else None
    if leader is None or leader.code == event.language:
        return f"{held} {_pct(event.confidence)}"
    return f"{held} challenged: {leader.code} {_pct(leader.probability)}"


class WarningPrinter(PlainPrinter):
    """`--ui none`: no view, yet a stream's warnings and errors (a damaged file, a feed down,
    reconnecting or given up, an alert raised or cleared) still reach the terminal, one line
    each on standard error, so a headless run never fails in silence, and so does the summary
    at its end (a run is never without one); the answers go only where the user sent them
    (JSONL, metrics). An error of the whole run (an output that cannot be written) ends it, and
    the command line says it once."""

    def handle(self, event: Event) -> None:
        if is_warning(event) or isinstance(event, Summary):
            for line in self._lines(event):
                self._print(line)


WARNING_SEVERITIES = ("warning", "error")


def is_warning(event: Event) -> bool:
    """A stream's warning or error, a feed not connected, an alert raised or cleared: what a
    person at the terminal must see even where everything else goes elsewhere."""
    return (
        (isinstance(event, Notice) and bool(event.stream) and event.severity in WARNING_SEVERITIES)
        or (isinstance(event, FeedState) and (event.state != "connected" or event.outage_s > 0))
        or isinstance(event, StreamAlert)
    )


def feed_state_text(event: FeedState) -> str:
    """A feed's state in words, for the plain log and the live view."""
    tries = count_of(event.attempt, "attempt")
    if event.state == "connected":
        if event.outage_s:  # its first attempts failed: it was down from its start until now
            return f"connected after {event.outage_s:.1f} s without audio ({tries})"
        return "connected"
    if event.state == "recovered":
        return f"recovered after {event.outage_s:.1f} s without audio ({tries})"
    if event.state == "retrying":
        return f"down {event.outage_s:.1f} s, reconnecting: {event.reason}"
    return f"down: {event.reason}"


def count_of(n: int, noun: str) -> str:
    """ "1 change", "2 changes"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def never_connected_text(s: StreamSummary) -> str:
    """A feed that was down from its start, and why: the plain summary and the live view's."""
    return f"never connected ({s.down_reason})" if s.down_reason else "never connected"


def summary_lines(summary: Summary) -> list[str]:
    lines = [f"Summary ({summary.reason}, {summary.wall_s:.1f} s wall time)"]
    for s in summary.streams:
        lines.append(
            f"  {s.stream}: {s.duration_s:.1f} s audio, {s.speech_s:.1f} s speech, "
            f"{count_of(s.windows, 'window')}, {count_of(s.changes, 'change')}"
        )
        for code, seconds in s.speech_s_by_language.items():
            lines.append(f"    {code:<8} {seconds:7.1f} s")
        if s.latency_median_s is not None:
            lines.append(
                f"    latency median {1000 * s.latency_median_s:.0f} ms, "
                f"p95 {1000 * (s.latency_p95_s or 0):.0f} ms"
            )
        if s.hop_mean_s is not None:
            lines.append(
                f"    {count_of(s.windows, 'window')}, hop {s.hop_mean_s:.2f} s on average"
            )
        if s.never_connected:
            lines.append(f"    feed: {never_connected_text(s)}")
        elif s.reconnects or s.outage_s:
            lines.append(
                f"    feed: {count_of(s.reconnects, 'reconnect')}, {s.outage_s:.1f} s without audio"
            )
        if s.skipped_windows or s.overflow_s:
            lines.append(
                f"    skipped {count_of(s.skipped_windows, 'window')}, "
                f"lost {s.overflow_s:.1f} s of audio"
            )
    return lines
