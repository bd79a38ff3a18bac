"""Settings: one dataclass, loaded from defaults, then a TOML file, then the command line.

TOML keys are the long CLI option names (`hop = 0.5`, `min-speech = 1.0`), so a user who knows
one knows the other. Every value is validated here, with a message that names the key, the value
and what is allowed; nothing downstream re-checks.
"""

from __future__ import annotations

import difflib
import math
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .gate import gate_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_MODEL = "facebook/mms-lid-256"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
UI_MODES = ("auto", "rich", "plain", "none")
CONFIG_CAP_BYTES = 1024 * 1024  # a config is a few lines; anything larger is the wrong file


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
    min_speech: float = 1.0
    confirm_window: float = 1.5
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
    # input / engine
    realtime: bool = False
    ring_seconds: float = 30.0
    max_lag: float = 3.0
    # output
    top: int = 5
    jsonl: str | None = None
    overwrite: bool = False
    ui: str = "auto"
    timeline: float = 60.0
    # sources given in the config file (CLI sources replace them)
    sources: tuple[str, ...] = field(default=())


# Help text per key; argparse and the TOML loader both read it, so they cannot drift apart.
HELP: dict[str, str] = {
    "model": "hub id or local folder of an audio-classification LID checkpoint",
    "device": "torch device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    "dtype": "model dtype: auto (bf16 where fast, else fp32), float32, bfloat16 or float16",
    "languages": "comma-separated ISO 639-3 codes to restrict the answer to (e.g. eng,fra,deu)",
    "batch": "most windows classified in one forward pass",
    "window": "window length in seconds of speech",
    "hop": "seconds of speech between windows (the base hop when --adaptive-hop is on)",
    "adaptive_hop": "classify less often while the language is settled, sooner when challenged",
    "min_hop": "adaptive hop: hop after a challenger is heard, seconds (at most --hop)",
    "max_hop": "adaptive hop: longest hop once a language has held 10 s of speech (at least "
    "--hop, at most the window)",
    "min_speech": "seconds of speech before the first (early) answer",
    "confirm_window": "seconds at the end of a window re-checked before switching language",
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
    "realtime": "treat files and stdin as live feeds: pace at real time, drop rather than lag",
    "ring_seconds": "capacity of each stream's ring buffer, seconds",
    "max_lag": "live streams: skip windows older than this many seconds",
    "top": "number of languages listed per prediction",
    "jsonl": "write every event as one JSON line to this file ('-' for stdout)",
    "overwrite": "let --jsonl replace an existing file that is not streamlid events (an "
    "input is never replaced)",
    "ui": "view: auto (live view on a terminal, plain lines otherwise), rich, plain or none",
    "timeline": "seconds of history in the live view's timeline",
    "sources": "audio sources: mic, mic:NAME_OR_INDEX, a file or URL, or - for stdin",
}


def option_name(key: str) -> str:
    """The CLI/TOML spelling of a field name (`min_speech` -> `min-speech`)."""
    return key.replace("_", "-")


def _field_types() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Config)}


def _coerce(key: str, value: Any) -> Any:
    """Turns a TOML or CLI value into the field's type, or says what was expected."""
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


def _check_range(cfg: Config) -> None:
    def need(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            value = getattr(cfg, key)
            raise ConfigError(f"{option_name(key)} = {value!r} is not allowed: {allowed}.")

    device = cfg.device
    need(
        device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit()),
        "device",
        "use auto, cpu, cuda, cuda:N or mps",
    )
    need(cfg.dtype in DTYPES, "dtype", "use " + ", ".join(DTYPES))
    need(bool(cfg.model.strip()), "model", "give a hub id or a folder")
    need(1 <= cfg.batch <= 256, "batch", "use 1 to 256")
    need(0.5 <= cfg.window <= 30.0, "window", "use 0.5 to 30 seconds")
    need(0.1 <= cfg.hop <= cfg.window, "hop", f"use 0.1 s up to the window ({cfg.window} s)")
    # Relative to the hop they are clamped where used (a min-hop above the hop is the hop),
    # so changing --hop alone never makes them invalid.
    window = f"use 0.1 s up to the window ({cfg.window} s)"
    need(0.1 <= cfg.min_hop <= cfg.window, "min_hop", window)
    need(0.1 <= cfg.max_hop <= 30.0, "max_hop", "use 0.1 to 30 seconds")
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
    gate_settings(cfg).check()
    need(0.0 <= cfg.hangover <= 5.0, "hangover", "use 0 to 5 seconds")
    need(0.0 <= cfg.pause <= 60.0, "pause", "use 0 to 60 seconds")
    need(-100.0 <= cfg.energy_floor <= 0.0, "energy_floor", "use -100 to 0 dBFS")
    need(0.0 < cfg.smoothing <= 60.0, "smoothing", "use more than 0 and at most 60 seconds")
    need(0.0 <= cfg.min_confidence <= 1.0, "min_confidence", "use 0 to 1")
    need(0.0 <= cfg.min_margin <= 1.0, "min_margin", "use 0 to 1")
    need(0.0 <= cfg.min_dwell <= 60.0, "min_dwell", "use 0 to 60 seconds")
    need(
        cfg.window + 1.0 <= cfg.ring_seconds <= 3600.0,
        "ring_seconds",
        f"use the window + 1 s ({cfg.window + 1.0} s) up to 3600 s",
    )
    need(cfg.hop <= cfg.max_lag <= 600.0, "max_lag", f"use the hop ({cfg.hop} s) up to 600 s")
    need(1 <= cfg.top <= 50, "top", "use 1 to 50")
    need(cfg.ui in UI_MODES, "ui", "use " + ", ".join(UI_MODES))
    need(5.0 <= cfg.timeline <= 3600.0, "timeline", "use 5 to 3600 seconds")
    need(cfg.jsonl is None or bool(cfg.jsonl.strip()), "jsonl", "give a file path or -")


def _unknown_key(name: str) -> ConfigError:
    known = [option_name(f.name) for f in fields(Config)]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else " Run `streamlid listen --help`."
    return ConfigError(f"Unknown setting {name!r}.{hint}")


def apply(cfg: Config, values: dict[str, Any]) -> Config:
    """A new Config with `values` (keyed by CLI/TOML names or field names) applied and checked."""
    field_names = {f.name for f in fields(Config)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        key = name.replace("-", "_")
        if key not in field_names:
            raise _unknown_key(name)
        changes[key] = _coerce(key, value)
    result = replace(cfg, **changes)
    _check_range(result)
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
        # Tables such as [model] or [gate] only group keys for the reader.
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


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at `path`, then `overrides` (the command line)."""
    cfg = Config()
    if path is not None:
        try:
            cfg = apply(cfg, load_toml(path))
        except ConfigError as exc:
            if str(path) in str(exc):
                raise
            raise ConfigError(f"Config file {str(path)!r}: {exc}") from None
    if overrides:
        cfg = apply(cfg, overrides)
    _check_range(cfg)
    return cfg
