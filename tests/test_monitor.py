"""Monitoring through the real command line, with the trained test model and espeak-ng speech:
an unexpected-language alert reaching JSONL, the plain log and `--on-alert`; metrics scraped
over HTTP on 127.0.0.1 during a run; the timeline CSV on SIGUSR1 and at exit; SIGTERM flushing
every output; `--jsonl-append`."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_helpers import silence, write_wav
from harness import REPO_ROOT
from speech import espeak_missing, script

TINY_LID = REPO_ROOT / "tests" / "assets" / "tiny-lid"


@pytest.fixture(scope="module")
def french(tmp_path_factory) -> Path:
    if espeak_missing():
        pytest.skip(espeak_missing())
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    path, _ = script([(None, 1.0), ("fra", 24.0)], tmp_path_factory.mktemp("monitor"), "fra")
    return path


def recorder(tmp_path: Path) -> str:
    """An --on-alert command (a Python script) that appends its stdin to calls.jsonl."""
    path = tmp_path / "record.py"
    path.write_text(
        "import sys\n"
        f"open({str(tmp_path / 'calls.jsonl')!r}, 'a').write(sys.stdin.read().strip() + '\\n')\n"
    )
    return f"{sys.executable} {path}"


@contextlib.contextmanager
def listening(cli_env: dict[str, str], args: list[str]) -> Iterator[subprocess.Popen]:
    """`streamlid listen ARGS` as a child process, killed if the test leaves it running."""
    child = subprocess.Popen(
        [sys.executable, "-m", "streamlid", "listen", *args],
        env=cli_env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def read_jsonl(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unexpected_language_alert_reaches_every_output_and_the_command(run_cli, french, tmp_path):
    events, timeline = tmp_path / "events.jsonl", tmp_path / "timeline.csv"
    result = run_cli(
        "listen",
        french,
        "--model",
        TINY_LID,
        "--ui",
        "plain",
        "--expect",
        "eng,deu",
        "--alert-unexpected-after",
        "5",
        "--on-alert",
        recorder(tmp_path),
        "--jsonl",
        events,
        "--timeline-csv",
        timeline,
    )
    assert result.returncode == 0, result.stderr
    log = read_jsonl(events)
    alerts = [e for e in log if e["type"] == "alert"]
    assert alerts and alerts[0]["kind"] == "unexpected-language" and alerts[0]["active"]
    assert alerts[0]["language"] == "fra"
    # Fired once French had lasted the configured time, not before and not much later.
    change = next(e for e in log if e["type"] == "change" and e["language"] == "fra")
    assert 5.0 <= alerts[0]["t_s"] - change["since_s"] <= 5.0 + 1.5
    assert "ALERT unexpected-language: French (fra)" in result.stdout
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert calls[0]["kind"] == "unexpected-language" and calls[0]["language"] == "fra"
    assert calls[0]["t_s"] == alerts[0]["t_s"]
    summary = log[-1]
    assert summary["type"] == "summary"
    # At exit: the segments, French the longest, up to the end of the audio.
    rows = read_csv(timeline)
    assert rows and set(rows[0]) == {"stream", "start_s", "end_s", "language", "mean_confidence"}
    longest = max(rows, key=lambda r: float(r["end_s"]) - float(r["start_s"]))
    assert longest["language"] == "fra"
    assert float(rows[-1]["end_s"]) == pytest.approx(summary["streams"][0]["duration_s"], abs=0.1)


def test_a_failing_on_alert_command_is_reported_and_not_fatal(run_cli, french, tmp_path):
    events = tmp_path / "events.jsonl"
    result = run_cli(
        "listen",
        french,
        "--model",
        TINY_LID,
        "--ui",
        "plain",
        "--expect",
        "eng",
        "--alert-unexpected-after",
        "3",
        "--on-alert",
        f"{sys.executable} -c 'import sys; sys.exit(4)'",
        "--jsonl",
        events,
    )
    assert result.returncode == 0, result.stderr
    log = read_jsonl(events)
    warnings = [e for e in log if e["type"] == "notice" and "--on-alert" in e["message"]]
    assert warnings and "exit status 4" in warnings[0]["message"]
    assert log[-1]["type"] == "summary" and log[-1]["reason"] == "end of input"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def metric(text: str, name: str, stream: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'stream="{stream}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_csv_on_sigusr1_and_sigterm_flushing_everything(cli_env, french, tmp_path):
    events, timeline = tmp_path / "events.jsonl", tmp_path / "timeline.csv"
    port = free_port()
    args = [str(french), "--model", str(TINY_LID), "--ui", "none", "--realtime"]
    args += ["--jsonl", str(events), "--timeline-csv", str(timeline)]
    args += ["--metrics-port", str(port), "--expect", "eng", "--alert-unexpected-after", "3"]
    with listening(cli_env, args) as child:
        deadline = time.monotonic() + 90
        text = ""
        while time.monotonic() < deadline:  # until the model has answered a few windows
            assert child.poll() is None, child.communicate()[1].decode()
            try:
                text = scrape(port)
            except OSError:
                text = ""
            windows = metric(text, "streamlid_windows_classified_total", "fra.wav")
            if windows is not None and windows >= 5:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"no metrics with answers within 90 s:\n{text}")
        assert 'streamlid_language_info{language="' in text
        assert metric(text, "streamlid_model_latency_seconds_count", "fra.wav") >= 5
        assert 0 < metric(text, "streamlid_speech_ratio", "fra.wav") <= 1
        assert metric(text, "streamlid_windows_skipped_total", "fra.wav") is not None

        assert not timeline.exists()
        child.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not timeline.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        first = read_csv(timeline)
        assert first, "SIGUSR1 wrote a timeline with no segments"
        assert child.poll() is None  # SIGUSR1 does not stop the run
        time.sleep(2.0)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM, err.decode()
    assert f"Metrics at http://127.0.0.1:{port}/metrics" in err.decode()  # where to scrape
    log = read_jsonl(events)
    assert log[-1]["type"] == "summary" and log[-1]["reason"] == "interrupted"
    duration_s = log[-1]["streams"][0]["duration_s"]
    last = read_csv(timeline)  # rewritten at exit, up to where the run stopped
    assert float(last[-1]["end_s"]) > float(first[-1]["end_s"])
    assert float(last[-1]["end_s"]) == pytest.approx(duration_s, abs=0.5)
    assert duration_s < 24  # it really was stopped early
    assert not list(tmp_path.glob(".timeline.csv.*"))  # no temporary file left
    with pytest.raises(OSError):
        scrape(port)  # the server is gone with the run


def test_a_second_signal_cuts_short_an_on_alert_command_the_end_waits_for(cli_env, tmp_path):
    """The run's end waits (bounded) for --on-alert commands still running; a second SIGTERM
    (or Ctrl-C) stops them at once, and the run still ends with its summary."""
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, silence(30.0))
    started = tmp_path / "started"
    hang = tmp_path / "hang.py"
    hang.write_text(f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(60)\n")
    events = tmp_path / "events.jsonl"
    args = [str(quiet), "--model", str(TINY_LID), "--ui", "none", "--realtime"]
    args += ["--jsonl", str(events), "--alert-silence-after", "1"]
    args += ["--on-alert", f"{sys.executable} {hang}"]
    with listening(cli_env, args) as child:
        deadline = time.monotonic() + 90
        while not started.exists() and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()[1].decode()
            time.sleep(0.1)
        assert started.exists(), "the silence alert never ran its command"
        child.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the end is waiting for the command now
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM, err.decode()
    log = read_jsonl(events)
    assert log[-1]["type"] == "summary" and log[-1]["reason"] == "interrupted"
    (stopped,) = [e for e in log if e["type"] == "notice" and "--on-alert" in e["message"]]
    assert "stopped unfinished" in stopped["message"]  # before the summary, not lost after it


def test_jsonl_append_keeps_the_earlier_run_and_refuses_an_input(run_cli, french, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "summary", "cut')  # an earlier run killed mid-line
    args = ["listen", french, "--model", TINY_LID, "--ui", "none", "--jsonl", events]
    result = run_cli(*args, "--jsonl-append")
    assert result.returncode == 0, result.stderr
    lines = events.read_text().splitlines()
    assert lines[0] == '{"type": "summary", "cut'  # kept, and ended
    assert json.loads(lines[1])["type"] == "started"
    assert json.loads(lines[-1])["type"] == "summary"

    refused = run_cli("listen", french, "--ui", "none", "--jsonl", french, "--jsonl-append")
    assert refused.returncode == 2
    assert "is the input" in refused.stderr
    refused = run_cli(
        "listen", french, "--ui", "none", "--timeline-csv", french, "--model", TINY_LID
    )
    assert refused.returncode == 2 and "--timeline-csv output" in refused.stderr


def test_each_named_stream_is_held_to_its_own_expectations(run_cli, french, tmp_path):
    """Two [[streams]] of the same French file: the one expecting German alerts, the one
    expecting French does not, and the global expectation does not override either."""
    events = tmp_path / "events.jsonl"
    config = tmp_path / "feeds.toml"
    config.write_text(
        'expect = ["spa"]\n'
        "alert-unexpected-after = 600\n"
        "[[streams]]\n"
        'name = "expects-german"\n'
        f"source = {json.dumps(str(french))}\n"
        'languages = ["deu"]\n'
        "alert-unexpected-after = 5\n"
        "[[streams]]\n"
        'name = "expects-french"\n'
        f"source = {json.dumps(str(french))}\n"
        'languages = ["fra"]\n'
        "alert-unexpected-after = 5\n"
    )
    result = run_cli(
        "listen", "--config", config, "--model", TINY_LID, "--ui", "none", "--jsonl", events
    )
    assert result.returncode == 0, result.stderr
    alerts = [e for e in read_jsonl(events) if e["type"] == "alert"]
    assert {a["stream"] for a in alerts} == {"expects-german"}
    assert alerts[0]["kind"] == "unexpected-language" and alerts[0]["language"] == "fra"


def test_a_timeline_into_a_pipe_is_written_into_it_not_renamed_over_it(tmp_path):
    """A regular file is replaced by a renamed temporary file; a device or a pipe must be
    written into instead: as root, the rename put a plain file where /dev/full had been."""
    import os
    import stat as stat_module

    from streamlid.streams import StreamsReducer
    from streamlid.timeline import TimelineCsv

    pipe = tmp_path / "timeline.pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open does not wait
    try:
        TimelineCsv(str(pipe), StreamsReducer()).write()
        assert stat_module.S_ISFIFO(os.stat(pipe).st_mode)
        assert os.read(reader, 4096).decode().startswith("stream,start_s,end_s")
    finally:
        os.close(reader)


def test_jsonl_and_timeline_csv_on_one_path_are_refused_before_the_run(run_cli, french, tmp_path):
    same = tmp_path / "out.txt"  # does not exist yet: the input check cannot see it
    refused = run_cli(
        *("listen", french, "--model", TINY_LID, "--ui", "none"),
        *("--jsonl", same, "--timeline-csv", same),
    )
    assert refused.returncode == 2
    assert "both name" in refused.stderr and "Traceback" not in refused.stderr
    assert not same.exists()
    # A device takes both: scripts that throw both outputs away still run.
    result = run_cli(
        *("listen", french, "--model", TINY_LID, "--ui", "none"),
        *("--jsonl", "/dev/null", "--timeline-csv", "/dev/null"),
    )
    assert result.returncode == 0, result.stderr


def test_a_timeline_whose_folder_takes_no_files_is_refused_before_the_run(run_cli, french):
    """The table is replaced through a new file in its folder; a folder that takes none (/sys
    refuses even root) was found out at the run's end (exit 3), every segment lost."""
    target = "/sys/streamlid-test-timeline.csv"
    refused = run_cli(
        *("listen", french, "--model", TINY_LID, "--ui", "none", "--timeline-csv", target)
    )
    assert refused.returncode == 2, refused.stderr
    assert f"Cannot write --timeline-csv file {target!r}: its folder '/sys'" in refused.stderr
    assert "Traceback" not in refused.stderr and "Summary" not in refused.stderr


def test_a_jsonl_file_that_cannot_be_written_is_refused_before_the_model_loads(
    run_cli, french, tmp_path
):
    """A --jsonl file in a folder that takes no new files, or a read-only file, was found out
    only once the model had loaded (seconds; minutes with a download first). Refused now: the
    model named here does not exist, so getting past the check would end in its error."""
    read_only = tmp_path / "kept.jsonl"
    read_only.write_text("")
    read_only.chmod(0o444)
    targets = ["/sys/streamlid-test.jsonl"]
    if os.geteuid() != 0:  # root writes through a file's permissions; /sys refuses even root
        targets.append(str(read_only))
    for target in targets:
        refused = run_cli(
            *("listen", french, "--model", "no/such-model", "--ui", "none", "--jsonl", target)
        )
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"error: Cannot write --jsonl file {target!r}"), (
            refused.stderr
        )
        assert refused.stderr.count("\n") == 1


def test_expected_languages_are_read_as_the_models_codes_and_unknown_ones_refused(
    run_cli, french, tmp_path
):
    """`--expect fr` is French (as `--languages` reads it), so French raises no alert; a code
    the model cannot name would make every answer unexpected, so it is refused in one line."""
    events = tmp_path / "events.jsonl"
    args = ["listen", french, "--model", TINY_LID, "--ui", "none", "--jsonl", events]
    result = run_cli(*args, "--expect", "fr,de", "--alert-unexpected-after", "1")
    assert result.returncode == 0, result.stderr
    log = read_jsonl(events)
    assert any(e["type"] == "change" and e["language"] == "fra" for e in log)
    assert not [e for e in log if e["type"] == "alert"]
    for wrong in ("german", "xyz"):
        refused = run_cli(*args, "--overwrite", "--expect", wrong)
        assert refused.returncode == 2, refused.stderr
        assert f"--expect language {wrong!r} is not one of this model's" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_the_timeline_is_readable_by_others_as_the_jsonl_is(tmp_path):
    """A temporary file renamed into place kept mkstemp's 0600: a dashboard running as another
    user could read the events but not the table. A new table gets 0666 less the umask; one
    that replaces a file keeps that file's permissions."""
    import os
    import stat as stat_module

    from streamlid.streams import StreamsReducer
    from streamlid.timeline import TimelineCsv

    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.csv"
        TimelineCsv(str(fresh), StreamsReducer()).write()
        assert stat_module.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "kept.csv"
        kept.write_text("")
        kept.chmod(0o640)
        TimelineCsv(str(kept), StreamsReducer()).write()
        assert stat_module.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(old_umask)
