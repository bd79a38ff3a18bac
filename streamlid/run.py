"""The run's supervisor: starts, stops and joins every thread in order, and decides the exit code.

Six kinds of thread owner share one small interface (`ThreadOwner`): audio sources, front ends,
the worker, the event bus, the live view's renderer and the key reader. The `Supervisor` knows
their order; the `Engine` builds the pipeline and hands its owners to one; `listen()` adds the
terminal's owners, turns signals into the one stop path and returns the exit code. `cli.py`
only parses options.

Signals: until the engine runs (start-up, model load) SIGINT, SIGTERM and SIGHUP interrupt
whatever the main thread is doing, as Ctrl-C does; from then on they are only recorded, and the
main thread, which polls, takes the stop path. So a signal during the finishing (joins, summary,
closing files) cannot cut it short; a second one while the model is still mid-forward leaves at
once, with the terminal given back. SIGUSR1 never stops anything: it is recorded as a request
to export (the timeline CSV), which the polling loop carries out on the main thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from .config import Config, StreamConfig, alert_settings, feed_settings
from .errors import ConfigError
from .events import Summary
from .printable import printable
from .threads import FORCED_EXIT_AFTER_S, ThreadOwner

if TYPE_CHECKING:
    from .engine import Engine
    from .streams import StreamsReducer

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0  # a thread that takes longer is reported and left behind
POLL_S = 0.1  # how often the main thread looks at signals, `q` and output failures
TERMINAL_JOIN_S = 1.0  # giving the terminal back on a forced exit or a crash

# Exit codes (README, "Exit codes"). A signal's code wins over 1 and 3; 1 wins over 3.
EXIT_OK = 0  # the input ended, or `q`
EXIT_FAILED = 1  # a stream or the model failed (the rest went on), or a bug
EXIT_USAGE = 2  # bad usage or input: nothing ran (StreamlidError.exit_code)
EXIT_OUTPUT = 3  # an output could not be written; the run went on without it
EXIT_SIGNAL_BASE = 128  # + N: stopped by signal N, after the same clean stop
EXIT_READER_LEFT = EXIT_SIGNAL_BASE + signal.SIGPIPE  # 141: stdout's reader left (`| head`)

INTERRUPTED = "interrupted"  # Summary.reason after a signal or `q`
OUTPUT_CLOSED = "output closed"  # Summary.reason after stdout's reader left
END_OF_INPUT = "end of input"  # Summary.reason when every source ended
FLUSH_TIMEOUT_S = 5.0  # the sinks get this long to take every event before the summary
DRAIN_TIMEOUT_S = 2.0  # ... and what acts on them (--on-alert) this long to finish
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXPORT_SIGNAL = signal.SIGUSR1


class Supervisor:
    """Owns the order: owners are added upstream first (sources, front ends, worker, event bus,
    then what draws on the terminal), started downstream first so that everything produced has a
    consumer, and joined upstream first so that everything produced is consumed.

    The engine stops and joins the producers (`stop`/`join` up to the worker), publishes the
    summary, and then `end()`s the rest: the bus delivers the summary and closes the sinks, the
    view leaves the screen, the key reader restores the terminal."""

    def __init__(self, join_timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self._join_timeout_s = join_timeout_s
        self._owners: list[tuple[str, ThreadOwner]] = []
        self._started: list[ThreadOwner] = []
        self._joined: list[ThreadOwner] = []
        self._lock = threading.Lock()

    def add(self, name: str, owner: ThreadOwner) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError("thread owners are added before start()")
            self._owners.append((name, owner))

    def start(self) -> None:
        for _, owner in reversed(self._owners):
            with self._lock:
                self._started.append(owner)  # before: a half-started owner is still joined
            owner.start()

    def stop(self, through: ThreadOwner | None = None) -> None:
        """Asks every owner, upstream first, up to and including `through` (all: None)."""
        for _, owner in self._owners:
            owner.stop()
            if owner is through:
                return

    def join(self, through: ThreadOwner | None = None) -> bool:
        """Joins the started owners, upstream first, up to and including `through` (all: None).
        Each join is bounded; an owner that does not end is logged and left behind."""
        ended = True
        for name, owner in self._owners:
            with self._lock:
                due = owner in self._started and owner not in self._joined
                if due:
                    self._joined.append(owner)
            if due and not owner.join(self._join_timeout_s):
                log.warning("%s did not stop within %.1f s", name, self._join_timeout_s)
                ended = False
            if owner is through:
                break
        return ended

    def end(self) -> bool:
        """Stops and joins, one by one, every owner not joined yet."""
        ended = True
        for _, owner in self._owners:
            if owner not in self._joined:
                owner.stop()
                ended = self.join(through=owner) and ended
        return ended


# -- signals --------------------------------------------------------------------------------


def settle_outputs(
    bus: Any, drains: Sequence[Any], stop_reason: str | None, errors: Sequence[str]
) -> str:
    """Before a run's summary: every event so far taken by the sinks, and what acts on them
    (--on-alert) finished, each within its bound. Returns the summary's reason."""
    if not bus.flush(FLUSH_TIMEOUT_S):  # every event so far reached the summary
        log.warning("the sinks did not take every event within %.1f s", FLUSH_TIMEOUT_S)
    if drains:
        for owner in drains:
            owner.drain(DRAIN_TIMEOUT_S)
        bus.flush(FLUSH_TIMEOUT_S)  # what they reported, before the summary
    reason = stop_reason or END_OF_INPUT
    if reason == END_OF_INPUT and errors:
        reason = f"error: {errors[0]}"
    return reason


def run_summary(
    figures: StreamsReducer,
    top: int,
    started_at: float,
    reason: str,
    model_info: tuple[str, str, str],
    extra: dict[str, Any] | None = None,
) -> Summary:
    """The run's last event: every stream's figures, the wall time since `started_at`
    (monotonic), why it ended, and the model that ran (name, device, dtype)."""
    model, device, dtype = model_info
    return Summary(
        streams=figures.summaries(top),
        wall_s=round(time.monotonic() - started_at, 3),
        reason=reason,
        model=model,
        device=device,
        dtype=dtype,
        extra=extra or {},
    )


class Interrupted(KeyboardInterrupt):
    """A stop signal during start-up or model load, raised like Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalWatch:
    """SIGINT, SIGTERM and SIGHUP handlers for the main thread, restored on exit.

    A signal that the process was started with ignored (`nohup`, a background job) stays
    ignored. `record_only()` switches from interrupting to recording."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.quit_requested = False
        self.export_requests = 0  # SIGUSR1s not yet carried out
        self._interrupting = True
        self._wake = threading.Event()
        self._previous: dict[int, Any] = {}
        self._on_signal: Callable[[], Any] | None = None
        self._previous_unraisable_hook = sys.unraisablehook

    def __enter__(self) -> SignalWatch:
        self._previous_unraisable_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
            if signal.getsignal(EXPORT_SIGNAL) is not signal.SIG_IGN:
                self._previous[EXPORT_SIGNAL] = signal.getsignal(EXPORT_SIGNAL)
                signal.signal(EXPORT_SIGNAL, self._handle_export)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        sys.unraisablehook = self._previous_unraisable_hook

    def _unraisable(self, unraisable: Any) -> None:
        """Our interruption raised inside a finalizer cannot leave it: Python would print it
        with a traceback ("Exception ignored in ..."). It is recorded, and `record_only` acts
        on it; anything else is reported as before."""
        if isinstance(unraisable.exc_value, Interrupted):
            return
        self._previous_unraisable_hook(unraisable)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        self._wake.set()
        if self._interrupting:
            raise Interrupted(signum)
        if self._on_signal is not None:
            self._on_signal()

    def on_signal(self, act: Callable[[], Any] | None) -> None:
        """While recording: also call `act` (on the main thread, from the handler, so it must
        not block) for each signal. The stop path uses it to hurry what the run's end waits
        for, which may be running on the main thread itself."""
        self._on_signal = act

    def _handle_export(self, signum: int, frame: FrameType | None) -> None:
        # Only recorded: writing files from a signal handler could interleave with anything.
        self.export_requests += 1
        self._wake.set()

    def take_export_request(self) -> bool:
        """True (once per batch of SIGUSR1s) when an export was asked for since the last call."""
        if not self.export_requests:
            return False
        self.export_requests = 0
        return True

    def record_only(self) -> None:
        """From now on signals are only recorded: the main thread's loop acts on them, and one
        that comes after the run cannot turn its ending into an interruption.

        A signal that came while interrupting, yet got here, was swallowed where it was raised
        (in a finalizer, which Python only reports, or a library's catch-all during the model
        load): it interrupts now, before the engine starts, as it was meant to then."""
        self._interrupting = False
        if self.received:
            raise Interrupted(self.received[-1])

    def request_quit(self) -> None:
        """The `q` key (from the key reader's thread): the same stop path as a signal."""
        self.quit_requested = True
        self._wake.set()

    @property
    def stop_requested(self) -> bool:
        return bool(self.received) or self.quit_requested

    @property
    def signal(self) -> int | None:
        return self.received[0] if self.received else None

    def wait(self, timeout_s: float) -> None:
        self._wake.wait(timeout_s)
        if not self.stop_requested:
            self._wake.clear()  # an export request woke us: wait again next time


# -- the listen command -----------------------------------------------------------------------


def load_classifier(config: Config):
    """Downloads (with progress) if needed, then loads with a spinner: the wait is visible."""
    from rich.text import Text

    from .classifier import Classifier, resolve_model_folder

    console = err_console()

    def say(message: str) -> None:  # model names and labels are text, never markup
        console.print(message, markup=False, soft_wrap=True)

    folder = resolve_model_folder(config.model, announce=say)
    started = time.monotonic()
    with console.status(Text(f"Loading model {config.model}…")):
        classifier = Classifier(
            str(folder),
            device=config.device,
            dtype=config.dtype,
            languages=config.languages,
            display_name=config.model,
            announce=say,
        )
    say(
        f"Model {config.model} loaded in {time.monotonic() - started:.1f} s "
        f"({len(classifier.labels)} languages, {classifier.device}/{classifier.dtype})."
    )
    return classifier


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """One `error:` line on stderr, escaped (paths may hold [brackets]) and never wrapped."""
    from rich.markup import escape

    with contextlib.suppress(OSError):  # stderr may be gone too (a closed terminal)
        err_console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def listen(
    config: Config, specs: Sequence[str], watch: SignalWatch, *, config_file: str | None = None
) -> int:
    """`streamlid listen`: sources, outputs and model, then the engine to its end. `config_file`
    (the `--config` file) is an input too: no output may replace it.

    The live view's key reader takes the terminal first (keys typed while the model loads are
    not echoed over its first frame), and it is given back however the run ends."""
    keys = _hold_keys(config, [spec for spec, _ in _named_sources(config, specs)])
    try:
        return _listen(config, specs, watch, config_file=config_file, keys=keys)
    finally:
        if keys is not None:
            keys.restore()


def _named_sources(config: Config, specs: Sequence[str]) -> list[tuple[str, StreamConfig | None]]:
    """Sources named on the command line replace those of the config file; else the mic."""
    return (
        [(spec, None) for spec in specs]
        if specs
        else [(spec, None) for spec in config.sources]
        + [(stream.source, stream) for stream in config.streams]
    ) or [("mic", None)]


def _hold_keys(config: Config, specs: Sequence[str]):
    """A key reader holding the terminal, where the live view will read keys; else None."""
    from .ui import wants_live_view
    from .ui.keys import KeyReader

    if "-" in specs or not wants_live_view(config, stdout_taken=config.jsonl == "-"):
        return None  # stdin is audio, or no live view
    keys = KeyReader({})
    return keys if keys.hold() else None


def _listen(
    config: Config,
    specs: Sequence[str],
    watch: SignalWatch,
    *,
    config_file: str | None,
    keys,
) -> int:
    from .audio.open import check_one_stdin, open_source
    from .engine import Engine
    from .onalert import AlertCommand, parse_command
    from .sinks import JsonlSink, check_output_path
    from .streams import StreamsReducer
    from .timeline import check_timeline_writable, is_timeline_file
    from .ui import make_view

    named = _named_sources(config, specs)
    specs = [spec for spec, _ in named]
    # Every refusal before the model loads and before anything is opened for writing.
    check_one_stdin(specs)
    feed = feed_settings(config)
    sources = []
    tables: dict[str, StreamConfig] = {}  # a [[streams]] table's own expectations, by name
    if config.cluster is not None:
        _check_cluster_specs(specs, config.cluster)  # the ingest actors open the feeds
    for spec, stream in named if config.cluster is None else ():
        track = config.track if stream is None or stream.track is None else stream.track
        source = open_source(spec, realtime=config.realtime, feed=feed, track=track)
        if stream is not None:
            if stream.name is not None:
                source.name = stream.name  # events carry the [[streams]] name
            tables[printable(source.name)] = stream  # the engine's name for it
        sources.append(source)
    # Everything the run reads: the audio, the config file and a local model's files.
    inputs = [*specs, *([config_file] if config_file else []), *_local_model_files(config.model)]
    if config.jsonl:
        # Appending destroys nothing, but an input is never an output.
        overwrite = config.overwrite or config.jsonl_append
        check_output_path(config.jsonl, inputs, overwrite=overwrite, append=config.jsonl_append)
    if config.timeline_csv:
        check_output_path(
            config.timeline_csv,
            inputs,
            overwrite=config.overwrite,
            option="--timeline-csv",
            ours=is_timeline_file,
            other_outputs={"--jsonl": config.jsonl} if config.jsonl else {},
        )
        check_timeline_writable(config.timeline_csv)
    on_alert = parse_command(config.on_alert) if config.on_alert else None
    figures = StreamsReducer()
    metrics = _metrics_server(config, figures)  # binds now: a port in use is a usage error
    session = classifier = None
    try:
        if config.cluster is not None:
            from .cluster.driver import open_session

            session = open_session(config, err_console())
            labels = session.labels
        else:
            classifier = load_classifier(config)
            labels = classifier.labels
        # The expected languages in the model's own codes; the one refusal that needs its labels.
        config, named, tables = _expectations_as_labels(config, named, tables, labels)
    except BaseException:
        _release(metrics, session)
        raise
    alerts = {name: alert_settings(config, stream) for name, stream in tables.items()}
    sinks: list = []
    if config.jsonl:
        try:  # a named pipe waits here for its reader, and Ctrl-C may come meanwhile
            sinks.append(JsonlSink(config.jsonl, append=config.jsonl_append))
        except BaseException:
            _release(metrics, session)
            raise
    view = make_view(config, stdout_taken=config.jsonl == "-", figures=figures)
    sinks.append(view)
    command = None
    if on_alert is not None:
        command = AlertCommand(
            on_alert, lambda event: engine.publish(event), config.on_alert_interval
        )
        sinks.append(command)
    if config.cluster is not None:
        from .cluster.driver import ClusterRun, feed_specs

        try:
            engine = ClusterRun(config, session, feed_specs(config, named), sinks, figures=figures)
            return _supervised(engine, config, view, command, metrics, specs, watch, keys)
        finally:
            session.close()
    info = classifier.info
    engine = Engine(
        config,
        sources,
        classifier,
        sinks,
        (info.model, info.device, info.dtype),
        figures=figures,
        alerts=alerts,
    )
    return _supervised(engine, config, view, command, metrics, specs, watch, keys)


def _supervised(engine, config: Config, view, command, metrics, specs, watch, held) -> int:
    """The run's outputs beside the pipeline, then `supervise`: the same for a local engine
    and a cluster run."""
    from .timeline import TimelineCsv

    if command is not None:
        engine.attach("on-alert command", command, drain=True)
    if metrics is not None:
        engine.attach("metrics server", metrics)
    timeline = TimelineCsv(config.timeline_csv, engine.figures) if config.timeline_csv else None
    terminal: list[ThreadOwner] = []
    live = view.interactive
    if live:
        engine.attach("live view", view)
        terminal.append(view)
        if "-" not in specs:  # stdin is audio, not keys
            keys = _key_reader(view, engine, watch, held)
            if keys is not None:
                engine.attach("key reader", keys)
                terminal.append(keys)
    export = None if timeline is None else lambda: _export(timeline, engine)
    code = supervise(
        engine,
        watch,
        terminal=terminal,
        report_now=not live,
        on_export=export,
        hurry=None if command is None else command.hurry,
    )
    # At exit, however the run ended, from the figures it left.
    exported = timeline is None or _export(timeline, engine, publish=False)
    if not exported and code == EXIT_OK:
        code = EXIT_OUTPUT
    if code == EXIT_READER_LEFT:
        silence_stdout()
    return code


def _release(metrics, session) -> None:
    """What a run that never started holds: the metrics port (its server never ran) and the
    model on the cluster."""
    if metrics is not None:
        metrics.join(0.0)
    if session is not None:
        session.close()


def _local_model_files(model: str) -> list[str]:
    """The files of a model given as a folder (none for a hub id): an output must not replace
    its weights or config. One level: that is all a checkpoint folder holds."""
    try:
        with os.scandir(model) as entries:
            return [entry.path for entry in entries if entry.is_file()]
    except OSError:  # a hub id, or not there (the loader says so, in its own words)
        return []


def _expectations_as_labels(
    config: Config,
    named: list[tuple[str, StreamConfig | None]],
    tables: dict[str, StreamConfig],
    labels: Sequence[str],
) -> tuple[Config, list[tuple[str, StreamConfig | None]], dict[str, StreamConfig]]:
    """`--expect` and each [[streams]] table's languages as the model's labels ("de" ->
    "deu"); a code the model cannot name is refused (its alert would fire on every answer)."""
    from dataclasses import replace

    from .languages import expected_codes

    def table(stream: StreamConfig | None, spec: str) -> StreamConfig | None:
        if stream is None or not stream.languages:
            return stream
        what = f"[[streams]] {stream.name or spec!r}: language"
        return replace(stream, languages=expected_codes(stream.languages, labels, what))

    named = [(spec, table(stream, spec)) for spec, stream in named]
    tables = {name: table(stream, stream.source) for name, stream in tables.items()}
    expect = expected_codes(config.expect, labels, "--expect language")
    return replace(config, expect=expect), named, tables  # type: ignore[return-value]


def _check_cluster_specs(specs: Sequence[str], address: str) -> None:
    for spec in specs:
        if spec == "-" or spec == "mic" or spec.startswith("mic:"):
            raise ConfigError(
                f"--cluster listens to files and URLs, not {spec!r} (a microphone or stdin "
                "belongs to this machine); run without --cluster, or give the feeds."
            )
    from .cluster import require_ray

    require_ray(address)


def _metrics_server(config: Config, figures):
    if not config.metrics_port:
        return None
    from .metrics import MetricsServer

    server = MetricsServer(figures, config.metrics_host, config.metrics_port)
    host = f"[{config.metrics_host}]" if ":" in config.metrics_host else config.metrics_host
    with contextlib.suppress(OSError):  # where to scrape: the one thing a user must know
        err_console().print(f"Metrics at http://{host}:{server.port}/metrics", markup=False)
    return server


def _export(timeline, engine: Engine, *, publish: bool = True) -> bool:
    """Writes the timeline CSV; a failure is an output error (the run goes on)."""
    from .errors import OutputError
    from .events import Notice

    try:
        timeline.write()
        return True
    except OutputError as exc:
        if publish:
            engine.output_errors.append(str(exc))
            engine.publish(Notice("", 0.0, "error", str(exc)))
        else:
            print_error(str(exc))
        return False


def _key_reader(view, engine: Engine, watch: SignalWatch, held=None):
    """q quits (the signals' stop path), p pauses the picture, r starts the estimate afresh:
    the view's bars and timeline here, the smoothing in the worker (on its own thread).
    `held`: the reader that took the terminal when the run began (`_hold_keys`)."""
    from .ui.keys import KeyReader

    def reset() -> None:
        view.reset()
        engine.reset_smoothing()

    handlers = {"q": watch.request_quit, "p": view.toggle_pause, "r": reset}
    keys = held if held is not None else KeyReader({})
    keys.bind(handlers)
    if not keys.usable():
        return None
    view.keys = True
    return keys


def supervise(
    engine: Engine,
    watch: SignalWatch,
    *,
    terminal: Sequence[ThreadOwner] = (),
    report_now: bool = True,
    on_export: Callable[[], Any] | None = None,
    hurry: Callable[[], Any] | None = None,
) -> int:
    """Runs `engine` until its input ends, a signal, `q`, a fatal error or stdout's reader
    leaving; then the one stop path. Returns the exit code.

    `terminal`: owners that hold the terminal (live view, key reader), given back at once on a
    forced exit or a crash. `report_now`: print output failures as they happen (not under a
    live view, which shows them; they are printed again once it has left the screen).
    `on_export`: called here, on the main thread, when SIGUSR1 asked for an export.
    `hurry`: what a second signal cuts short at the end (an --on-alert command still running)."""
    printed = 0

    def report() -> None:
        nonlocal printed
        for message in engine.output_errors[printed:]:
            print_error(message)
            printed += 1

    finished = False
    watch.record_only()
    try:
        engine.start()
        while not engine.wait(0.0) and not watch.stop_requested:
            if watch.take_export_request() and on_export is not None:
                on_export()
            if report_now:
                report()
            watch.wait(POLL_S)
        if not engine.wait(0.0):
            code = _stop_and_wait(engine, watch, terminal, hurry)
            if code is not None:
                return code  # forced: the model would not let go
        finished = True
    finally:
        if not finished:  # a crash (a bug): stop what runs, give the terminal back
            engine.stop(INTERRUPTED)
            _give_back(terminal)
    report()
    return exit_code(engine, watch)


def _stop_and_wait(
    engine: Engine,
    watch: SignalWatch,
    terminal: Sequence[ThreadOwner],
    hurry: Callable[[], Any] | None = None,
) -> int | None:
    """Stops the engine and waits for its finishing. A second signal, or a model that is still
    mid-forward after FORCED_EXIT_AFTER_S, leaves at once: the code to exit with (then the
    caller must exit without joining), or None after a clean stop. The finishing itself runs
    here, on the main thread, where this loop cannot see a second signal: `hurry`, called from
    the signal handler, cuts short what it waits for."""
    signals_at_stop = len(watch.received)
    watch.on_signal(hurry)
    engine.stop(INTERRUPTED)
    deadline = time.monotonic() + FORCED_EXIT_AFTER_S
    while not engine.wait(POLL_S):  # once the worker ends, this returns after the finishing
        again = len(watch.received) > signals_at_stop
        if again or time.monotonic() > deadline:
            _give_back(terminal)
            if not again:
                with contextlib.suppress(OSError):
                    err_console().print(
                        "[yellow]The model is still busy; exiting without waiting for it.[/]"
                    )
            return _ending_code(watch)
    return None


def _give_back(terminal: Sequence[ThreadOwner]) -> None:
    for owner in terminal:
        owner.stop()
    for owner in terminal:
        owner.join(TERMINAL_JOIN_S)


def _ending_code(watch: SignalWatch) -> int:
    signum = watch.signal
    return EXIT_OK if signum is None else EXIT_SIGNAL_BASE + signum


def exit_code(engine: Engine, watch: SignalWatch) -> int:
    """The README's table: how the run ended, then what failed on the way."""
    reason = engine.summary.reason if engine.summary is not None else INTERRUPTED
    if reason == OUTPUT_CLOSED:
        return EXIT_READER_LEFT
    if reason == INTERRUPTED and watch.signal is not None:
        return EXIT_SIGNAL_BASE + watch.signal
    if engine.errors:
        return EXIT_FAILED
    if engine.output_errors:
        return EXIT_OUTPUT
    return EXIT_OK


def silence_stdout() -> None:
    """After stdout's reader left: later flushes (ours, the interpreter's) go nowhere instead of
    failing again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
