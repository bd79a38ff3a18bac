"""Faults a live run must survive: a stalled model, lost audio, signals at any moment, and
audio that is broken in ways files often are."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audio_helpers import write_wav
from feed_servers import wait_until
from harness import REPO_ROOT, ListSink, make_config, run_to_its_end

from streamlid.audio.ring import RingBuffer
from streamlid.audio.source import Source
from streamlid.engine import Engine
from streamlid.events import Notice, Status


class StallingModel:
    """The real (tiny) classifier, except that every call waits while `stalled` is set: a GPU
    hiccup, a swap storm or a model far slower than real time."""

    def __init__(self, model) -> None:
        self._model = model
        self.labels = model.labels
        self.stalled = threading.Event()
        self.released = threading.Event()

    def classify(self, windows):
        while self.stalled.is_set() and not self.released.wait(0.05):
            pass
        return self._model.classify(windows)


class BurstSource(Source):
    """A live source that delivers a long recording in one go, faster than anyone can read:
    what a capture thread does after the process was suspended for a while."""

    def __init__(self, audio: np.ndarray) -> None:
        super().__init__()
        self.name, self.description, self.sample_rate_hz, self.live = "burst", "burst", 16000, True
        self._audio = audio

    def _run(self, ring: RingBuffer) -> None:
        ring.write(self._audio, block=False)
        self._stop.wait(1.0)  # then the live feed ends


def _speech(espeak, seconds: float) -> np.ndarray:
    audio = espeak.samples("en")
    return np.tile(audio, int(np.ceil(seconds * 16000 / len(audio))))[: round(seconds * 16000)]


def test_ring_overflow_is_counted_reported_and_keeps_true_times(classifier, espeak):
    audio = _speech(espeak, 20.0)
    sink = ListSink()
    config = make_config(ring_seconds=5.0)
    engine = Engine(config, [BurstSource(audio)], classifier, [sink])
    engine.run()

    lost_s = 20.0 - 5.0  # everything but the newest ring-full
    warnings = [e for e in sink.of_type(Notice) if e.severity == "warning"]
    assert any("audio dropped" in w.message for w in warnings)
    assert max(s.overflow_s for s in sink.of_type(Status)) == pytest.approx(lost_s, abs=0.01)
    assert sink.summary.streams[0].overflow_s == pytest.approx(lost_s, abs=0.01)
    # What survived is the last 5 s, and its events say so: the stream clock skipped the gap.
    predictions = sink.predictions
    assert predictions, "the audio after the gap was still classified"
    assert min(p.t_start_s for p in predictions) >= lost_s - 0.01
    assert max(p.t_end_s for p in predictions) <= 20.0 + 0.01


def test_stalled_worker_holds_windows_reports_lag_and_recovers(classifier, espeak, tmp_path):
    wav = tmp_path / "long.wav"
    write_wav(wav, _speech(espeak, 14.0))
    model = StallingModel(classifier)
    sink = ListSink()
    config = make_config(realtime=True, max_lag=2.0)
    from streamlid.audio.open import open_source

    engine = Engine(config, [open_source(str(wav), realtime=True)], model, [sink])
    engine.start()
    queued = []
    try:
        time.sleep(2.5)
        model.stalled.set()  # the model hangs for 5 s of live audio
        stall_end = time.monotonic() + 5.0
        while time.monotonic() < stall_end:
            queued.append(engine.queued_windows)
            time.sleep(0.05)
        model.released.set()
        model.stalled.clear()
        assert engine.wait(30.0)
    finally:
        engine.stop()
        engine.wait(5.0)

    summary = sink.summary.streams[0]
    # The front end holds the stream's next window while the model is busy, and then cuts
    # it from the freshest speech: nothing piles up, so nothing stale is left to skip.
    assert max(queued) <= 1
    assert summary.skipped_windows == sink.of_type(Status)[-1].skipped_windows
    lags = [p.lag_s for p in sink.predictions]
    assert all(lag is not None for lag in lags)
    assert max(lags) > 1.0  # the answers right after the stall said how late they were
    # Windows that waited out the stall were skipped, not answered late; only the one already
    # inside the model when it stalled comes back late (and says how late).
    assert sum(lag > config.max_lag + config.hop for lag in lags) <= 1
    after = [p for p in sink.predictions if p.t_end_s > 11.0]
    assert after and max(p.lag_s for p in after) < 1.0  # back at the live edge
    assert summary.windows >= 6


def test_non_finite_samples_are_silenced_with_a_warning(classifier, espeak, tmp_path, run_pipeline):
    audio = np.concatenate([_speech(espeak, 4.0), _speech(espeak, 4.0)]).astype(np.float32)
    audio[16000:16100] = np.nan
    audio[70000:70010] = np.inf
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), audio, 16000, subtype="FLOAT")
    sink = run_pipeline([path])
    assert any("NaN/Inf" in n.message for n in sink.of_type(Notice))
    assert sink.predictions
    for p in sink.predictions:
        assert all(np.isfinite(s.probability) for s in p.top)


def test_truncated_wav_is_read_up_to_the_damage(run_pipeline, espeak, tmp_path):
    whole = tmp_path / "whole.wav"
    write_wav(whole, _speech(espeak, 6.0))
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])  # the header still promises 6 s
    sink = run_pipeline([cut])
    duration = sink.summary.streams[0].duration_s
    assert duration == pytest.approx(3.0, abs=0.1)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_a_flac_damaged_in_the_middle_is_decoded_past_the_damage(run_pipeline, espeak, tmp_path):
    """libsndfile ends a FLAC at its first damaged frame ("lost sync"): half the recording was
    lost to a few KB of damage. ffmpeg finds the next good frame; the rest is heard, with one
    warning that says where the audio was damaged and how much was skipped."""
    flac = tmp_path / "talk.flac"
    write_wav(flac, _speech(espeak, 12.0), rate_hz=22050, format="FLAC")
    data = bytearray(flac.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = np.random.default_rng(3).bytes(4000)
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(data))
    sink = run_pipeline([damaged])
    assert sink.summary.reason == "end of input"
    # Most of it: the damaged frames (a few tenths of a second) are all that is missing.
    assert sink.summary.streams[0].duration_s == pytest.approx(12.0, abs=1.0)
    (warning,) = [n.message for n in sink.of_type(Notice) if n.severity != "info"]
    assert "damaged at" in warning and "skipping" in warning and "of 12.0 s" in warning
    assert max(p.t_end_s for p in sink.predictions) > 11.0  # heard after the damage too


# -- signals at any moment ------------------------------------------------------------------

MOMENTS = ["start-up", "model load", "mid-stream", "shutdown"]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def _delay(moment: str, rng: random.Random) -> float | None:
    """Seconds after the handlers are in place, or None to wait for the first prediction."""
    return {"start-up": rng.uniform(0.0, 0.2), "model load": rng.uniform(1.5, 3.0)}.get(moment)


def _catches(pid: int, sig: int) -> bool:
    """Whether process `pid` has its own handler for `sig` (Linux: SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask.split()[1], 16) >> (sig - 1) & 1)


# SIGHUP at shutdown would add nothing: it takes SIGTERM's path.
CASES = [(m, s) for m in MOMENTS for s in SIGNALS if (m, s) != ("shutdown", signal.SIGHUP)]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("moment", "sig"), CASES, ids=[f"{m}-{s.name}" for m, s in CASES])
def test_signal_at_any_moment_stops_cleanly_with_its_exit_code(
    sig, moment, tiny_model_dir, espeak, tmp_path, cli_env
):
    """128 + N after the one clean stop: whole JSONL lines, the summary last once the engine
    ran, no thread left behind (a join that times out is logged), no traceback."""
    rng = random.Random(f"{sig}-{moment}")
    seconds = 2.5 if moment == "shutdown" else 20.0
    wav = tmp_path / "talk.wav"
    write_wav(wav, _speech(espeak, seconds))
    jsonl = tmp_path / "events.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlid",
            "listen",
            str(wav),
            "--realtime",
            "--ui",
            "plain",
            "--model",
            str(tiny_model_dir),
            "--jsonl",
            str(jsonl),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env,
        cwd=REPO_ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        # Python catches SIGINT from its start; SIGTERM says streamlid's handlers are in place.
        while not _catches(process.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _catches(process.pid, signal.SIGTERM), "streamlid installed no signal handlers"
        delay = _delay(moment, rng)
        if delay is not None:
            time.sleep(delay)
        else:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and '"prediction"' not in _read(jsonl):
                time.sleep(0.05)
            # Mid-stream: somewhere in the speech. Shutdown: as the 2.5 s file ends.
            time.sleep(rng.uniform(0.0, 1.5) if moment == "mid-stream" else rng.uniform(1.0, 2.0))
        process.send_signal(sig)
        sent = time.monotonic()
        stdout, stderr = process.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert took < 2.0, f"exit took {took:.2f} s after {sig!r} at {moment}"
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    assert "did not stop" not in text, text  # every join ended in time
    assert "still busy" not in text, text  # no forced exit
    events = [json.loads(line) for line in _read(jsonl).splitlines()]  # all whole, valid
    if not any(e["type"] == "started" for e in events):
        assert process.returncode == 128 + sig, (process.returncode, text[-2000:])
        assert "Interrupted." in text
        return
    assert events[-1]["type"] == "summary", "a run that started must end with its summary"
    assert sum(e["type"] == "summary" for e in events) == 1
    assert b"Summary" in stdout
    reason = events[-1]["reason"]
    if reason == "end of input":  # the signal came as the file ended: the run was complete
        assert moment == "shutdown", text
        assert process.returncode == 0, (process.returncode, text[-2000:])
    else:
        assert reason == "interrupted"
        assert process.returncode == 128 + sig, (process.returncode, text[-2000:])


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


# -- long input -----------------------------------------------------------------------------


@pytest.mark.slow
def test_two_hour_file_is_streamed_not_loaded(classifier, espeak, tmp_path):
    """A two-hour recording (230 MB as 16-bit WAV) goes through in bounded memory."""
    import resource

    path = tmp_path / "two-hours.wav"
    speech = _speech(espeak, 5.0)
    minute = np.concatenate([speech, np.zeros(55 * 16000, np.float32)])  # 5 s talk a minute
    with soundfile.SoundFile(str(path), "w", 16000, 1, subtype="PCM_16") as out:
        for _ in range(120):
            out.write(minute)
    assert path.stat().st_size > 200e6

    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sink = ListSink()
    from streamlid.audio.open import open_source

    engine = Engine(make_config(), [open_source(str(path), realtime=False)], classifier, [sink])
    engine.run()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    summary = sink.summary.streams[0]
    assert summary.duration_s == pytest.approx(7200.0, abs=0.5)
    assert summary.speech_s == pytest.approx(120 * 5.0, rel=0.15)
    assert peak_mb - before_mb < 150, f"peak memory grew by {peak_mb - before_mb:.0f} MB"
    assert os.path.getsize(path) / 1e6 > 2 * (peak_mb - before_mb)


# -- outputs that fail ----------------------------------------------------------------------


def _listen(wav: Path, model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "streamlid", "listen", str(wav), "--model", str(model), *args]


def test_a_full_disk_is_reported_at_once_and_the_run_goes_on(
    tiny_model_dir, espeak, tmp_path, cli_env
):
    wav = tmp_path / "talk.wav"
    write_wav(wav, _speech(espeak, 6.0))
    result = run_to_its_end(
        _listen(wav, tiny_model_dir, "--jsonl", "/dev/full", "--ui", "plain"), cli_env
    )
    assert result.returncode == 3, result.stderr  # an output failed
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "/dev/full" in line and "No space left on device" in line
    # The other output went on to the end: the plain lines, then the summary of a whole run.
    assert "Summary (end of input" in result.stdout
    assert re.search(r"error: .*/dev/full", result.stdout), "the plain view got a Notice"
    assert "now:" in result.stdout.split("error:")[-1], "answers went on after the failure"


def _limit_file_size(limit_bytes: int):
    import resource

    def limit() -> None:  # in the child, before exec: writes past the limit fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def test_a_file_cut_short_by_a_write_error_keeps_whole_lines_and_says_so(
    tiny_model_dir, espeak, tmp_path, cli_env
):
    """The write that fails lands mid-line; the file is cut back to the last whole line."""
    wav = tmp_path / "talk.wav"
    write_wav(wav, _speech(espeak, 6.0))
    jsonl = tmp_path / "events.jsonl"
    result = run_to_its_end(
        _listen(wav, tiny_model_dir, "--jsonl", str(jsonl), "--ui", "none"),
        cli_env,
        preexec_fn=_limit_file_size(3000),
    )
    assert result.returncode == 3, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    kept = int(re.search(r"keeps the first (\d+) events", line).group(1))
    text = jsonl.read_text()
    assert 0 < len(text) <= 3000 and text.endswith("\n")
    events = [json.loads(x) for x in text.splitlines()]
    assert len(events) == kept
    assert events[0]["type"] == "started"


def test_a_reader_that_leaves_the_pipe_stops_the_run_cleanly(
    tiny_model_dir, espeak, tmp_path, cli_env
):
    """`streamlid listen long.wav --realtime --jsonl - | head -n 3`: a minute of audio, but the
    run stops as soon as it notices that nobody reads, with the summary on stderr."""
    wav = tmp_path / "long.wav"
    write_wav(wav, _speech(espeak, 60.0))
    listen = subprocess.Popen(
        _listen(wav, tiny_model_dir, "--realtime", "--jsonl", "-"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env,
        cwd=REPO_ROOT,
    )
    head = subprocess.Popen(["head", "-n", "3"], stdin=listen.stdout, stdout=subprocess.PIPE)
    assert listen.stdout is not None
    listen.stdout.close()  # head holds the only reading end
    try:
        head_out, _ = head.communicate(timeout=60)
        head_left = time.monotonic()
        _, stderr = listen.communicate(timeout=30)
        stopped_after_s = time.monotonic() - head_left
    finally:
        for process in (listen, head):
            if process.poll() is None:
                process.kill()
                process.wait()
    text = stderr.decode(errors="replace")
    lines = [json.loads(x) for x in head_out.decode().splitlines()]
    assert len(lines) == 3 and lines[0]["type"] == "started"
    assert listen.returncode == 128 + signal.SIGPIPE, text  # 141, as if SIGPIPE had ended it
    assert stopped_after_s < 15.0, "the run went on without a reader"  # the input lasts 60 s
    assert "Traceback" not in text and "Exception ignored" not in text, text
    assert "Summary (output closed" in text


def test_plain_lines_on_a_full_stdout_say_so_in_one_line(tiny_model_dir, espeak, tmp_path, cli_env):
    wav = tmp_path / "talk.wav"
    write_wav(wav, _speech(espeak, 4.0))
    jsonl = tmp_path / "events.jsonl"
    with open("/dev/full", "wb") as full:
        result = run_to_its_end(
            _listen(wav, tiny_model_dir, "--ui", "plain", "--jsonl", str(jsonl)),
            cli_env,
            stdout=full,
        )
    assert result.returncode == 3, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "standard output" in line and "No space left on device" in line
    events = [json.loads(x) for x in jsonl.read_text().splitlines()]  # the other output went on
    assert events[-1]["type"] == "summary" and events[-1]["reason"] == "end of input"
    assert any(e["type"] == "notice" and "standard output" in e["message"] for e in events)


def _unread_pipe(path: Path) -> int:
    """A named pipe with a reader that never reads, its buffer shrunk to one page."""
    import fcntl

    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open does not wait
    fcntl.fcntl(reader, 1031, 4096)  # F_SETPIPE_SZ
    return reader


def test_an_output_nobody_reads_is_given_up_and_the_others_go_on(
    tiny_model_dir, espeak, tmp_path, cli_env
):
    """`--jsonl` into a pipe whose reader stopped reading: its writes block. The plain lines,
    alerts and metrics share the event thread, so they froze with it, and the run never ended.
    Now the blocked output is given up in one line and everything else goes to the end."""
    wav = tmp_path / "long.wav"
    write_wav(wav, _speech(espeak, 60.0))
    pipe = tmp_path / "events.pipe"
    reader = _unread_pipe(pipe)
    try:
        result = run_to_its_end(
            _listen(wav, tiny_model_dir, "--jsonl", str(pipe), "--ui", "plain"), cli_env
        )
    finally:
        os.close(reader)
    assert result.returncode == 3, result.stderr  # an output failed
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert str(pipe) in line and "took no event" in line
    assert "Summary (end of input" in result.stdout
    assert result.stdout.count("now:") > 40, "the plain lines stopped with the blocked output"


def test_a_named_pipes_reader_leaving_ends_that_output_not_the_run(tmp_path):
    """Only standard output's reader leaving (`| head`) stops the run; a --jsonl pipe's reader
    leaving is that output failing."""
    from streamlid.errors import OutputError
    from streamlid.sinks import JsonlSink

    pipe = tmp_path / "events.pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    sink = JsonlSink(str(pipe))
    os.close(reader)
    failure = None
    try:
        for i in range(50):
            sink.handle(Notice("a", float(i), "info", "hello"))
            time.sleep(0.01)
        sink.close()
    except OutputError as exc:
        failure = exc
    assert failure is not None and not failure.reader_left
    assert "has gone" in str(failure) and str(pipe) in str(failure)


def test_a_blocked_output_is_given_up_mid_run_without_blocking_the_caller(tmp_path, monkeypatch):
    """The event thread hands lines over and goes on; once lines wait and none was written
    for STUCK_S, the next event gives the output up (the bus then drops it and says so)."""
    from streamlid import sinks
    from streamlid.errors import OutputError

    monkeypatch.setattr(sinks, "STUCK_S", 0.5)
    pipe = tmp_path / "events.pipe"
    reader = _unread_pipe(pipe)
    sink = sinks.JsonlSink(str(pipe))
    failure, started = None, time.monotonic()
    try:
        while failure is None and time.monotonic() - started < 20.0:
            try:
                sink.handle(Notice("a", 0.0, "info", "x" * 200))  # each returns at once
            except OutputError as exc:
                failure = exc
            time.sleep(0.005)
        sink.close()  # given up: returns at once, its writer left blocked
    finally:
        os.close(reader)
    assert failure is not None, "a blocked output was never given up"
    assert "took no event" in str(failure) and not failure.reader_left


def test_a_named_pipe_without_a_reader_is_waited_for_with_a_word(tmp_path):
    """Opening a pipe for writing waits for its reader, which may come much later: the run
    said nothing and looked hung after the model had loaded."""
    import select

    pipe = tmp_path / "events.pipe"
    os.mkfifo(pipe)
    script = (
        "import sys; from streamlid.events import Notice; from streamlid.sinks import JsonlSink; "
        "s = JsonlSink(sys.argv[1]); s.handle(Notice('a', 0.0, 'info', 'hello')); s.close()"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(pipe)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert writer.stderr is not None
        ready, _, _ = select.select([writer.stderr], [], [], 15.0)
        assert ready, "nothing was said while waiting for a reader"
        said = writer.stderr.readline()
        assert "no reader yet; waiting for one" in said, said
        with open(pipe) as reader:
            assert json.loads(reader.readline())["message"] == "hello"
        assert writer.wait(10.0) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_a_jsonl_file_rotated_by_copytruncate_goes_on_at_its_new_start(tmp_path):
    """logrotate's copytruncate empties the file under a running monitor: the next lines
    went on at the old offset, behind a hole of NUL bytes that no JSON reader parses."""
    from streamlid import sinks

    out = tmp_path / "events.jsonl"
    sink = sinks.JsonlSink(str(out))
    for i in range(5):
        sink.handle(Notice("a", float(i), "info", "before the rotation"))
    assert wait_until(lambda: sink.lines == 5, 5.0)
    os.truncate(out, 0)  # what copytruncate does once it has copied the file
    sink.handle(Notice("a", 5.0, "info", "after the rotation"))
    sink.close()
    data = out.read_bytes()
    assert b"\0" not in data
    assert [json.loads(line)["message"] for line in data.splitlines()] == ["after the rotation"]


def test_a_second_run_does_not_empty_the_jsonl_file_another_run_is_writing(tmp_path):
    """Two runs given the same --jsonl: the second emptied the file under the first, whose
    start and early answers were lost, and their lines ended up mixed, with nothing said."""
    from streamlid import sinks
    from streamlid.errors import ConfigError

    out = tmp_path / "events.jsonl"
    first = sinks.JsonlSink(str(out))
    first.handle(Notice("a", 0.0, "info", "the first run's"))
    assert wait_until(lambda: first.lines == 1, 5.0)
    for append in (False, True):
        with pytest.raises(ConfigError, match="being written by another streamlid run"):
            sinks.JsonlSink(str(out), append=append)
        # and before the model loads, where the outputs are checked
        with pytest.raises(ConfigError, match="being written by another streamlid run"):
            sinks.check_output_path(str(out), [], overwrite=False, append=append)
    first.close()
    assert [json.loads(line)["message"] for line in out.read_text().splitlines()] == [
        "the first run's"
    ]
    sinks.check_output_path(str(out), [], overwrite=False)  # once the first has ended, it is free
    again = sinks.JsonlSink(str(out))
    again.close()
    assert out.read_text() == ""


def test_runs_that_append_share_the_jsonl_file_and_devices_are_not_locked(tmp_path):
    """Appending runs write whole lines at the end (a service restarting while the old one
    finishes); /dev/null takes any number of runs."""
    from streamlid import sinks

    out = tmp_path / "events.jsonl"
    one = sinks.JsonlSink(str(out), append=True)
    sinks.check_output_path(str(out), [], overwrite=True, append=True)
    two = sinks.JsonlSink(str(out), append=True)
    null_one, null_two = sinks.JsonlSink(os.devnull), sinks.JsonlSink(os.devnull)
    for sink in (one, two, null_one, null_two):
        sink.handle(Notice("a", 0.0, "info", "line"))
        sink.close()
    assert len(out.read_text().splitlines()) == 2


def test_a_quiet_spell_is_not_a_stuck_output(tmp_path, monkeypatch):
    """Ten seconds without events, then a burst: the first line of the burst was still queued
    when the second came, and the output was given up though nothing was wrong."""
    from streamlid import sinks

    monkeypatch.setattr(sinks, "STUCK_S", 0.3)
    out = tmp_path / "events.jsonl"
    sink = sinks.JsonlSink(str(out))
    sink.handle(Notice("a", 0.0, "info", "before the quiet spell"))
    time.sleep(0.6)
    for i in range(20):
        sink.handle(Notice("a", float(i), "info", "burst"))
    sink.close()
    assert len(out.read_text().splitlines()) == 21


def test_a_slow_reader_gets_every_line_at_the_end(tmp_path, monkeypatch):
    """A reader that takes lines slowly is not stuck: the end waits for it while it takes
    them, so the summary, the last line, is not lost."""
    from streamlid import sinks

    monkeypatch.setattr(sinks, "CLOSE_WAIT_S", 0.2)
    pipe = tmp_path / "events.pipe"
    os.mkfifo(pipe)
    got: list[str] = []

    def read_slowly() -> None:
        with open(pipe) as reader:
            for line in reader:
                got.append(line)
                time.sleep(0.003)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    sink = sinks.JsonlSink(str(pipe))
    for i in range(300):
        sink.handle(Notice("a", float(i), "info", "x" * 300))
    sink.close()
    reader.join(30.0)
    assert len(got) == 300


def test_a_timeline_into_a_pipe_nobody_reads_fails_in_one_line_not_hangs(tmp_path):
    from streamlid.errors import OutputError
    from streamlid.streams import StreamsReducer
    from streamlid.timeline import TimelineCsv

    pipe = tmp_path / "timeline.pipe"
    os.mkfifo(pipe)
    with pytest.raises(OutputError, match="--timeline-csv"):
        TimelineCsv(str(pipe), StreamsReducer()).write()


def test_a_file_name_that_is_not_utf8_is_written_into_jsonl_as_its_escape(tmp_path):
    """`café.mp3` named in Latin-1 reaches Python as "caf\\udce9.mp3"; the line must still be
    written (it failed and stopped the output), as valid UTF-8 and valid Unicode, the byte
    written as the stream's name writes it (printable): "caf\\xe9.mp3"."""
    from streamlid import sinks
    from streamlid.events import StreamStarted
    from streamlid.printable import printable

    name = os.fsdecode(b"caf\xe9.mp3")
    out = tmp_path / "events.jsonl"
    sink = sinks.JsonlSink(str(out))
    sink.handle(StreamStarted(name, name, 16000, True, "m", "cpu", "float32"))
    sink.close()
    (line,) = out.read_bytes().decode("utf-8").splitlines()  # valid UTF-8
    assert "\\ud" not in line.lower()  # no lone-surrogate escape
    event = json.loads(line)
    assert event["source"] == event["stream"] == printable(name) == "caf\\xe9.mp3"
