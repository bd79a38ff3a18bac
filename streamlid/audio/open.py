"""Turns a source spec from the command line into an opened Source."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from .feeds import FeedSettings
from .source import Source


def open_source(
    spec: str, *, realtime: bool, feed: FeedSettings | None = None, track: int = 0
) -> Source:
    """`mic`, `mic:NAME_OR_INDEX`, `-` (stdin), a file path or a URL. `track`: which audio
    track of a file or feed with several is heard (1 = the first; 0: the default one)."""
    if spec == "-":
        from .stdin import StdinSource

        return StdinSource(realtime=realtime, track=track)
    if spec == "mic" or spec.startswith("mic:"):
        from .mic import MicrophoneSource

        return MicrophoneSource(spec[4:] or None if spec.startswith("mic:") else None)
    from .files import open_file_source

    return open_file_source(spec, realtime=realtime, feed=feed, track=track)


def check_one_stdin(specs: Sequence[str]) -> None:
    """Standard input is one stream: named twice, two readers would split its bytes between
    them and both streams would hear scrambled audio."""
    if list(specs).count("-") > 1:
        raise ConfigError(
            "Standard input (-) is named more than once; it is one stream: name it once."
        )
