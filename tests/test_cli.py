"""The command line: the JSONL schema, stdin, and every bad input answered with one clear
`error:` line, a non-zero exit code and no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import encode_with_ffmpeg, silence, to_s16le, write_wav
from modelfactory import TEST_LABELS

from streamlid import cli
from streamlid.audio.source import Source

PREDICTION_FIELDS = {
    "stream",
    "t_start_s",
    "t_end_s",
    "top",
    "smoothed",
    "language",
    "language_name",
    "confidence",
    "latency_s",
    "lag_s",
}


def read_jsonl(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def check_scores(scores: list[dict], top: int, labels: tuple[str, ...]) -> None:
    assert 1 <= len(scores) <= top
    for score in scores:
        assert set(score) == {"code", "name", "probability"}
        assert score["code"] in labels
        assert isinstance(score["name"], str) and score["name"]
        assert 0.0 <= score["probability"] <= 1.0
    probabilities = [s["probability"] for s in scores]
    assert probabilities == sorted(probabilities, reverse=True)
    assert len({s["code"] for s in scores}) == len(scores)


def run_main(argv: list[str]) -> int:
    return cli.main([str(a) for a in argv])


def test_jsonl_schema(espeak, tiny_model_dir, tmp_path, capsys):
    wav = espeak.wav("en", lead_s=1.0, tail_s=0.5)
    out = tmp_path / "events.jsonl"
    top = 3
    code = run_main([wav, "--model", tiny_model_dir, "--jsonl", out, "--top", top, "--ui", "none"])
    assert code == 0, capsys.readouterr().err
    lines = read_jsonl(out)
    types = [line["type"] for line in lines]
    assert {"started", "speech", "prediction", "status", "summary"} <= set(types)
    assert types[0] == "started"
    assert types[-1] == "summary"
    assert types.count("summary") == 1
    assert "level" not in types  # meter readings are for the screen, not the record

    started = lines[0]
    assert started["stream"] == wav.name
    assert started["model"] == str(tiny_model_dir)
    assert started["device"] == "cpu"
    assert started["live"] is False

    predictions = [line for line in lines if line["type"] == "prediction"]
    assert predictions
    for p in predictions:
        assert set(p) >= PREDICTION_FIELDS
        assert p["stream"] == wav.name
        assert 0.0 <= p["t_start_s"] < p["t_end_s"]
        check_scores(p["top"], top, TEST_LABELS)
        check_scores(p["smoothed"], top, TEST_LABELS)
        assert p["language"] is None or p["language"] in TEST_LABELS
        assert 0.0 <= p["confidence"] <= 1.0
        assert (p["language"] is None) == (p["confidence"] == 0.0)
        assert p["latency_s"] >= 0.0
        assert p["lag_s"] is None  # a file read as fast as possible is not live
    ends = [p["t_end_s"] for p in predictions]
    assert ends == sorted(ends)

    speech = [line for line in lines if line["type"] == "speech"]
    assert speech[0]["speech"] is True
    assert speech[0]["t_s"] >= 0.9  # after the leading second of silence

    summary = lines[-1]
    assert summary["reason"] == "end of input"
    (stream,) = summary["streams"]
    assert stream["stream"] == wav.name
    assert stream["windows"] == len(predictions)
    check_scores(stream["mean_probabilities"], top, TEST_LABELS)


def test_jsonl_with_a_language_subset_lists_only_those(espeak, tiny_model_dir, tmp_path):
    out = tmp_path / "events.jsonl"
    argv = [espeak.wav("fr"), "--model", tiny_model_dir, "--jsonl", out, "--ui", "none"]
    assert run_main([*argv, "--languages", "fr,en", "--top", "5"]) == 0
    predictions = [line for line in read_jsonl(out) if line["type"] == "prediction"]
    assert predictions
    for p in predictions:
        check_scores(p["top"], 2, ("fra", "eng"))
        assert sum(s["probability"] for s in p["top"]) == pytest.approx(1.0, abs=1e-3)


def test_jsonl_to_stdout(espeak, tiny_model_dir, capsys):
    argv = [espeak.wav("en"), "--model", tiny_model_dir, "--jsonl", "-", "--ui", "plain"]
    assert run_main(argv) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines[-1]["type"] == "summary"
    assert any(line["type"] == "prediction" for line in lines)


def test_stdin_raw_s16le(espeak, tiny_model_dir, tmp_path, run_cli):
    audio = np.concatenate([silence(0.5), espeak.samples("en")])
    out = tmp_path / "stdin.jsonl"
    result = run_cli(
        "-", "--model", tiny_model_dir, "--jsonl", out, "--ui", "none", stdin=to_s16le(audio)
    )
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(out)
    assert lines[0]["stream"] == "stdin"
    assert any(line["type"] == "prediction" for line in lines)
    (stream,) = lines[-1]["streams"]
    assert stream["duration_s"] == pytest.approx(len(audio) / 16000, abs=0.01)


@pytest.mark.parametrize("given", [b"", b"\x01"], ids=["nothing", "one-byte"])
def test_stdin_that_ends_without_audio_is_an_error(given, tiny_model_dir, run_cli):
    """A producer that failed (`bad-command | streamlid listen -`) left a run that heard
    0.0 s and exited 0, as if a recording had been heard."""
    result = run_cli("-", "--model", tiny_model_dir, "--ui", "none", stdin=given)
    assert result.returncode == 1, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "] error: " in line]
    assert "ended before any audio came" in error


TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"  # trained: it knows the language
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt install ffmpeg)"
)


def _container(kind: str, audio: np.ndarray, folder: Path) -> tuple[Path, float]:
    """`audio` as a 44.1 kHz stereo WAV, or that WAV encoded by ffmpeg; and its duration."""
    wav = folder / "speech.wav"
    duration_s = write_wav(wav, audio, rate_hz=44100, channels=2)
    if kind == "wav":
        return wav, duration_s
    path = folder / f"speech.{kind}"
    encode_with_ffmpeg(wav, path)
    return path, duration_s


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["wav", "flac", "mp3"])
def test_a_file_piped_into_stdin_is_decoded_not_heard_as_raw_pcm(kind, espeak, tmp_path, run_cli):
    """`cat talk.wav | streamlid listen -`: read as raw 16 kHz PCM, a 44.1 kHz stereo WAV
    lasted 5.5 times as long and was noise; its first bytes say what it is."""
    audio = np.concatenate([silence(0.5), espeak.samples("fr")])
    path, duration_s = _container(kind, audio, tmp_path)
    out = tmp_path / "stdin.jsonl"
    result = run_cli(
        "-", "--model", TINY_LID, "--jsonl", out, "--ui", "none", stdin=path.read_bytes()
    )
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(out)
    (stream,) = lines[-1]["streams"]
    assert stream["duration_s"] == pytest.approx(duration_s, abs=0.1)
    predictions = [line for line in lines if line["type"] == "prediction"]
    assert predictions and predictions[-1]["smoothed"][0]["code"] == "fra"
    # The start said "16 kHz mono s16le" before a byte had come; what it found is said after.
    notices = [line["message"] for line in lines if line["type"] == "notice"]
    assert any(f"carries {kind.upper()} audio, not raw PCM" in message for message in notices), (
        notices
    )


@needs_ffmpeg
def test_an_m4a_with_its_index_at_the_end_piped_in_is_told_apart_from_not_audio(tmp_path, run_cli):
    """ffmpeg's default M4A keeps its index at its end, which a pipe cannot seek to; ffmpeg
    says "invalid data", and the run said it was not audio at all."""
    m4a = tmp_path / "tone.m4a"
    tone = ["-f", "lavfi", "-i", "sine=f=300:d=20:r=16000"]
    subprocess.run(["ffmpeg", "-loglevel", "error", *tone, "-c:a", "aac", m4a], check=True)
    result = run_cli("-", "--model", TINY_LID, "--ui", "none", stdin=m4a.read_bytes())
    assert result.returncode == 1, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "] error: " in line]
    assert "index is at its end" in error and "give its path" in error and "+faststart" in error


@needs_ffmpeg
@pytest.mark.parametrize("command", ["listen", "identify"])
def test_a_pipe_named_as_a_file_is_read_as_a_stream(command, espeak, tmp_path, cli_env):
    """`streamlid listen <(cat talk.wav)`: /dev/fd/63 is a pipe, whose size of 0 said nothing
    of what would come through it; it was refused as an empty file."""
    path, duration_s = _container("wav", espeak.samples("fr"), tmp_path)
    out = tmp_path / "out.jsonl"
    options = f"--jsonl {out} --ui none" if command == "listen" else "--json"
    result = subprocess.run(
        [
            "bash",
            "-c",
            f'"$0" -m streamlid {command} <(cat {path}) --model {TINY_LID} {options}',
            sys.executable,
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if command == "listen":
        (stream,) = read_jsonl(out)[-1]["streams"]
        assert stream["duration_s"] == pytest.approx(duration_s, abs=0.1)
        assert stream["stream"].startswith("/dev/fd/")  # not "63", which names nothing
    else:
        (row,) = json.loads(result.stdout)
        assert row["error"] is None and row["language"] == "fra", row


@needs_ffmpeg
def test_a_named_fifo_whose_writer_is_late_is_said_to_wait_for_it(
    espeak, tiny_model_dir, tmp_path, run_cli
):
    """The open of a FIFO waits for its writer before the model even loads: the run said
    nothing at all meanwhile, and looked hung."""
    path, _ = _container("wav", espeak.samples("en"), tmp_path)
    fifo = tmp_path / "late.fifo"
    os.mkfifo(fifo)

    def late_writer() -> None:
        time.sleep(2.0)  # well past the half second after which the wait is said
        with fifo.open("wb") as handle:
            handle.write(path.read_bytes())

    thread = threading.Thread(target=late_writer, daemon=True)
    thread.start()
    result = run_cli(fifo, "--model", tiny_model_dir, "--ui", "none")
    thread.join(10)
    assert result.returncode == 0, result.stderr
    waiting = [line for line in result.stderr.splitlines() if "waiting for one" in line]
    assert len(waiting) == 1 and "late.fifo" in waiting[0] and "no writer yet" in waiting[0]


@needs_ffmpeg
def test_a_named_fifo_is_read_as_a_stream(espeak, tiny_model_dir, tmp_path, run_cli):
    path, duration_s = _container("flac", espeak.samples("en"), tmp_path)
    fifo = tmp_path / "audio.fifo"
    os.mkfifo(fifo)

    def writer() -> None:
        with fifo.open("wb") as handle:  # waits for the reader, as a producer would
            handle.write(path.read_bytes())

    thread = threading.Thread(target=writer, daemon=True)  # ends when the reader has read
    thread.start()
    out = tmp_path / "out.jsonl"
    result = run_cli(fifo, "--model", tiny_model_dir, "--jsonl", out, "--ui", "none")
    thread.join(10.0)
    assert result.returncode == 0, result.stderr
    (stream,) = read_jsonl(out)[-1]["streams"]
    assert stream["duration_s"] == pytest.approx(duration_s, abs=0.1)


def test_stdin_named_twice_is_refused_not_split_between_two_readers(tiny_model_dir, run_cli):
    """`listen - -` had two readers share the bytes, each stream hearing scrambled audio."""
    for command in (["listen"], ["identify"]):
        result = run_cli(*command, "-", "-", "--model", tiny_model_dir, stdin=bytes(64000))
        assert result.returncode == 2, result.stderr
        assert "named more than once" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_file_name_cannot_put_escape_sequences_or_lines_on_the_terminal(
    espeak, tiny_model_dir, tmp_path, run_cli
):
    """A name is shown, not obeyed: ESC [31m and a newline in it reached the plain lines and the
    identify table raw (recolouring the terminal, forging a line of output)."""
    import shutil

    evil = tmp_path / "evil\x1b[31mRED\nline.wav"
    shutil.copy(espeak.wav("en"), evil)
    for command in (["listen", "--ui", "plain"], ["identify"]):
        result = run_cli(*command, evil, "--model", tiny_model_dir)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout, command
        assert not any(line.startswith("line.wav") for line in result.stdout.splitlines())
        unfolded = "".join(line.strip("│ ") for line in result.stdout.splitlines())
        assert "evil\\x1b[31mRED\\nline.wav" in unfolded, result.stdout  # shown, escaped


# -- bad input ------------------------------------------------------------------------------


def _write(name: str, data: bytes | str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    return make


def _random_bytes(n: int) -> bytes:
    return np.random.default_rng(3).integers(0, 256, n, dtype=np.uint8).tobytes()


# Each case: how to build the arguments (given a temp folder, a good WAV, the tiny model and a
# non-audio model) and words the error line must contain.
BAD_INPUTS: dict[str, tuple[Callable[..., list], list[str]]] = {
    "missing-file": (lambda d, wav, m, b: [d / "nope.wav"], ["nope.wav", "does not exist"]),
    "empty-file": (lambda d, wav, m, b: [_write("empty.wav", b"")(d)], ["empty"]),
    "directory": (lambda d, wav, m, b: [d], ["folder"]),
    "corrupt-wav": (
        lambda d, wav, m, b: [_write("corrupt.wav", _random_bytes(4000))(d)],
        ["corrupt.wav", "cannot be decoded"],
    ),
    "truncated-wav-header": (
        lambda d, wav, m, b: [_write("cut.wav", wav.read_bytes()[:30])(d)],
        ["cut.wav"],
    ),
    "text-as-mp3": (
        lambda d, wav, m, b: [_write("notes.mp3", "just some text\n" * 20)(d)],
        ["notes.mp3", "cannot be decoded"],
    ),
    "unknown-mic": (
        lambda d, wav, m, b: ["mic:nonexistent-device-xyz"],
        [],  # "no device matches" or "no input device at all" or "no PortAudio": all fine
    ),
    "hop-negative": (lambda d, wav, m, b: [wav, "--hop", "-1"], ["hop", "-1"]),
    "vad-7": (lambda d, wav, m, b: [wav, "--vad", "7"], ["vad", "7"]),
    "window-abc": (lambda d, wav, m, b: [wav, "--window", "abc"], ["window", "abc"]),
    "window-shorter-than-the-hop": (
        lambda d, wav, m, b: [wav, "--window", "0.7"],
        ["window = 0.7 is not allowed", "hop = 1.0", "at least 1.5 s"],
    ),
    "dtype-float8": (lambda d, wav, m, b: [wav, "--dtype", "float8"], ["dtype", "float8"]),
    "config-invalid-toml": (
        lambda d, wav, m, b: ["--config", _write("bad.toml", "hop = = 1\n")(d), wav],
        ["bad.toml", "TOML"],
    ),
    "config-unknown-key": (
        lambda d, wav, m, b: ["--config", _write("typo.toml", "windw = 3.0\n")(d), wav],
        ["windw", "Did you mean window"],
    ),
    "config-wrong-type": (
        lambda d, wav, m, b: ["--config", _write("type.toml", 'hop = "fast"\n')(d), wav],
        ["hop", "number"],
    ),
    "config-missing": (
        lambda d, wav, m, b: ["--config", d / "absent.toml", wav],
        ["absent.toml", "does not exist"],
    ),
    "model-folder-missing": (
        lambda d, wav, m, b: [wav, "--model", d / "no-such-model"],
        ["no-such-model", "does not exist"],
    ),
    "model-not-audio": (
        lambda d, wav, m, b: [wav, "--model", b],
        ["not an audio classifier"],
    ),
    "languages-unknown": (
        lambda d, wav, m, b: [wav, "--model", m, "--languages", "eng,enx"],
        ["enx", "eng"],
    ),
    "jsonl-unwritable": (
        lambda d, wav, m, b: [wav, "--model", m, "--jsonl", d / "no-dir" / "out.jsonl"],
        ["out.jsonl"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_error_line(
    case, espeak, tiny_model_dir, bert_model_dir, tmp_path, run_cli
):
    make_args, words = BAD_INPUTS[case]
    args = make_args(tmp_path, espeak.wav("en"), tiny_model_dir, bert_model_dir)
    result = run_cli(*args, "--ui", "none")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    assert len(line) > len("error: ") + 20, "the error says what is wrong"
    for word in words:
        assert word in line, f"{word!r} missing from {line!r}"
    assert line.rstrip().endswith((".", "?")), "one whole sentence, not a fragment"
    assert result.stdout == ""  # nothing half-done on stdout


def test_bad_path_fails_before_the_model_is_loaded(tmp_path, run_cli):
    result = run_cli(tmp_path / "missing.wav", "--model", tmp_path / "also-missing")
    assert result.returncode != 0
    assert "missing.wav" in result.stderr
    assert "Loading model" not in result.stderr


def test_error_with_brackets_in_the_path_is_printed_verbatim(tmp_path, run_cli):
    """Rich markup must not eat (or choke on) brackets in a file name."""
    for name in ("talk [en].wav", "odd [/b] name.wav"):
        result = run_cli(tmp_path / name)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert name in line


def test_long_error_is_not_wrapped(tmp_path, run_cli):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "recording-of-the-meeting.wav"
    result = run_cli(deep)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert str(deep) in line
    assert "check the path" in line


def test_no_input_device_at_all(monkeypatch, capsys):
    """A machine with no microphone: the default source names the problem and the way out."""
    from streamlid.audio import mic

    monkeypatch.setattr(mic, "import_sounddevice", lambda: object())
    monkeypatch.setattr(mic, "list_input_devices", lambda: [])
    code = cli.main(["--ui", "none"])
    err = capsys.readouterr().err
    assert code != 0
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "No audio input device" in line
    assert "file" in line  # says what to use instead
    assert "PipeWire" in line  # and what to check, as `streamlid devices` does


def test_empty_wav_with_a_header_but_no_samples(tmp_path, run_cli):
    path = tmp_path / "header-only.wav"
    write_wav(path, np.zeros(0, np.float32))
    result = run_cli(path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "no audio" in line


# -- outputs that would destroy something ---------------------------------------------------


def _input_as_output(folder: Path, wav: Path) -> tuple[list, Path]:
    return [wav, "--jsonl", wav], wav


def _input_through_a_symlink(folder: Path, wav: Path) -> tuple[list, Path]:
    link = folder / "link.jsonl"
    link.symlink_to(wav)
    return [wav, "--jsonl", link, "--overwrite"], wav  # --overwrite never covers an input


def _input_through_a_relative_path(folder: Path, wav: Path) -> tuple[list, Path]:
    return [wav, "--jsonl", folder / ".." / folder.name / wav.name], wav


def _existing_text_file(folder: Path, wav: Path) -> tuple[list, Path]:
    notes = folder / "notes.txt"
    notes.write_text("my notes\nsecond line\n")
    return [wav, "--jsonl", notes], notes


def _existing_json_lines(folder: Path, wav: Path) -> tuple[list, Path]:
    data = folder / "data.jsonl"
    data.write_text('{"user": 1}\n{"user": 2}\n')  # JSON lines, but not our events
    return [wav, "--jsonl", data], data


def _shared_config_naming_a_file(folder: Path, wav: Path) -> tuple[list, Path]:
    precious = folder / "thesis.tex"
    precious.write_text("\\documentclass{article}\n")
    toml = folder / "shared.toml"
    toml.write_text(f"jsonl = {json.dumps(str(precious))}\n")
    return ["--config", toml, wav], precious


def _the_config_file_itself(folder: Path, wav: Path) -> tuple[list, Path]:
    toml = folder / "run.toml"
    toml.write_text("top = 3\n")
    return ["--config", toml, wav, "--jsonl", toml, "--overwrite"], toml  # an input, always


REFUSED_OUTPUTS = {
    "input-as-output": (_input_as_output, ["is the input", "destroy"]),
    "input-through-symlink": (_input_through_a_symlink, ["is the input"]),
    "input-through-relative-path": (_input_through_a_relative_path, ["is the input"]),
    "existing-text-file": (_existing_text_file, ["notes.txt", "not a streamlid", "--overwrite"]),
    "existing-json-of-another-tool": (_existing_json_lines, ["data.jsonl", "--overwrite"]),
    "config-names-a-file": (_shared_config_naming_a_file, ["thesis.tex", "--overwrite"]),
    "the-config-file": (_the_config_file_itself, ["is the input", "run.toml"]),
}


@pytest.mark.parametrize("case", list(REFUSED_OUTPUTS))
def test_an_output_that_would_destroy_a_file_is_refused_before_anything_is_written(
    case, espeak, tiny_model_dir, tmp_path, run_cli
):
    wav = tmp_path / "talk.wav"
    wav.write_bytes(espeak.wav("en").read_bytes())
    make, words = REFUSED_OUTPUTS[case]
    args, protected = make(tmp_path, wav)
    before = protected.read_bytes()
    result = run_cli(*args, "--model", tiny_model_dir, "--ui", "none")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    for word in words:
        assert word in line, f"{word!r} missing from {line!r}"
    assert "Loading model" not in result.stderr  # refused before the slow part
    assert protected.read_bytes() == before  # not a byte changed


def test_a_local_models_files_are_never_an_output(espeak, tiny_model_dir, tmp_path, run_cli):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    weights = next(model.glob("*.safetensors"))
    before = weights.read_bytes()
    wav = espeak.wav("en")
    result = run_cli(wav, "--model", model, "--jsonl", weights, "--overwrite", "--ui", "none")
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "is the input" in line and weights.name in line
    assert weights.read_bytes() == before


def test_overwrite_replaces_an_existing_output(espeak, tiny_model_dir, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("not events\n")
    argv = [espeak.wav("en"), "--model", tiny_model_dir, "--jsonl", out, "--ui", "none"]
    assert run_main([*argv, "--overwrite"]) == 0
    lines = read_jsonl(out)
    assert lines[0]["type"] == "started" and lines[-1]["type"] == "summary"


def test_events_of_an_earlier_run_are_replaced_without_overwrite(espeak, tiny_model_dir, tmp_path):
    out = tmp_path / "events.jsonl"
    argv = [espeak.wav("en"), "--model", tiny_model_dir, "--jsonl", out, "--ui", "none"]
    assert run_main(argv) == 0
    first = read_jsonl(out)
    out.write_text(out.read_text() + '{"type": "marker"}\n')
    assert run_main(argv) == 0  # the same command again: the usual workflow
    again = read_jsonl(out)
    kinds = [e["type"] for e in again]
    assert kinds[0] == "started" and kinds[-1] == "summary" and "marker" not in kinds  # replaced
    assert kinds.count("prediction") == [e["type"] for e in first].count("prediction")


def test_devices_and_empty_files_are_written_without_overwrite(espeak, tiny_model_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    for target in (empty, Path(os.devnull)):
        argv = [espeak.wav("en"), "--model", tiny_model_dir, "--jsonl", target, "--ui", "none"]
        assert run_main(argv) == 0
    assert read_jsonl(empty)[-1]["type"] == "summary"


# -- exit codes -----------------------------------------------------------------------------


class _FailingSource(Source):
    """A stream that dies after a second of audio, as a dropped device or feed does."""

    def __init__(self) -> None:
        super().__init__()
        self.name = self.description = "flaky"
        self.sample_rate_hz, self.live = 16000, False

    def _run(self, ring) -> None:
        ring.write(np.zeros(16000, np.float32), block=True, stop=self._stop)
        raise OSError("device unplugged")


def test_a_failed_stream_gives_exit_code_1_and_the_others_go_on(
    espeak, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    from streamlid.audio import open as opening

    real_open = opening.open_source
    monkeypatch.setattr(
        opening,
        "open_source",
        lambda spec, **kw: _FailingSource() if spec == "flaky" else real_open(spec, **kw),
    )
    out = tmp_path / "events.jsonl"
    wav = espeak.wav("en")
    code = run_main([wav, "flaky", "--model", tiny_model_dir, "--jsonl", out, "--ui", "none"])
    assert code == 1, capsys.readouterr().err
    lines = read_jsonl(out)
    errors = [x for x in lines if x["type"] == "notice" and x["severity"] == "error"]
    assert [x["stream"] for x in errors] == ["flaky"]
    assert "device unplugged" in errors[0]["message"]
    assert any(x["type"] == "prediction" and x["stream"] == wav.name for x in lines)
    assert lines[-1]["reason"].startswith("error: ")


def test_without_a_view_a_warning_still_reaches_the_terminal(tiny_model_dir, tmp_path, run_cli):
    """`--ui none` (headless) shows no answers, but a damaged file is not passed over in
    silence: its warning goes to standard error, and nothing goes to standard output."""
    whole = tmp_path / "whole.wav"
    write_wav(whole, silence(8.0))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 4])  # the header promises 8 s
    result = run_cli("listen", cut, "--model", tiny_model_dir, "--ui", "none")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "of 8.0 s: the file is damaged" in warnings[0], result.stderr
    assert result.stdout == ""
    assert "Summary (end of input" in result.stderr  # a run always ends with its summary


def test_plain_lines_sent_to_a_file_still_say_a_failure_on_the_terminal(tiny_model_dir, run_cli):
    """`--ui plain > log`: the log has every line; a stream's error (a feed that never comes
    up, given up) is said on standard error too, so exit code 1 does not come in silence."""
    refused = "http://127.0.0.1:9/radio.mp3"  # the discard port: nothing listens there
    result = run_cli(
        "listen", refused, "--model", tiny_model_dir, "--ui", "plain", "--reconnect-attempts", "1"
    )
    assert result.returncode == 1, result.stderr
    said = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(said) == 1 and "gave up after 1 reconnect attempt" in said[0], result.stderr
    assert said[0] in result.stdout.splitlines()  # the log has it too
    assert "Summary" not in result.stderr  # only what went wrong is repeated
    # Its summary says it never came up, and why: not "0 reconnects", as if it had run well.
    assert "feed: never connected (Connection refused)" in result.stdout, result.stdout
    assert "reconnect," not in result.stdout


@pytest.mark.parametrize("jsonl_to_stdout", [False, True])
def test_an_output_that_fails_is_said_once_where_plain_lines_share_the_terminal(
    espeak, tiny_model_dir, cli_env, jsonl_to_stdout
):
    """`--ui plain` on a terminal (plain lines and errors in one place, as `2>&1` makes them
    here), or on standard error beside JSONL on standard output: an output that cannot be
    written was said twice, once by the plain lines and once by the command line."""
    argv = [sys.executable, "-m", "streamlid", "listen", str(espeak.wav("en"))]
    argv += ["--model", str(tiny_model_dir), "--ui", "plain"]
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [*argv, "--jsonl", "-" if jsonl_to_stdout else "/dev/full"],
            stdout=full if jsonl_to_stdout else subprocess.PIPE,
            stderr=subprocess.PIPE if jsonl_to_stdout else subprocess.STDOUT,
            env=cli_env,
            timeout=120,
            check=False,
            text=True,
        )
    said = result.stderr if jsonl_to_stdout else result.stdout
    assert result.returncode == 3, said
    assert len([line for line in said.splitlines() if "Cannot write" in line]) == 1, said


def test_a_file_name_that_is_not_utf8_is_read_and_reported(
    espeak, tiny_model_dir, tmp_path, run_cli
):
    """`bad\\xffname.wav` (a Latin-1 name on a UTF-8 system) is a file like any other: read
    (libsndfile was handed a name it could not encode: a traceback), and named in the events
    as its escape, the same in the `stream` and `source` fields and in `identify --json`: the
    byte as \\xff, never a lone-surrogate escape ("\\udcff"), which is no valid Unicode and
    which strict JSON readers refuse."""
    wav = tmp_path / os.fsdecode(b"bad\xffname.wav")
    wav.write_bytes(espeak.wav("en").read_bytes())
    out = tmp_path / "events.jsonl"
    result = run_cli("listen", wav, "--model", tiny_model_dir, "--ui", "none", "--jsonl", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    raw = out.read_bytes().decode("utf-8")
    assert "\\ud" not in raw.lower()
    events = [json.loads(line) for line in raw.splitlines()]
    shown = str(wav.parent / "bad\\xffname.wav")
    assert events[0]["source"] == shown
    assert {e["stream"] for e in events if "stream" in e} == {"bad\\xffname.wav"}
    assert events[-1]["type"] == "summary" and events[-1]["streams"][0]["duration_s"] > 1.0
    assert any(e["type"] == "prediction" for e in events)
    found = run_cli("identify", "--json", wav, "--model", tiny_model_dir)
    assert found.returncode == 0, found.stderr
    assert "\\ud" not in found.stdout.lower()
    (row,) = json.loads(found.stdout)  # run_cli decodes UTF-8: a raw byte would not give the name
    assert row["file"] == shown and row["error"] is None


def test_identify_offers_only_the_options_it_uses(capsys):
    """Options of a live run would do nothing there: they are refused, not silently ignored;
    its help shows its own default for --reconnect-attempts."""
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["identify", "--help"])
    shown = capsys.readouterr().out
    for used in ("--min-margin", "--min-confidence", "--window", "--reconnect-attempts"):
        assert used in shown
    live_only = ("--hop", "--smoothing", "--min-dwell", "--max-lag", "--ring-seconds")
    live_only += ("--min-hop", "--max-hop", "--adaptive-hop", "--confirm-below", "--realtime")
    for option in live_only:
        assert f"{option} " not in shown and f"{option}\n" not in shown, option
        with pytest.raises(SystemExit) as refused:
            cli.build_parser().parse_args(["identify", "a.wav", option, "1"])
        assert refused.value.code == 2
    assert "(default: 3)" in " ".join(shown.split())
    assert "FILE " in shown and "URLs" in shown  # FILE is described


def test_a_config_file_for_listen_serves_identify(tmp_path):
    """Keys identify does not read are ignored there, and never checked against its own
    (--window 1 with the default --confirm-window 1.5); an unknown key is still an error."""
    from streamlid.errors import ConfigError

    config = tmp_path / "listen.toml"
    config.write_text(
        'hop = 0.5\nsmoothing = 2.0\njsonl = "events.jsonl"\nrealtime = true\n'
        'min-margin = 0.3\n[alerts]\nexpect = ["eng"]\n'
    )

    def identify(*argv: str):
        args = cli.build_parser().parse_args(["identify", "a.wav", *argv])
        return cli._config_from(args)

    loaded = identify("--config", str(config), "--window", "1")
    assert (loaded.min_margin, loaded.window, loaded.reconnect_attempts) == (0.3, 1.0, 3)
    assert loaded.jsonl is None and loaded.realtime is False and loaded.hop == 1.0
    assert identify("--reconnect-attempts", "-1").reconnect_attempts == -1
    bench = cli.build_parser().parse_args(["bench", "--window", "1"])
    assert cli._config_from(bench).window == 1.0  # bench too reads its own settings only
    config.write_text("min-margn = 0.3\n")
    with pytest.raises(ConfigError, match="min-margin"):
        identify("--config", str(config))


def test_a_second_config_file_is_refused_not_silently_preferred(tmp_path, capsys):
    """`--config base.toml --config override.toml`: the first file was dropped whole, without
    a word, whatever it set."""
    for command in (["listen", "a.wav"], ["identify", "a.wav"], ["bench"]):
        assert cli.main([*command, "--config", "a.toml", "--config", "b.toml"]) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert said.startswith("error: --config given twice ('a.toml', then 'b.toml')")
        assert "usage" not in said
    args = cli.build_parser().parse_args(["listen", "--config", "a.toml"])
    assert args.config == "a.toml"


def test_a_mistyped_command_is_said_as_one_not_as_a_missing_file(tmp_path, monkeypatch, capsys):
    """`streamlid identfy a.wav` said "Audio file 'identfy' does not exist; check the path"."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["identfy", "a.wav"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert said == (
        "error: 'identfy' is not a command (nor a file); did you mean `streamlid identify`?"
    )
    assert cli._normalise_argv(["talk.wav"]) == ["listen", "talk.wav"]
    (tmp_path / "lisen").write_bytes(b"")  # a file by that name is heard, not corrected
    assert cli._normalise_argv(["lisen"]) == ["listen", "lisen"]


def test_help_texts_describe_every_argument(capsys):
    def help_of(*command: str) -> str:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([*command, "--help"])
        return " ".join(capsys.readouterr().out.split())

    bench = help_of("bench")
    assert "--hop" in bench and "adaptive" not in bench
    download = help_of("download")
    assert "MODEL hub id" in download and "(default: facebook/mms-lid-256)" in download
    assert "List the audio input devices" in help_of("devices")
    assert "files, URLs and stdin" in help_of("listen")


def test_the_commands_first_import_loads_no_numpy_torch_or_rich():
    """The console script imports streamlid.cli before our Ctrl-C handling exists: with numpy
    behind config (the gate's and the feeds' settings), a Ctrl-C in the first half second was a
    KeyboardInterrupt traceback out of numpy's import."""
    code = "import sys, streamlid.cli; print(sorted({'numpy', 'torch', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
