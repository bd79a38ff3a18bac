"""Network feeds: served on 127.0.0.1 only, dropped, silenced, bursting and finite.

Every server is a context manager and every engine is stopped and joined in a finally, so no
test leaves a thread, a socket or an ffmpeg child behind (checked: ffmpeg_children).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import probe_duration_s, silence, write_wav
from feed_servers import LoopbackFeed, ffmpeg_children, ffmpeg_processes, make_mp3, wait_until
from harness import REPO_ROOT, ListSink, make_engine

from streamlid.audio.feeds import BEHIND_FILLED_S, BURST_ALLOWANCE_S, Backoff, FeedPacer
from streamlid.audio.ring import RingBuffer
from streamlid.audio.urls import protocol_whitelist, redact
from streamlid.engine import Engine
from streamlid.errors import AudioSourceError
from streamlid.events import FeedState, Notice, Prediction, StreamAlert

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
FAST_RETRY = {"stall_timeout": 2.0, "reconnect_min": 0.2, "reconnect_max": 1.0}


@pytest.fixture(scope="module")
def feed_mp3(espeak, tmp_path_factory) -> Path:
    """About 12 s of English speech with short pauses, as a loopable 32 kbit/s MP3."""
    speech = espeak.samples("en")
    audio = np.concatenate([speech, silence(0.5)] * max(1, round(12 / (len(speech) / 16000))))
    return make_mp3(audio, tmp_path_factory.mktemp("feed"))


class Running:
    """An engine running in the background on one or more sources; stopped on exit."""

    def __init__(self, classifier, specs, **overrides) -> None:
        self.sink = ListSink()
        self.engine = make_engine(specs, classifier, [self.sink], **overrides)

    def __enter__(self) -> Running:
        self.engine.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.stop()
        assert self.engine.wait(10.0)

    def feed_states(self) -> list[FeedState]:
        return [e for e in list(self.sink.events) if isinstance(e, FeedState)]

    def states(self) -> list[str]:
        return [e.state for e in self.feed_states()]


# -- pure parts ---------------------------------------------------------------------------------


def test_redaction_removes_credentials_and_tokens_from_any_text():
    url = "https://alice:s3cret@radio.example/live.mp3?token=T0K&bitrate=128&api_key=K3Y"
    shown = redact(url)
    for secret in ("alice", "s3cret", "T0K", "K3Y"):
        assert secret not in shown
    assert shown == "https://***@radio.example/live.mp3?token=***&bitrate=128&api_key=***"
    message = f"error: {url}: Connection refused"
    assert "s3cret" not in redact(message) and redact(message).endswith("Connection refused")
    said = redact("http://h/w.mp3?token=T0K: Input/output error")
    assert said == "http://h/w.mp3?token=***: Input/output error"  # the message keeps its ":"
    assert "T0K" not in redact("http://h/w.mp3?token=T0K:more&x=1")
    assert redact(shown) == shown
    assert redact("/music/a@b.mp3") == "/music/a@b.mp3"  # a path is no URL


def test_redaction_covers_passwords_with_at_signs_and_the_secrets_of_other_schemes():
    """ffmpeg takes the last "@" before the path as the end of user:password (a password may
    hold a raw "@"); SRT's encryption key is its `passphrase`, Wowza's token `wmsAuthSign`, and
    a token may ride in the fragment."""
    shown = redact("http://user:p@ss@radio.example/live.mp3")
    assert shown == "http://***@radio.example/live.mp3"
    shown = redact("srt://radio.example:9000?passphrase=Secr3tKey&streamid=studio")
    assert shown == "srt://radio.example:9000?passphrase=***&streamid=studio"
    assert "W0wza" not in redact("https://h/live/playlist.m3u8?wmsAuthSign=W0wza")
    assert "Fr4g" not in redact("https://h/live.mp3#access_token=Fr4g")
    assert redact("mail admin@example.org: http://h/x") == "mail admin@example.org: http://h/x"


@pytest.mark.parametrize("url", ["ftp://ann:Pw0rd@h/x.mp3", "htps://h/x.mp3?token=Pw0rd"])
def test_a_url_of_a_scheme_not_read_says_so_and_keeps_its_secrets(url):
    """Not a file that is missing, printed whole with its password: a URL of a kind that is
    not read (or a typo in its scheme), said so, redacted."""
    from streamlid.audio.files import open_file_source

    with pytest.raises(AudioSourceError) as raised:
        open_file_source(url, realtime=True)
    message = str(raised.value)
    assert "Pw0rd" not in message and "does not exist" not in message
    assert f"({url.split(':')[0]}://)" in message and "http://" in message


def test_each_scheme_may_use_only_its_own_protocols():
    assert "file" not in protocol_whitelist("http://h/x").split(",")
    assert set(protocol_whitelist("https://h/x").split(",")) >= {"https", "tls", "tcp"}
    assert protocol_whitelist("srt://h:1") == "srt,udp"
    assert protocol_whitelist("HTTPS://h/x") == protocol_whitelist("https://h/x")


def test_ffmpeg_gets_the_scheme_in_lower_case_and_the_rest_as_written():
    from streamlid.audio.urls import for_ffmpeg

    assert for_ffmpeg("HTTP://Alice:Pw@Radio.Example/Live.MP3?Token=X") == (
        "http://Alice:Pw@Radio.Example/Live.MP3?Token=X"
    )
    assert for_ffmpeg("Srt://h:1") == "srt://h:1"


def ffmpeg_saying(*lines: str, input_url: str = "http://h/x.ogg", killed: bool = False):
    """An FfmpegChild whose "ffmpeg" (a shell) writes `lines` to stderr and ends, read whole.
    `killed`: it waits after them instead, until what they say makes the child kill it."""
    from streamlid.audio.ffmpeg import FfmpegChild

    script = "cat >&2 <<'END'\n" + "\n".join(lines) + "\nEND\n" + ("sleep 10\n" if killed else "")
    child = FfmpegChild("sh", ["-c", script, "sh", "-i", input_url], "test")
    assert child.wait_exit(5.0) == (-signal.SIGKILL if killed else 0)
    child.close()
    return child


def test_only_error_lines_count_as_ffmpeg_errors_whoever_wrote_them():
    """A context named with capitals (AVIOContext, SWR) or a slash (ffmpeg 7's in#0/mp3) does
    not turn its verbose or warning lines into errors (each error is a 'damaged data' count)."""
    child = ffmpeg_saying(
        "[AVIOContext @ 0x55ec54ee0c80] [verbose] Statistics: 4096 bytes read, 0 seeks",
        "[auto_aresample_0 @ 0x1] [SWR @ 0x2] [warning] a resampler remark",
        "[in#0/mp3 @ 0x3] [verbose] EOF while reading input",
        "[mp3float @ 0x4] [error] Header missing",
    )
    assert child.errors_n == 1
    assert list(child.problems) == ["[mp3float @ 0x4] Header missing"]


def test_ffmpeg_says_whether_reading_its_input_ended_on_an_error():
    """What a feed's end is judged on: a damaged frame is skipped, but an HTTP response cut
    short, ffmpeg 5's "<input>: <error>" and ffmpeg 6.1+'s "Error during demuxing" each say the
    input stopped short; the bytes read and the input's format are kept."""
    skipped = ffmpeg_saying(
        "[info] Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'http://h/x.ogg':",
        "[mp3float @ 0x4] [error] Header missing",
        "[AVIOContext @ 0x5] [verbose] Statistics: 4096 bytes read, 0 seeks",
    )
    assert not skipped.input_failed
    assert skipped.input_format == "mov,mp4,m4a,3gp,3g2,mj2" and skipped.bytes_read == 4096
    for last_word in (
        "[http @ 0x1] [error] Stream ends prematurely at 10, should be 20",
        "[error] http://h/x.ogg: Connection reset by peer",
        "[in#0/ogg @ 0x2] [error] Error during demuxing: Input/output error",
    ):
        assert ffmpeg_saying(last_word).input_failed, last_word
    # A response cut short that ffmpeg asks the rest of (-reconnect): the input goes on.
    resumed = ffmpeg_saying(
        "[http @ 0x1] [error] Stream ends prematurely at 10, should be 20",
        "[http @ 0x1] [warning] Will reconnect at 10 in 0 second(s), error=Input/output error.",
    )
    assert not resumed.input_failed
    assert resumed.cut_short == (10, 20) and resumed.resumes_n == 1
    # ffmpeg 5's words for the end of a response with no length (a live stream): no file cut,
    # so it is reconnected to.
    live = ffmpeg_saying(
        "[http @ 0x1] [error] Stream ends prematurely at 16000, should be 18446744073709551615"
    )
    assert live.input_failed and live.cut_short is None and not live.live_cut
    assert live.server_closed  # said as the server ending it, not as "Input/output error"
    # A live stream given a length it never reaches: no file cut either, and ffmpeg, which would
    # ask for the rest of it with range requests until the stall timeout, is ended at once.
    live = ffmpeg_saying(
        "[http @ 0x1] [error] Stream ends prematurely at 16000, should be 2147483647", killed=True
    )
    assert live.input_failed and live.cut_short is None and live.live_cut


def test_a_connection_that_failed_below_http_is_said_by_why_not_by_input_output_error():
    """ffmpeg's last word on a host name that does not resolve is "<url>: Input/output
    error"; the reason given is the network layer's line before it. An HTTP error keeps
    ffmpeg's own last word."""
    unresolved = ffmpeg_saying(
        "[tcp @ 0x5589eb0e85c0] [error] Failed to resolve hostname h: Name or service not known",
        "[error] http://h/x.ogg: Input/output error",
    )
    why = "Failed to resolve hostname h: Name or service not known"
    assert unresolved.connection_problem == why
    not_found = ffmpeg_saying(
        "[http @ 0x1] [warning] HTTP error 404 Not Found",
        "[error] http://h/x.ogg: Server returned 404 Not Found",
    )
    assert not_found.connection_problem == "http://h/x.ogg: Server returned 404 Not Found"
    bare = ffmpeg_saying("[error] http://h/x.ogg: Input/output error")
    assert bare.connection_problem == "http://h/x.ogg: Input/output error"


def test_backoff_doubles_within_bounds_with_jitter():
    backoff = Backoff(0.5, 8.0, random.Random(1))
    delays = [backoff.delay_s(n) for n in range(1, 12)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays[0] <= 0.5 and delays[-1] >= 6.0  # grows to the cap, jitter stays below it
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jittered, not in lockstep


def test_pacer_spreads_a_burst_over_real_time_and_fills_an_outage():
    now = [100.0]
    waits: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            now[0] += timeout
            return False

    pacer = FeedPacer(1000, Stop(), clock=lambda: now[0])
    for _ in range(200):  # 20 s of audio arriving at once
        pacer.wait_for(100)
    assert now[0] - 100.0 == pytest.approx(20.0 - BURST_ALLOWANCE_S, abs=0.2)
    now[0] += 5.0  # the feed drops for 5 s
    # The burst allowance already ran ahead; the rest of the gap is silence.
    assert pacer.fill_to_now() == pytest.approx(5000 - BURST_ALLOWANCE_S * 1000, abs=150)


def test_pacer_keeps_a_feed_slower_than_real_time_on_the_wall_clock():
    """A feed short of bandwidth: 0.1 s of audio every 0.2 s for ten minutes, each gap far too
    short to be an outage. Its shortfall is silence once it adds up, so stream time stays
    within BEHIND_FILLED_S of the wall clock; said once, not at every fill. Before, stream time
    fell to half the wall clock, unsaid."""
    now = [100.0]
    pacer = FeedPacer(1000, threading.Event(), clock=lambda: now[0])
    ring = RingBuffer(700 * 1000)
    said: list[str] = []
    for _ in range(3000):
        pacer.wait_for(100)  # never waits: the feed is behind
        ring.write(np.zeros(100, np.float32), block=False)
        now[0] += 0.2
        if message := pacer.close_gap(ring, 0.2) or pacer.catch_up(ring):
            said.append(message)
    wall_s = now[0] - 100.0
    assert wall_s - BEHIND_FILLED_S <= ring.write_index / 1000 <= wall_s
    assert len(said) == 1 and "slower than real time" in said[0], said


# -- against loopback servers ------------------------------------------------------------------


@needs_ffmpeg
def test_a_killed_server_is_reconnected_and_answers_resume(classifier, feed_mp3):
    """Kill the server mid-stream, leave it down 2 s, restart it: a disconnect with its reason,
    retries, a recovery with the outage counted, and fresh predictions after it."""
    with LoopbackFeed(feed_mp3.read_bytes()) as feed:
        with Running(classifier, [feed.url], realtime=True, **FAST_RETRY) as run:
            assert wait_until(lambda: len(run.sink.predictions) >= 2, 20.0)
            feed.kill()
            assert wait_until(lambda: "retrying" in run.states(), 10.0)
            time.sleep(2.0)
            feed.restart()
            assert wait_until(lambda: "recovered" in run.states(), 15.0)
            at_recovery = len(run.sink.events)
            assert wait_until(
                lambda: any(isinstance(e, Prediction) for e in run.sink.events[at_recovery:]),
                15.0,
            )
        states = run.feed_states()
        assert [s.state for s in states][:2] == ["connected", "disconnected"]
        disconnected = states[1]
        # Not ffmpeg's last word, "<url>: Input/output error", which says nothing of why.
        assert disconnected.reason == "the server ended the stream"
        retries = [s for s in states if s.state == "retrying"]
        assert [s.attempt for s in retries] == list(range(1, len(retries) + 1))
        (recovered,) = [s for s in states if s.state == "recovered"]
        assert recovered.outage_s >= 2.0
        # With --realtime the outage is silence in stream time: it stays on the wall clock.
        assert recovered.t_s - disconnected.t_s >= 2.0 - BURST_ALLOWANCE_S
        summary = run.sink.summary.streams[0]
        assert summary.skipped_windows == 0
    assert ffmpeg_children(os.getpid()) == []


@needs_ffmpeg
def test_a_pause_shorter_than_a_stall_is_silence_in_stream_time_and_said(classifier, feed_mp3):
    """The server sends nothing for 4 s, then goes on at real time (under --stall-timeout, so
    no reconnect). The audio of those 4 s never comes: the stream stays on the wall clock with
    silence, and says so once. Before, its stream time fell 4 s behind for good."""
    with LoopbackFeed(feed_mp3.read_bytes(), pause=(3.0, 4.0)) as feed:
        started = time.monotonic()
        with Running(classifier, [feed.url], realtime=True) as run:

            def said() -> list[Notice]:
                events = list(run.sink.events)
                return [e for e in events if isinstance(e, Notice) and "no audio for" in e.message]

            assert wait_until(lambda: said(), 20.0), "the gap was not said"
            time.sleep(2.0)
        wall_s = time.monotonic() - started
        (notice,) = said()
        assert notice.severity == "warning" and "then it went on" in notice.message
        assert feed.connections == 1  # no reconnect: the feed never stalled
        stream_s = run.sink.summary.streams[0].duration_s
        # Stream time from the first audio (ffmpeg's start takes a little wall time) to the
        # stop; it may run up to the burst allowance ahead.
        assert wall_s - 2.5 < stream_s < wall_s + BURST_ALLOWANCE_S + 0.5, (wall_s, stream_s)


@needs_ffmpeg
def test_ffmpeg_killed_is_said_as_such_not_as_the_server_ending(classifier, feed_mp3):
    """Killing the feed's own ffmpeg was reported as "the server ended the stream"."""
    with LoopbackFeed(feed_mp3.read_bytes()) as feed:
        with Running(classifier, [feed.url], realtime=True, **FAST_RETRY) as run:
            assert wait_until(lambda: len(run.sink.predictions) >= 1, 20.0)
            for pid in ffmpeg_children(os.getpid()):
                os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda: "recovered" in run.states(), 20.0)
        (down,) = [s for s in run.feed_states() if s.state == "disconnected"]
        assert down.reason == f"ffmpeg was ended by signal {int(signal.SIGKILL)}"


@needs_ffmpeg
def test_one_feed_dropping_does_not_disturb_the_others(classifier, feed_mp3):
    data = feed_mp3.read_bytes()
    with LoopbackFeed(data) as steady, LoopbackFeed(data) as flaky:
        with Running(classifier, [steady.url, flaky.url], realtime=True, **FAST_RETRY) as run:
            assert wait_until(lambda: len(run.sink.predictions) >= 4, 20.0)
            flaky.kill()
            assert wait_until(lambda: "retrying" in run.states(), 10.0)
            before = len([p for p in run.sink.predictions if p.stream == steady.url])
            time.sleep(3.0)
            after = len([p for p in run.sink.predictions if p.stream == steady.url])
        assert after > before  # the steady feed kept being classified
        assert {s.stream for s in run.feed_states() if s.state != "connected"} == {flaky.url}
    assert ffmpeg_children(os.getpid()) == []


@needs_ffmpeg
def test_a_burst_at_connect_is_paced_and_no_window_is_skipped(classifier, feed_mp3):
    """The server sends 20 s at once (Icecast's burst-on-connect), then real time. Paced at
    real time, the burst is heard, not superseded: no window skipped, nothing dropped."""
    with LoopbackFeed(feed_mp3.read_bytes(), burst_s=20.0) as feed:
        with Running(classifier, [feed.url], realtime=True, max_lag=3.0) as run:
            assert wait_until(lambda: len(run.sink.predictions) >= 6, 20.0)
            time.sleep(2.0)
        stream = run.sink.summary.streams[0]
        assert stream.skipped_windows == 0
        assert stream.overflow_s == 0.0
        assert stream.windows >= 6


def run_to_end(specs, classifier, timeout_s: float = 60.0, **overrides) -> ListSink:
    """Runs an engine on `specs` in fast mode until its input ends (failing after timeout_s);
    it is stopped and joined whatever happens."""
    return run_engine(specs, classifier, timeout_s, **overrides)[1]


def run_engine(specs, classifier, timeout_s: float = 60.0, **overrides) -> tuple[Engine, ListSink]:
    """`run_to_end`, with the engine too (its errors)."""
    sink = ListSink()
    engine = make_engine(specs, classifier, [sink], **overrides)
    engine.start()
    try:
        assert engine.wait(timeout_s), "the run did not end (a feed still being retried?)"
    finally:
        engine.stop()
        engine.wait(10.0)
    return engine, sink


@needs_ffmpeg
def test_a_finite_http_file_in_fast_mode_is_read_whole_and_ends(classifier, feed_mp3, tmp_path):
    """A file served with its length, in fast mode: read as fast as the model allows, every
    window classified, and its end is the end (not a drop to reconnect)."""
    with LoopbackFeed(feed_mp3.read_bytes(), mode="file") as feed:
        started = time.monotonic()
        sink = run_to_end([feed.url], classifier, **FAST_RETRY)
        elapsed_s = time.monotonic() - started
    stream = sink.summary.streams[0]
    assert sink.summary.reason == "end of input"
    assert stream.duration_s >= 10.0
    assert stream.skipped_windows == 0
    assert elapsed_s < stream.duration_s  # faster than real time
    assert [s.state for s in sink.of_type(FeedState)] == ["connected"]
    assert feed.connections == 1


@pytest.fixture(scope="module")
def served_files(espeak, tmp_path_factory) -> dict[str, Path]:
    """English speech as espeak-ng writes it (9.4 s at 22.05 kHz) and as the files people make
    of it with ffmpeg: Ogg Vorbis (whose length ffmpeg, when it cannot seek, estimates from the
    nominal bit rate: 1.4 s too long here), Ogg Opus (whose length it cannot estimate at all)
    and M4A (whose index ffmpeg writes at the end)."""
    from audio_helpers import SENTENCES, encode_with_ffmpeg, espeak_wav

    folder = tmp_path_factory.mktemp("served")
    files = {"wav": espeak_wav(SENTENCES["en"], "en", folder)}
    for kind in ("ogg", "opus", "m4a"):
        files[kind] = folder / f"talk.{kind}"
        encode_with_ffmpeg(files["wav"], files[kind])
    return files


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["ogg", "opus"])
def test_an_ogg_file_served_with_its_length_is_read_once_and_ends(classifier, served_files, kind):
    """A file served the way `python -m http.server` serves it (its length, no range requests):
    when the server has sent all of it, that is the end, however well ffmpeg could guess its
    duration beforehand (from the bit rate for Vorbis, not at all for Opus). It is not fetched
    and heard again and again."""
    import soundfile

    whole_s = soundfile.info(str(served_files["wav"])).duration
    with LoopbackFeed(served_files[kind].read_bytes(), mode="file") as feed:
        sink = run_to_end([feed.url], classifier, reconnect_attempts=0)
    assert sink.summary.reason == "end of input"
    assert [s.state for s in sink.of_type(FeedState)] == ["connected"]
    assert sink.summary.streams[0].duration_s == pytest.approx(whole_s, abs=0.5)
    assert sink.summary.streams[0].windows > 0


@needs_ffmpeg
def test_an_m4a_that_needs_seeking_from_a_server_that_cannot_ends_with_the_fix(
    classifier, served_files
):
    """ffmpeg writes an M4A's index at its end; from a server that ignores range requests
    ffmpeg reads all of it and cannot go back for the audio. Fetching it again cannot help:
    the stream ends at once with one error that says what to do, instead of retrying forever."""
    with LoopbackFeed(served_files["m4a"].read_bytes(), mode="file") as feed:
        engine, sink = run_engine([feed.url], classifier, 30.0, **FAST_RETRY)
    (error,) = engine.errors
    assert "decoded no audio" in error and "range requests" in error and "faststart" in error
    assert sink.summary.reason.startswith("error:")
    assert sink.of_type(FeedState) == []  # never up, never retried
    assert feed.connections <= 2  # the fetch, and the question of its length


WEB_PAGE = b"<!doctype html><html><body><audio src='radio.mp3'></audio></body></html>\n" * 90


@needs_ffmpeg
@pytest.mark.parametrize(
    ("body", "words"),
    [
        # Random bytes that ffmpeg, going by the name (live.mp3), finds a frame or two in.
        (np.random.default_rng(1).bytes(300_000), ["decoded no audio", "Invalid data"]),
        (WEB_PAGE, ["not audio that ffmpeg can decode", "not a web page"]),
    ],
    ids=["random-bytes", "web-page"],
)
def test_a_url_that_serves_no_audio_ends_with_ffmpegs_verdict_not_retries(classifier, body, words):
    """What the server sends is not audio: each fetch would say the same, so the stream ends
    at once with one error saying so, instead of being reconnected for ever (the frame or two
    ffmpeg found in the random bytes made every fetch a "recovery")."""
    with LoopbackFeed(body, mode="file") as feed:
        engine, sink = run_engine([feed.url], classifier, 30.0, **FAST_RETRY)
    (error,) = engine.errors
    for word in words:
        assert word in error
    assert "retrying" not in [s.state for s in sink.of_type(FeedState)]
    assert feed.connections <= 2  # the fetch, and the question of its length
    assert ffmpeg_children(os.getpid()) == []


@needs_ffmpeg
def test_a_response_with_no_length_that_ends_is_reconnected(classifier, feed_mp3):
    """A response without a length that ends (nginx in front of Icecast ends a mount so) is a
    live stream's drop: reconnected, as a live stream is."""
    with LoopbackFeed(feed_mp3.read_bytes(), mode="chunked") as feed:
        with Running(classifier, [feed.url], **FAST_RETRY) as run:
            assert wait_until(lambda: "recovered" in run.states(), 30.0), run.states()
        assert run.states()[:3] == ["connected", "disconnected", "retrying"]
    assert ffmpeg_children(os.getpid()) == []


@needs_ffmpeg
def test_a_live_stream_with_a_length_it_never_reaches_is_reconnected_at_once(classifier, feed_mp3):
    """A stream server that gives its live stream a length of 2**31-1 and says it takes range
    requests, which it ignores, drops the connection. ffmpeg asked for the rest with range
    requests, refused one after another, until the stall timeout: 8 s without audio here,
    where reconnecting takes a moment."""
    with LoopbackFeed(feed_mp3.read_bytes(), mode="live-length", cut_after_s=3.0) as feed:
        settings = {**FAST_RETRY, "stall_timeout": 8.0}
        with Running(classifier, [feed.url], realtime=True, **settings) as run:
            assert wait_until(lambda: "recovered" in run.states(), 20.0), run.states()
        states = run.feed_states()
        assert [s.state for s in states][:2] == ["connected", "disconnected"]
        assert "stalled" not in states[1].reason
        assert "signal" not in states[1].reason
        (recovered, *_) = [s for s in states if s.state == "recovered"]
        assert recovered.outage_s < 3.0, recovered
    assert ffmpeg_children(os.getpid()) == []


@needs_ffmpeg
def test_a_feed_that_keeps_dropping_soon_after_it_comes_back_waits_longer_each_time(
    classifier, feed_mp3
):
    """A server that cuts every connection 2 s in (a flapping server, or one that replays the
    start of a recording): each drop was retried after --reconnect-min, as if the feed had
    been steady, for ever; the wait now grows as it does while the feed stays down."""
    with LoopbackFeed(feed_mp3.read_bytes(), cut_after_s=2.0) as feed:
        settings = {**FAST_RETRY, "reconnect_min": 0.2, "reconnect_max": 4.0}
        with Running(classifier, [feed.url], realtime=True, **settings) as run:

            def first_waits_s() -> list[float]:
                """The wait before the first attempt after each spell the feed was up (more
                attempts, each failing, may follow a spell on a loaded machine)."""
                retries = [s for s in run.feed_states() if s.state == "retrying"]
                return [
                    float(s.reason.rsplit(" in ", 1)[1].split()[0])
                    for s in retries
                    if s.attempt == 1
                ]

            assert wait_until(lambda: len(first_waits_s()) >= 3, 60.0), run.states()
        first, _, third = first_waits_s()[:3]
        assert first <= 0.2
        assert third >= 0.2 * 2**2 * 0.75 - 0.05, first_waits_s()  # doubled twice, less jitter
    assert ffmpeg_children(os.getpid()) == []


@contextlib.contextmanager
def serving_folder(folder: Path):
    """`python -m http.server` for `folder`, on 127.0.0.1, stopped on exit."""
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)


@needs_ffmpeg
def test_a_live_hls_stream_that_is_given_its_end_is_down_not_ended(espeak, classifier, tmp_path):
    """An HLS encoder that stops (a restart, maintenance) ends its playlist: the stream ended
    there for good, as a recording read whole, with no alert; fetched again, the playlist is
    a finished recording whose audio is the past. It is a feed down until it is live again."""
    wav = tmp_path / "talk.wav"
    write_wav(wav, np.concatenate([espeak.samples("en"), silence(0.5)] * 2)[: 16000 * 8])
    hls = tmp_path / "hls"
    hls.mkdir()
    hls_args = ["-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_list_size", "4"]
    playlist = str(hls / "live.m3u8")
    encoder = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(wav), *hls_args, playlist],
        stdin=subprocess.DEVNULL,
    )
    try:
        with serving_folder(hls) as root:
            assert wait_until(lambda: (hls / "live.m3u8").exists(), 10.0)
            with Running(classifier, [root + "/live.m3u8"], realtime=True, **FAST_RETRY) as run:
                assert encoder.wait(30.0) == 0  # the playlist is given its end
                finished = "the server serves a finished recording"
                assert wait_until(lambda: any(finished in s.reason for s in run.feed_states()), 20)
                assert run.engine.running  # not ended: down, and retried
            assert "connected" in run.states() and "recovered" not in run.states()
    finally:
        encoder.kill()
        encoder.wait(10.0)
    assert ffmpeg_children(os.getpid()) == []


def _served(kind: str, served_files: dict[str, Path], feed_mp3: Path) -> Path:
    return feed_mp3 if kind == "mp3" else served_files[kind]


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_a_file_cut_short_is_resumed_with_a_range_request(classifier, served_files, feed_mp3, kind):
    """A file whose connection drops at half its length, from a server that answers range
    requests: the rest is asked for from where it stopped (`Range: bytes=N-`) and its audio is
    heard once, whole. Before, the feed reconnected and heard it from its start again."""
    path = _served(kind, served_files, feed_mp3)
    data = path.read_bytes()
    whole_s = probe_duration_s(path)
    with LoopbackFeed(data, mode="cut-ranges") as feed:
        sink = run_to_end([feed.url], classifier, 30.0, **FAST_RETRY)  # replayed: never ends
    assert sink.summary.reason == "end of input"
    assert sink.summary.streams[0].duration_s == pytest.approx(whole_s, abs=0.5)
    assert [s.state for s in sink.of_type(FeedState)] == ["connected"]
    assert feed.ranges[-1] == len(data) // 2  # where the cut was
    assert [n.message for n in sink.of_type(Notice)] == []


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_a_file_cut_short_by_a_server_without_ranges_ends_there_with_a_warning(
    classifier, served_files, feed_mp3, kind
):
    """The same cut from a server that ignores range requests (`python -m http.server`): the
    file ends where it was cut, with one warning that says so, and nothing of it is heard
    twice. Before, it was fetched again from its start, its audio counted twice and more."""
    path = _served(kind, served_files, feed_mp3)
    data = path.read_bytes()
    whole_s = probe_duration_s(path)
    with LoopbackFeed(data, mode="cut") as feed:
        sink = run_to_end([feed.url], classifier, 30.0, **FAST_RETRY)
    assert sink.summary.reason == "end of input"
    assert [s.state for s in sink.of_type(FeedState)] == ["connected"]
    assert feed.connections == 1
    duration_s = sink.summary.streams[0].duration_s
    assert 0.3 * whole_s < duration_s < 0.6 * whole_s, (duration_s, whole_s)
    (notice,) = sink.of_type(Notice)
    assert notice.severity == "warning"
    assert f"cut short at {len(data) // 2} of {len(data)} bytes" in notice.message
    assert "does not resume" in notice.message


@needs_ffmpeg
def test_a_cut_file_whose_server_answers_ranges_wrongly_ends_without_waiting_for_a_stall(
    classifier, feed_mp3
):
    """A server that advertises ranges but answers a request for the rest with the whole file
    again: ffmpeg failed each try and tried again after 1, 3, 7 … s, so the feed sat through
    the whole --stall-timeout (here 60 s) before the cut was said. It ends after two tries."""
    data = feed_mp3.read_bytes()
    whole_s = probe_duration_s(feed_mp3)
    with LoopbackFeed(data, mode="cut-wrong-ranges") as feed:
        overrides = {**FAST_RETRY, "stall_timeout": 60.0}
        sink = run_to_end([feed.url], classifier, 30.0, **overrides)
    assert sink.summary.reason == "end of input"
    assert feed.ranges[1:] and set(feed.ranges[1:]) == {len(data) // 2}  # it did try
    duration_s = sink.summary.streams[0].duration_s
    assert 0.3 * whole_s < duration_s < 0.6 * whole_s, (duration_s, whole_s)  # heard once
    (notice,) = sink.of_type(Notice)
    assert "resuming it with a range request failed" in notice.message


@needs_ffmpeg
def test_an_upper_case_scheme_is_read_like_a_lower_case_one(classifier, feed_mp3):
    """URL schemes are case-insensitive: `HTTP://` is fetched like `http://`, not handed to
    ffmpeg as a file name that can never open (and then retried forever)."""
    with LoopbackFeed(feed_mp3.read_bytes(), mode="file") as feed:
        url = feed.url.replace("http://", "HTTP://")
        sink = run_to_end([url], classifier, reconnect_attempts=0)
    assert sink.summary.reason == "end of input"
    assert [s.state for s in sink.of_type(FeedState)] == ["connected"]
    assert sink.summary.streams[0].windows > 0
    assert sink.summary.streams[0].stream == url  # shown as the user wrote it
    assert feed.connections == 1


@needs_ffmpeg
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_silent_server_is_a_stall_and_a_signal_leaves_no_ffmpeg(signum, cli_env, tmp_path):
    """A server that accepts, sends its headers and then nothing: each attempt is declared
    stalled after --stall-timeout and retried; a signal then ends the run within 2 s, and no
    ffmpeg is left anywhere (not even re-parented to init)."""
    events = tmp_path / "events.jsonl"
    # Into files, not pipes: nothing reads a pipe while the test waits, and a full one would
    # stop the run; and what it said is there to show when it does not do what is expected.
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with (
        LoopbackFeed(b"", mode="silent") as feed,
        out_path.open("wb") as out_file,
        err_path.open("wb") as err_file,
    ):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlid",
                "listen",
                feed.url,
                "--realtime",
                "--model",
                "tests/assets/tiny-lid",
                "--ui",
                "plain",
                "--jsonl",
                str(events),
                "--stall-timeout",
                "1.5",
                "--reconnect-min",
                "0.2",
                "--reconnect-max",
                "0.3",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=err_file,
            env=cli_env,
            cwd=REPO_ROOT,
        )
        try:

            def feed_events() -> list[dict]:
                if not events.exists():
                    return []
                lines = events.read_text().splitlines()
                return [e for e in map(json.loads, lines) if e["type"] == "feed"]

            assert wait_until(
                lambda: sum(e["state"] == "retrying" for e in feed_events()) >= 3, 60.0
            ), f"{feed_events()}, running: {process.poll() is None}, {err_path.read_text()[-3000:]}"
            # Signal while an ffmpeg is connected and waiting (between retries none runs).
            assert wait_until(lambda: ffmpeg_processes(str(feed.port)), 5.0)
            retries = [e for e in feed_events() if e["state"] == "retrying"]
            assert "stalled" in retries[0]["reason"]
            # Between two retries: a wait of at most 0.3 s, then 1.5 s of silence is a stall.
            between_s = retries[1]["outage_s"] - retries[0]["outage_s"]
            assert 1.5 <= between_s <= 1.5 + 0.3 + 1.5  # (+1.5: a loaded machine)
            process.send_signal(signum)
            sent = time.monotonic()
            process.wait(timeout=10)
            assert time.monotonic() - sent < 2.0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 128 + signum, err_path.read_text()
        assert ffmpeg_processes(str(feed.port)) == []
        assert "stalled" in out_path.read_text()  # the plain log shows the feed's state


@needs_ffmpeg
def test_credentials_reach_no_output(cli_env, feed_mp3, tmp_path):
    """user:password@ and ?token= are for the server only: not in stream names, plain lines,
    JSONL events, the summary or error messages."""
    events = tmp_path / "events.jsonl"
    with LoopbackFeed(feed_mp3.read_bytes(), mode="file") as feed:
        url = feed.url.replace("http://", "http://alice:s3cret@") + "?token=T0K3N&sig=S1G"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamlid",
                "listen",
                url,
                "--ui",
                "plain",
                "--model",
                "tests/assets/tiny-lid",
                "--jsonl",
                str(events),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=cli_env,
            cwd=REPO_ROOT,
            timeout=120,
            check=False,
        )
    output = result.stdout.decode() + result.stderr.decode() + events.read_text()
    assert result.returncode == 0, output
    assert "prediction" in events.read_text()
    for secret in ("alice", "s3cret", "T0K3N", "S1G"):
        assert secret not in output
    assert "http://***@127.0.0.1" in output


# -- damaged files: they end, with a warning, and identify goes on ------------------------------


def _sprinkle(path: Path, every: int = 300, seed: int = 5) -> Path:
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(seed)
    for at in range(2000, len(data) - 40, every):
        data[at : at + 40] = noise.integers(0, 256, 40, dtype=np.uint8).tobytes()
    damaged = path.with_name("damaged-" + path.name)
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.fixture(scope="module")
def damaged_files(espeak, tmp_path_factory) -> dict[str, Path]:
    from audio_helpers import encode_with_ffmpeg, write_wav

    folder = tmp_path_factory.mktemp("damaged")
    wav = folder / "talk.wav"
    write_wav(wav, np.concatenate([espeak.samples("en")] * 6))
    out = {}
    for kind, codec in (("aac", ["-c:a", "aac", "-b:a", "48k"]), ("mp3", ["-c:a", "libmp3lame"])):
        whole = folder / f"talk.{kind}"
        encode_with_ffmpeg(wav, whole, *codec)
        out[kind] = _sprinkle(whole)
    return out


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["aac", "mp3"])
def test_a_damaged_file_ends_within_seconds_with_a_warning(kind, damaged_files, run_pipeline):
    from streamlid.events import Notice

    started = time.monotonic()
    sink = run_pipeline([damaged_files[kind]])
    assert time.monotonic() - started < 30.0  # seconds of audio: it ends, it never hangs
    warnings = [n for n in sink.of_type(Notice) if n.severity == "warning"]
    assert len(warnings) == 1 and "damaged" in warnings[0].message
    assert sink.summary.reason == "end of input"
    assert ffmpeg_children(os.getpid()) == []


@needs_ffmpeg
def test_identify_goes_on_past_damaged_files(damaged_files, espeak, run_cli):
    good = espeak.wav("en", lead_s=0.5)
    result = run_cli(
        "identify",
        damaged_files["aac"],
        damaged_files["mp3"],
        good,
        "--json",
        "--model",
        "tests/assets/tiny-lid",
        timeout_s=120,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [Path(r["file"]).name for r in rows] == [
        "damaged-talk.aac",
        "damaged-talk.mp3",
        good.name,
    ]
    assert rows[2]["windows"] > 0 and rows[2]["language"]


# -- named streams ------------------------------------------------------------------------------


@needs_ffmpeg
def test_three_named_feeds_share_one_model_load(feed_mp3, cli_env, tmp_path):
    """[[streams]] in the config: three feeds, each event tagged with its name, one model."""
    events = tmp_path / "events.jsonl"
    data = feed_mp3.read_bytes()
    names = ["Radio Un", "Radio Zwei", "Radio Three"]
    with contextlib.ExitStack() as stack:
        feeds = [stack.enter_context(LoopbackFeed(data, mode="file")) for _ in names]
        tables = "".join(
            f'[[streams]]\nname = "{name}"\nsource = "{feed.url}?key=SECRET"\n'
            'languages = ["eng"]\nalert-down-after = 30\n\n'
            for name, feed in zip(names, feeds, strict=True)
        )
        config = tmp_path / "feeds.toml"
        config.write_text(f'model = "tests/assets/tiny-lid"\nui = "plain"\n\n{tables}')
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamlid",
                "listen",
                "--config",
                str(config),
                "--jsonl",
                str(events),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=cli_env,
            cwd=REPO_ROOT,
            timeout=180,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().count("loaded in") == 1  # one model load for all three
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    started = [e for e in lines if e["type"] == "started"]
    assert [e["stream"] for e in started] == names
    assert all("SECRET" not in e["source"] for e in started)
    predicted = {e["stream"] for e in lines if e["type"] == "prediction"}
    assert predicted == set(names)
    (summary,) = [e for e in lines if e["type"] == "summary"]
    assert [s["stream"] for s in summary["streams"]] == names


# -- a real Icecast server ----------------------------------------------------------------------

needs_icecast = pytest.mark.skipif(
    shutil.which("icecast2") is None or shutil.which("ffmpeg") is None,
    reason="icecast2 (apt install icecast2) and ffmpeg are needed for a real radio server",
)


@needs_icecast
def test_an_icecast_feed_is_paced_and_survives_its_source_going_away(classifier, feed_mp3):
    """What radio stations run: Icecast bursts 64 KB (16 s at 32 kbit/s) at connect, which is
    heard at real time without a skipped window; when the station's encoder goes away the
    mount ends, and once it is back the feed recovers with fresh answers."""
    from feed_servers import Icecast

    with Icecast(feed_mp3) as icecast:
        with Running(classifier, [icecast.url], realtime=True, **FAST_RETRY) as run:
            assert wait_until(lambda: len(run.sink.predictions) >= 3, 30.0)
            icecast.stop_source()
            assert wait_until(lambda: "retrying" in run.states(), 15.0)
            icecast.start_source()
            assert wait_until(lambda: "recovered" in run.states(), 20.0)
            at_recovery = len(run.sink.events)
            assert wait_until(
                lambda: any(isinstance(e, Prediction) for e in run.sink.events[at_recovery:]),
                20.0,
            )
        stream = run.sink.summary.streams[0]
        assert stream.skipped_windows == 0 and stream.overflow_s == 0.0
        assert stream.reconnects == 1 and stream.outage_s > 0
    assert ffmpeg_children(os.getpid()) == []


# -- how a feed's state is shown ----------------------------------------------------------------


def _feed(state: str, reason: str = "", attempt: int = 0, outage_s: float = 0.0) -> FeedState:
    return FeedState("Radio Un", 12.0, state, reason, attempt, outage_s)


def test_the_live_view_heads_a_down_feed_with_its_state_until_it_recovers():
    from streamlid.ui.state import ViewState

    view = ViewState(clock=lambda: 100.0)
    view.handle(_feed("connected"))
    (stream,) = view.snapshot().streams
    assert stream.warnings == ()
    view.handle(_feed("disconnected", "Connection refused"))
    view.handle(_feed("retrying", "Connection refused; attempt 2 in 1.0 s", 2, 3.5))
    first = view.snapshot().streams[0].warnings[0]
    assert first.severity == "error"
    assert "down 3.5 s" in first.message and "attempt 2" in first.message
    view.handle(_feed("recovered", "Connection refused", 2, 4.2))
    assert view.snapshot().streams[0].warnings == ()


def test_the_plain_log_and_the_summary_count_reconnects_and_outage():
    import io

    from streamlid.sinks import PlainPrinter, summary_lines
    from streamlid.streams import StreamsReducer

    out = io.StringIO()
    printer = PlainPrinter(out)
    now = [100.0]
    builder = StreamsReducer(clock=lambda: now[0])
    for event, later_s in (
        (_feed("connected"), 0.0),
        (_feed("disconnected", "no audio for 10 s (stalled)", 0, 10.0), 0.5),
        (_feed("retrying", "no audio for 10 s (stalled); attempt 1 in 0.5 s", 1, 10.0), 0.5),
        (_feed("recovered", "no audio for 10 s (stalled)", 1, 11.0), 5.0),
        (_feed("disconnected", "the server ended the stream", 0, 0.0), 0.0),
        (_feed("retrying", "the server ended the stream; attempt 1 in 30 s", 1, 0.0), 7.5),
    ):
        printer.handle(event)
        builder.handle(event)
        now[0] += later_s
    log = out.getvalue()
    assert "feed down: no audio for 10 s (stalled)" in log
    assert "feed recovered after 11.0 s without audio (1 attempt)" in log
    (stream,) = builder.summaries()
    assert stream.reconnects == 1
    # The one still going on counts up to the summary (the stop), not to its last report.
    assert stream.outage_s == pytest.approx(11.0 + 7.5)
    from streamlid.events import Summary

    lines = summary_lines(Summary(streams=(stream,), wall_s=60.0, reason="interrupted"))
    assert "    feed: 1 reconnect, 18.5 s without audio" in lines


def test_a_feed_is_down_from_when_its_audio_stopped_not_from_the_report():
    """A stall is reported only after --stall-timeout, and a feed that never came up only once
    its first attempt failed: the outage (and the down alert's clock) starts when the audio
    stopped, or at the start, as the report's outage_s says. A feed that comes up late books
    the outage before it."""
    from streamlid.sinks import feed_state_text
    from streamlid.streams import StreamsReducer

    now = [100.0]
    builder = StreamsReducer(clock=lambda: now[0])
    builder.handle(_feed("disconnected", "no audio for 10 s (stalled)", 0, 10.0))
    assert builder.now()[0].feed_down_since_wall == pytest.approx(90.0)
    now[0] += 5.0
    assert builder.summaries()[0].outage_s == pytest.approx(15.0)
    builder.handle(_feed("connected", "Connection refused", 3, 15.0))
    now[0] += 60.0
    assert builder.now()[0].feed_down_since_wall is None
    assert builder.summaries()[0].outage_s == pytest.approx(15.0)
    text = feed_state_text(_feed("connected", "Connection refused", 3, 15.0))
    assert text == "connected after 15.0 s without audio (3 attempts)"
    assert feed_state_text(_feed("connected")) == "connected"


@needs_ffmpeg
def test_a_feed_that_never_comes_up_is_down_from_its_start_until_the_stop(classifier):
    """A server that answers and sends nothing: the first attempt ends only at the stall
    timeout (2 s). The feed was down from its start: the down alert (after 1 s) counts from
    there, not from the report, and the summary's outage runs to the stop, not to the last
    report (the next retry is 30 s away). Before: the alert said 1 s, the outage 0 s."""
    with LoopbackFeed(b"", mode="silent") as feed:
        with Running(
            classifier,
            [feed.url],
            stall_timeout=2.0,
            reconnect_min=30.0,
            reconnect_max=30.0,
            alert_down_after=1.0,
        ) as run:

            def alerts() -> list[StreamAlert]:
                return [e for e in list(run.sink.events) if isinstance(e, StreamAlert)]

            assert wait_until(alerts, 15.0), run.states()
            time.sleep(1.0)
        (alert,) = alerts()
        assert alert.kind == "down" and alert.active
        assert alert.duration_s >= 2.0 - 0.1, alert  # at least the first attempt's stall
        assert run.states() == ["disconnected", "retrying"]
        summary = run.sink.summary
        outage_s = summary.streams[0].outage_s
        # Down all the run (its start: the engine's, a moment before the source's).
        assert summary.wall_s - 1.5 < outage_s <= summary.wall_s + 0.1, (outage_s, summary)
        assert outage_s >= 2.0 + 1.0 - 0.1


@needs_ffmpeg
def test_a_feed_that_never_answers_gives_up_after_its_attempts(classifier):
    """--reconnect-attempts 2: the first try and two retries are refused, then the stream ends
    with one error naming the reason; the run's books say so."""
    from feed_servers import free_port

    url = f"http://127.0.0.1:{free_port()}/live.mp3"  # nothing listens there
    sink = ListSink()
    engine = make_engine(
        [url], classifier, [sink], reconnect_attempts=2, reconnect_min=0.1, reconnect_max=0.2
    )
    engine.start()
    try:
        assert engine.wait(30.0)
    finally:
        engine.stop()
        engine.wait(10.0)
    states = [s.state for s in sink.of_type(FeedState)]
    assert states == ["disconnected", "retrying", "retrying"]
    (error,) = engine.errors
    assert "Connection refused" in error and "gave up after 2 reconnect attempts" in error
    assert sink.summary.reason.startswith("error:")


@needs_ffmpeg
def test_a_host_that_does_not_resolve_is_said_so_in_the_error_and_the_summary(classifier):
    """A feed whose host name does not resolve says that, not ffmpeg's "Input/output error",
    in its error and in the summary's "never connected (why)". The name's first label is
    longer than DNS allows (63), so the resolver refuses it here, without a query on the
    network (tests use loopback only; even .invalid names are asked of the name server)."""
    sink = ListSink()
    host = "a" * 70 + ".invalid"
    url = f"http://{host}/live.mp3"
    engine = make_engine([url], classifier, [sink], reconnect_attempts=0)
    engine.start()
    try:
        assert engine.wait(30.0)
    finally:
        engine.stop()
        engine.wait(10.0)
    (error,) = engine.errors
    assert f"Failed to resolve hostname {host}" in error, error
    assert "Input/output error" not in error
    down_reason = sink.summary.streams[0].down_reason
    assert down_reason.startswith("Failed to resolve hostname"), down_reason
