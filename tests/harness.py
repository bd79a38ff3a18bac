"""Running the pipeline in tests: a sink that records events, and engines built the way the
CLI builds them (validated config, sources opened by spec)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from streamlid.config import Config, feed_settings, load_config
from streamlid.engine import Engine
from streamlid.events import Event, Prediction, Summary

REPO_ROOT = Path(__file__).resolve().parent.parent


class ListSink:
    """Collects events in order; records that it was closed."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True

    def of_type(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def predictions(self) -> list[Prediction]:
        return self.of_type(Prediction)

    @property
    def summary(self) -> Summary:
        summaries = self.of_type(Summary)
        assert len(summaries) == 1, f"expected one summary, got {len(summaries)}"
        return summaries[0]


def make_config(**overrides: object) -> Config:
    """Defaults plus overrides, validated the way the CLI validates them."""
    return load_config(overrides={"ui": "none", **overrides})


def make_engine(
    specs: Iterable[str | Path],
    model,
    sinks: Iterable = (),
    **overrides: object,
) -> Engine:
    from streamlid.audio.open import open_source

    config = make_config(**overrides)
    feed = feed_settings(config)
    sources = [open_source(str(spec), realtime=config.realtime, feed=feed) for spec in specs]
    return Engine(config, sources, model, list(sinks), ("tiny-lid", "cpu", "float32"))


def non_daemon_threads() -> list[str]:
    """Names of live non-daemon threads other than the main thread."""
    main = threading.main_thread()
    return [t.name for t in threading.enumerate() if t is not main and not t.daemon]


def run_to_its_end(
    argv: list[str],
    env: dict[str, str],
    *,
    stdout=subprocess.PIPE,
    timeout_s: float = 120.0,
    **options,
) -> subprocess.CompletedProcess:
    """A command to its end (two minutes at most, unless `timeout_s` says otherwise) in the
    repository, its standard error (and, unless `stdout` sends it elsewhere, its standard
    output) captured as text."""
    return subprocess.run(
        argv,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout_s,
        check=False,
        **options,
    )
