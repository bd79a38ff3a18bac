"""Damaged models, odd config files and a closed stdin, through the real command line: each is
one `error:` sentence naming the problem and the fix, a non-zero exit and no traceback."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import run_to_its_end

from streamlid.audio.ring import RingBuffer
from streamlid.config import CONFIG_CAP_BYTES, load_toml
from streamlid.errors import ConfigError


def _damaged_weights(how: str) -> Callable[[Path, Path], Path]:
    def make(tiny: Path, root: Path) -> Path:
        folder = root / f"model-{how}"
        shutil.copytree(tiny, folder)
        weights = folder / "model.safetensors"
        data = weights.read_bytes()
        if how == "truncated":  # a download cut short
            weights.write_bytes(data[: len(data) // 2])
        else:  # something else saved under the name
            weights.write_bytes(b"<html>503 Service Unavailable</html>\n" * 50)
        return folder

    return make


def _label_count(tiny: Path, root: Path) -> Path:
    """config.json from a 5-language sibling beside weights with 8 outputs."""
    folder = root / "model-labels"
    shutil.copytree(tiny, folder)
    config = json.loads((folder / "config.json").read_text())
    labels = ["eng", "fra", "deu", "spa", "ita"]
    config["id2label"] = dict(enumerate(labels))
    config["label2id"] = {code: i for i, code in enumerate(labels)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _label_numbers(tiny: Path, root: Path) -> Path:
    """id2label numbered from 100, not 0: the labels were looked up from 0 (a traceback)."""
    folder = root / "model-label-numbers"
    shutil.copytree(tiny, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(100 + int(i)): code for i, code in config["id2label"].items()}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _unknown_extractor(tiny: Path, root: Path) -> Path:
    """A feature extractor transformers does not know: its reason listed 50 model types and
    named the private loading folder, gone by then."""
    folder = root / "model-extractor"
    shutil.copytree(tiny, folder)
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    settings["feature_extractor_type"] = "HomemadeFeatureExtractor"
    (folder / "preprocessor_config.json").write_text(json.dumps(settings))
    return folder


def _not_a_model(tiny: Path, root: Path) -> Path:
    folder = root / "recordings"
    folder.mkdir()
    (folder / "talk.wav").write_bytes(b"RIFF")
    return folder


# name -> (folder builder, words the error line must contain)
BAD_MODELS: dict[str, tuple[Callable[[Path, Path], Path], list[str]]] = {
    "truncated-weights": (_damaged_weights("truncated"), ["model.safetensors", "truncated"]),
    "garbage-weights": (_damaged_weights("garbage"), ["model.safetensors", "not a safetensors"]),
    "label-count": (_label_count, ["5 labels", "8 outputs"]),
    "label-numbers": (_label_numbers, ["id2label", "0 to 7", "'100'"]),
    "unknown-extractor": (_unknown_extractor, ["preprocessor_config.json", "Unrecognized"]),
    "not-a-model": (_not_a_model, ["recordings", "config.json", "not a transformers checkpoint"]),
}


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].rstrip().endswith("."), "one whole sentence"
    return errors[0]


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_a_damaged_or_mismatched_model_is_one_clear_line(
    case, tiny_model_dir, tmp_path, espeak, run_cli
):
    build, words = BAD_MODELS[case]
    folder = build(tiny_model_dir, tmp_path)
    result = run_cli(espeak.wav("en"), "--model", folder, "--ui", "none")
    line = one_error_line(result)
    for word in words:
        assert word in line, f"{word!r} missing from {line!r}"
    assert "loaded in" not in result.stderr
    assert len(line) < 400 and "streamlid-model-" not in line, line  # short; no private folder


def test_a_closed_standard_input_is_one_clear_line(cli_env):
    """`streamlid listen - <&-`: the shell starts it with no fd 0 at all."""
    result = run_to_its_end(
        ["sh", "-c", f'exec "{sys.executable}" -m streamlid listen - --ui none <&-'], cli_env
    )
    line = one_error_line(result)
    assert "Standard input is closed" in line
    assert "streamlid listen -" in line  # how to feed it


def test_config_from_dev_zero_fails_fast_in_one_line(espeak, run_cli):
    line = one_error_line(run_cli("--config", "/dev/zero", espeak.wav("en"), timeout_s=30))
    assert "/dev/zero" in line and "larger than" in line


def test_config_from_a_fifo_that_never_ends_reads_at_most_the_cap(tmp_path):
    fifo = tmp_path / "endless.toml"
    os.mkfifo(fifo)
    written = [0]
    stop = threading.Event()

    def feed() -> None:
        try:
            with fifo.open("wb") as out:
                while not stop.is_set():
                    out.write(b"# " + b"x" * 1022 + b"\n")
                    written[0] += 1024
        except OSError:  # the reader left: the point of the test
            pass

    writer = threading.Thread(target=feed, name="fifo-writer")
    writer.start()
    try:
        with pytest.raises(ConfigError, match="larger than"):
            load_toml(fifo)
    finally:
        stop.set()
        writer.join(10)
    assert not writer.is_alive()
    assert written[0] <= CONFIG_CAP_BYTES + 2 * 65536 + 1024  # cap + what the pipe buffered


def test_devices_with_no_input_device_says_what_to_do(monkeypatch, capsys):
    from streamlid import cli
    from streamlid.audio import mic

    monkeypatch.setattr(mic, "list_input_devices", lambda: [])
    code = cli.main(["devices"])
    err = capsys.readouterr().err
    assert code != 0
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "No audio input devices" in line
    assert "connected" in line and "PipeWire" in line and "file" in line


class _PortAudioError(Exception):
    """sounddevice.PortAudioError's shape: (text, PortAudio error code, host error)."""


@pytest.mark.parametrize(
    "code, said",
    [
        (-9999, "cannot be opened"),  # PulseAudio with no input source: ALSA error -5
        (-9997, "accepts neither 16 kHz nor its own rate"),  # paInvalidSampleRate
    ],
)
def test_a_microphone_that_does_not_open_is_not_said_to_refuse_its_rates(monkeypatch, code, said):
    from streamlid.audio import mic
    from streamlid.errors import AudioSourceError

    class NoOpen:
        PortAudioError = _PortAudioError

        @staticmethod
        def check_input_settings(**settings):
            raise _PortAudioError("Unanticipated host error", code, (0, -5, "Input/output error"))

    device = mic.InputDevice(1, "default", 32, 44100.0, "ALSA", True)
    monkeypatch.setattr(mic, "import_sounddevice", lambda: NoOpen)
    monkeypatch.setattr(mic, "list_input_devices", lambda: [device])
    with pytest.raises(AudioSourceError) as caught:
        mic.MicrophoneSource(None)
    message = str(caught.value)
    assert said in message
    if code == -9999:
        assert "accepts neither" not in message
        assert "Unanticipated host error" in message and "pactl list short sources" in message


def test_streamlid_download_offline_is_one_line_that_does_not_advise_itself(
    cli_env, tmp_path, run_cli
):
    env = {**cli_env, "HF_HOME": str(tmp_path / "empty-hf-home")}
    result = run_cli("download", "facebook/mms-lid-256", env=env, timeout_s=60)
    line = one_error_line(result)
    assert "facebook/mms-lid-256" in line and "HF_HUB_OFFLINE" in line
    assert "streamlid download" not in line
    assert "Downloading" not in result.stderr
    assert result.stdout == ""


def _with_stdout_closed(cli_env, *args: str) -> subprocess.CompletedProcess:
    """`streamlid ARGS >&-`: started with no fd 1 at all (a service unit, a careless script)."""
    line = " ".join(shlex.quote(str(arg)) for arg in args)
    return run_to_its_end(
        ["sh", "-c", f'exec "{sys.executable}" -m streamlid {line} >&-'], cli_env, stdout=None
    )


@pytest.mark.parametrize(
    "command", [["identify"], ["bench", "--windows", "1", "--batches", "1", "--runs", "1"]]
)
def test_results_for_a_closed_standard_output_are_refused_not_lost(
    command, cli_env, tiny_model_dir, espeak
):
    """identify was a traceback and bench printed its figures into nothing and exited 0."""
    files = [str(espeak.wav("en"))] if command[0] == "identify" else []
    result = _with_stdout_closed(cli_env, *command, *files, "--model", str(tiny_model_dir))
    line = one_error_line(result)
    assert "Standard output is closed" in line and "> out.txt" in line
    assert result.returncode == 2
    assert "loaded in" not in result.stderr  # refused before the model loads


def test_listen_runs_with_a_closed_standard_output(cli_env, tiny_model_dir, espeak, tmp_path):
    """Its lines then go nowhere, as to /dev/null (it was a traceback); `--jsonl -` is refused
    like identify's results, and a --jsonl file still gets every event."""
    events = tmp_path / "events.jsonl"
    wav, model = str(espeak.wav("en")), str(tiny_model_dir)
    result = _with_stdout_closed(cli_env, "listen", wav, "--model", model, "--jsonl", events)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(events.read_text().splitlines()[-1])["type"] == "summary"
    refused = _with_stdout_closed(cli_env, "listen", wav, "--model", model, "--jsonl", "-")
    assert "Standard output is closed" in one_error_line(refused)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_bench_results_that_cannot_be_written_are_one_line(cli_env, tiny_model_dir):
    """`streamlid bench > /dev/full` was a traceback."""
    args = ["bench", "--model", str(tiny_model_dir), "--windows", "1", "--batches", "1"]
    with open("/dev/full", "w") as full:
        result = run_to_its_end(
            [sys.executable, "-m", "streamlid", *args, "--runs", "1", "--json"],
            cli_env,
            stdout=full,
        )
    assert result.returncode == 3, result.stderr
    assert "Cannot write the results" in one_error_line(result)


class _RatesDevice:
    """A sounddevice whose one input takes only the rates in `accepted` (changed at will, as a
    replugged microphone's), and whose streams open."""

    PortAudioError = _PortAudioError

    def __init__(self, accepted: set[int]) -> None:
        self.accepted = accepted
        self.opened_at: list[int] = []

    def check_input_settings(self, *, samplerate, **settings):
        if samplerate not in self.accepted:
            raise _PortAudioError("Invalid sample rate", -9997, None)

    def InputStream(self, *, samplerate, **settings):
        self.opened_at.append(samplerate)
        return types.SimpleNamespace(
            start=lambda: None, active=True, abort=lambda: None, close=lambda: None
        )

    def _terminate(self) -> None:
        pass

    def _initialize(self) -> None:
        pass


def test_a_microphone_back_at_another_rate_is_reopened_at_the_runs_rate_or_said(monkeypatch):
    """A reconnection probed 16 kHz, then the device's own rate, and gave up silently unless it
    got the run's rate: a microphone that took the run's 44.1 kHz but now preferred 48 kHz was
    "still no microphone" for ever, as was one back at 48 kHz only."""
    from streamlid.audio import mic

    sd = _RatesDevice({44100})
    device = mic.InputDevice(1, "USB mic", 1, 44100.0, "ALSA", True)
    monkeypatch.setattr(mic, "import_sounddevice", lambda: sd)
    monkeypatch.setattr(mic, "list_input_devices", lambda: [device])
    source = mic.MicrophoneSource(None)
    assert source.sample_rate_hz == 44100
    notices: list[tuple[str, str]] = []
    source.connect(
        RingBuffer(44100 * 5), lambda severity, message: notices.append((severity, message))
    )

    replugged = mic.InputDevice(1, "USB mic", 1, 48000.0, "ALSA", True)
    monkeypatch.setattr(mic, "list_input_devices", lambda: [replugged])
    sd.accepted = {44100, 48000}  # prefers 48 kHz now, still takes the run's rate
    assert source._reopen()
    assert sd.opened_at[-1] == 44100 and notices == []
    source._close_stream()

    sd.accepted = {48000}  # only another rate: said once, not hidden behind "still no microphone"
    assert not source._reopen() and not source._reopen()
    (warning,) = notices
    assert warning[0] == "warning" and "only at 48000 Hz, not the 44100 Hz" in warning[1]


def test_a_microphone_stuck_in_portaudio_gives_standard_error_back_when_it_is_left_behind(
    monkeypatch, capfd
):
    """A frozen PulseAudio server (SIGSTOP, a hung daemon) answers no probe: the reconnection
    attempt hung inside PortAudio with descriptor 2 held, so the summary that SIGTERM printed
    went into the hold's temporary file and was lost at exit (the run ended 143, silently)."""
    from streamlid.audio import mic

    sd = _RatesDevice({16000})
    device = mic.InputDevice(1, "pulse", 1, 16000.0, "ALSA", True)
    monkeypatch.setattr(mic, "import_sounddevice", lambda: sd)
    monkeypatch.setattr(mic, "list_input_devices", lambda: [device])
    source = mic.MicrophoneSource(None)
    frozen, probing = threading.Event(), threading.Event()

    def hangs(**settings) -> None:
        probing.set()
        frozen.wait(20)

    sd.check_input_settings = hangs  # from here on: the server no longer answers
    monkeypatch.setattr(mic, "QUIET_DEVICE_S", 0.05)  # no callback: reopened at once
    source.start(RingBuffer(16000 * 5), lambda severity, message: None)
    try:
        assert probing.wait(10)
        source.stop()
        assert not source.join(0.2)  # left behind, still inside PortAudio
        os.write(2, b"Summary (interrupted)\n")
        assert "Summary (interrupted)" in capfd.readouterr().err
    finally:
        frozen.set()
        assert source.join(10)
    os.write(2, b"after\n")  # the hold that ended late did not take descriptor 2 again
    assert "after" in capfd.readouterr().err


class _KeepsItsStreams(_RatesDevice):
    """A fake PortAudio that keeps every stream it opened: a test unplugs the device by
    refusing every rate and stopping the open stream."""

    def __init__(self, accepted: set[int]) -> None:
        super().__init__(accepted)
        self.streams: list[types.SimpleNamespace] = []

    def InputStream(self, **settings):
        self.streams.append(super().InputStream(**settings))
        return self.streams[-1]


def _pluggable_microphone(monkeypatch) -> _KeepsItsStreams:
    """One 16 kHz 'USB mic' on a fake PortAudio, reopened every 0.05 s once it is gone."""
    from streamlid.audio import mic

    sd = _KeepsItsStreams({16000})
    device = mic.InputDevice(1, "USB mic", 1, 16000.0, "ALSA", True)
    monkeypatch.setattr(mic, "import_sounddevice", lambda: sd)
    monkeypatch.setattr(mic, "list_input_devices", lambda: [device])
    monkeypatch.setattr(mic, "RETRY_EVERY_S", 0.05)
    return sd


def test_the_time_a_microphone_is_gone_is_silence_in_stream_time(monkeypatch):
    """A pulled microphone's outage was left out of stream time: event times after its return
    were early by the outage, and --alert-silence-after never fired while it was gone, since the
    speech gate's clock stood still. Like a network feed's, the outage is now silence."""
    from streamlid.audio import mic

    sd = _pluggable_microphone(monkeypatch)
    source = mic.MicrophoneSource(None)
    ring = RingBuffer(16000 * 5)
    notices: list[str] = []
    opened_at = time.monotonic()
    source.start(ring, lambda severity, message: notices.append(message))
    try:
        sd.accepted = set()  # unplugged: PortAudio refuses it from now on
        sd.streams[0].active = False
        time.sleep(1.0)
        gone_s = ring.write_index / 16000  # no callback ever came: all of it is silence written
        assert 0.3 <= gone_s <= time.monotonic() - opened_at, gone_s  # none before: 0
        chunk = ring.read(ring.write_index, timeout_s=1.0)
        assert chunk is not None and not chunk.samples.any()
        sd.accepted = {16000}  # plugged back in
        deadline = time.monotonic() + 5
        while len(sd.streams) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(sd.streams) == 2
    finally:
        source.stop()
        assert source.join(5)


def test_a_pulled_microphone_is_down_and_back_as_a_feed_is(monkeypatch):
    """A microphone's loss and return were said only in notices: the summary counted no
    reconnect and no outage, --alert-down-after never fired and streamlid_stream_up stayed 1.
    They are now the feed states a URL's are (once each, without a notice saying it again)."""
    from streamlid.audio import mic
    from streamlid.events import FeedState
    from streamlid.streams import StreamsReducer

    sd = _pluggable_microphone(monkeypatch)
    monkeypatch.setattr(mic, "RETRYING_SAID_EVERY_N", 5)
    source = mic.MicrophoneSource(None)
    reducer = StreamsReducer()
    states: list[FeedState] = []
    notices: list[str] = []

    def feed(state: str, reason: str, attempt: int, outage_s: float) -> None:
        states.append(FeedState("mic", 0.0, state, reason, attempt, outage_s))
        reducer.handle(states[-1])

    source.connect(RingBuffer(16000 * 5), lambda severity, message: notices.append(message), feed)
    source.start()
    try:
        deadline = time.monotonic() + 5
        while not states and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [s.state for s in states] == ["connected"]
        sd.accepted = set()  # unplugged
        sd.streams[0].active = False
        time.sleep(1.0)
        assert states[1].state == "disconnected" and "USB mic" in states[1].reason
        assert {s.state for s in states[2:]} == {"retrying"}  # every 5th failed reopen here
        assert reducer.figures("mic")[0].feed_down_since_wall is not None  # the down alert's
        sd.accepted = {16000}  # plugged back in
        while states[-1].state != "recovered" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        source.stop()
        assert source.join(5)
    back = states[-1]
    assert back.state == "recovered" and back.attempt >= 1 and 1.0 <= back.outage_s < 5
    (summary,) = reducer.summaries()
    assert summary.reconnects == 1 and summary.outage_s >= back.outage_s
    assert not summary.never_connected and summary.down_reason == states[1].reason
    assert notices == []  # the feed states said it all


def test_a_microphone_whose_audio_system_does_not_answer_is_said(monkeypatch, capfd):
    """A frozen PulseAudio server: the reconnection's probe never returned, so nothing was ever
    said; the stream just stood still. Said, it must reach standard error, which the probe
    holds."""
    from streamlid.audio import mic

    sd = _RatesDevice({16000})
    device = mic.InputDevice(1, "pulse", 1, 16000.0, "ALSA", True)
    monkeypatch.setattr(mic, "import_sounddevice", lambda: sd)
    monkeypatch.setattr(mic, "list_input_devices", lambda: [device])
    monkeypatch.setattr(mic, "QUIET_DEVICE_S", 0.05)  # no callback: reopened at once
    monkeypatch.setattr(mic, "SLOW_REOPEN_S", 0.1)
    source = mic.MicrophoneSource(None)
    frozen = threading.Event()
    sd.check_input_settings = lambda **settings: frozen.wait(20)  # the server hangs
    notices: list[tuple[str, str]] = []
    said = threading.Event()

    def notice(severity: str, message: str) -> None:  # a warning is also said on stderr
        os.write(2, b"warning said\n")
        notices.append((severity, message))
        said.set()

    source.start(RingBuffer(16000 * 5), notice)
    try:
        assert said.wait(10)
        ((severity, message),) = notices
        assert severity == "warning" and "the audio system does not answer" in message
        assert "warning said" in capfd.readouterr().err
    finally:
        frozen.set()
        source.stop()
        assert source.join(10)
