"""User-facing errors: each carries one sentence naming the problem and the fix.

The CLI catches `StreamlidError` once and prints its message; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class StreamlidError(Exception):
    """A problem the user can fix (bad input, missing device, unloadable model)."""

    exit_code = 2


class ConfigError(StreamlidError):
    """An option or config-file value is missing, malformed or out of range."""


class AudioSourceError(StreamlidError):
    """An audio file, stream or device cannot be opened or read."""


class ModelLoadError(StreamlidError):
    """The model cannot be found, downloaded or used as a language classifier."""


class OutputError(StreamlidError):
    """An output cannot be written (a full disk, a closed pipe). Raised by a sink during a run:
    the bus drops that sink, the run goes on, and the exit code says so."""

    exit_code = 3

    def __init__(self, message: str, *, reader_left: bool = False) -> None:
        super().__init__(message)
        self.reader_left = reader_left  # a pipe whose reader has gone: stop, not an error


class ClusterError(StreamlidError):
    """Ray is missing, the cluster cannot be reached, or the model cannot be deployed on it."""
