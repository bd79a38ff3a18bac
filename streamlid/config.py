"""Settings: one dataclass, loaded from defaults, then a TOML file, then the command line.

TOML keys are the long CLI option names (`hop = 0.5`, `min-speech = 1.0`), so a user who knows
one knows the other. Every value is validated here, with a message that names the key, the value
and what is allowed; nothing downstream re-checks.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .audio.feeds import FeedSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_MODEL = "facebook/mms-lid-256"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")
UI_MODES = ("auto", "rich", "plain", "none")
CONFIG_CAP_BYTES = 1024 * 1024  # a config is a few lines; anything larger is the wrong file
MAX_ALERT_AFTER_S = 30 * 24 * 3600.0


# A [[streams]] table's keys (TOML spelling). The alert keys are read by the alerts.
STREAM_ALERT_KEYS = ("alert-unexpected-after", "alert-silence-after", "alert-down-after")
STREAM_KEYS = ("name", "source", "languages", "track", *STREAM_ALERT_KEYS)
TRACK_MAX = 99
STREAM_NAME_MAX = 64
ALERT_AFTER_MAX_S = 7 * 24 * 3600.0
# ISO 639-3, or 639-1 ("de"), which the run maps to the model's labels as --expect's codes
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class StreamConfig:
    """One `[[streams]]` table: a named source and what is expected of it."""

    source: str
    name: str | None = None  # None: the source's own name (a file name, the redacted URL)
    languages: tuple[str, ...] = ()  # expected ISO 639-3 codes (empty: anything goes)
    track: int | None = None  # None: the run's --track
    alert_unexpected_after: float | None = None  # seconds of an unexpected language
    alert_silence_after: float | None = None  # seconds without speech
    alert_down_after: float | None = None  # seconds of a feed being down


@dataclass(frozen=True)
class Config:
    # model
    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    languages: tuple[str, ...] = ()
    batch: int = 8
    # windows
    window: float = 3.0
    hop: float = 1.0
    adaptive_hop: bool = True
    min_hop: float = 0.25
    max_hop: float = 1.0
    file_max_hop: float = 30.0  # capped at the window where used: side-by-side windows
    live_schedule: bool = False
    min_speech: float = 1.0
    confirm_window: float = 1.5
    confirm_below: float = 0.95
    # speech gate (its settings are checked in streamlid/gate/detectors.py)
    vad_engine: str = "both"
    vad: int = 2
    vad_frame_ms: int = 30
    hangover: float = 0.3
    pause: float = 1.0
    energy_floor: float = -50.0
    speech_threshold: float = 0.5
    min_speech_share: float = 0.5
    # smoothing
    smoothing: float = 1.0
    min_confidence: float = 0.5
    min_margin: float = 0.2
    min_dwell: float = 1.0
    sure_tail: float = 0.8
    # input / engine
    realtime: bool = False
    ring_seconds: float = 30.0
    max_lag: float = 3.0
    # network feeds
    stall_timeout: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    reconnect_attempts: int = -1
    track: int = 0  # of a file or feed with several audio tracks: 1 = the first; 0: the default
    # output
    top: int = 5
    jsonl: str | None = None
    overwrite: bool = False
    ui: str = "auto"
    timeline: float = 60.0
    jsonl_append: bool = False
    # monitoring: alerts, timeline export, metrics
    expect: tuple[str, ...] = ()
    alert_unexpected_after: float = 30.0
    alert_silence_after: float = 0.0
    alert_down_after: float = 60.0
    on_alert: str | None = None
    on_alert_interval: float = 300.0
    timeline_csv: str | None = None
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # cluster (streamlid/cluster/: Ray, an optional extra); a [cluster] table groups these
    cluster: str | None = None
    ingest_actors: int = 2
    replicas: str = "1"
    serve_batch: int = 8
    serve_batch_wait_ms: float = 5.0
    replica_cpus: float = 1.0
    # sources given in the config file (CLI sources replace them and the streams)
    sources: tuple[str, ...] = field(default=())
    streams: tuple[StreamConfig, ...] = field(default=())


# Help text per key; argparse and the TOML loader both read it, so they cannot drift apart.
HELP: dict[str, str] = {
    "model": "hub id or local folder of an audio-classification LID checkpoint",
    "device": "torch device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    "dtype": "model dtype: auto (bf16 where native, else int8 where faster, else fp32), float32, "
    "bfloat16, float16 or int8 (CPU only)",
    "languages": "comma-separated ISO 639-3 codes to restrict the answer to (e.g. eng,fra,deu)",
    "batch": "most windows classified in one forward pass",
    "window": "window length in seconds of speech",
    "hop": "seconds of speech between windows (the base hop when --adaptive-hop is on)",
    "adaptive_hop": "classify less often while the language is settled, sooner when challenged",
    "min_hop": "adaptive hop: hop after a challenger is heard, seconds (at most --hop)",
    "max_hop": "adaptive hop, live streams: longest hop once a language has held 10 s of "
    "speech (at least --hop, at most the window)",
    "file_max_hop": "adaptive hop, files not played in real time: longest settled hop (at least "
    "--hop, at most the window); the skipped windows are classified where the answer may "
    "change, so the answers are those of a fixed --hop",
    "live_schedule": "files not played in real time follow the live schedule (--min-hop to "
    "--max-hop, as --realtime reports when the model keeps up) instead of --file-max-hop",
    "min_speech": "seconds of speech before the first (early) answer",
    "confirm_window": "seconds at the end of a window re-checked before switching language",
    "confirm_below": "live schedule: re-check the end of each window that gives the current "
    "language less than this probability, while a forward pass takes at most a quarter of the "
    "hop; higher hears some switches sooner (a switch's first second barely moves a whole "
    "window but fills its end), for more forward passes",
    "vad_engine": "speech detector: webrtc, silero, or both (webrtcvad first, silero decides)",
    "vad": "webrtcvad aggressiveness 0 (keeps most) to 3 (strictest)",
    "vad_frame_ms": "speech-gate frame length: 10, 20 or 30 ms",
    "hangover": "seconds of non-speech before the gate closes (bridges word gaps)",
    "pause": "seconds of silence after which the next speech starts a fresh segment",
    "energy_floor": "frames quieter than this (dBFS RMS) are never speech",
    "speech_threshold": "speech probability where speech starts (it ends 0.15 below)",
    "min_speech_share": "share of a window the detector must call speech for it to be classified",
    "smoothing": "time constant of the probability smoothing, seconds",
    "min_confidence": "smoothed probability needed to name a language",
    "min_margin": "lead over the runner-up needed to name or switch a language",
    "min_dwell": "seconds a language is kept before another switch is allowed",
    "sure_tail": "a re-checked window end that names another language at least this surely "
    "switches to it at once, without waiting for a second look, and a first answer from a "
    "window no longer than --confirm-window needs it too (1: off)",
    "realtime": "treat files, URLs and stdin as live feeds: pace at real time, drop rather than "
    "lag",
    "ring_seconds": "capacity of each stream's ring buffer, seconds",
    "stall_timeout": "URLs: seconds without audio after which a feed counts as stalled and is "
    "reconnected",
    "reconnect_min": "URLs: seconds before the first reconnect attempt (doubling each time)",
    "reconnect_max": "URLs: longest wait between reconnect attempts, seconds",
    "reconnect_attempts": "URLs: reconnect attempts in a row before giving up (-1: forever)",
    "track": "of a file, URL or pipe with several audio tracks (a film's dubs, a broadcast's "
    "languages), hear this one: 1 is the first audio track; 0 (the default) hears the one marked "
    "as the default, as players do",
    "max_lag": "live streams: skip windows older than this many seconds",
    "top": "number of languages listed per prediction",
    "jsonl": "write every event as one JSON line to this file ('-' for stdout)",
    "overwrite": "let --jsonl replace an existing file that is not streamlid events (an "
    "input is never replaced)",
    "ui": "view: auto (live view on a terminal, plain lines otherwise), rich, plain or none "
    "(headless: only a stream's warnings and errors, on standard error)",
    "timeline": "seconds of history in the live view's timeline",
    "jsonl_append": "append to an existing --jsonl file instead of replacing it (for a service)",
    "expect": "comma-separated ISO 639-3 codes a feed should carry; others raise an "
    "unexpected-language alert",
    "alert_unexpected_after": "seconds of an unexpected language before an alert (with --expect)",
    "alert_silence_after": "seconds without speech before an alert (0: never)",
    "alert_down_after": "seconds a network feed may be down before an alert (0: never)",
    "on_alert": "command run (no shell) with each alert as JSON on its standard input",
    "on_alert_interval": "at most one --on-alert command per stream and alert kind this often, "
    "seconds",
    "timeline_csv": "write per-stream language segments to this CSV file at exit and on SIGUSR1",
    "metrics_port": "serve Prometheus metrics on this TCP port (0: off)",
    "metrics_host": "address the metrics server listens on",
    "cluster": "run on a Ray cluster: auto (join RAY_ADDRESS, or start one on 127.0.0.1) or "
    "ray://HOST:PORT; needs `pip install streamlid[cluster]`",
    "ingest_actors": "cluster: actors the feeds are shared out over (sources, gate, windows)",
    "replicas": "cluster: model replicas, N or MIN:MAX to autoscale between them",
    "serve_batch": "cluster: most windows one model replica classifies in one forward pass",
    "serve_batch_wait_ms": "cluster: how long a replica waits to fill a batch, milliseconds",
    "replica_cpus": "cluster: CPUs each model replica takes where the cluster has no GPU",
    "sources": "audio sources: mic, mic:NAME_OR_INDEX, a file or URL, or - for stdin",
    "streams": "named sources with expectations: [[streams]] tables in a config file",
}


# Defaults the help shows in words, where the number would mislead (it is capped where used).
DEFAULT_SHOWN: dict[str, str] = {"file_max_hop": "the window"}


def feed_settings(cfg: Config) -> FeedSettings:
    """The network feeds' settings (audio/feeds.py), from the Config."""
    from .audio.feeds import FeedSettings  # here: importing the package loads no numpy

    return FeedSettings(
        stall_timeout_s=cfg.stall_timeout,
        reconnect_min_s=cfg.reconnect_min,
        reconnect_max_s=cfg.reconnect_max,
        reconnect_attempts=cfg.reconnect_attempts,
    )


@dataclass(frozen=True)
class AlertSettings:
    """What one stream is expected to carry and when its alerts fire (0 s: never). Built from
    the global options here; a per-stream config list can give each stream its own."""

    expected_languages: tuple[str, ...] = ()  # empty: any language is expected
    unexpected_after_s: float = 0.0
    silence_after_s: float = 0.0
    down_after_s: float = 0.0

    @property
    def any(self) -> bool:
        return bool(
            (self.expected_languages and self.unexpected_after_s > 0)
            or self.silence_after_s > 0
            or self.down_after_s > 0
        )


def alert_settings(cfg: Config, stream: StreamConfig | None = None) -> AlertSettings:
    """The alert settings of a stream: its `[[streams]]` table's keys where it sets them, the
    global options elsewhere (and for streams given on the command line)."""

    def pick(own: float | None, default: float) -> float:
        return default if own is None else own

    languages = stream.languages if stream is not None and stream.languages else cfg.expect
    return AlertSettings(
        expected_languages=tuple(code.lower() for code in languages),
        unexpected_after_s=pick(
            stream and stream.alert_unexpected_after, cfg.alert_unexpected_after
        ),
        silence_after_s=pick(stream and stream.alert_silence_after, cfg.alert_silence_after),
        down_after_s=pick(stream and stream.alert_down_after, cfg.alert_down_after),
    )


def option_name(key: str) -> str:
    """The CLI/TOML spelling of a field name (`min_speech` -> `min-speech`)."""
    return key.replace("_", "-")


def _field_types() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Config)}


def _coerce(key: str, value: Any) -> Any:
    """Turns a TOML or CLI value into the field's type, or says what was expected."""
    if key == "streams":
        return _parse_streams(value)
    if key == "replicas" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `replicas = 2` in TOML
    default = _field_types()[key]
    name = option_name(key)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{name} must be true or false, not {value!r}.")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{name} must be a whole number, not {value!r}.")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}.") from None
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{name} must be a number, not {value!r}.")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {value!r}.") from None
        if not math.isfinite(number):
            raise ConfigError(f"{name} must be a finite number, not {value!r}.")
        return number
    if isinstance(default, tuple):
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",")]
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            items = [v.strip() for v in value]
        else:
            raise ConfigError(f"{name} must be a list of strings, not {value!r}.")
        return tuple(item for item in items if item)
    # str | None
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{name} must be a string, not {value!r}.")


def _parse_streams(value: Any) -> tuple[StreamConfig, ...]:
    """[[streams]] tables, each checked: the key, the value and what is allowed."""
    from .audio.urls import redact

    if not isinstance(value, (list, tuple)) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(
            "streams must be a list of [[streams]] tables, each with at least "
            'source = "FILE_OR_URL".'
        )
    streams: list[StreamConfig] = []
    names: set[str] = set()
    for number, table in enumerate(value, start=1):
        source = table.get("source")
        where = f"[[streams]] #{number}"
        if isinstance(table.get("name"), str):
            where += f" ({redact(table['name'])!r})"
        for raw_key in table:
            key = raw_key.replace("_", "-")
            if key not in STREAM_KEYS:
                close = difflib.get_close_matches(key, STREAM_KEYS, n=2)
                hint = (
                    f"did you mean {' or '.join(close)}?"
                    if close
                    else f"allowed: {', '.join(STREAM_KEYS)}."
                )
                raise ConfigError(f"{where}: unknown key {raw_key!r}; {hint}")
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f'{where}: needs source = "FILE_OR_URL" (a file, a URL or mic).')
        fields_: dict[str, Any] = {"source": source.strip()}
        name = table.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{where}: name must be a non-empty string, not {name!r}.")
            name = redact(name.strip())
            if len(name) > STREAM_NAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in name):
                raise ConfigError(
                    f"{where}: name {name!r} must be at most {STREAM_NAME_MAX} printable "
                    "characters."
                )
            if name in names:
                raise ConfigError(f"{where}: the name {name!r} is used twice; names are unique.")
            names.add(name)
            fields_["name"] = name
        languages = table.get("languages", [])
        if isinstance(languages, str):
            languages = [part for part in languages.split(",") if part.strip()]
        if not isinstance(languages, list) or not all(isinstance(c, str) for c in languages):
            raise ConfigError(f"{where}: languages must be a list of codes, not {languages!r}.")
        codes = tuple(code.strip().lower() for code in languages)
        for code in codes:
            if not _LANGUAGE_CODE.match(code):
                raise ConfigError(
                    f"{where}: language {code!r} is not a language code; use ISO 639-3 codes "
                    'such as "eng", "fra", "deu" (or two letters: "de").'
                )
        fields_["languages"] = codes
        track = table.get("track")
        if track is not None:
            if isinstance(track, bool) or not isinstance(track, int) or not 0 <= track <= TRACK_MAX:
                raise ConfigError(
                    f"{where}: track = {track!r} is not allowed: use 1 to {TRACK_MAX} (1 is the "
                    "first audio track; 0: the one marked as the default)."
                )
            fields_["track"] = track
        for key in STREAM_ALERT_KEYS:
            raw = table.get(key, table.get(key.replace("-", "_")))
            if raw is None:
                continue
            if (
                isinstance(raw, bool)
                or not isinstance(raw, (int, float))
                or not 0 < raw <= ALERT_AFTER_MAX_S
            ):
                raise ConfigError(
                    f"{where}: {key} = {raw!r} is not allowed: use seconds, more than 0 and "
                    f"at most {ALERT_AFTER_MAX_S:.0f} (a week)."
                )
            fields_[key.replace("-", "_")] = float(raw)
        streams.append(StreamConfig(**fields_))
    return tuple(streams)


def _check_range(
    cfg: Config, keys: Collection[str] | None = None, given: Collection[str] = ()
) -> None:
    """Every value in range; with `keys`, only those (a command that reads only them).
    `given`: the keys just set; a relation they break is said of them, not of the others."""

    def need(ok: bool, key: str, allowed: str) -> None:
        if not ok and (keys is None or key in keys):
            value = getattr(cfg, key)
            raise ConfigError(f"{option_name(key)} = {value!r} is not allowed: {allowed}.")

    device = cfg.device
    need(
        device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit()),
        "device",
        "use auto, cpu, cuda, cuda:N or mps",
    )
    need(cfg.dtype in DTYPES, "dtype", "use " + ", ".join(DTYPES))
    need(
        cfg.dtype != "int8" or cfg.device in ("auto", "cpu"),
        "dtype",
        "int8 runs on CPUs only; use --device cpu, or bfloat16/float16 on a GPU",
    )
    need(bool(cfg.model.strip()), "model", "give a hub id or a folder")
    need(1 <= cfg.batch <= 256, "batch", "use 1 to 256")
    need(0.5 <= cfg.window <= 30.0, "window", "use 0.5 to 30 seconds")
    if "window" in given and (keys is None or "window" in keys):
        _check_window_fits(cfg, given, keys)
    need(0.1 <= cfg.hop <= cfg.window, "hop", f"use 0.1 s up to the window ({cfg.window} s)")
    # Relative to the hop they are clamped where used (a min-hop above the hop is the hop),
    # so changing --hop alone never makes them invalid.
    window = f"use 0.1 s up to the window ({cfg.window} s)"
    need(0.1 <= cfg.min_hop <= cfg.window, "min_hop", window)
    need(0.1 <= cfg.max_hop <= 30.0, "max_hop", "use 0.1 to 30 seconds")
    need(0.1 <= cfg.file_max_hop <= 30.0, "file_max_hop", "use 0.1 to 30 seconds")
    need(
        0.2 <= cfg.min_speech <= cfg.window,
        "min_speech",
        f"use 0.2 s up to the window ({cfg.window} s)",
    )
    need(
        0.2 <= cfg.confirm_window <= cfg.window,
        "confirm_window",
        f"use 0.2 s up to the window ({cfg.window} s)",
    )
    need(0.0 <= cfg.confirm_below <= 1.0, "confirm_below", "use 0 to 1")
    from .gate import gate_settings  # here: importing the package loads no numpy

    gate_settings(cfg).check()
    need(0.0 <= cfg.hangover <= 5.0, "hangover", "use 0 to 5 seconds")
    need(0.0 <= cfg.pause <= 60.0, "pause", "use 0 to 60 seconds")
    need(-100.0 <= cfg.energy_floor <= 0.0, "energy_floor", "use -100 to 0 dBFS")
    need(0.0 < cfg.smoothing <= 60.0, "smoothing", "use more than 0 and at most 60 seconds")
    need(0.0 <= cfg.min_confidence <= 1.0, "min_confidence", "use 0 to 1")
    need(0.0 <= cfg.min_margin <= 1.0, "min_margin", "use 0 to 1")
    need(
        cfg.min_confidence <= cfg.sure_tail <= 1.0,
        "sure_tail",
        f"use min-confidence ({cfg.min_confidence}) up to 1 (1: off)",
    )
    need(0.0 <= cfg.min_dwell <= 60.0, "min_dwell", "use 0 to 60 seconds")
    need(
        cfg.window + 1.0 <= cfg.ring_seconds <= 3600.0,
        "ring_seconds",
        f"use the window + 1 s ({cfg.window + 1.0} s) up to 3600 s",
    )
    need(cfg.hop <= cfg.max_lag <= 600.0, "max_lag", f"use the hop ({cfg.hop} s) up to 600 s")
    need(1.0 <= cfg.stall_timeout <= 3600.0, "stall_timeout", "use 1 to 3600 seconds")
    need(0.1 <= cfg.reconnect_min <= 3600.0, "reconnect_min", "use 0.1 to 3600 seconds")
    need(
        cfg.reconnect_min <= cfg.reconnect_max <= 86400.0,
        "reconnect_max",
        f"use reconnect-min ({cfg.reconnect_min} s) up to 86400 s",
    )
    need(cfg.reconnect_attempts >= -1, "reconnect_attempts", "use -1 (forever), 0 or more")
    need(0 <= cfg.track <= TRACK_MAX, "track", f"use 1 to {TRACK_MAX} (0: the default track)")
    need(1 <= cfg.top <= 50, "top", "use 1 to 50")
    need(cfg.ui in UI_MODES, "ui", "use " + ", ".join(UI_MODES))
    need(5.0 <= cfg.timeline <= 3600.0, "timeline", "use 5 to 3600 seconds")
    need(cfg.jsonl is None or bool(cfg.jsonl.strip()), "jsonl", "give a file path or -")
    need(
        not cfg.jsonl_append or (cfg.jsonl is not None and cfg.jsonl != "-"),
        "jsonl_append",
        "it needs a --jsonl file (not -) to append to",
    )
    need(
        all(code.isalpha() and 2 <= len(code) <= 8 for code in cfg.expect),
        "expect",
        "give language codes such as eng,fra,deu",
    )
    for key in ("alert_unexpected_after", "alert_silence_after", "alert_down_after"):
        need(0.0 <= getattr(cfg, key) <= MAX_ALERT_AFTER_S, key, "use 0 to 30 days in seconds")
    need(cfg.on_alert is None or bool(cfg.on_alert.strip()), "on_alert", "give a command")
    need(0.0 <= cfg.on_alert_interval <= MAX_ALERT_AFTER_S, "on_alert_interval", "use 0 to 30 days")
    need(
        cfg.timeline_csv is None or (bool(cfg.timeline_csv.strip()) and cfg.timeline_csv != "-"),
        "timeline_csv",
        "give a file path",
    )
    need(0 <= cfg.metrics_port <= 65535, "metrics_port", "use 1 to 65535 (0: off)")
    need(bool(cfg.metrics_host.strip()), "metrics_host", "give an address such as 127.0.0.1")
    need(
        cfg.cluster is None or cfg.cluster == "auto" or _is_ray_address(cfg.cluster),
        "cluster",
        "use auto, ray://HOST:PORT or HOST:PORT",
    )
    need(1 <= cfg.ingest_actors <= 1024, "ingest_actors", "use 1 to 1024")
    need(_replica_range(cfg.replicas) is not None, "replicas", "use N or MIN:MAX, 1 <= MIN <= MAX")
    need(1 <= cfg.serve_batch <= 1024, "serve_batch", "use 1 to 1024")
    need(0.0 <= cfg.serve_batch_wait_ms <= 1000.0, "serve_batch_wait_ms", "use 0 to 1000 ms")
    need(0.0 < cfg.replica_cpus <= 256.0, "replica_cpus", "use more than 0, at most 256")


# Settings that must fit in a window (at most its length), and the ring that must hold one.
FIT_IN_WINDOW = ("hop", "min_hop", "min_speech", "confirm_window")


def _check_window_fits(
    cfg: Config, given: Collection[str], keys: Collection[str] | None = None
) -> None:
    """A window that the settings left as they were (the defaults, or the file's) do not fit:
    the window is at fault, not they, so the sentence names it and what would fit (`--window
    0.7` alone meets the default hop of 1 s)."""
    window = cfg.window
    read = [k for k in FIT_IN_WINDOW if keys is None or k in keys]  # what the command uses
    misfits = [k for k in read if k not in given and getattr(cfg, k) > window]
    if misfits:
        shown = [f"{option_name(k)} = {getattr(cfg, k)!r}" for k in misfits]
        names = [option_name(k) for k in misfits]
        raise ConfigError(
            f"window = {window!r} is not allowed with {_and(shown)}, which must fit in the "
            f"window: use a window of at least {max(getattr(cfg, k) for k in misfits)} s, or "
            f"also set {_and(names)} to at most {window} s."
        )
    ring_read = keys is None or "ring_seconds" in keys
    if ring_read and "ring_seconds" not in given and cfg.ring_seconds < window + 1.0:
        raise ConfigError(
            f"window = {window!r} is not allowed with ring-seconds = {cfg.ring_seconds!r}, "
            f"which must hold the window + 1 s: use a window of at most "
            f"{cfg.ring_seconds - 1.0} s, or also set ring-seconds to at least {window + 1.0} s."
        )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _is_ray_address(text: str) -> bool:
    host, _, port = text.removeprefix("ray://").rpartition(":")
    return bool(host.strip()) and port.isdigit() and 0 < int(port) < 65536


def _replica_range(text: str) -> tuple[int, int] | None:
    low, _, high = str(text).partition(":")
    if not low.isdigit() or not (high or low).isdigit():
        return None
    low_n, high_n = int(low), int(high or low)
    return (low_n, high_n) if 1 <= low_n <= high_n <= 1024 else None


@dataclass(frozen=True)
class ClusterSettings:
    """How a `--cluster` run is laid out (built from the Config in one place)."""

    address: str  # "auto", or a Ray address
    ingest_actors_n: int
    replicas_min_n: int
    replicas_max_n: int
    batch_max_n: int
    batch_wait_s: float
    replica_cpus: float


def cluster_settings(cfg: Config) -> ClusterSettings:
    """The cluster's layout; `cfg.cluster` must be set (listen checks it)."""
    assert cfg.cluster is not None
    replicas = _replica_range(cfg.replicas)
    assert replicas is not None  # checked with the rest of the config
    return ClusterSettings(
        address=cfg.cluster,
        ingest_actors_n=cfg.ingest_actors,
        replicas_min_n=replicas[0],
        replicas_max_n=replicas[1],
        batch_max_n=cfg.serve_batch,
        batch_wait_s=cfg.serve_batch_wait_ms / 1000.0,
        replica_cpus=cfg.replica_cpus,
    )


# Options of the command line alone, and what a config file says instead.
COMMAND_LINE_ONLY = {
    "no-ui": 'write ui = "plain" (what --no-ui means)',
    "debug": "give --debug on the command line",
    "config": "a config file cannot name another; give --config on the command line",
}


def _unknown_key(name: str) -> ConfigError:
    instead = COMMAND_LINE_ONLY.get(name.replace("_", "-").lstrip("-"))
    if instead is not None:
        return ConfigError(f"Setting {name!r} exists only on the command line; {instead}.")
    known = [option_name(f.name) for f in fields(Config)]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else " Run `streamlid listen --help`."
    return ConfigError(f"Unknown setting {name!r}.{hint}")


def apply(cfg: Config, values: dict[str, Any], keys: Collection[str] | None = None) -> Config:
    """A new Config with `values` (keyed by CLI/TOML names or field names) applied and checked
    (with `keys`, only the settings a command reads: `load_config`)."""
    field_names = {f.name for f in fields(Config)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        key = name.replace("-", "_")
        if key not in field_names:
            raise _unknown_key(name)
        changes[key] = _coerce(key, value)
    result = replace(cfg, **changes)
    if "sure_tail" not in changes and result.sure_tail < result.min_confidence:
        # A sure tail is at least as sure as naming a language needs: a raised min-confidence
        # lifts the sure-tail it did not set with it (the default 0.8 under min-confidence 0.9).
        result = replace(result, sure_tail=result.min_confidence)
    _check_range(result, keys, given=changes)
    return result


def load_toml(path: str | Path) -> dict[str, Any]:
    """The settings in a TOML file, flattened (tables are allowed for grouping only)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            # Capped: `--config /dev/zero` (or a FIFO that never ends) must not eat memory.
            raw = handle.read(CONFIG_CAP_BYTES + 1)
        if len(raw) > CONFIG_CAP_BYTES:
            raise ConfigError(
                f"Config file {str(path)!r} is larger than {CONFIG_CAP_BYTES // 1024} KB; a "
                "config file is a few lines of TOML: check the path."
            )
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Config file {str(path)!r} does not exist; check the path.") from None
    except IsADirectoryError:
        raise ConfigError(f"Config file {str(path)!r} is a folder; name a TOML file.") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"Config file {str(path)!r} is not UTF-8 text; save it as a UTF-8 TOML file."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Config file {str(path)!r} cannot be read ({exc.strerror or exc}); check its "
            "permissions."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {str(path)!r} is not valid TOML: {exc}.") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "streams" and isinstance(value, dict):
            # Flattened like [gate], its `source` would be called an unknown setting.
            raise ConfigError(
                f"Config file {str(path)!r}: [streams] is a single table; write each feed as "
                "a [[streams]] table (double brackets), one per feed."
            )
        # Tables such as [model] or [gate] only group keys for the reader ([[streams]] is a
        # list of tables, checked by _parse_streams).
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict):
                    raise ConfigError(
                        f"Config file {str(path)!r}: table {key}.{inner} is nested too deep; "
                        "use `key = value` lines, optionally under one [section]."
                    )
                flat[inner] = inner_value
        else:
            flat[key] = value
    return flat


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    keys: Collection[str] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Config:
    """Defaults, then the TOML file at `path`, then `overrides` (the command line).

    A command that reads only some settings (`identify`) names them in `keys`: the file's
    other settings are ignored (a config written for `listen` still serves it; an unknown key
    is still an error), and the rest keep their defaults unchecked against them (`--window 1`
    is not refused for a `--confirm-window` the command has not got). `defaults`: that
    command's own defaults, which the file and the command line override."""
    cfg = apply(Config(), defaults, keys) if defaults else Config()
    if path is not None:
        try:
            values = load_toml(path)
            if keys is not None:
                known = {f.name for f in fields(Config)}
                values = {
                    name: value
                    for name, value in values.items()
                    if name.replace("-", "_") in keys or name.replace("-", "_") not in known
                }
            cfg = apply(cfg, values, keys)
        except ConfigError as exc:
            if str(path) in str(exc):
                raise
            raise ConfigError(f"Config file {str(path)!r}: {exc}") from None
    if overrides:
        cfg = apply(cfg, overrides, keys)
    _check_range(cfg, keys)
    return cfg
