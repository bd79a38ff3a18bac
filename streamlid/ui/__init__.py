"""Views: what a person sees. Each is a sink (it consumes events and never calls back)."""

from __future__ import annotations

import sys

from ..config import Config
from ..sinks import PlainPrinter


def make_view(config: Config, *, stdout_taken: bool) -> PlainPrinter | None:
    """The view for `config.ui`. `stdout_taken`: JSONL goes to stdout, so people read stderr."""
    if config.ui == "none":
        return None
    out = sys.stderr if stdout_taken else sys.stdout
    return PlainPrinter(out)
