"""`streamlid identify`: one answer per file, in the order given."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import write_wav
from harness import run_to_its_end

TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def german_and_french(espeak, tmp_path_factory) -> dict[str, Path]:
    """German as WAV, French as OGG, and German cut short: a WAV whose header promises 12.3 s
    but which holds 2.3 s (a download cut off)."""
    from speech import speech

    folder = tmp_path_factory.mktemp("german-and-french")
    german = speech("deu", folder, seconds=12.3)
    files = {"de": folder / "de.wav", "fr": folder / "fr.ogg", "cut": folder / "trunc.wav"}
    write_wav(files["de"], german)
    write_wav(files["fr"], speech("fra", folder), format="OGG", subtype="VORBIS")
    data = files["de"].read_bytes()
    header_n = len(data) - 2 * len(german)  # 16-bit mono samples follow the header
    files["cut"].write_bytes(data[: header_n + 2 * round(2.3 * 16000)])
    return files


def test_identify_json_gives_one_result_per_file_in_order(
    run_cli, tiny_model_dir, espeak, tmp_path
):
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(3 * 16000, np.float32))
    speech = espeak.wav("fr", lead_s=0.5)
    result = run_cli("identify", speech, silent, "--json", "--model", tiny_model_dir)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["file"] for a in answers] == [str(speech), str(silent)]

    spoken, quiet = answers
    assert spoken["windows"] > 0 and spoken["speech_s"] > 3.0
    assert spoken["language"] in {t["code"] for t in spoken["top"]}
    assert spoken["top"] == sorted(spoken["top"], key=lambda t: -t["probability"])
    # Random weights spread probability thinly: a best guess, not an answer.
    assert spoken["probability"] < 0.5 and spoken["confident"] is False

    assert quiet["language"] is None and quiet["name"] == "no speech found"
    assert quiet["windows"] == 0 and quiet["confident"] is False


def test_identify_table_marks_uncertain_guesses(run_cli, tiny_model_dir, espeak):
    result = run_cli("identify", espeak.wav("en"), "--model", tiny_model_dir)
    assert result.returncode == 0, result.stderr
    assert "(uncertain)" in result.stdout


def test_identify_names_the_language_with_a_real_model(run_cli, espeak):
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    french = espeak.wav("fr")
    english = espeak.wav("en")
    result = run_cli("identify", french, english, "--json", "--model", TINY_LID)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["language"] for a in answers] == ["fra", "eng"]
    assert all(a["confident"] for a in answers)


def test_identify_with_no_file_to_read_does_not_load_the_model(run_cli, tmp_path):
    result = run_cli("identify", tmp_path / "nope.wav", "--json", "--model", "/nonexistent/model")
    assert result.returncode == 1, result.stderr  # the file failed, not the model
    (row,) = json.loads(result.stdout)
    assert "nope.wav" in row["error"] and "does not exist" in row["error"]
    assert "Traceback" not in result.stderr


def test_a_model_that_cannot_load_is_still_one_usage_error(run_cli, german_and_french, tmp_path):
    result = run_cli("identify", german_and_french["de"], "--model", tmp_path / "no-model")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "no-model" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def trained_model():
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    from streamlid.classifier import Classifier

    return Classifier(str(TINY_LID), device="cpu", dtype="float32", announce=lambda m: None)


def test_the_answer_does_not_depend_on_top(run_cli, espeak):
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    french = espeak.wav("fr")
    answers = []
    for top in ("1", "5"):
        result = run_cli("identify", french, "--json", "--model", TINY_LID, "--top", top)
        assert result.returncode == 0, result.stderr
        answers.append(json.loads(result.stdout)[0])
    one, five = answers
    assert len(one["top"]) == 1 and len(five["top"]) == 5
    assert (one["language"], one["probability"]) == (five["language"], five["probability"])
    assert one["top"][0] == five["top"][0]


def test_side_by_side_windows_give_the_answer_of_the_live_hop(tmp_path):
    """Non-overlapping windows (the default) against the overlapping 1 s hop of `listen`,
    on real speech in four languages: the same language, a third of the windows."""
    from speech import SENTENCES, espeak_missing, speech

    from streamlid.audio.open import open_source
    from streamlid.config import Config
    from streamlid.identify import identify_files

    if reason := espeak_missing():
        pytest.skip(reason)
    model = trained_model()
    paths = []
    for language in SENTENCES:
        path = tmp_path / f"{language}.wav"
        write_wav(path, speech(language, tmp_path, seconds=15.0))
        paths.append(str(path))
    config = Config(model=str(TINY_LID))

    def run(hop_s):
        sources = [open_source(p, realtime=False) for p in paths]
        return identify_files(model, sources, paths, config, hop_s=hop_s)

    side_by_side, overlapping = run(None), run(1.0)
    assert [r["language"] for r in side_by_side] == list(SENTENCES)
    assert [r["language"] for r in overlapping] == list(SENTENCES)
    for a, b in zip(side_by_side, overlapping, strict=True):
        assert a["windows"] * 2 < b["windows"]
        assert a["speech_s"] == b["speech_s"]


def test_windows_of_several_files_share_forward_passes(tmp_path, espeak):
    from streamlid.audio.open import open_source
    from streamlid.config import Config
    from streamlid.identify import identify_files

    class Recording:
        labels = ("eng", "fra")

        def __init__(self):
            self.batches: list[int] = []

        def classify(self, windows):
            self.batches.append(len(windows))
            return np.tile(np.array([[0.75, 0.25]], np.float32), (len(windows), 1))

    paths = [str(espeak.wav("en")), str(espeak.wav("fr"))]
    model = Recording()
    config = Config(batch=64)
    results = identify_files(model, [open_source(p, realtime=False) for p in paths], paths, config)
    per_file = [r["windows"] for r in results]
    assert all(n > 0 for n in per_file)
    assert model.batches == [sum(per_file)]  # both files' windows in one pass
    assert [r["language"] for r in results] == ["eng", "eng"]
    assert results[0]["probability"] == pytest.approx(0.75)


def test_an_interrupt_keeps_the_answers_of_the_files_read_whole(tmp_path, espeak):
    """Ctrl-C in the tenth minute of a batch of files said "Interrupted." and nothing else:
    every answer found so far was lost. The files answered keep their rows; the file being
    read, one whose windows were still waiting for the model, and those not reached say so."""
    from streamlid.audio.open import open_source
    from streamlid.config import Config
    from streamlid.identify import INTERRUPTED, IdentifyInterrupted, identify_files

    class Interrupting:
        labels = ("eng", "fra")

        def __init__(self, calls_n: int | None = None):
            self.calls_n, self.calls = calls_n, 0

        def classify(self, windows):
            self.calls += 1
            if self.calls == self.calls_n:
                raise KeyboardInterrupt
            return np.tile(np.array([[0.75, 0.25]], np.float32), (len(windows), 1))

    paths = [str(espeak.wav("en")), str(espeak.wav("fr")), str(espeak.wav("en"))]

    def run(model, batch: int):
        sources = [open_source(p, realtime=False) for p in paths]
        return identify_files(model, sources, paths, Config(batch=batch))

    first_n = run(Interrupting(), 1)[0]["windows"]  # the first file's forward passes
    for second_file_passes_n in (0, 1):  # stopped in its first pass, or after one
        with pytest.raises(IdentifyInterrupted) as stopped:
            run(Interrupting(first_n + second_file_passes_n + 1), 1)
        assert isinstance(stopped.value, KeyboardInterrupt)  # Ctrl-C still ends the command
        results = stopped.value.results
        assert (results[0]["language"], results[0]["error"]) == ("eng", None)
        assert results[0]["windows"] == first_n
        for row in results[1:]:  # no answer from part of a file
            assert (row["language"], row["probability"]) == (None, None)
            assert (row["error"], row["windows"]) == (INTERRUPTED, 0)
    with pytest.raises(IdentifyInterrupted) as stopped:
        run(Interrupting(1), 64)  # every window still waiting: no file was answered
    assert [row["error"] for row in stopped.value.results] == [INTERRUPTED] * 3


@needs_ffmpeg
def test_urls_that_cannot_be_read_give_up_after_the_feed_options(run_cli, tiny_model_dir, espeak):
    """Refused, 404, and a server that accepts but never sends audio: each gives up after
    --reconnect-attempts (a stall after --stall-timeout) and is its own row's error; the run
    ends, the file beside them gets its answer and no ffmpeg is left behind."""
    from feed_servers import LoopbackFeed, ffmpeg_processes, free_port

    refused = f"http://127.0.0.1:{free_port()}/x.mp3"  # nothing listens there
    with LoopbackFeed(b"", mode="missing") as missing, LoopbackFeed(b"", mode="silent") as silent:
        urls = [refused, missing.url, silent.url]
        started = time.monotonic()
        result = run_cli(
            "identify",
            espeak.wav("fr"),
            *urls,
            "--json",
            "--model",
            tiny_model_dir,
            "--reconnect-attempts",
            "1",
            "--reconnect-min",
            "0.2",
            "--stall-timeout",
            "1",
            timeout_s=90,
        )
        took_s = time.monotonic() - started
    assert result.returncode == 1, result.stderr  # a file failed; the others were answered
    assert took_s < 60.0
    french, *feeds = json.loads(result.stdout)
    assert french["windows"] > 0 and french["language"] and french["error"] is None
    assert [row["file"] for row in feeds] == urls
    for row in feeds:
        assert "gave up after 1 reconnect attempt" in row["error"], row
        assert row["language"] is None and row["windows"] == 0
    assert "404" in feeds[1]["error"] and "stalled" in feeds[2]["error"]
    for url in urls:
        assert ffmpeg_processes(url.split("/")[2]) == []  # host:port


def test_a_damaged_file_carries_its_warning_in_the_table_and_the_json(
    run_cli, german_and_french, cli_env
):
    """As `listen` warns: an answer that rests on 2.3 s of a file promising 12.3 s says so."""
    cut, french = german_and_french["cut"], german_and_french["fr"]
    result = run_cli("identify", cut, french, "--json", "--model", TINY_LID)
    assert result.returncode == 0, result.stderr  # a warning, not a failure
    damaged, whole = json.loads(result.stdout)
    assert damaged["warning"] == "decoding stopped at 2.3 s of 12.3 s: the file is damaged"
    assert damaged["error"] is None and damaged["speech_s"] < 2.5
    assert whole["warning"] is None and whole["language"] == "fra"

    wide = {**cli_env, "COLUMNS": "200"}  # the warning on one line of the table
    table = run_cli("identify", cut, french, "--model", TINY_LID, env=wide)
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if "trunc.wav" in line]
    assert "German" in row
    assert "warning: decoding stopped at 2.3 s of 12.3 s: the file is damaged" in table.stdout


def test_one_bad_file_does_not_stop_the_batch(run_cli, german_and_french, tmp_path, cli_env):
    """Every file gets its row, in order: the bad ones their one-sentence error, the good ones
    their language; exit code 1 says some failed."""
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("just some text\n" * 20)
    folder = tmp_path / "adir"
    folder.mkdir()
    files = [german_and_french["de"], empty, text, tmp_path / "nonexist.wav", folder]
    files.append(german_and_french["fr"])
    result = run_cli("identify", *files, "--json", "--model", TINY_LID)
    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    assert [row["file"] for row in rows] == [str(f) for f in files]
    assert [row["language"] for row in rows] == ["deu", None, None, None, None, "fra"]
    assert rows[0]["error"] is None and rows[-1]["error"] is None
    errors = [row["error"] for row in rows[1:-1]]
    why = ["is empty", "cannot be decoded", "does not exist", "is a folder"]
    for error, words, path in zip(errors, why, files[1:-1], strict=True):
        assert words in error and path.name in error and error.endswith("."), error

    wide = {**cli_env, "COLUMNS": "400"}  # each row on one line
    table = run_cli("identify", *files, "--model", TINY_LID, env=wide)
    assert table.returncode == 1, table.stderr
    lines = table.stdout.splitlines()
    for path, said in zip(files, ["German", *errors, "French"], strict=True):
        (row,) = [line for line in lines if f" {path} " in line]
        assert said in row
        # A file that could not be read held no speech to speak of: "-", not "0.0 s".
        assert row.rstrip(" │").endswith("-" if said in errors else " s"), row


def _identify_into(stdout, cli_env, *args) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "streamlid", "identify", *map(str, args)]
    return run_to_its_end(argv, cli_env, stdout=stdout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_full_stdout_is_one_line_and_exit_code_3(as_json, german_and_french, cli_env):
    """`identify de.wav > /dev/full`, as `listen` treats an output it cannot write."""
    args = [german_and_french["de"], "--model", TINY_LID, *(["--json"] if as_json else [])]
    with open("/dev/full", "wb") as full:
        result = _identify_into(full, cli_env, *args)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "standard output" in line and "No space left on device" in line


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_reader_that_has_left_ends_it_quietly_as_listen_does(as_json, german_and_french, cli_env):
    """`identify de.wav | head -0`: 141, as if SIGPIPE had ended it, and nothing more said."""
    args = [german_and_french["de"], "--model", TINY_LID, *(["--json"] if as_json else [])]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before anything is written
    try:
        result = _identify_into(write_end, cli_env, *args)
    finally:
        os.close(write_end)
    assert result.returncode == 128 + signal.SIGPIPE, result.stderr
    assert "Traceback" not in result.stderr and "error:" not in result.stderr


@needs_ffmpeg
def test_an_unreachable_url_gives_up_by_default_and_says_so_while_it_retries(
    run_cli, tiny_model_dir, espeak, tmp_path
):
    """A one-shot command: a URL nothing answers is retried identify's few times (not
    forever, as a live monitor does), each retry a line on stderr, and the file after it still
    gets its answer. A config file's --reconnect-attempts overrides that default."""
    from feed_servers import free_port

    refused = f"http://127.0.0.1:{free_port()}/x.mp3"
    english = espeak.wav("en")
    args = ["identify", refused, english, "--json", "--model", tiny_model_dir]
    result = run_cli(*args, "--reconnect-min", "0.1", timeout_s=60)
    assert result.returncode == 1, result.stderr
    feed, spoken = json.loads(result.stdout)
    assert "gave up after 3 reconnect attempts" in feed["error"], feed
    assert spoken["error"] is None and spoken["windows"] > 0
    retries = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert len(retries) == 3 and all(line.startswith(refused) for line in retries), retries

    config = tmp_path / "once.toml"
    config.write_text("reconnect-attempts = 1\nreconnect-min = 0.1\n")
    once = run_cli(*args, "--config", config, timeout_s=60)
    assert once.returncode == 1, once.stderr
    assert "gave up after 1 reconnect attempt;" in json.loads(once.stdout)[0]["error"] + ";"


def test_confident_needs_the_margin_over_the_runner_up_too(tmp_path, espeak):
    """0.5 against 0.4 is no answer at the default --min-margin 0.2, as `listen` would not
    name it either; the margin is that of the whole mean vector, not of the listed top."""
    from streamlid.audio.open import open_source
    from streamlid.config import Config
    from streamlid.identify import identify_files

    class Close:
        labels = ("eng", "fra", "deu")

        def classify(self, windows):
            return np.tile(np.array([[0.5, 0.4, 0.1]], np.float32), (len(windows), 1))

    path = str(espeak.wav("en"))

    def confident(**settings) -> bool:
        config = Config(**settings)
        (row,) = identify_files(Close(), [open_source(path, realtime=False)], [path], config)
        assert row["language"] == "eng" and row["probability"] == pytest.approx(0.5)
        return row["confident"]

    assert confident() is False
    assert confident(top=1) is False  # the runner-up counts though it is not listed
    assert confident(min_margin=0.05) is True
    assert confident(min_margin=0.05, min_confidence=0.6) is False


def test_min_margin_on_the_command_line_makes_a_clear_answer_uncertain(run_cli, espeak):
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    english = espeak.wav("en")
    args = ["identify", english, "--json", "--model", TINY_LID]
    clear, strict = (run_cli(*args, *extra) for extra in ([], ["--min-margin", "0.99"]))
    assert clear.returncode == strict.returncode == 0, strict.stderr
    (clear_row,), (strict_row,) = json.loads(clear.stdout), json.loads(strict.stdout)
    assert clear_row["language"] == strict_row["language"] == "eng"
    assert clear_row["confident"] is True and strict_row["confident"] is False


def test_too_little_speech_says_so_and_errors_have_no_answer(
    run_cli, tiny_model_dir, espeak, tmp_path, cli_env
):
    """Speech shorter than --min-speech is not "no speech found"; a file that cannot be read
    has no name or probability (null, `-` in the table), only its error."""
    short = tmp_path / "hi.wav"
    write_wav(short, espeak.samples("en", "hi"))
    missing = tmp_path / "missing.wav"
    args = ["identify", short, missing, "--model", tiny_model_dir]
    result = run_cli(*args, "--json")
    assert result.returncode == 1, result.stderr
    little, error = json.loads(result.stdout)
    assert 0 < little["speech_s"] < 1.0 and little["windows"] == 0, little
    assert little["name"] == f"too little speech ({little['speech_s']:.1f} s; --min-speech is 1 s)"
    assert little["language"] is None and little["probability"] is None
    assert little["confident"] is False and little["error"] is None
    assert error["error"] and error["name"] is None and error["probability"] is None

    table = run_cli(*args, env={**cli_env, "COLUMNS": "400"})  # each row on one line
    (row,) = [line for line in table.stdout.splitlines() if "missing.wav" in line]
    assert "does not exist" in row and "0%" not in row
    assert row.split("│")[4].strip() == "-"  # the probability column
    assert "too little speech" in table.stdout and "no speech found" not in table.stdout


def test_quiet_speech_says_it_is_quiet_and_what_to_change(run_cli, espeak, tmp_path):
    """Speech peaking at -40 dBFS is a whole sentence under --energy-floor: "no speech found"
    alone sent people looking for a broken file. The answer names the level and options, and
    those options then hear the speech."""
    speech = espeak.samples("en")
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, speech / np.abs(speech).max() * 10 ** (-40 / 20))
    first = run_cli("identify", quiet, "--json", "--model", TINY_LID)
    assert first.returncode == 0, first.stderr
    (row,) = json.loads(first.stdout)
    assert row["language"] is None, row
    assert "the audio is quiet" in row["name"] and "--energy-floor is -50 dBFS" in row["name"]
    advice = row["name"].split("try ")[1].split()
    assert advice[0] == "--energy-floor" and float(advice[1]) < -50
    second = run_cli("identify", quiet, "--json", "--model", TINY_LID, *advice)
    (row,) = json.loads(second.stdout)
    assert row["language"] == "eng", row


def test_nan_samples_are_a_warning_as_in_listen(run_cli, espeak, tmp_path):
    speech = espeak.samples("en").copy()
    speech[1000:1100] = np.nan
    path = tmp_path / "nan.wav"
    write_wav(path, speech, subtype="FLOAT")
    result = run_cli("identify", path, "--json", "--model", TINY_LID)
    (row,) = json.loads(result.stdout)
    assert row["language"] == "eng" and "NaN" in row["warning"], row


@pytest.mark.slow
def test_more_files_than_open_file_descriptors_are_all_identified(espeak, tmp_path, cli_env):
    """`identify corpus/*.wav` opened every file before reading the first: past the limit of
    open files (1024 on many systems) it was "Too many open files" and a traceback, and every
    answer was lost."""
    import resource

    short = tmp_path / "short.wav"
    write_wav(short, espeak.samples("fr")[: round(1.5 * 16000)])
    links = []
    for number in range(80):
        links.append(tmp_path / f"take-{number}.wav")
        links[-1].symlink_to(short)

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    args = ["identify", *map(str, links), "--json", "--model", str(TINY_LID)]
    result = run_to_its_end(
        [sys.executable, "-m", "streamlid", *args],
        cli_env,
        preexec_fn=few_descriptors,
        timeout_s=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)
    assert len(answers) == 80 and all(a["language"] == "fra" for a in answers)


@needs_ffmpeg
def test_a_live_stream_is_answered_from_its_first_max_speech_and_the_next_file_is_reached(
    run_cli, german_and_french, espeak, tmp_path
):
    """`identify` on a radio's URL read for good: the stream never ends, nothing was answered
    and the files after it were never reached. With --max-speech the stream is answered from
    its first seconds of speech, says so, and the next input gets its turn; ffmpeg is gone."""
    from feed_servers import LoopbackFeed, ffmpeg_processes, make_mp3
    from speech import speech

    radio = make_mp3(speech("fra", tmp_path, seconds=20.0), tmp_path)
    with LoopbackFeed(radio.read_bytes(), mode="live", burst_s=15.0) as feed:
        result = run_cli(
            "identify",
            feed.url,
            german_and_french["de"],
            "--json",
            "--model",
            TINY_LID,
            "--max-speech",
            "5",
            timeout_s=120,
        )
        assert ffmpeg_processes(feed.url.split("/")[2]) == []
    assert result.returncode == 0, result.stderr
    stream, german = json.loads(result.stdout)
    assert stream["language"] == "fra" and stream["error"] is None
    assert 5.0 <= stream["speech_s"] < 9.0  # a window's worth past the limit at most
    assert "first" in stream["warning"] and "--max-speech" in stream["warning"]
    assert german["language"] == "deu"  # reached, and held to the same limit: it is per input
    assert 5.0 <= german["speech_s"] < 9.0 and "--max-speech" in german["warning"]


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_max_speech_is_one_line_before_the_model_loads(run_cli, german_and_french, value):
    result = run_cli(
        "identify", german_and_french["de"], "--model", "no/such-model", "--max-speech", value
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--max-speech" in result.stderr, result.stderr
