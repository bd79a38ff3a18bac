"""Command line: parse options into a Config and hand it to the run (run.py); the exit code.

User errors (StreamlidError) are caught here, once, and printed as one red line; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from . import __version__
from .config import DEFAULT_MODEL, HELP, Config, load_config, option_name
from .errors import StreamlidError
from .run import EXIT_FAILED, EXIT_SIGNAL_BASE, SignalWatch, load_classifier, print_error
from .run import err_console as _err_console

COMMANDS = ("listen", "identify", "devices", "download")
# Options of a live run that mean nothing for `identify` (one answer per file).
IDENTIFY_SKIPS = (
    "realtime",
    "ui",
    "timeline",
    "jsonl",
    "overwrite",
    "jsonl_append",
    "expect",
    "alert_unexpected_after",
    "alert_silence_after",
    "alert_down_after",
    "on_alert",
    "on_alert_interval",
    "timeline_csv",
    "metrics_port",
    "metrics_host",
)


def _add_config_options(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file with any of these options")
    for f in fields(Config):
        if f.name in ("sources", *skip):
            continue
        flag = "--" + option_name(f.name)
        default = f.default
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f.name}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["help"] = HELP[f.name]
        else:
            kwargs["metavar"] = option_name(f.name).upper().replace("-", "_")
            shown = ",".join(default) if isinstance(default, tuple) else default
            kwargs["help"] = f"{HELP[f.name]} (default: {shown if shown != '' else 'all'})"
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
        "(through ffmpeg), or - for raw 16 kHz mono s16le on stdin.",
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
        description="Classify whole files: the language of each, from all its speech.",
    )
    identify.add_argument("files", nargs="+", metavar="FILE")
    identify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_config_options(identify, skip=IDENTIFY_SKIPS)

    devices = sub.add_parser("devices", help="list audio input devices")
    devices.add_argument("--debug", action="store_true", help="show tracebacks for errors")

    download = sub.add_parser(
        "download", help="download a model into the Hugging Face cache for offline use"
    )
    download.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    download.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    """`streamlid` and `streamlid file.wav` mean `streamlid listen ...`."""
    if not argv:
        return ["listen"]
    if argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return argv
    return ["listen", *argv]


def _config_from(args: argparse.Namespace) -> Config:
    names = {f.name for f in fields(Config)}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    return load_config(args.config, overrides)


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
    args = build_parser().parse_args(_normalise_argv(argv))
    try:
        if args.command == "devices":
            return cmd_devices()
        if args.command == "download":
            return cmd_download(args.model)
        config = _config_from(args)
        if args.command == "identify":
            return cmd_identify(config, args.files, as_json=args.json)
        from .run import listen

        return listen(config, args.sources, watch)
    except StreamlidError as exc:
        if getattr(args, "debug", False):
            raise
        print_error(str(exc))
        return exc.exit_code


def entry() -> None:
    """Console-script entry: `main`, then a prompt exit.

    By the time `main` returns, every thread of ours is joined and every output file flushed
    and closed (unless it returned from a forced exit, when leaving now is the point). What is
    left is the interpreter tearing down torch, which takes seconds on a busy machine and can
    abort in its C++ destructors ("terminate called without an active exception"), turning a
    clean Ctrl-C into a crash. So flush the standard streams and leave."""
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

    from .audio.mic import list_input_devices
    from .errors import AudioSourceError

    devices = list_input_devices()
    if not devices:
        raise AudioSourceError(
            "No audio input devices found; check that a microphone is connected and that "
            "PulseAudio or PipeWire is running (`pactl info`), or listen to a file, a URL or "
            "- (stdin) instead."
        )
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


def _open_sources(specs: Sequence[str], realtime: bool) -> list:
    from .audio.open import open_source

    return [open_source(spec, realtime=realtime) for spec in specs]


def cmd_identify(config: Config, files: Sequence[str], *, as_json: bool) -> int:
    """One language per file: the mean of its windows' probabilities, over all its speech.

    `confident` is false when that mean is below --min-confidence: the file's best guess is
    then shown as uncertain rather than as an answer."""
    from rich.markup import escape

    from .engine import Engine

    opened = _open_sources(files, realtime=False)
    classifier = load_classifier(config)
    info = classifier.info
    console = _err_console()
    results = []
    for number, (spec, source) in enumerate(zip(files, opened, strict=True), start=1):
        engine = Engine(config, [source], classifier, [], (info.model, info.device, info.dtype))
        with console.status(f"[{number}/{len(files)}] {escape(spec)}…"):
            engine.run()  # a signal here interrupts (main catches it); run() stops and joins
        assert engine.summary is not None
        stream = engine.summary.streams[0] if engine.summary.streams else None
        best = stream.mean_probabilities[0] if stream and stream.mean_probabilities else None
        results.append(
            {
                "file": spec,
                "language": best.code if best else None,
                "name": best.name if best else "no speech found",
                "probability": best.probability if best else 0.0,
                "confident": bool(best and best.probability >= config.min_confidence),
                "speech_s": stream.speech_s if stream else 0.0,
                "windows": stream.windows if stream else 0,
                "top": [
                    {"code": s.code, "name": s.name, "probability": s.probability}
                    for s in (stream.mean_probabilities if stream else ())
                ],
                "error": engine.errors[0] if engine.errors else None,
            }
        )
    if as_json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Languages ({escape(info.model)})")
        for column in ("file", "language", "code", "probability", "speech"):
            table.add_column(column)
        for r in results:
            if r["error"]:
                name = f"[red]{escape(r['error'])}[/]"
            elif r["language"] and not r["confident"]:
                name = f"[yellow]{escape(r['name'])} (uncertain)[/]"
            else:
                name = escape(r["name"])
            table.add_row(
                escape(r["file"]),
                name,
                r["language"] or "-",
                f"{100 * r['probability']:.0f}%",
                f"{r['speech_s']:.1f} s",
            )
        Console().print(table)
    return 1 if any(r["error"] for r in results) else 0
