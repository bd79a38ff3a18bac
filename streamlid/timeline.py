"""TimelineCsv: `--timeline-csv`, the per-stream language segments as CSV.

Written whole each time (at exit, and when SIGUSR1 asks: the supervisor's loop calls `write()`
on the main thread, never the signal handler), to a temporary file beside the target that then
replaces it, so a reader never sees half a file (a device or a pipe is written into instead).
The segments come from the shared per-stream figures, which keep the newest SEGMENTS_MAX per
stream.
"""

from __future__ import annotations

import contextlib
import csv
import os
import stat
import tempfile
from collections.abc import Sequence
from typing import Any

from .errors import OutputError
from .sinks import check_folder_takes_files
from .streams import StreamsReducer

HEADER = ("stream", "start_s", "end_s", "language", "mean_confidence")


def is_timeline_file(path: str) -> bool:
    """An earlier run's timeline (its first line is our header): safe to replace."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline(4096)
    except OSError:
        return False
    return first.rstrip("\r\n") == ",".join(HEADER)


def check_timeline_writable(target: str) -> None:
    """Refuses, before the run, a table its folder would not let it write: it is replaced
    through a new file beside it, and a read-only folder was found out only when the run
    ended, the whole run's segments lost. A device or a pipe is written into: not checked."""
    if not _exists_not_regular(target):
        check_folder_takes_files(target, "--timeline-csv")


class TimelineCsv:
    def __init__(self, target: str, figures: StreamsReducer) -> None:
        self.target = target
        self._figures = figures
        self.writes = 0

    def write(self) -> int:
        """Replaces the file with every stream's segments so far; returns the rows written.

        A regular file is replaced whole (a new file renamed over it: a reader never sees half a
        table); anything else that exists (/dev/null, a pipe, a symbolic link such as
        /dev/stdout) is written into, never renamed over: as root, a rename would put a plain
        file where the device or the link was. A pipe with no reader is not waited for."""
        segments = self._figures.segments()
        folder = os.path.dirname(os.path.abspath(self.target))
        name = os.path.basename(self.target)
        tmp = None
        try:
            if _exists_not_regular(self.target):
                fd = os.open(self.target, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK)
                os.set_blocking(fd, True)  # opened: a pipe has its reader
                with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                    _write_rows(handle, segments)
            else:
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
                os.fchmod(fd, _mode_for(self.target))  # mkstemp's 0600 would lock readers out
                with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                    _write_rows(handle, segments)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.target)
                tmp = None
        except OSError as exc:
            raise OutputError(
                f"Cannot write --timeline-csv file {self.target!r} ({exc.strerror or exc}); "
                "the previous version, if any, is left as it was."
            ) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.writes += 1
        return len(segments)


def _exists_not_regular(path: str) -> bool:
    """True for a device, a pipe or a symbolic link (whatever it points to)."""
    try:
        return not stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _write_rows(handle: Any, segments: Sequence[Any]) -> None:
    writer = csv.writer(handle)
    writer.writerow(HEADER)
    for s in segments:
        confidence = "" if s.mean_confidence is None else f"{s.mean_confidence:.4f}"
        writer.writerow((s.stream, f"{s.start_s:.3f}", f"{s.end_s:.3f}", s.language, confidence))


def _mode_for(path: str) -> int:
    """The permissions the table gets: those of the file it replaces, or a new file's (0666
    less the umask, as --jsonl's file gets), so a dashboard running as another user can read it."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without setting it (os.umask sets it, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
