"""The supervisor: the order in which a run's threads start, stop and end, bounded joins, and
the exit code of each way a run ends."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from harness import ListSink, make_engine, non_daemon_threads

from streamlid.events import Summary
from streamlid.run import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_READER_LEFT,
    FORCED_EXIT_AFTER_S,
    INTERRUPTED,
    OUTPUT_CLOSED,
    Interrupted,
    SignalWatch,
    Supervisor,
    exit_code,
    supervise,
)
from streamlid.sinks import JsonlSink


class Owner:
    """A thread owner whose thread ends when stopped (or never, if `stuck`)."""

    def __init__(self, name: str, log: list[str], stuck: bool = False) -> None:
        self.name, self.log, self.stuck = name, log, stuck
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"test-{name}")

    def _run(self) -> None:
        self._stop.wait()
        if self.stuck:
            threading.Event().wait(5.0)

    def start(self) -> None:
        self.log.append(f"start {self.name}")
        self._thread.start()

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        self.log.append(f"join {self.name}")
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


def pipeline(log: list[str], **stuck: bool) -> tuple[Supervisor, dict[str, Owner]]:
    supervisor = Supervisor(join_timeout_s=0.2)
    owners = {}
    for name in ("source", "frontend", "worker", "bus", "view"):
        owners[name] = Owner(name, log, stuck=stuck.get(name, False))
        supervisor.add(name, owners[name])
    return supervisor, owners


def test_starts_downstream_first_and_joins_upstream_first():
    log: list[str] = []
    supervisor, owners = pipeline(log)
    supervisor.start()
    assert log == [f"start {n}" for n in ("view", "bus", "worker", "frontend", "source")]
    log.clear()
    supervisor.stop(through=owners["worker"])  # the producers only
    supervisor.stop(through=owners["worker"])  # idempotent
    assert supervisor.join(through=owners["worker"])
    joined = [x for x in log if x.startswith("join")]
    assert joined == ["join source", "join frontend", "join worker"]
    assert "stop bus" not in log and "stop view" not in log  # the summary is yet to come
    log.clear()
    assert supervisor.end()
    assert log == ["stop bus", "join bus", "stop view", "join view"]
    assert supervisor.end() and supervisor.join()  # nothing is joined twice
    assert log == ["stop bus", "join bus", "stop view", "join view"]


def test_a_thread_that_does_not_end_is_reported_and_left_behind(caplog):
    log: list[str] = []
    supervisor, owners = pipeline(log, frontend=True)
    supervisor.start()
    supervisor.stop()
    with caplog.at_level(logging.WARNING, logger="streamlid.run"):
        assert supervisor.join() is False
    assert "frontend did not stop within 0.2 s" in caplog.text
    assert owners["view"]._thread.ident and not owners["view"]._thread.is_alive()  # the rest ended
    owners["frontend"]._thread.join(10)


def test_owners_are_added_before_start():
    supervisor, _ = pipeline([])
    supervisor.start()
    with pytest.raises(RuntimeError):
        supervisor.add("late", Owner("late", []))
    supervisor.stop()
    supervisor.join()


def _ended(reason: str, errors=(), output_errors=()):
    return SimpleNamespace(
        summary=SimpleNamespace(reason=reason),
        errors=list(errors),
        output_errors=list(output_errors),
    )


def _watch(signum: int | None = None, quit: bool = False) -> SignalWatch:
    watch = SignalWatch()
    if signum is not None:
        watch.received.append(signum)
    watch.quit_requested = quit
    return watch


@pytest.mark.parametrize(
    ("engine", "watch", "code"),
    [
        (_ended("end of input"), _watch(), EXIT_OK),
        (_ended(INTERRUPTED), _watch(quit=True), EXIT_OK),
        (_ended(INTERRUPTED), _watch(2), 130),
        (_ended(INTERRUPTED), _watch(15), 143),
        (_ended(INTERRUPTED), _watch(1), 129),
        (_ended(INTERRUPTED, ["a stream failed"], ["disk full"]), _watch(15), 143),
        (_ended("error: a stream failed", ["a stream failed"]), _watch(), EXIT_FAILED),
        (_ended("end of input", [], ["disk full"]), _watch(), EXIT_OUTPUT),
        (_ended("error: x", ["x"], ["disk full"]), _watch(), EXIT_FAILED),
        (_ended(INTERRUPTED, [], ["disk full"]), _watch(quit=True), EXIT_OUTPUT),
        (_ended(OUTPUT_CLOSED), _watch(), EXIT_READER_LEFT),
        (_ended("end of input"), _watch(15), EXIT_OK),  # the signal came after the end
    ],
)
def test_exit_codes(engine, watch, code):
    assert exit_code(engine, watch) == code


# -- signals against a real engine ------------------------------------------------------------


def test_a_signal_during_the_finishing_does_not_cut_it_short(espeak, classifier, tmp_path):
    """Ctrl-C while the summary is being written: recorded, and the finishing completes."""

    class SignallingSink(ListSink):
        def handle(self, event) -> None:
            super().handle(event)
            if isinstance(event, Summary):  # on the event thread, mid-finishing
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.3)  # the main thread runs the handler meanwhile

    jsonl = tmp_path / "events.jsonl"
    signalling = SignallingSink()
    engine = make_engine([espeak.wav("en")], classifier, [signalling, JsonlSink(str(jsonl))])
    with SignalWatch() as watch:
        code = supervise(engine, watch)
    assert watch.received == [signal.SIGINT]
    assert code == EXIT_OK  # the input had ended: the run was complete
    assert signalling.closed
    lines = jsonl.read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "summary"
    assert non_daemon_threads() == []


def test_a_signal_swallowed_during_the_model_load_still_interrupts_before_the_engine_starts():
    """The handler raises where the main thread is; in a finalizer (seen: the regex module's
    cleanup during a model load) Python only reports the exception and goes on, and the run
    started its engine as if nothing had come, after a traceback ("Exception ignored in")."""
    reported: list[object] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = reported.append
    try:
        _swallow_a_signal_then_stop_recording()
    finally:
        sys.unraisablehook = previous_hook
    assert reported == []  # not printed: it interrupts instead


def _swallow_a_signal_then_stop_recording() -> None:
    with SignalWatch() as watch:

        class Finalized:
            def __del__(self) -> None:
                os.kill(os.getpid(), signal.SIGHUP)  # the handler raises in here: swallowed

        Finalized()  # collected at once: __del__ runs, its exception is only printed
        assert watch.received == [signal.SIGHUP]
        with pytest.raises(Interrupted) as caught:
            watch.record_only()
        assert caught.value.signum == signal.SIGHUP


class StalledModel:
    def __init__(self, model) -> None:
        self.labels = model.labels
        self._model = model
        self.inside = threading.Event()
        self.release = threading.Event()

    def classify(self, windows):
        self.inside.set()
        self.release.wait(30)
        return self._model.classify(windows)


def test_a_second_signal_while_the_model_is_busy_leaves_at_once(espeak, classifier):
    model = StalledModel(classifier)
    engine = make_engine([espeak.wav("en")], model, [ListSink()])
    log: list[str] = []
    terminal = Owner("view", log)
    terminal.start()

    first_at: list[float] = []

    def interrupt_twice() -> None:
        model.inside.wait(30)
        first_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_twice, name="test-signals").start()
    try:
        with SignalWatch() as watch:
            code = supervise(engine, watch, terminal=[terminal])
            left_after_s = time.monotonic() - first_at[0]
        assert code == 130
        assert engine.summary is None  # it did not wait for the model
        assert log[-2:] == ["stop view", "join view"]  # the terminal was given back
        assert left_after_s < FORCED_EXIT_AFTER_S  # on the second signal, not the deadline
        assert not model.release.is_set()
    finally:
        model.release.set()
        assert engine.wait(30)


def test_a_crash_gives_the_terminal_back_and_stops_the_run():
    """A bug in the loop: the exception keeps its traceback, but the live view and the key
    reader are given back first and the engine is asked to stop."""

    class CrashingEngine:
        summary = None

        def __init__(self) -> None:
            self.stopped: list[str] = []
            self.errors: list[str] = []
            self.output_errors: list[str] = []

        def start(self) -> None:
            pass

        def stop(self, reason: str = INTERRUPTED) -> None:
            self.stopped.append(reason)

        def wait(self, timeout_s: float | None = None) -> bool:
            raise RuntimeError("a bug")

    log: list[str] = []
    view, keys = Owner("view", log), Owner("keys", log)
    view.start()
    keys.start()
    engine = CrashingEngine()
    with pytest.raises(RuntimeError, match="a bug"):
        supervise(engine, SignalWatch(), terminal=[keys, view])
    assert engine.stopped == [INTERRUPTED]
    assert {"join view", "join keys"} <= set(log)
    assert not view._thread.is_alive() and not keys._thread.is_alive()
