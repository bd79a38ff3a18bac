"""Alerts from the per-stream figures: when they fire, when they clear, and the command that
hears them (rate-limited, bounded, its failure a warning)."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from streamlid.alerts import DOWN, SILENCE, UNEXPECTED, AlertWatch
from streamlid.bus import EventBus
from streamlid.config import AlertSettings
from streamlid.errors import ConfigError
from streamlid.events import (
    FeedState,
    LanguageChange,
    LanguageScore,
    Notice,
    Prediction,
    SpeechChange,
    StreamAlert,
    StreamEnded,
)
from streamlid.onalert import AlertCommand, parse_command
from streamlid.sinks import PlainPrinter
from streamlid.streams import StreamsReducer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def prediction(t_end_s: float, language: str | None) -> Prediction:
    score = (LanguageScore(language or "eng", "x", 0.9),)
    name = language or "unknown"
    conf = 0.9 if language else 0.0
    return Prediction("a", t_end_s - 3, t_end_s, score, score, language, name, conf, 0.1, None)


class Rig:
    """A reducer and a watch wired as the bus wires them: the watch after the figures, its
    alerts delivered back to both."""

    def __init__(self, settings: AlertSettings) -> None:
        self.clock = FakeClock()
        self.figures = StreamsReducer(clock=self.clock)
        self.alerts: list[StreamAlert] = []
        self.watch = AlertWatch(self.figures, self._deliver, settings, clock=self.clock)

    def _deliver(self, event) -> None:
        self.alerts.append(event)
        self.figures.handle(event)

    def send(self, event) -> None:
        self.figures.handle(event)
        self.watch.handle(event)


def test_unexpected_language_alerts_after_the_configured_time_and_recovers():
    rig = Rig(AlertSettings(expected_languages=("eng",), unexpected_after_s=10.0))
    rig.send(SpeechChange("a", 0.0, True))
    rig.send(prediction(3.0, "eng"))
    rig.send(LanguageChange("a", 3.0, 0.5, None, "eng", "English", 0.9))
    rig.send(prediction(20.0, "fra"))
    rig.send(LanguageChange("a", 20.0, 18.0, "eng", "fra", "French", 0.9))
    for t in range(21, 28):  # 9 s of French: not yet
        rig.send(prediction(float(t), "fra"))
    assert rig.alerts == []
    rig.send(prediction(28.0, "fra"))  # 10 s since 18.0
    assert len(rig.alerts) == 1
    alert = rig.alerts[0]
    assert (alert.kind, alert.active, alert.language, alert.t_s) == (UNEXPECTED, True, "fra", 28)
    assert "French" in alert.message and "eng" in alert.message
    assert rig.figures.figures("a")[0].alerts_active == (UNEXPECTED,)
    rig.send(prediction(40.0, "fra"))
    assert len(rig.alerts) == 1  # raised once, not once per answer
    rig.send(prediction(41.0, "eng"))
    rig.send(LanguageChange("a", 41.0, 39.5, "fra", "eng", "English", 0.9))
    assert [(a.kind, a.active) for a in rig.alerts] == [(UNEXPECTED, True), (UNEXPECTED, False)]
    assert rig.alerts[1].duration_s == pytest.approx(41.0 - 18.0)
    figures = rig.figures.figures("a")[0]
    assert figures.alerts_active == () and figures.alerts_total == 1


def test_an_alerts_times_are_to_the_millisecond_like_every_other_events():
    """--on-alert commands and JSONL readers got 4.773869356999057 where every other event
    says 4.774."""
    rig = Rig(AlertSettings(expected_languages=("eng",), unexpected_after_s=10.0))
    rig.send(SpeechChange("a", 0.0, True))
    rig.send(prediction(3.0, "fra"))
    rig.send(LanguageChange("a", 3.0, 1.0000001, None, "fra", "French", 0.9))
    rig.send(prediction(14.773869356999057, "fra"))
    (alert,) = rig.alerts
    assert (alert.t_s, alert.duration_s) == (14.774, 13.774)


def test_no_expectation_means_no_unexpected_language():
    rig = Rig(AlertSettings(unexpected_after_s=1.0))
    rig.send(prediction(3.0, "fra"))
    rig.send(LanguageChange("a", 3.0, 0.0, None, "fra", "French", 0.9))
    rig.send(prediction(60.0, "fra"))
    assert rig.alerts == []


def test_silence_alerts_in_stream_time_and_clears_on_speech():
    rig = Rig(AlertSettings(silence_after_s=30.0))
    rig.send(SpeechChange("a", 0.0, True))
    rig.send(SpeechChange("a", 5.0, False))
    # The language stays English through the silence (nothing new was heard to change it).
    rig.send(prediction(34.0, "eng"))
    assert rig.alerts == []
    rig.send(prediction(35.0, "eng"))
    assert [(a.kind, a.active) for a in rig.alerts] == [(SILENCE, True)]
    rig.send(SpeechChange("a", 50.0, True))
    assert [(a.kind, a.active) for a in rig.alerts] == [(SILENCE, True), (SILENCE, False)]
    assert rig.alerts[1].duration_s == pytest.approx(45.0)
    assert [a.language for a in rig.alerts] == [None, None]  # a silence names no language


def test_a_feed_down_alerts_in_wall_time_on_the_tick():
    rig = Rig(AlertSettings(down_after_s=20.0))
    rig.send(FeedState("a", 10.0, "disconnected", "connection reset", 0, 0.0))
    rig.clock.now += 19.0
    rig.watch.tick()
    assert rig.alerts == []
    rig.clock.now += 1.5
    rig.watch.tick()
    assert [(a.kind, a.active) for a in rig.alerts] == [(DOWN, True)]
    assert "connection reset" in rig.alerts[0].message
    rig.clock.now += 5.0
    rig.send(FeedState("a", 10.0, "recovered", "", 3, 26.5))
    assert [(a.kind, a.active) for a in rig.alerts] == [(DOWN, True), (DOWN, False)]


def test_an_ended_stream_clears_its_alerts_and_raises_none_after():
    """A file that ended in French, a feed given up on while down: nothing they measure can
    end their alerts, so each held for ever (in the metrics, for Alertmanager) while the run
    went on with its other streams. They clear at the end, and no tick raises one again."""
    from streamlid.metrics import StreamsCollector

    rig = Rig(AlertSettings(expected_languages=("eng",), unexpected_after_s=5.0, down_after_s=5.0))
    rig.send(prediction(10.0, "fra"))
    rig.send(LanguageChange("a", 10.0, 2.0, None, "fra", "French", 0.9))
    rig.send(FeedState("b", 0.0, "disconnected", "connection refused", 0, 0.0))
    rig.clock.now += 6.0
    rig.watch.tick()
    assert [(a.stream, a.kind, a.active) for a in rig.alerts] == [
        ("a", UNEXPECTED, True),
        ("b", DOWN, True),
    ]
    rig.send(StreamEnded("a", 10.0))
    rig.send(StreamEnded("b", 0.0))
    cleared = rig.alerts[2:]
    assert [(a.stream, a.kind, a.active) for a in cleared] == [
        ("a", UNEXPECTED, False),
        ("b", DOWN, False),
    ]
    assert all("stream ended" in a.message for a in cleared)
    assert cleared[0].language == "fra" and cleared[0].duration_s == pytest.approx(8.0)
    assert cleared[1].duration_s == pytest.approx(6.0)
    rig.clock.now += 600.0
    rig.watch.tick()
    assert len(rig.alerts) == 4  # an ended feed is not down again
    scraped = {
        (sample.labels["stream"], sample.labels["kind"]): sample.value
        for family in StreamsCollector(rig.figures).collect()
        if family.name == "streamlid_alert_active"
        for sample in family.samples
    }
    assert scraped[("a", UNEXPECTED)] == 0.0 and scraped[("b", DOWN)] == 0.0
    # The given-up feed's outage ended with it: it does not grow with the run's wall time.
    assert rig.figures.figures("b")[0].outage_s == pytest.approx(6.0)
    out = io.StringIO()
    PlainPrinter(out).handle(cleared[1])  # the log says so: not "recovered", it never was
    assert "cleared down: stream ended (down for 6 s)" in out.getvalue()


def test_alerts_from_a_sink_reach_every_sink_through_the_bus():
    """The watch publishes from the event thread: delivered after the event in hand, even
    with the queue full, and to the sinks before and after it."""
    figures = StreamsReducer()
    seen = []

    class Collect:
        def handle(self, event) -> None:
            seen.append(event)

        def close(self) -> None:
            pass

    bus: EventBus
    watch = AlertWatch(figures, lambda e: bus.publish(e), AlertSettings(silence_after_s=1.0))
    bus = EventBus([figures, watch, Collect()], capacity=2)
    bus.start()
    for t in range(50):
        bus.publish(SpeechChange("a", float(t), False))
    assert bus.flush(5.0)
    bus.stop()
    assert bus.join(5.0)
    alerts = [e for e in seen if isinstance(e, StreamAlert)]
    assert len(alerts) == 1 and alerts[0].kind == SILENCE
    assert figures.figures("a")[0].alerts_total == 1


# -- the command -----------------------------------------------------------------------------


def alert(kind: str = UNEXPECTED, active: bool = True, stream: str = "a") -> StreamAlert:
    return StreamAlert(stream, 12.0, kind, active, "French for 10 s", "fra", 10.0)


def recorder_argv(tmp_path, exit_code: int = 0, sleep_s: float = 0.0) -> list[str]:
    """A Python command that appends its stdin as one line to calls.jsonl."""
    script = tmp_path / "record.py"
    script.write_text(
        "import sys, time\n"
        f"time.sleep({sleep_s})\n"
        "data = sys.stdin.read()\n"
        f"open({str(tmp_path / 'calls.jsonl')!r}, 'a').write(data.strip() + '\\n')\n"
        "print('recorder says no', file=sys.stderr)\n"
        f"sys.exit({exit_code})\n"
    )
    return [sys.executable, str(script)]


def calls(tmp_path) -> list[dict]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_command(command: AlertCommand, events) -> None:
    command.start()
    for event in events:
        command.handle(event)
    # As the engine does before it stops: every alert handed over runs (stop alone gives the
    # queue only STOP_GRACE_S, which a loaded machine's Python start-ups can exceed).
    assert command.drain(30.0)
    command.stop()
    assert command.join(10.0)


def test_the_command_gets_the_alert_as_json_and_is_rate_limited(tmp_path):
    clock = FakeClock()
    published = []
    command = AlertCommand(recorder_argv(tmp_path), published.append, 60.0, clock=clock)
    events = []
    events.append(alert())  # sent
    events.append(alert(active=False))  # its recovery: sent
    events.append(alert())  # within 60 s of the first: suppressed
    events.append(alert(active=False))  # recovery of a suppressed raise: not sent
    events.append(alert(kind=SILENCE))  # another kind: its own limit, sent
    events.append(alert(stream="b"))  # another stream: sent
    command.start()
    for event in events:
        command.handle(event)
    clock.now += 61.0
    command.handle(alert())  # after the interval: sent, saying one was suppressed
    assert command.drain(30.0)
    command.stop()
    assert command.join(10.0)
    got = calls(tmp_path)
    assert [(c["stream"], c["kind"], c["active"]) for c in got] == [
        ("a", UNEXPECTED, True),
        ("a", UNEXPECTED, False),
        ("a", SILENCE, True),
        ("b", UNEXPECTED, True),
        ("a", UNEXPECTED, True),
    ]
    assert got[0]["type"] == "alert" and got[0]["language"] == "fra"
    assert got[-1]["suppressed"] == 1
    assert published == []  # no failures


def test_a_failing_command_is_a_warning_and_the_next_alert_still_runs(tmp_path):
    published = []
    command = AlertCommand(recorder_argv(tmp_path, exit_code=3), published.append, 0.0)
    run_command(command, [alert(), alert(kind=SILENCE)])
    assert len(calls(tmp_path)) == 2
    assert all(isinstance(n, Notice) and n.severity == "warning" for n in published)
    assert "exit status 3: recorder says no" in published[0].message
    assert "the run goes on" in published[0].message


def test_a_command_that_hangs_is_stopped_after_its_timeout(tmp_path):
    published = []
    command = AlertCommand(
        recorder_argv(tmp_path, sleep_s=30), published.append, 0.0, timeout_s=0.5
    )
    started = time.monotonic()
    command.start()
    command.handle(alert())
    while not published and time.monotonic() - started < 10:
        time.sleep(0.05)
    command.stop()
    assert command.join(5.0)
    assert "took longer than 0.5 s" in published[0].message
    assert time.monotonic() - started < 5


def test_a_command_that_hangs_in_a_child_of_its_own_is_stopped_whole(tmp_path):
    """A shell script whose `sleep` outlives the shell: killing the shell alone left the sleep
    holding the output pipes, the wait hung for its whole length, and later alerts' commands
    never ran. The command's whole process group goes."""
    script = tmp_path / "hang.sh"
    script.write_text(
        f"echo ran >> {tmp_path / 'ran.log'}\nsleep 60 &\necho $! >> {tmp_path / 'pids'}\nwait\n"
    )
    published = []
    command = AlertCommand(["/bin/sh", str(script)], published.append, 0.0, timeout_s=0.5)
    command.start()
    try:
        command.handle(alert())
        command.handle(alert(kind=SILENCE))
        assert command.drain(30.0)  # the old wait lasted the sleep's 60 s
    finally:
        command.stop()
        assert command.join(10.0)
    assert (tmp_path / "ran.log").read_text().count("ran") == 2  # the second one ran too
    assert len(published) == 2 and all("took longer than 0.5 s" in n.message for n in published)
    for pid in (tmp_path / "pids").read_text().split():
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "State:\tZ" in status.read_text()  # gone, or a zombie


def test_hurry_stops_a_running_command_at_once_and_says_so(tmp_path):
    """A second Ctrl-C at the run's end: a command that would run for half a minute (within
    its timeout) is stopped now, so the drain the end waits for is over."""
    published = []
    command = AlertCommand(
        recorder_argv(tmp_path, sleep_s=30), published.append, 0.0, timeout_s=60.0
    )
    command.start()
    try:
        command.handle(alert())
        command.handle(alert(kind=SILENCE))  # queued behind it: left unsent
        assert not command.drain(1.0)  # it is running
        command.hurry()
        assert command.drain(10.0)
    finally:
        command.stop()
        assert command.join(10.0)
    (notice,) = published
    assert "stopped unfinished, as the run ended" in notice.message
    assert "the run goes on" not in notice.message
    assert calls(tmp_path) == []


def test_a_missing_program_is_refused_before_the_run():
    with pytest.raises(ConfigError, match="not found"):
        parse_command("no-such-program-xyz --flag")
    with pytest.raises(ConfigError, match="cannot be split"):
        parse_command("notify 'unclosed")


def test_the_live_view_shows_active_alerts_and_a_feed_down_until_they_clear():
    from streamlid.ui.state import ViewState

    state = ViewState()
    state.handle(SpeechChange("a", 0.0, True))
    state.handle(StreamAlert("a", 12.0, UNEXPECTED, True, "French (fra) for 10 s; expected eng"))
    state.handle(FeedState("a", 12.0, "retrying", "connection refused", 2, 0.0))
    shown = [w.message for w in state.snapshot().streams[0].warnings]
    assert "alert: French (fra) for 10 s; expected eng" in shown
    assert any(m.startswith("feed down") and "connection refused" in m for m in shown)
    state.handle(StreamAlert("a", 20.0, UNEXPECTED, False, "an expected language again"))
    state.handle(FeedState("a", 20.0, "recovered", "", 3, 8.0))
    shown = [w.message for w in state.snapshot().streams[0].warnings]
    assert not any(m.startswith(("alert:", "feed ")) for m in shown)
