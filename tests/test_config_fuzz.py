"""Property-based: whatever a user types as an option or writes in a TOML file, streamlid
either accepts it or says what is wrong in one sentence. Never a traceback."""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlid.cli import main
from streamlid.config import Config, ConfigError, apply, load_config, option_name

KEYS = [option_name(f.name) for f in fields(Config)]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["auto", "cpu", "cuda:0", "float16", "eng,fra", "-1", "1e309", "nan", ""]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_any_setting_is_accepted_or_refused_clearly(settings_dict):
    try:
        config = apply(Config(), settings_dict)
    except ConfigError as exc:
        _one_clear_sentence(str(exc))
        return
    assert isinstance(config, Config)
    # What was accepted is consistent: the checks downstream code relies on hold.
    assert 0 < config.hop <= config.window
    assert config.vad in (0, 1, 2, 3)
    assert math.isfinite(config.smoothing) and config.smoothing > 0


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    top=st.dictionaries(keys, values, max_size=4),
    section=st.dictionaries(keys, values, max_size=3),
    section_name=st.sampled_from(["model", "gate", "output"]),
)
def test_any_toml_file_is_accepted_or_refused_clearly(tmp_path, top, section, section_name):
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in top.items()]
    lines.append(f"[{section_name}]")
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in section.items() if k not in top]
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        _one_clear_sentence(str(exc))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200))
def test_any_bytes_as_a_config_file_are_refused_clearly(tmp_path, data):
    path = tmp_path / "garbage.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        _one_clear_sentence(str(exc))


CLI_OPTIONS = [k for k in KEYS if k not in ("sources", "streams", "realtime")]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(option=st.sampled_from(CLI_OPTIONS), value=st.text(max_size=15))
def test_any_option_value_on_the_command_line_ends_in_one_clear_line(capsys, option, value):
    """A file that does not exist follows the option, so a value that is fine still ends in
    a clean error (about the file) instead of a live session."""
    missing = str(Path("/nonexistent/streamlid-fuzz.wav"))
    try:
        code = main(["listen", missing, f"--{option}={value}", "--ui", "none"])
    except SystemExit as exc:  # argparse's own usage error, also one clear message
        assert exc.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err


def _one_clear_sentence(message: str) -> None:
    assert message and "\n" not in message
    assert "Traceback" not in message
    assert message.rstrip().endswith((".", "?")), message
    assert len(message) < 500


@pytest.mark.parametrize("key", ["hop", "window", "vad", "min-confidence"])
def test_refusals_name_the_key(key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        apply(Config(), {key: "not a number"})
