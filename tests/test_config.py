"""Config: TOML keys equal CLI option names, the command line overrides the file, and every
bad value is refused with a message naming the key, the value and what is allowed."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from streamlid.cli import _config_from, build_parser
from streamlid.config import Config, apply, load_config, load_toml, option_name
from streamlid.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

# A valid value other than the default for every setting (sources has no CLI option).
NON_DEFAULT: dict[str, object] = {
    "model": "some/folder",
    "device": "cpu",
    "dtype": "bfloat16",
    "languages": ["eng", "fra"],
    "batch": 4,
    "window": 4.0,
    "hop": 0.5,
    "adaptive_hop": False,
    "min_hop": 0.3,
    "max_hop": 2.0,
    "file_max_hop": 2.0,
    "live_schedule": True,
    "min_speech": 0.8,
    "confirm_window": 1.2,
    "confirm_below": 0.9,
    "vad_engine": "webrtc",
    "vad": 3,
    "vad_frame_ms": 20,
    "hangover": 0.2,
    "pause": 2.0,
    "energy_floor": -45.0,
    "speech_threshold": 0.6,
    "min_speech_share": 0.3,
    "smoothing": 2.0,
    "min_confidence": 0.6,
    "min_margin": 0.3,
    "min_dwell": 2.0,
    "sure_tail": 0.9,
    "realtime": True,
    "ring_seconds": 20.0,
    "max_lag": 2.0,
    "stall_timeout": 5.0,
    "reconnect_min": 1.0,
    "reconnect_max": 60.0,
    "reconnect_attempts": 3,
    "track": 2,
    "top": 3,
    "jsonl": "out.jsonl",
    "overwrite": True,
    "ui": "plain",
    "timeline": 30.0,
    "jsonl_append": True,
    "expect": ["eng", "fra"],
    "alert_unexpected_after": 12.0,
    "alert_silence_after": 120.0,
    "alert_down_after": 20.0,
    "on_alert": "notify-send alert",
    "on_alert_interval": 60.0,
    "timeline_csv": "segments.csv",
    "metrics_port": 9311,
    "metrics_host": "::1",
    "cluster": "ray://10.0.0.5:10001",
    "ingest_actors": 4,
    "replicas": "2:8",
    "serve_batch": 32,
    "serve_batch_wait_ms": 10.0,
    "replica_cpus": 2.0,
}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def cli_args(values: dict[str, object]) -> list[str]:
    args = []
    for key, value in values.items():
        flag = "--" + option_name(key)
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + option_name(key))
        elif isinstance(value, list):
            args += [flag, ",".join(value)]
        else:
            args += [flag, str(value)]
    return args


def parse(*argv: str) -> Config:
    return _config_from(build_parser().parse_args(["listen", *argv]))


def write(tmp_path: Path, text: str, name: str = "settings.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def listen_options() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    listen = sub.choices["listen"]
    return {o for action in listen._actions for o in action.option_strings if o.startswith("--")}


def test_the_table_covers_every_setting():
    assert set(NON_DEFAULT) == {f.name for f in fields(Config)} - {"sources", "streams"}
    for key, value in NON_DEFAULT.items():
        default = getattr(Config(), key)
        assert (tuple(value) if isinstance(value, list) else value) != default, key


def test_every_setting_has_a_cli_option_of_the_same_name():
    options = listen_options()
    for key in NON_DEFAULT:
        assert "--" + option_name(key) in options


def test_toml_keys_and_cli_options_mean_the_same(tmp_path):
    text = "\n".join(f"{option_name(k)} = {toml_value(v)}" for k, v in NON_DEFAULT.items())
    from_file = load_config(write(tmp_path, text))
    from_cli = parse(*cli_args(NON_DEFAULT))
    assert from_file == from_cli
    assert from_file.languages == ("eng", "fra")
    assert from_file.vad_frame_ms == 20
    assert from_file.realtime is True


def test_command_line_overrides_the_config_file(tmp_path):
    path = write(tmp_path, "hop = 0.5\nwindow = 4.0\nrealtime = true\n")
    config = parse("--config", str(path), "--hop", "0.8", "--no-realtime")
    assert config.hop == 0.8  # the command line wins
    assert config.realtime is False
    assert config.window == 4.0  # the file still counts where the command line is silent
    assert config.min_speech == Config().min_speech  # and defaults fill the rest


def test_sections_group_keys_for_the_reader(tmp_path):
    path = write(tmp_path, '[model]\nmodel = "x/y"\ntop = 2\n\n[gate]\nvad = 1\n')
    config = load_config(path)
    assert (config.model, config.top, config.vad) == ("x/y", 2, 1)


def test_sources_can_be_listed_in_the_file(tmp_path):
    assert load_config(write(tmp_path, 'sources = ["a.wav", "mic"]\n')).sources == (
        "a.wav",
        "mic",
    )


def test_field_names_and_option_names_are_both_accepted():
    assert apply(Config(), {"min_speech": 0.5}) == apply(Config(), {"min-speech": 0.5})


SHIPPED_CONFIGS = sorted((REPO_ROOT / "configs").glob("*.toml"))


@pytest.mark.skipif(not SHIPPED_CONFIGS, reason="no configs/*.toml in this checkout")
@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    assert isinstance(load_config(path), Config)


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"hop": -1}, ["hop", "-1"]),
        ({"hop": 5.0}, ["hop", "window"]),  # longer than the window
        ({"vad": 7}, ["vad", "7", "0, 1, 2 or 3"]),
        ({"window": "abc"}, ["window", "abc", "number"]),
        ({"dtype": "float8"}, ["dtype", "float8", "float32"]),
        ({"device": "tpu"}, ["device", "tpu", "cuda:N"]),
        ({"batch": 2.5}, ["batch", "whole number"]),
        ({"top": 0}, ["top", "1 to 50"]),
        ({"window": float("nan")}, ["window", "finite"]),
        ({"realtime": "maybe"}, ["realtime", "true or false"]),
        ({"languages": 3}, ["languages", "list of strings"]),
        ({"vad-frame-ms": 25}, ["vad-frame-ms", "10, 20 or 30"]),
        ({"ring-seconds": 2.0}, ["ring-seconds"]),
        ({"min-hop": 0.05}, ["min-hop", "0.05", "0.1 s up to the window"]),
        ({"max-hop": 40}, ["max-hop", "40", "0.1 to 30 seconds"]),
        ({"file-max-hop": 0.0}, ["file-max-hop", "0.0", "0.1 to 30 seconds"]),
        ({"live-schedule": "sometimes"}, ["live-schedule", "sometimes", "true or false"]),
        ({"adaptive-hop": "often"}, ["adaptive-hop", "often", "true or false"]),
        ({"confirm-below": 1.5}, ["confirm-below", "1.5", "0 to 1"]),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(values, names):
    with pytest.raises(ConfigError) as caught:
        apply(Config(), values)
    for name in names:
        assert name in str(caught.value)


def test_unknown_key_suggests_the_near_miss(tmp_path):
    path = write(tmp_path, "min_speach = 1.0\n")
    with pytest.raises(ConfigError, match="Did you mean min-speech") as caught:
        load_config(path)
    assert str(path) in str(caught.value)  # which file, when several configs are in play


def test_a_command_line_only_option_in_the_file_says_what_to_write_instead(tmp_path):
    # `listen --help` lists --no-ui, and the README says every option can live in the file.
    with pytest.raises(ConfigError, match='only on the command line; write ui = "plain"'):
        load_config(write(tmp_path, "no-ui = true\n"))


def test_wrong_type_in_the_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="hop must be a number"):
        load_config(write(tmp_path, 'hop = "fast"\n'))


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "hop = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_toml(path)
    assert str(path) in str(caught.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_tables_nested_too_deep_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="nested too deep"):
        load_toml(write(tmp_path, "[a.b]\nhop = 1.0\n"))


# -- [[streams]] ------------------------------------------------------------------------------

STREAMS_TOML = """
realtime = true

[[streams]]
name = "Radio Un"
source = "https://radio.example/un.mp3"
languages = ["fra", "eng"]
alert-unexpected-after = 30
alert-silence-after = 120.5
alert-down-after = 60

[[streams]]
source = "b.wav"
track = 2
"""


def test_a_streams_table_in_single_brackets_is_said_to_need_double_ones(tmp_path):
    """[streams] (one table) was flattened like [gate]: "Unknown setting 'source'. Did you
    mean sources?", which says nothing of the brackets."""
    path = write(tmp_path, '[streams]\nname = "Radio Un"\nsource = "un.mp3"\n')
    with pytest.raises(ConfigError, match=r"\[\[streams\]\] table \(double brackets\)"):
        load_config(path)


def test_streams_are_named_sources_with_expectations(tmp_path):
    config = load_config(write(tmp_path, STREAMS_TOML))
    first, second = config.streams
    assert first.name == "Radio Un" and first.source == "https://radio.example/un.mp3"
    assert first.languages == ("fra", "eng")
    assert (first.alert_unexpected_after, first.alert_silence_after, first.alert_down_after) == (
        30.0,
        120.5,
        60.0,
    )
    assert second.name is None and second.languages == () and second.alert_down_after is None
    assert (first.track, second.track) == (None, 2)  # None: the run's --track
    assert config.realtime is True  # the other keys still apply


def test_a_stream_table_takes_two_letter_codes_as_expect_does(tmp_path):
    """`--expect fr,de` is French and German (the run maps codes to the model's labels), so a
    [[streams]] table's `languages = ["fr", "de"]` is not refused as "not ISO 639-3"."""
    config = load_config(
        write(tmp_path, '[[streams]]\nsource = "a.wav"\nlanguages = ["fr", "DE"]\n')
    )
    assert config.streams[0].languages == ("fr", "de")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('name = "x"', ["#1", "'x'", "source"]),
        ('source = "a.wav"\nsorce = "b"', ["unknown key 'sorce'", "did you mean source?"]),
        ('source = "a.wav"\nlanguages = ["english"]', ["'english'", "ISO 639-3"]),
        ('source = "a.wav"\nalert-down-after = -1', ["alert-down-after = -1", "seconds"]),
        ('source = "a.wav"\nalert-silence-after = "soon"', ["alert-silence-after", "seconds"]),
        ('source = "a.wav"\nname = ""', ["name must be a non-empty string"]),
        ('source = "a.wav"\nname = "a\\u0007b"', ["printable"]),
        ('source = "a.wav"\ntrack = "2"', ["track = '2'", "1 is the first audio track"]),
        ('source = "a.wav"\ntrack = 100', ["track = 100", "use 1 to 99"]),
    ],
)
def test_a_bad_stream_table_is_one_sentence_naming_it(tmp_path, table, words):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[[streams]]\n{table}\n"))
    message = str(caught.value)
    assert "\n" not in message and message.endswith((".", "?"))
    for word in words:
        assert word in message


def test_stream_names_are_unique_and_never_carry_credentials(tmp_path):
    twice = '[[streams]]\nname = "a"\nsource = "x.wav"\n[[streams]]\nname = "a"\nsource = "y.wav"\n'
    with pytest.raises(ConfigError, match="used twice"):
        load_config(write(tmp_path, twice))
    secret = '[[streams]]\nname = "http://u:pw@h/x?token=T"\nsource = "x.wav"\n'
    (stream,) = load_config(write(tmp_path, secret, "s.toml")).streams
    assert "pw" not in stream.name and "T" not in stream.name.split("token=")[1]


def test_a_short_window_alone_is_said_of_the_window_with_what_fits():
    """`--window 0.7` alone meets the default hop (1 s): the window is at fault, not the hop
    the user never set, and the sentence says which settings must shrink with it."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"window": 0.7})
    message = str(caught.value)
    assert message.startswith("window = 0.7 is not allowed")
    for name in ("hop = 1.0", "min-speech = 1.0", "confirm-window = 1.5", "at least 1.5 s"):
        assert name in message
    # Doing what it says is accepted.
    fitted = {"window": 0.7, "hop": 0.7, "min-speech": 0.7, "confirm-window": 0.7}
    assert load_config(None, fitted).window == 0.7
    # A hop given with the window is still the hop's fault.
    with pytest.raises(ConfigError, match=r"^hop = 3.0 is not allowed"):
        load_config(None, {"window": 2.0, "hop": 3.0})


def test_a_window_the_ring_cannot_hold_is_said_of_the_window(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("ring-seconds = 10\n")
    with pytest.raises(ConfigError, match=r"window = 12.0 .*ring-seconds = 10.0.* at most 9.0 s"):
        load_config(config, {"window": 12.0})


@pytest.mark.parametrize("sure_tail", [0.3, 1.5])
def test_a_sure_tail_below_the_bar_for_naming_a_language_is_refused(sure_tail):
    """A tail 'sure' at less than it takes to name a language at all would switch on murkier
    evidence than a first answer needs: refused, with the range that follows the user's own
    min-confidence."""
    with pytest.raises(ConfigError, match=rf"^sure-tail = {sure_tail} .*min-confidence \(0.4\)"):
        load_config(None, {"sure_tail": sure_tail, "min_confidence": 0.4})
    assert load_config(None, {"sure_tail": 0.4, "min_confidence": 0.4}).sure_tail == 0.4


def test_a_raised_min_confidence_lifts_the_default_sure_tail_with_it():
    """`--min-confidence 0.9` alone is no error about a sure-tail the user never set (the
    default, 0.8): a tail that switches alone is at least as sure as naming needs."""
    assert load_config(None, {"min_confidence": 0.9}).sure_tail == 0.9
    assert load_config(None, {"min_confidence": 0.6}).sure_tail == 0.8
