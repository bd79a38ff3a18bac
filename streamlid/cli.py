"""Command line: parse options into a Config and hand it to the run (run.py); the exit code.

User errors (StreamlidError) are caught here, once, and printed as one red line; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import io
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from . import __version__
from .config import (
    DEFAULT_MODEL,
    DEFAULT_SHOWN,
    HELP,
    Config,
    feed_settings,
    load_config,
    option_name,
)
from .errors import AudioSourceError, ConfigError, StreamlidError
from .printable import json_utf8, printable
from .run import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_READER_LEFT,
    EXIT_SIGNAL_BASE,
    SignalWatch,
    load_classifier,
    print_error,
    silence_stdout,
)
from .run import err_console as _err_console

COMMANDS = ("listen", "identify", "bench", "devices", "download", "cluster")
BENCH_OPTIONS = ("model", "device", "dtype", "window", "hop", "max_lag")
BENCH_SKIPS = tuple(f.name for f in fields(Config) if f.name not in BENCH_OPTIONS)
# Where bench reads a setting otherwise than a run does (it has no adaptive hop).
BENCH_HELP = {
    "hop": "seconds of speech between windows of a live stream: how many streams the machine "
    "sustains is counted at this hop",
    "max_lag": "seconds: a batch whose forward pass takes longer sustains no live stream",
}
# What `identify` reads (one answer per file, from side-by-side windows): the model, the speech
# gate and windows, the decision, the feeds. A live run's hop, smoothing, outputs and alerts
# would do nothing there, so it does not offer them (and a config file's are ignored).
IDENTIFY_OPTIONS = (
    "model",
    "device",
    "dtype",
    "languages",
    "batch",
    "window",
    "min_speech",
    "vad_engine",
    "vad",
    "vad_frame_ms",
    "hangover",
    "pause",
    "energy_floor",
    "speech_threshold",
    "min_speech_share",
    "min_confidence",
    "min_margin",
    "stall_timeout",
    "reconnect_min",
    "reconnect_max",
    "reconnect_attempts",
    "track",
    "top",
)
IDENTIFY_SKIPS = tuple(f.name for f in fields(Config) if f.name not in IDENTIFY_OPTIONS)
# A one-shot command gives up on a URL it cannot reach (listen, a monitor, retries forever).
IDENTIFY_DEFAULTS = {"reconnect_attempts": 3}
IDENTIFY_HELP = {
    "min_speech": "shortest run of speech that is classified, seconds",
    "min_confidence": "mean probability a file's best language needs to be confident",
    "min_margin": "lead of a file's best language over the runner-up needed to be confident",
    "top": "number of languages listed per file",
}


class _OneConfig(argparse.Action):
    """--config given once: a second one silently replaced the first, whose settings were
    then all dropped, contradicting or not."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        earlier = getattr(namespace, self.dest, None)
        if earlier is not None:
            raise ConfigError(  # one sentence, not argparse's page of usage
                f"--config given twice ({earlier!r}, then {values!r}); one config file is "
                "read: put what both say in one file, or give the other settings as options."
            )
        setattr(namespace, self.dest, values)


def _add_config_options(
    parser: argparse.ArgumentParser,
    skip: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
    helps: dict[str, str] | None = None,
) -> None:
    """The Config's options, less `skip`; `defaults` and `helps`: a command's own, where it
    differs from a run's."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        action=_OneConfig,
        help="TOML file with any of these options",
    )
    for f in fields(Config):
        if f.name in ("sources", "streams", *skip):
            continue
        flag = "--" + option_name(f.name)
        default = (defaults or {}).get(f.name, f.default)
        text = (helps or {}).get(f.name, HELP[f.name])
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f.name}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["help"] = text
        else:
            kwargs["metavar"] = option_name(f.name).upper().replace("-", "_")
            shown = ",".join(default) if isinstance(default, tuple) else default
            shown = DEFAULT_SHOWN.get(f.name, shown)
            kwargs["help"] = f"{text} (default: {shown if shown != '' else 'all'})"
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamlid",
        description="Identify the spoken language of live audio, continuously. "
        "With no command, `listen` runs on the default microphone.",
    )
    parser.add_argument("--version", action="version", version=f"streamlid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    listen = sub.add_parser(
        "listen",
        help="identify languages live from a microphone, files, URLs or stdin",
        description="Identify the spoken language continuously. SOURCE: mic (default), "
        "mic:NAME_OR_INDEX, an audio file (WAV/FLAC/OGG, others through ffmpeg), a URL "
        "(through ffmpeg), or - for raw 16 kHz mono s16le on stdin (an audio file's bytes "
        "there are recognised and decoded through ffmpeg).",
    )
    listen.add_argument("sources", nargs="*", metavar="SOURCE", help="what to listen to")
    listen.add_argument(
        "--no-ui",
        dest="ui",
        action="store_const",
        const="plain",
        default=argparse.SUPPRESS,
        help="plain lines instead of the live display (same as --ui plain)",
    )
    _add_config_options(listen)

    identify = sub.add_parser(
        "identify",
        help="one language per file",
        description="Classify whole files: the language of each, from the mean probabilities "
        "of all its speech, in windows side by side. A URL that cannot be read is retried "
        f"--reconnect-attempts times ({IDENTIFY_DEFAULTS['reconnect_attempts']} by default), "
        "then gets its error; the other files still get their answer.",
    )
    identify.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="audio files (WAV/FLAC/OGG, others through ffmpeg), URLs (through ffmpeg) or - "
        "for raw 16 kHz mono s16le on stdin",
    )
    identify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    identify.add_argument(
        "--max-speech",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="answer each input from its first SECONDS of speech and stop reading it: a live "
        "stream never ends, so without this a radio's URL is read for good (default: 0, read "
        "every input to its end)",
    )
    _add_config_options(
        identify, skip=IDENTIFY_SKIPS, defaults=IDENTIFY_DEFAULTS, helps=IDENTIFY_HELP
    )

    bench = sub.add_parser(
        "bench",
        help="measure how many live streams this machine sustains with the model",
        description="Time the model's forward pass per window length and batch size, and "
        "derive the smallest hop one stream sustains and how many live streams the machine "
        "sustains at the hop.",
    )
    bench.add_argument(
        "--random-weights",
        action="store_true",
        help="the real mms-lid-256 architecture with random weights, built in memory "
        "(nothing to download; speed does not depend on weight values)",
    )
    bench.add_argument(
        "--windows", help="window lengths in seconds, e.g. 1.5,3 (default: --window)"
    )
    bench.add_argument("--batches", default="1,4", help="batch sizes, e.g. 1,8,32 (default: 1,4)")
    bench.add_argument("--runs", type=int, default=5, help="timed passes per row (default: 5)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_config_options(bench, skip=BENCH_SKIPS, helps=BENCH_HELP)

    devices = sub.add_parser(
        "devices",
        help="list audio input devices",
        description="List the audio input devices, for `listen mic:NAME_OR_INDEX`; the "
        "default one is marked.",
    )
    devices.add_argument("--debug", action="store_true", help="show tracebacks for errors")

    cluster = sub.add_parser(
        "cluster",
        help="a `listen --cluster` run's model replicas and ingest actors",
        description="What a running `streamlid listen --cluster` has on its Ray cluster "
        "(needs `pip install streamlid[cluster]`).",
    )
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="COMMAND")
    status = cluster_sub.add_parser(
        "status", help="replicas, feeds per ingest actor, queued windows and latency"
    )
    status.add_argument(
        "--address",
        default="auto",
        help="the cluster: HOST:PORT or ray://HOST:PORT (default: RAY_ADDRESS, or the local one)",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    download = sub.add_parser(
        "download",
        help="download a model into the Hugging Face cache for offline use",
        description="Download a model into the Hugging Face cache and check it as a run "
        "would; later runs with --model MODEL then work offline. Prints its folder.",
    )
    download.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_MODEL,
        metavar="MODEL",
        help=f"hub id of an audio-classification LID checkpoint (default: {DEFAULT_MODEL})",
    )
    download.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    """`streamlid` and `streamlid file.wav` mean `streamlid listen ...`."""
    if not argv:
        return ["listen"]
    if argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return argv
    # `streamlid identfy a.wav` was "Audio file 'identfy' does not exist": a mistyped command
    # is said as one, unless a file by that name is there to be heard.
    close = difflib.get_close_matches(argv[0], COMMANDS, n=1, cutoff=0.75)
    if close and not os.path.lexists(argv[0]):
        raise ConfigError(
            f"{argv[0]!r} is not a command (nor a file); did you mean `streamlid {close[0]}`?"
        )
    return ["listen", *argv]


def _config_from(args: argparse.Namespace) -> Config:
    # SOURCE arguments go to listen() itself (they replace the file's sources there); as an
    # override, an empty list would wipe out a config file's `sources`.
    names = {f.name for f in fields(Config)} - {"sources"}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    # identify and bench read some settings only: a config file's others are ignored there.
    keys = {"identify": IDENTIFY_OPTIONS, "bench": BENCH_OPTIONS}.get(args.command)
    defaults = IDENTIFY_DEFAULTS if args.command == "identify" else None
    return load_config(args.config, overrides, keys=keys, defaults=defaults)


def main(argv: Sequence[str] | None = None) -> int:
    # From the first moment: SIGINT, SIGTERM and SIGHUP stop start-up or a model load as Ctrl-C
    # does, and a running engine through its stop path (run.py).
    with SignalWatch() as watch:
        try:
            return _run_command(list(sys.argv[1:] if argv is None else argv), watch)
        except KeyboardInterrupt as exc:  # before the engine ran (it takes signals itself)
            with contextlib.suppress(OSError):
                _err_console().print("Interrupted.")
            return EXIT_SIGNAL_BASE + getattr(exc, "signum", signal.SIGINT)


def _run_command(argv: list[str], watch: SignalWatch) -> int:
    try:
        args = build_parser().parse_args(_normalise_argv(argv))
    except ConfigError as exc:
        print_error(str(exc))
        return exc.exit_code
    try:
        if args.command == "devices":
            return cmd_devices()
        if args.command == "download":
            return cmd_download(args.model)
        if args.command == "cluster":
            return cmd_cluster(args)
        config = _config_from(args)
        if STDOUT_CLOSED and (args.command != "listen" or config.jsonl == "-"):
            what = "events" if args.command == "listen" else "results"
            raise ConfigError(
                f"Standard output is closed, so the {what} would be lost; send them to a file "
                "(> out.txt), or to /dev/null if they are not wanted."
            )
        if args.command == "bench":
            return cmd_bench(config, args)
        if args.command == "identify":
            return cmd_identify(config, args.files, as_json=args.json, max_speech_s=args.max_speech)
        from .run import listen

        return listen(config, args.sources, watch, config_file=args.config)
    except StreamlidError as exc:
        if getattr(args, "debug", False):
            raise
        print_error(str(exc))
        return exc.exit_code


# Whether standard output was closed when streamlid started (`>&-`); see `_open_closed_stdio`.
STDOUT_CLOSED = False


def _open_closed_stdio() -> None:
    """Puts /dev/null on standard output and error where they were closed (`>&-`, `2>&-`), as
    many Unix tools do: Python left them None (every print a crash), and the next file opened
    would take their descriptor and receive whatever is written there. A command whose results
    go to standard output then refuses to run (`_run_command`) rather than lose them."""
    global STDOUT_CLOSED
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            setattr(sys, name, open(fd, "w", closefd=False))  # noqa: SIM115 - lives until exit
            STDOUT_CLOSED = STDOUT_CLOSED or fd == 1


def entry() -> None:
    """Console-script entry: `main`, then a prompt exit.

    By the time `main` returns, every thread of ours is joined and every output file flushed
    and closed (unless it returned from a forced exit, when leaving now is the point). What is
    left is the interpreter tearing down torch, which takes seconds on a busy machine and can
    abort in its C++ destructors ("terminate called without an active exception"), turning a
    clean Ctrl-C into a crash. So flush the standard streams and leave."""
    _open_closed_stdio()
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version, bad usage (2)
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except StreamlidError as exc:  # --debug: the traceback, and the same code
        traceback.print_exc()
        code = exc.exit_code
    except BaseException:  # a bug: its traceback (run.py has given the terminal back)
        traceback.print_exc()
        code = EXIT_FAILED
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


# -- commands -------------------------------------------------------------------------------


def cmd_devices() -> int:
    from rich.console import Console
    from rich.table import Table

    from .audio.mic import NO_INPUT_DEVICES, list_input_devices

    devices = list_input_devices()
    if not devices:
        raise AudioSourceError(NO_INPUT_DEVICES)
    table = Table(title="Audio input devices")
    for column in ("index", "name", "channels", "default rate", "host API", "default"):
        table.add_column(column)
    for d in devices:
        table.add_row(
            str(d.index),
            d.name,
            str(d.channels),
            f"{d.default_rate_hz:.0f} Hz",
            d.hostapi,
            "*" if d.is_default else "",
        )
    Console().print(table)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from .errors import ConfigError

    if args.cluster_command != "status":
        raise ConfigError("Say what to show: `streamlid cluster status [--address HOST:PORT]`.")
    load_config(None, {"cluster": args.address})  # the address checked as --cluster is
    from .cluster.status import cluster_status

    return cluster_status(args.address, as_json=args.json)


def cmd_download(model: str) -> int:
    """Fetches the checkpoint and checks it as a run would, so a bad download fails now."""
    from rich.markup import escape

    from .modelfiles import check_model_folder, resolve_model_folder

    console = _err_console()
    folder = resolve_model_folder(
        model, announce=lambda m: console.print(escape(m)), downloading=True
    )
    check_model_folder(folder, model)
    print(folder)
    return 0


def cmd_bench(config: Config, args: argparse.Namespace) -> int:
    """Times the configured model (or the random-weight architecture) and prints what it
    sustains; the measuring and the figures live in bench.py."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from . import bench

    if args.random_weights and "model" in vars(args):  # given on the command line
        raise ConfigError(
            f"--random-weights builds mms-lid-256's architecture itself, so --model "
            f"{args.model!r} would not be the model measured; give one or the other."
        )
    windows_s = bench.parse_list(args.windows or f"{config.window:g}", "windows", float, 0.5, 30.0)
    batches = bench.parse_list(args.batches, "batches", int, 1, bench.MAX_BATCH)
    runs = bench.check_runs(args.runs)
    started = time.monotonic()
    if args.random_weights:
        from .classifier import RANDOM_SHAPES, Classifier

        console = _err_console()
        with console.status("Building mms-lid-256 with random weights…"):
            classifier = Classifier(
                str(RANDOM_SHAPES["mms-lid-256"]),
                device=config.device,
                dtype=config.dtype,
                display_name="mms-lid-256 (random weights)",
                random_weights=True,
            )
    else:
        classifier = load_classifier(config)
    load_s = time.monotonic() - started
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=_err_console(),
        transient=True,
    ) as progress:
        task = progress.add_task("warming up", total=bench.passes_needed(windows_s, batches, runs))

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=f"window {label}")

        try:
            report = bench.run_bench(
                classifier,
                window_s=windows_s,
                batches=batches,
                runs=runs,
                hop_s=config.hop,
                max_lag_s=config.max_lag,
                load_s=load_s,
                advance=advance,
            )
        except bench.BenchInterrupted as exc:  # the rows finished so far, then "Interrupted."
            if not exc.report.rows:
                raise
            interrupted, report = exc, exc.report
        else:
            interrupted = None
    if args.json:
        written = _write_results(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        written = _write_results(_rendered(bench.render_table(report)))
    if interrupted is not None:
        with contextlib.suppress(OSError):
            _err_console().print("Interrupted.")
        return EXIT_SIGNAL_BASE + interrupted.signum
    return written


def cmd_identify(
    config: Config, files: Sequence[str], *, as_json: bool, max_speech_s: float = 0.0
) -> int:
    """One language per file (see identify.py). `confident` is false when the file's mean
    probability is below --min-confidence or leads the runner-up by less than --min-margin:
    its best guess is then shown as uncertain."""
    from rich.markup import escape

    from .audio.open import check_one_stdin
    from .audio.urls import redact
    from .identify import IdentifyInterrupted, check_max_speech, identify_files, open_files

    check_max_speech(max_speech_s)
    check_one_stdin(files)
    opened = open_files(files, feed_settings(config), config.track)
    # When no file opens there is nothing to classify: no model to load, or to download.
    nothing = all(isinstance(source, AudioSourceError) for source in opened)
    classifier = None if nothing else load_classifier(config)
    shown = [redact(spec) for spec in files]  # credentials stay out of the table and JSON
    console = _err_console()
    with console.status("Identifying…") as status:

        def on_file(number: int, spec: str) -> None:
            status.update(f"[{number}/{len(files)}] {escape(printable(spec))}…")

        def on_retry(spec: str, message: str) -> None:  # one line each, above the status
            with contextlib.suppress(OSError):
                text = escape(printable(f"{spec}: {message}"))
                console.print(f"[yellow]{text}[/]", soft_wrap=True)

        try:
            results = identify_files(
                classifier,
                opened,
                shown,
                config,
                max_speech_s=max_speech_s,
                on_file=on_file,
                on_retry=on_retry,
            )
        except IdentifyInterrupted as exc:
            interrupted = exc
            results = exc.results
        else:
            interrupted = None
    if as_json:
        # Valid UTF-8 whatever the file names are (see json_utf8).
        text = json_utf8(json.dumps(results, indent=2, ensure_ascii=False) + "\n").decode()
    else:
        text = _results_table(results, config.model)
    written = _write_results(text)
    if interrupted is not None:  # the files answered so far are shown, then it ends as stopped
        with contextlib.suppress(OSError):
            console.print("Interrupted.")
        return EXIT_SIGNAL_BASE + interrupted.signum
    if written != EXIT_READER_LEFT and any(r["error"] for r in results):
        return EXIT_FAILED  # the README's table: 1 wins over 3
    return written


def _results_table(results: Sequence[dict], model: str) -> str:
    """`identify`'s table, rendered for this stdout (its width, colours or none) but not yet
    written: `_write_results` writes it."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Languages ({escape(model)})")
    # Whole: names in one folder differ at their end, and so do errors naming them.
    for column in ("file", "language"):
        table.add_column(column, overflow="fold")
    for column in ("code", "probability", "speech"):
        table.add_column(column)
    for r in results:
        if r["error"]:
            name = f"[red]{escape(r['error'])}[/]"
        elif r["language"] and not r["confident"]:
            name = f"[yellow]{escape(r['name'])} (uncertain)[/]"
        else:
            name = escape(r["name"])
        if r["warning"]:  # under the answer it qualifies
            name += f"\n[yellow]warning: {escape(r['warning'])}[/]"
        table.add_row(
            escape(printable(r["file"])),
            name,
            r["language"] or "-",
            "-" if r["probability"] is None else f"{100 * r['probability']:.0f}%",
            "-" if r["error"] and not r["speech_s"] else f"{r['speech_s']:.1f} s",  # unread
        )
    return _rendered(table)


def _rendered(renderable: Any) -> str:
    """`renderable` as Rich would print it on this stdout (its width, colours only on a
    terminal), for `_write_results` to write."""
    from rich.console import Console

    stdout = Console()
    rendered = io.StringIO()
    Console(
        file=rendered,
        width=stdout.width,
        color_system=stdout.color_system,
        force_terminal=stdout.is_terminal,
    ).print(renderable)
    return rendered.getvalue()


def _write_results(text: str) -> int:
    """Writes `identify`'s results to stdout as `listen` treats its outputs: a write that fails
    (a full disk) is one line and EXIT_OUTPUT; a reader that has left (`| head`) ends it
    quietly with EXIT_READER_LEFT. Rich and print() would raise, or exit 1, instead."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        silence_stdout()  # what is still buffered would fail again at exit
        if exc.errno == errno.EPIPE:
            return EXIT_READER_LEFT
        print_error(f"Cannot write the results to standard output ({exc.strerror or exc}).")
        return EXIT_OUTPUT
    return EXIT_OK
