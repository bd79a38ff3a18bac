"""Views: what a person sees. Each is a sink (it consumes events and never calls back).

`rich` is imported only when the live view is chosen, so `import streamlid` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ..config import Config
from ..sinks import PlainPrinter, WarningPrinter

if TYPE_CHECKING:
    from ..streams import StreamsReducer
    from .live import LiveView

LAG_WARNING_FRACTION = 0.5  # warn when answers lag by half of what would make windows skip


def wants_live_view(config: Config, *, stdout_taken: bool) -> bool:
    """The live display needs a terminal to draw on; pipes, CI logs and `--no-ui` get lines."""
    if config.ui == "rich":
        return True
    if config.ui != "auto" or stdout_taken:
        return False
    return sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"


def _same_file(one, other) -> bool:
    """Whether two standard streams lead to one place (both the terminal, `2>&1`)."""
    try:
        a, b = os.fstat(one.fileno()), os.fstat(other.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not a real file (a test's buffer)
        return True  # say nothing twice where we cannot tell
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def make_view(
    config: Config, *, stdout_taken: bool, figures: StreamsReducer | None = None
) -> LiveView | PlainPrinter:
    """The view for `config.ui`. `stdout_taken`: JSONL goes to stdout, so people read stderr.
    `figures`: the run's per-stream figures, which the live view reads its health from."""
    if config.ui == "none":
        return WarningPrinter(sys.stderr)
    if not wants_live_view(config, stdout_taken=stdout_taken):
        if stdout_taken:
            return PlainPrinter(sys.stderr, run_errors_said_there=True)
        # `> log`: the lines go to the file, and the terminal still hears of what went wrong.
        same = _same_file(sys.stdout, sys.stderr)
        return PlainPrinter(
            sys.stdout, warnings_also_to=None if same else sys.stderr, run_errors_said_there=same
        )
    from rich.console import Console

    from .live import LiveView
    from .state import ViewState

    state = ViewState(
        top=config.top,
        timeline_s=config.timeline,
        lag_warning_s=max(1.0, LAG_WARNING_FRACTION * config.max_lag),
        figures=figures,
    )
    # `--ui rich` draws even where rich would not detect a terminal: the user asked for it.
    console = Console(stderr=stdout_taken, force_terminal=config.ui == "rich" or None)
    return LiveView(state, console, redirect_stdout=not stdout_taken)
