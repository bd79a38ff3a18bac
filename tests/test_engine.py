"""Engine end to end with the tiny model: the early first answer, both ways a run ends (end of
input, stop()), no thread left behind, complete JSONL, and several streams at once."""

from __future__ import annotations

import errno
import json
import math
import os
import threading
import time

import numpy as np
import pytest
import soundfile
from audio_helpers import SAMPLE_RATE_HZ, silence, speech_onset_s, to_s16le, write_wav
from harness import ListSink, make_config, make_engine, non_daemon_threads

from streamlid.audio.source import Source
from streamlid.audio.stdin import StdinSource
from streamlid.engine import Engine
from streamlid.events import (
    Level,
    Notice,
    Prediction,
    SpeechChange,
    StreamEnded,
    StreamStarted,
    Summary,
)
from streamlid.frontend import QUIET_CHECK_S
from streamlid.sinks import JsonlSink
from streamlid.smoothing import SmootherSettings

STOP_WITHIN_S = 5.0  # generous: the stop path promises well under this
ENGINE_THREADS = ("worker", "events", "frontend-", "source-")


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the pipeline"
        time.sleep(0.02)


def engine_threads_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(ENGINE_THREADS)]


def read_jsonl(path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), "the last line is incomplete"
    return [json.loads(line) for line in text.splitlines()]


def test_first_answer_comes_soon_after_speech_starts(espeak, run_pipeline):
    path = espeak.wav("en", lead_s=2.5)
    onset_s = speech_onset_s(soundfile.read(str(path), dtype="float32")[0])
    sink = run_pipeline([path])
    first = sink.predictions[0]
    assert onset_s < first.t_end_s <= onset_s + 1.5
    assert first.t_start_s >= onset_s - 0.35  # no leading silence in the window
    # The first window names a language only if the model is sure; the tiny random model is
    # not, so the answer may be unknown, but it is an answer: probabilities for the window.
    assert len(first.top) == make_config().top


def test_run_to_end_of_input_finishes_by_itself(espeak, classifier, tmp_path):
    path = espeak.wav("en", lead_s=0.5, tail_s=0.5)
    jsonl = tmp_path / "events.jsonl"
    sink = ListSink()
    before = set(threading.enumerate())
    engine = make_engine([path], classifier, [sink, JsonlSink(str(jsonl))])
    engine.start()
    assert engine.wait(60.0), "the engine did not finish at the end of its input"
    assert not engine.running
    summary = sink.summary
    assert summary.reason == "end of input"
    assert engine.summary == summary
    assert sink.events[-1] is summary
    assert sink.closed
    lines = read_jsonl(jsonl)
    assert lines[-1]["type"] == "summary"
    assert lines[-1]["reason"] == "end of input"
    # the file's end is an event (views show the stream as ended), once, where the audio ended
    (ended,) = [line for line in lines if line["type"] == "ended"]
    assert ended["t_s"] == pytest.approx(summary.streams[0].duration_s, abs=0.05)
    # ... after its last answer: the alerts clear on it for good (the reader runs ahead)
    last_answer = max(i for i, line in enumerate(lines) if line["type"] == "prediction")
    assert lines.index(ended) > last_answer
    assert engine_threads_alive() == []
    assert [t.name for t in set(threading.enumerate()) - before if not t.daemon] == []


def test_stop_mid_run_on_a_live_file(espeak, classifier, tmp_path):
    path = espeak.wav("en", lead_s=0.5, tail_s=5.0)  # 15 s at real time: stopped long before
    jsonl = tmp_path / "events.jsonl"
    sink = ListSink()
    engine = make_engine([path], classifier, [sink, JsonlSink(str(jsonl))], realtime=True)
    engine.start()
    wait_for(lambda: any(isinstance(e, Prediction) for e in sink.events))
    started = time.monotonic()
    engine.stop("interrupted")
    assert engine.wait(STOP_WITHIN_S), "wait() did not return after stop()"
    assert time.monotonic() - started < STOP_WITHIN_S
    assert non_daemon_threads() == []
    assert engine_threads_alive() == []
    lines = read_jsonl(jsonl)  # every line is whole JSON
    assert lines[0]["type"] == "started"
    assert lines[-1]["type"] == "summary"
    assert lines[-1]["reason"] == "interrupted"
    assert sum(line["type"] == "summary" for line in lines) == 1
    assert "ended" not in [line["type"] for line in lines]  # stopped, not ended
    summary = sink.summary
    assert summary.streams[0].duration_s < 12.0  # it really was stopped early
    assert any(line["type"] == "prediction" for line in lines)


class SlowToStop(Source):
    """A live tone whose stop() returns only after its thread has ended and closed the ring,
    and a while later: as a run's sources stop one by one, each killing and reaping its ffmpeg
    child, the first rings close long before the last stop returns."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = self.description = name
        self.sample_rate_hz = SAMPLE_RATE_HZ
        self.live = True

    def _run(self, ring) -> None:
        block = 0.1 * np.sin(np.arange(SAMPLE_RATE_HZ // 20) * 0.1).astype(np.float32)
        while not self.stopping:
            ring.write(block, block=False)
            self._stop.wait(0.05)

    def stop(self) -> None:
        super().stop()
        self.join(STOP_WITHIN_S)
        time.sleep(0.5)


def test_streams_stopped_by_the_run_are_not_said_to_have_ended(classifier):
    """`ended` means the input ended; a stop (Ctrl-C, SIGTERM) ends no stream's input, however
    long the other sources take to stop after one source's ring has closed."""
    sink = ListSink()
    engine = Engine(make_config(), [SlowToStop("a"), SlowToStop("b")], classifier, [sink])
    engine.start()
    wait_for(lambda: any(isinstance(e, Level) for e in sink.events))
    engine.stop("interrupted")
    assert engine.wait(STOP_WITHIN_S * 2)
    assert sink.summary.reason == "interrupted"
    assert sink.of_type(StreamEnded) == []


def test_stop_is_idempotent_and_wait_can_be_repeated(espeak, classifier):
    sink = ListSink()
    engine = make_engine([espeak.wav("en")], classifier, [sink], realtime=True)
    engine.start()
    engine.stop("interrupted")
    engine.stop("something else")
    assert engine.wait(STOP_WITHIN_S)
    assert engine.wait(0.0)
    assert sink.summary.reason == "interrupted"
    assert engine_threads_alive() == []


def test_stop_while_stdin_has_no_more_data_but_is_not_closed(espeak, classifier):
    """A pipe that stays open without data (a stalled producer) must not hold up the stop."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, to_s16le(espeak.samples("en")[:SAMPLE_RATE_HZ]))  # fits the pipe
        sink = ListSink()
        config = make_config()
        source = StdinSource(realtime=False, fd=read_fd)
        engine = Engine(config, [source], classifier, [sink])
        engine.start()
        wait_for(lambda: any(isinstance(e, SpeechChange) for e in sink.events))
        engine.stop("interrupted")
        assert engine.wait(STOP_WITHIN_S)
        assert non_daemon_threads() == []
        assert sink.summary.reason == "interrupted"
        assert sink.summary.streams[0].duration_s == pytest.approx(1.0, abs=0.01)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_stdin_end_of_file_ends_the_run(espeak, classifier):
    read_fd, write_fd = os.pipe()
    audio = np.concatenate([silence(0.5), espeak.samples("en")])
    data = to_s16le(audio)

    def produce():
        with os.fdopen(write_fd, "wb") as out:
            out.write(data[:12345])  # an odd split: a sample straddles two reads
            out.flush()
            out.write(data[12345:])

    producer = threading.Thread(target=produce, name="test-producer")
    sink = ListSink()
    try:
        engine = Engine(
            make_config(), [StdinSource(realtime=False, fd=read_fd)], classifier, [sink]
        )
        producer.start()
        engine.start()
        assert engine.wait(60.0)
    finally:
        producer.join(10)
        os.close(read_fd)
    assert sink.summary.reason == "end of input"
    assert sink.summary.streams[0].duration_s == pytest.approx(
        len(audio) / SAMPLE_RATE_HZ, abs=0.01
    )
    assert sink.predictions


def test_two_streams_at_once(espeak, run_pipeline):
    en, fr = espeak.wav("en", lead_s=0.3), espeak.wav("fr", lead_s=1.0)
    sink = run_pipeline([en, fr])
    names = {en.name, fr.name}
    assert {e.stream for e in sink.of_type(StreamStarted)} == names
    assert {p.stream for p in sink.predictions} == names
    summary = sink.summary
    assert {s.stream for s in summary.streams} == names
    for stream in summary.streams:
        assert stream.windows == sum(p.stream == stream.stream for p in sink.predictions)
        assert stream.speech_s > 3.0
    # Each stream's own predictions are in stream-time order.
    for name in names:
        ends = [p.t_end_s for p in sink.predictions if p.stream == name]
        assert ends == sorted(ends)


class SureModel:
    """English, always and surely: the file schedule then holds windows back (the language
    is settled), the case where a stream's last answers come from what the worker held."""

    labels = ("eng", "fra", "deu")

    def classify(self, windows):
        return np.tile(np.array([0.98, 0.01, 0.01], np.float32), (len(windows), 1))


def test_a_stream_is_said_to_have_ended_only_after_its_last_answer(espeak, tmp_path):
    """The windows the file schedule held of a file that ended were answered only once every
    other stream had ended too, after the file's `ended` (README: `ended` comes once the
    model has answered its last windows)."""
    long = tmp_path / "long.wav"
    write_wav(long, np.concatenate([espeak.samples("fr"), silence(0.5)] * 4))
    short = espeak.wav("en")
    sink = ListSink()
    make_engine([short, long], SureModel(), [sink]).run()
    ended: set[str] = set()
    answered_after_end = []
    for event in sink.events:
        if isinstance(event, StreamEnded):
            ended.add(event.stream)
        elif isinstance(event, Prediction) and event.stream in ended:
            answered_after_end.append((event.stream, event.t_end_s))
    assert ended == {short.name, long.name}
    assert answered_after_end == []


def test_the_same_file_twice_gets_two_names(espeak, run_pipeline):
    path = espeak.wav("en")
    sink = run_pipeline([path, path])
    assert {s.stream for s in sink.summary.streams} == {path.name, f"{path.name}#2"}


def test_summary_is_the_last_event_and_comes_once(espeak, run_pipeline):
    sink = run_pipeline([espeak.wav("en")])
    assert isinstance(sink.events[-1], Summary)
    assert sum(isinstance(e, Summary) for e in sink.events) == 1
    assert isinstance(sink.events[0], StreamStarted)


def test_silence_gives_no_predictions(tmp_path, run_pipeline):
    path = tmp_path / "silence.wav"
    write_wav(path, silence(5.0))
    sink = run_pipeline([path])
    assert sink.predictions == []
    assert sink.summary.streams[0].speech_s == 0.0
    assert sink.summary.streams[0].duration_s == pytest.approx(5.0, abs=0.05)


def test_a_model_error_ends_the_run_with_the_reason(espeak):
    class BrokenModel:
        labels = ("eng", "fra")

        def classify(self, windows):
            raise RuntimeError("out of memory")

    sink = ListSink()
    engine = make_engine([espeak.wav("en")], BrokenModel(), [sink])
    engine.start()
    assert engine.wait(30.0)
    assert sink.summary.reason.startswith("error: classification failed")
    assert "out of memory" in engine.errors[0]
    assert engine_threads_alive() == []


# -- outputs that fail ----------------------------------------------------------------------


class FailingSink(ListSink):
    """Takes `ok_n` events, then fails the way a full disk or a closed pipe does."""

    def __init__(self, error: OSError, ok_n: int = 3) -> None:
        super().__init__()
        self._error, self._ok_n = error, ok_n

    def handle(self, event) -> None:
        if len(self.events) >= self._ok_n:
            raise self._error
        super().handle(event)


def test_a_failing_output_is_dropped_reported_and_the_run_goes_on(espeak, classifier):
    broken = FailingSink(OSError(errno.ENOSPC, "No space left on device"))
    sink = ListSink()
    engine = make_engine([espeak.wav("en")], classifier, [broken, sink])
    engine.run()
    assert sink.summary.reason == "end of input"  # the run went on to its end
    assert sink.predictions
    assert len(engine.output_errors) == 1 and "No space left" in engine.output_errors[0]
    assert engine.errors == []  # no stream failed
    notices = [n for n in sink.of_type(Notice) if n.severity == "error"]
    assert [n.message for n in notices] == engine.output_errors  # the others were told
    assert broken.closed  # its file was released
    assert engine_threads_alive() == []


def test_a_reader_leaving_stops_the_run(espeak, classifier):
    sink = ListSink()
    path = espeak.wav("en", tail_s=20.0)
    engine = make_engine([path], classifier, [FailingSink(BrokenPipeError()), sink], realtime=True)
    engine.run()
    assert sink.summary.reason == "output closed"
    total_s = soundfile.info(str(path)).duration
    assert sink.summary.streams[0].duration_s < total_s - 15.0  # stopped, not run to the end
    assert engine.output_errors == []  # a reader leaving is not a failure of ours
    assert engine_threads_alive() == []


def test_every_stream_smooths_with_the_configured_settings(espeak, classifier):
    """The smoothing options reach each stream's smoother (a key the engine forgot to pass on
    would silently run the default)."""
    engine = make_engine(
        [espeak.wav("en")],
        classifier,
        smoothing=2.0,
        min_confidence=0.6,
        min_margin=0.3,
        min_dwell=2.5,
        sure_tail=0.85,
    )
    (state,) = engine.streams.values()
    assert state.smoother.settings == SmootherSettings(
        time_constant_s=2.0, min_confidence=0.6, min_margin=0.3, min_dwell_s=2.5, sure_tail=0.85
    )


@pytest.mark.parametrize("peak_dbfs", [-45.0, -10.0, None])
def test_a_stream_too_quiet_for_the_gate_is_said_to_be_once(
    espeak, classifier, tmp_path, peak_dbfs
):
    """Speech under --energy-floor is never speech: a laptop mic with its gain down showed an
    idle meter and nothing else. Ten seconds in, a stream with no speech that is quiet next
    to the floor gets one warning with the level and the options, and they then hear it;
    loud speech, and digital silence (nothing to turn up), get none."""
    speech = espeak.samples("en")
    repeats = math.ceil(2 * QUIET_CHECK_S * SAMPLE_RATE_HZ / len(speech))
    if peak_dbfs is None:
        audio = np.zeros(repeats * len(speech), np.float32)
    else:
        audio = np.tile(speech / np.abs(speech).max() * 10 ** (peak_dbfs / 20), repeats)
    path = tmp_path / "input.wav"
    write_wav(path, audio)

    def quiet_notices(**overrides: object) -> tuple[list[str], ListSink]:
        sink = ListSink()
        make_engine([path], classifier, [sink], **overrides).run()
        notices = [n.message for n in sink.of_type(Notice) if "no speech in the first" in n.message]
        return notices, sink

    notices, sink = quiet_notices()
    if peak_dbfs != -45.0:
        assert notices == []
        return
    (notice,) = notices
    assert "--energy-floor is -50 dBFS" in notice
    assert not any(e.speech for e in sink.of_type(SpeechChange))
    advice = notice.split("try ")[1].split(",")[0].split()
    assert advice[:1] == ["--energy-floor"] and advice[2:3] == ["--vad-engine"]
    notices, sink = quiet_notices(energy_floor=float(advice[1]), vad_engine=advice[3])
    assert notices == [] and any(e.speech for e in sink.of_type(SpeechChange))
