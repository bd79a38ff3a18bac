"""The live view, driven by scripted events and read back as text from a recording Console.

The scenario is what a person sees in a demo: French, a pause, German, then audio dropped
because the pipeline fell behind. Wall time is a fake clock, so figures are exact.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from streamlid.config import Config
from streamlid.events import (
    FeedState,
    LanguageChange,
    LanguageScore,
    Level,
    Notice,
    Prediction,
    SpeechChange,
    Status,
    StreamAlert,
    StreamEnded,
    StreamStarted,
    StreamSummary,
    Summary,
)
from streamlid.sinks import PlainPrinter, WarningPrinter, summary_lines
from streamlid.ui import make_view
from streamlid.ui.bigtext import big_lines, big_width
from streamlid.ui.render import ViewRenderable, summary_renderables
from streamlid.ui.state import UNCLEAR, ViewState, stable_order

FRENCH = (("fra", "French", 0.82), ("deu", "German", 0.08), ("spa", "Spanish", 0.05))
GERMAN = (("deu", "German", 0.77), ("fra", "French", 0.12), ("nld", "Dutch", 0.06))
UNSURE = (("fra", "French", 0.34), ("deu", "German", 0.30), ("spa", "Spanish", 0.20))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scores(items) -> tuple[LanguageScore, ...]:
    return tuple(LanguageScore(code, name, p) for code, name, p in items)


class Script:
    """Feeds a ViewState the events the engine would send for one stream."""

    def __init__(self, state: ViewState, clock: FakeClock, stream: str = "mic") -> None:
        self.state, self.clock, self.stream = state, clock, stream

    def started(self, live: bool = True) -> None:
        self.state.handle(
            StreamStarted(
                self.stream, "USB Microphone", 48000, live, "facebook/mms-lid-256", "cuda", "bf16"
            )
        )

    def speech(self, t_s: float, on: bool) -> None:
        self.state.handle(SpeechChange(self.stream, t_s, on))

    def level(self, t_s: float, dbfs: float, speech: bool) -> None:
        self.state.handle(Level(self.stream, t_s, dbfs, speech))

    def predict(self, t_end_s: float, language: str | None, top, latency_s: float = 0.1) -> None:
        smoothed = scores(top)
        name = {code: name for code, name, _ in top}.get(language, "unknown")
        confidence = next((p for code, _, p in top if code == language), 0.0)
        self.state.handle(
            Prediction(
                self.stream,
                max(0.0, t_end_s - 3.0),
                t_end_s,
                smoothed,
                smoothed,
                language,
                name,
                confidence,
                latency_s,
                0.3,
            )
        )

    def change(self, t_s: float, since_s: float, previous, language, name, confidence) -> None:
        self.state.handle(
            LanguageChange(self.stream, t_s, since_s, previous, language, name, confidence)
        )

    def talk(self, start_s: float, end_s: float, language: str | None, top, dbfs=-18.0) -> None:
        """Speech from start_s to end_s: levels every 0.5 s, a prediction every second."""
        t = start_s
        while t <= end_s + 1e-9:
            self.level(t, dbfs, True)
            if t - start_s >= 1.0 and round(t * 2) % 2 == 0:
                self.predict(t, language, top)
            self.clock.now += 0.5
            t += 0.5

    def quiet(self, start_s: float, end_s: float) -> None:
        t = start_s
        while t <= end_s + 1e-9:
            self.level(t, -62.0, False)
            self.clock.now += 0.5
            t += 0.5


def french_then_german(state: ViewState, clock: FakeClock) -> Script:
    script = Script(state, clock)
    script.started()
    script.speech(0.5, True)
    script.talk(0.5, 2.0, None, UNSURE)
    script.predict(2.5, "fra", FRENCH)  # the worker sends the answer, then the change
    script.change(2.5, 0.5, None, "fra", "French", 0.82)
    script.talk(3.0, 8.0, "fra", FRENCH)
    script.speech(8.0, False)
    script.quiet(8.0, 10.0)
    script.speech(10.0, True)
    script.talk(10.0, 12.0, "fra", FRENCH)
    script.predict(12.5, "deu", GERMAN)
    script.change(12.5, 10.2, "fra", "deu", "German", 0.77)
    script.talk(13.0, 18.0, "deu", GERMAN)
    return script


def screen(state: ViewState, width: int = 80, height: int = 24, **kwargs) -> str:
    console = Console(record=True, width=width, height=height, file=io.StringIO())
    console.print(ViewRenderable(state.snapshot(), **kwargs))
    return console.export_text()


def panel_rows(text: str) -> list[str]:
    """The lines inside a panel, without the border."""
    return [line[2:-2].rstrip() for line in text.splitlines() if line.startswith("│")]


def bar_names(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^│ (\w+)\s+[a-z]{3} █", text, flags=re.M)]


def timeline_row(text: str) -> str:
    rows = [row for row in panel_rows(text) if row.strip() and set(row) <= set("█▒· ")]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> ViewState:
    return ViewState(top=5, timeline_s=60.0, lag_warning_s=1.5, clock=clock)


# -- what the screen says ---------------------------------------------------------------------


def test_one_language_shows_large_with_code_confidence_and_ordered_bars(state, clock):
    script = Script(state, clock)
    script.started()
    script.speech(0.5, True)
    script.talk(0.5, 2.0, None, UNSURE)
    script.predict(2.5, "fra", FRENCH)
    script.change(2.5, 0.5, None, "fra", "French", 0.82)
    script.talk(3.0, 6.0, "fra", FRENCH)
    text = screen(state)

    lines = text.splitlines()
    assert len(lines) == 24 and max(len(line) for line in lines) <= 80
    assert "French · fra · 82% confidence · since 0.5 s" in text
    # the big letters: FRENCH drawn in half blocks above the caption
    big = big_lines("French", 80)
    assert big is not None and big[0] in text
    assert bar_names(text) == ["French", "German", "Spanish"]
    assert re.search(r"French\s+fra █+.* 82%", text)
    assert "● speech" in text and "-18 dBFS" in text
    assert "▲fra" in text
    assert "q quit" not in text and "Ctrl-C to stop" in text  # no keyboard: no key hints
    assert "⚠" not in text


def test_a_held_language_that_another_leads_is_shown_challenged_not_at_its_low_share(state, clock):
    """The second or two before a switch is confirmed: French is still held while German leads
    the smoothed bars. "French · fra · 12% confidence" read as an answer given at 12 %."""
    script = Script(state, clock)
    script.started()
    script.speech(0.5, True)
    script.predict(2.5, "fra", FRENCH)
    script.change(2.5, 0.5, None, "fra", "French", 0.82)
    script.talk(3.0, 8.0, "fra", FRENCH)
    script.predict(8.5, "fra", GERMAN)
    text = screen(state)
    assert "French · fra · challenged: German 77%" in text
    assert "% confidence" not in text
    script.predict(9.5, "deu", GERMAN)
    script.change(9.5, 7.5, "fra", "deu", "German", 0.77)
    assert "German · deu · 77% confidence" in screen(state)


def test_switch_silence_and_switch_are_drawn_on_the_timeline_with_a_legend(state, clock):
    french_then_german(state, clock)
    text = screen(state)

    assert "German · deu · 77% confidence · since 10.2 s" in text
    assert bar_names(text) == ["German", "French", "Dutch"]
    row = timeline_row(text)
    segments = [m.group(0)[0] for m in re.finditer(r"█+|·+|▒+", row.strip())]
    # French (speech), the pause, German: the timeline starts at 0 and grows to the right
    assert segments[:4] == ["·", "█", "·", "█"], row
    assert row.rstrip().endswith("█") and len(row.rstrip()) < 40  # 18 s of a 60 s timeline
    markers = next(r for r in panel_rows(text) if "▲" in r)
    assert markers.index("▲fra") < markers.index("▲deu")
    legend = next(r for r in panel_rows(text) if r.startswith("last 60 s"))
    assert legend.index("French") < legend.index("German")
    assert "unclear" in legend and "silence" in legend


def test_timeline_colours_and_bar_colours_stay_with_their_language(state, clock):
    script = french_then_german(state, clock)
    first = {bar.code: bar.colour for bar in state.snapshot().streams[0].bars}
    script.talk(18.5, 25.0, "fra", FRENCH)
    snap = state.snapshot().streams[0]
    assert {bar.code: bar.colour for bar in snap.bars}.items() >= {
        code: first[code] for code in ("fra", "deu")
    }.items()
    legend = {code: colour for code, _, colour in snap.legend}
    assert legend["fra"] == first["fra"] and legend["deu"] == first["deu"]
    assert first["fra"] != first["deu"]


def test_silence_never_looks_like_an_answer(state, clock):
    script = french_then_german(state, clock)
    script.speech(18.2, False)
    script.quiet(18.5, 21.0)
    text = screen(state)
    assert "no speech · listening…" in text
    assert "last heard German, 2.8 s ago" in text
    assert "% confidence" not in text
    assert big_lines("listening…", 80)[0] in text
    assert "○ no speech" in text
    assert timeline_row(text).rstrip().endswith("█····")  # 3 s of silence: 4 cells


def test_the_input_line_shows_the_speech_detectors_probability(state, clock):
    """Noise the detector rejects: "no speech" with its probability; speech: "speech" with it."""
    script = Script(state, clock)
    script.started()
    state.handle(Level("mic", 1.0, -20.0, False, 0.07))
    assert "○ no speech 0.07" in screen(state)
    script.speech(1.05, True)
    state.handle(Level("mic", 1.1, -20.0, True, 0.93))
    assert "● speech 0.93" in screen(state)
    state.handle(Level("mic", 1.2, -20.0, True))  # a source of levels with no detector
    assert "● speech " in screen(state) and "0.93" not in screen(state)


def test_speech_before_any_answer_says_identifying_then_unclear(state, clock):
    script = Script(state, clock)
    script.started()
    script.speech(0.5, True)
    script.level(0.8, -20.0, True)
    assert "speech · identifying…" in screen(state)
    script.predict(1.5, None, UNSURE)
    text = screen(state)
    assert "speech · language unclear" in text and "best guess French 34%" in text
    assert "% confidence" not in text
    assert UNCLEAR not in ("fra", "deu")
    assert "▒" in timeline_row(text)


def test_the_health_figures_show_the_effective_hop_from_status(state, clock):
    french_then_german(state, clock)
    assert "hop – ·" in screen(state)
    state.handle(Status("mic", 18.0, 0.4, 0.0, 0, 20, hop_s=2.25))
    assert "hop 2.2 s ·" in screen(state)


def test_warnings_for_dropped_audio_skipped_windows_and_lag_come_and_go(state, clock):
    french_then_german(state, clock)
    state.handle(Status("mic", 18.0, 0.4, 0.8, 0, 20))
    state.handle(
        Notice(
            "mic", 18.0, "warning", "audio dropped: 0.80 s lost because the pipeline fell behind"
        )
    )
    text = screen(state)
    assert "⚠ audio dropped: 0.8 s lost in the last 10 s" in text
    assert "lost 0.8 s" in text and "(+" not in text  # the notice repeats the figure: once
    state.handle(Status("mic", 19.0, 2.6, 0.8, 3, 21))
    text = screen(state)
    assert "⚠ falling behind: answers come 2.6 s after live  (+2 more)" in text
    assert "skipped 3" in text and "lag 2.6 s" in text

    clock.now += 11.0  # the losses are history; the lag is still there
    state.handle(Status("mic", 30.0, 0.2, 0.8, 3, 30))
    text = screen(state)
    assert "⚠" not in text
    assert "lost 0.8 s" in text and "skipped 3" in text  # the totals stay in the health line


def test_errors_show_in_red_and_notices_for_all_streams_above_the_footer(state, clock):
    french_then_german(state, clock)
    state.handle(Notice("mic", 18.0, "error", "USB Microphone stopped: device unplugged"))
    state.handle(Notice("", 0.0, "error", "JsonlSink failed and was stopped: disk full"))
    text = screen(state, keys=True)
    lines = text.splitlines()
    assert "⚠ USB Microphone stopped: device unplugged" in text
    assert lines[-2].startswith("⚠ JsonlSink failed")
    assert lines[-1].startswith(" q quit · p pause · r reset")


def test_health_line_has_rate_latency_percentiles_lag_and_source(state, clock):
    script = Script(state, clock)
    script.started()
    script.speech(0.0, True)
    for i, latency in enumerate([0.1, 0.2, 0.3, 0.4, 1.0]):
        clock.now += 1.0
        script.predict(1.0 + i, "fra", FRENCH, latency_s=latency)
    text = screen(state)
    # 5 windows in 5 s; median 300 ms; p95 between 400 ms and 1 s (linear interpolation)
    assert "1.0 win/s · latency 300 ms, p95 880 ms · lag 0.3 s · lost 0.0 s · skipped 0" in text
    assert "hop – · source USB Microphone · model facebook/mms-lid-256 (cuda/bf16)" in text
    assert "live · 5.0 s" in text


def test_reset_clears_language_bars_and_timeline_but_not_health(state, clock):
    french_then_german(state, clock)
    state.reset()
    text = screen(state)
    assert "German · deu" not in text and bar_names(text) == []
    assert "▲" not in text and "█" not in text  # no bars, no timeline, no big name
    assert "speech · identifying…" in text
    assert "win/s" in text
    Script(state, clock).talk(18.5, 21.0, "deu", GERMAN)
    assert "German · deu · 77% confidence" in screen(state)


def test_paused_footer_and_key_hints(state, clock):
    french_then_german(state, clock)
    last = screen(state, paused=True, keys=True).splitlines()[-1]
    assert "q quit · p pause · r reset" in last and "PAUSED" in last


# -- sizes and many streams -------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (60, 18), (40, 12), (200, 60)])
def test_every_size_gets_exactly_its_lines_and_never_wider(state, clock, size):
    width, height = size
    french_then_german(state, clock)
    state.handle(Status("mic", 18.0, 2.6, 0.8, 3, 20))
    lines = screen(state, width, height, keys=True).splitlines()
    assert len(lines) == height
    assert max(len(line) for line in lines) <= width
    assert any("German" in line for line in lines)  # the answer survives every size
    assert "q quit" in lines[-1]


def test_small_screens_keep_the_answer_and_warning_and_drop_the_rest_in_order(state, clock):
    french_then_german(state, clock)
    state.handle(Status("mic", 18.0, 2.6, 0.8, 3, 20))
    big = big_lines("German", 80)[0]
    text = screen(state, 80, 14)  # the big name stays; the third bar and the source go
    assert big in text and bar_names(text) == ["German", "French"]
    assert "German · deu · 77%" in text and "⚠ falling behind" in text
    assert "source " not in text and "win/s" in text
    text = screen(state, 80, 10)
    assert big not in text
    assert "German · deu · 77%" in text and "⚠ falling behind" in text
    assert "input ▮" in text and "█" in timeline_row(text)


def test_several_streams_get_one_panel_each(clock):
    state = ViewState(clock=clock)
    one = french_then_german(state, clock)
    two = Script(state, clock, stream="radio")
    two.started()
    two.speech(0.0, True)
    two.talk(0.0, 6.0, "deu", GERMAN)
    text = screen(state, 80, 24)
    assert "╭─  mic  " in text and "╭─  radio  " in text
    assert "German · deu · 77% confidence · since 10.2 s" in text  # mic
    assert text.count("German · deu · 77% confidence") == 2
    assert len(text.splitlines()) == 24
    wide = screen(state, 160, 30)
    first = next(line for line in wide.splitlines() if "╭─" in line)
    assert "mic" in first and "radio" in first  # side by side when there is room
    del one


def _eight_french_streams(state: ViewState, clock, name: str) -> list[Script]:
    """Eight streams, `name` formatted with each one's number, each 3 s into French."""
    scripts = []
    for i in range(8):
        script = Script(state, clock, stream=name.format(i))
        script.started()
        script.speech(0.0, True)
        script.talk(0.0, 3.0, "fra", FRENCH)
        scripts.append(script)
    return scripts


def test_many_streams_on_a_small_screen_become_a_table(clock):
    state = ViewState(clock=clock)
    _eight_french_streams(state, clock, "feed{}")
    text = screen(state, 80, 24)
    assert all(f"feed{i}" in text for i in range(8))
    assert text.count("French") >= 8
    assert len(text.splitlines()) == 24


MARKUP_NAMES = ("News [/] FR", "show [live].mp3", "[bold]radio")


def test_names_with_markup_are_text_in_the_panels_and_the_compact_table(clock):
    """A stream named "News [/] FR" once raised rich's MarkupError at every frame of the table
    (the picture froze) and lost "[live]" from a file name."""
    state = ViewState(clock=clock)
    for name in MARKUP_NAMES:
        script = Script(state, clock, stream=name)
        script.started()
        script.speech(0.0, True)
        script.talk(0.0, 3.0, "fra", FRENCH)
        state.handle(Notice(name, 3.0, "warning", "feed [/] down: [red]timeout"))
    for size in ((160, 40), (120, 5)):  # panels; one line per stream
        text = screen(state, *size)
        for name in MARKUP_NAMES:
            assert name in text, (size, text)
        assert "feed [/] down: [red]timeout" in text, text


def test_summary_tables_print_names_and_the_model_as_text():
    names = MARKUP_NAMES
    summary = Summary(
        streams=tuple(
            StreamSummary(name, name, 6.0, 4.0, {"fra": 4.0}, 1, 4, 0, 0.0, 0.1, 0.2, ())
            for name in names
        ),
        wall_s=7.0,
        reason="end of input",
        model="models/[v2]/tiny",
        device="cpu",
        dtype="float32",
    )
    history = [Notice(names[0], 3.0, "warning", "[/] odd [bold]message")]
    console = Console(record=True, width=120, file=io.StringIO())
    for renderable in summary_renderables(summary, history):
        console.print(renderable)
    text = console.export_text()
    for name in names:
        assert text.count(name) == 2, text  # the speech table and the health table
    assert "model models/[v2]/tiny on cpu/float32" in text
    assert "warning: [/] odd [bold]message" in text


def test_an_ended_file_says_it_ended_and_a_reset_does_not_make_it_listen(clock):
    """A --realtime run of two files: the shorter one ends while the other still talks. It
    once showed "listening…" and "last heard French, 0.0 s ago" for good."""
    state = ViewState(clock=clock)
    short = Script(state, clock, stream="short.wav")
    short.started()
    short.speech(0.5, True)
    short.talk(0.5, 7.0, "fra", FRENCH)
    short.speech(7.5, False)
    short.quiet(7.5, 8.5)
    state.handle(StreamEnded("short.wav", 8.7))
    long = Script(state, clock, stream="long.wav")
    long.started()
    long.speech(0.0, True)
    long.talk(0.0, 20.0, "deu", GERMAN)
    listening = big_lines("listening…", 80)[0]

    text = screen(state, 80, 50)
    assert "ended at 8.7 s   last heard French, 1.2 s before the end" in text
    assert "ended · 8.7 s" in text and "live · 20.0 s" in text
    assert "listening" not in text and listening not in text
    assert "no signal" not in text  # an ended input is not a fault
    assert big_lines("ended", 80)[0] in text

    state.reset()
    text = screen(state, 80, 50)
    assert "ended at 8.7 s" in text and "last heard" not in text
    assert "listening" not in text and listening not in text
    table = screen(state, 80, 4)  # one line per stream
    assert re.search(r"short\.wav\s+ended", table), table


def test_the_compact_table_cuts_long_names_before_the_language(clock):
    state = ViewState(clock=clock)
    scripts = _eight_french_streams(state, clock, "international-news-channel-{}.mp3")
    for script in scripts[1::2]:
        script.speech(3.0, False)
    state.handle(Notice("international-news-channel-3.mp3", 3.0, "warning", "audio dropped"))
    lines = screen(state, 60, 20).splitlines()
    rows = [line for line in lines if line.startswith("int")]
    assert len(rows) == 8 and max(len(line) for line in lines) <= 60
    for number, row in enumerate(rows):
        assert "…" in row.split()[0]  # the name gave way (in its middle: its end tells)...
        assert row.split()[0].endswith(f"{number}.mp3"), row
        assert re.search(r"\.mp3\s+(French\s+82%|listening…)\s", row), row  # ...the language not
    assert "audio dr" in rows[3]


@pytest.mark.parametrize("width", [30, 40, 50])
def test_a_narrow_compact_table_drops_whole_columns_rather_than_cutting_figures(clock, width):
    """At 40 columns every row read 'Fren…  8…  …  0.3…': the language, its confidence and the
    lag all cut. The note, lost, input and lag columns give way first, whole."""
    state = ViewState(clock=clock)
    _eight_french_streams(state, clock, "radio{}")
    state.handle(Notice("radio3", 3.0, "warning", "audio dropped"))
    lines = screen(state, width, 12).splitlines()
    rows = [line for line in lines if line.startswith("radio")]
    assert len(rows) == 8 and max(len(line) for line in lines) <= width
    for row in rows:
        assert "…" not in row, (width, row)
        assert re.match(r"radio\d\s+French\s+82%", row), row
    header = next(line for line in lines if line.startswith("stream"))
    if width >= 40:  # room for the lag, and its figures whole
        assert "lag" in header
        assert all(re.search(r"\s0\.3 s(\s|$)", row) for row in rows), rows


def test_a_feed_that_is_down_says_so_in_the_compact_table_not_listening(clock):
    """At 40 columns the note column ("feed down …") has no room: a refused feed's row read
    'listening…', like a feed that is up and quiet. It reads 'down' until it recovers."""
    state = ViewState(clock=clock)
    for name in ("radio-un.mp3", "radio-zwei.mp3", "radio-drei.mp3", "radio-vier.mp3"):
        Script(state, clock, stream=name).started()
    state.handle(FeedState("radio-zwei.mp3", 0.0, "disconnected", "Connection refused", 0, 0.0))
    rows = [line for line in screen(state, 40, 12).splitlines() if line.startswith("radio")]
    assert len(rows) == 4, rows
    assert re.search(r"^radio\S*\s+down\s", rows[1]), rows
    assert all("listening…" in row for row in rows[::2]), rows
    state.handle(FeedState("radio-zwei.mp3", 2.0, "recovered", "Connection refused", 1, 2.0))
    rows = [line for line in screen(state, 40, 12).splitlines() if line.startswith("radio")]
    assert "listening…" in rows[1], rows


@pytest.mark.parametrize("width", [40, 60])
def test_feeds_of_one_server_are_told_apart_in_the_compact_table(clock, width):
    """Names were cut at their end: three feeds of one server each read 'https…'. They are cut
    in their middle, and each keeps its end, within its column."""
    state = ViewState(clock=clock)
    tails = ("n.mp3", "i.aac", "d.mp3")
    for tail in ("un.mp3", "zwei.aac", "world.mp3"):
        Script(state, clock, stream=f"https://radio.example.org/{tail}").started()
    state.handle(Notice("https://radio.example.org/un.mp3", 3.0, "warning", "audio dropped"))
    lines = screen(state, width, 8).splitlines()
    rows = [line for line in lines if line.startswith("http")]
    assert len(rows) == 3 and max(len(line) for line in lines) <= width, lines
    for row, tail in zip(rows, tails, strict=True):
        name = row.split()[0]
        assert name.startswith("http") and name.count("…") == 1 and name.endswith(tail), row


# -- pieces -----------------------------------------------------------------------------------


def test_bar_order_is_stable_between_close_values_and_follows_clear_leads():
    order = stable_order([], {"fra": 0.5, "deu": 0.3, "spa": 0.2}, 0.015)
    assert order == ["fra", "deu", "spa"]
    # deu creeps 1 point above fra: no swap (no flicker)
    assert stable_order(order, {"fra": 0.40, "deu": 0.41, "spa": 0.19}, 0.015) == order
    # a clear lead reorders, and a newcomer finds its place
    assert stable_order(order, {"fra": 0.2, "deu": 0.6, "nld": 0.15, "ita": 0.05}, 0.015) == [
        "deu",
        "fra",
        "nld",
        "ita",
    ]


def test_big_letters_fold_accents_and_refuse_what_they_cannot_draw():
    assert big_width("Bokmål") == big_width("Bokmal")
    lines = big_lines("French", 80)
    assert lines is not None and len(lines) == 3
    assert big_lines("French", 10) is None  # too narrow: the caption alone says it
    assert big_lines("中文", 80) is None


def test_summary_tables_name_languages_and_give_the_health_figures():
    summary = Summary(
        streams=(
            StreamSummary(
                "mic",
                "USB Microphone",
                60.0,
                42.0,
                {"fra": 30.0, "deu": 10.0, "unknown": 2.0},
                3,
                40,
                2,
                0.8,
                0.25,
                0.6,
                (),
                hop_mean_s=1.5,
            ),
        ),
        wall_s=61.0,
        reason="interrupted",
        model="facebook/mms-lid-256",
        device="cuda",
        dtype="bfloat16",
    )
    history = [Notice("mic", 3.0, "warning", "audio dropped: 0.8 s")] * 2
    console = Console(record=True, width=80, file=io.StringIO())
    for renderable in summary_renderables(summary, history):
        console.print(renderable)
    text = console.export_text()
    assert "streamlid · interrupted after 1:01" in text
    assert re.search(r"mic\s+French\s+fra\s+30\.0 s\s+71%", text)
    assert re.search(r"German\s+deu\s+10\.0 s\s+24%", text)
    assert re.search(r"unknown\s+–\s+2\.0 s", text)
    assert re.search(r"mic\s+1:00\s+3\s+40\s+1\.50 s\s+250/600 ms\s+2\s+0\.8 s", text)
    assert "warning: audio dropped: 0.8 s (×2)" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_summary_captions_wrap_at_the_terminal_not_at_the_table():
    """A narrow table ("mic") wrapped its caption "model …/tiny-lid on⏎cpu/bfloat16" in a
    terminal wide enough for it."""
    summary = Summary(
        streams=(StreamSummary("mic", "mic", 6.0, 4.0, {"eng": 4.0}, 1, 4, 0, 0.0, 0.1, 0.2, ()),),
        wall_s=7.0,
        reason="end of input",
        model="tests/assets/tiny-lid",
        device="cpu",
        dtype="bfloat16",
    )
    console = Console(record=True, width=100, file=io.StringIO())
    for renderable in summary_renderables(summary):
        console.print(renderable)
    lines = console.export_text().splitlines()
    assert "model tests/assets/tiny-lid on cpu/bfloat16" in lines
    assert any(line.endswith("lost: audio dropped by lagging") for line in lines), lines


@pytest.mark.parametrize("width", [40, 60])
def test_a_narrow_terminal_gets_the_summary_in_lines_not_cut_tables(width):
    """At 40 columns the health table read '   …   ch…   wi…   h…   late…   sk…': every name
    and figure cut. Where the tables do not fit, the plain view's lines say it all."""
    name = "日本語-éàü.wav"
    streams = (
        StreamSummary(name, "x", 7.5, 7.5, {"eng": 7.5}, 1, 9, 0, 0.0, 0.028, 0.113, ()),
        StreamSummary("mic", "mic", 6.0, 4.0, {"fra": 3.0, "eng": 1.0}, 2, 4, 0, 0.0, 0.1, 0.2, ()),
    )
    summary = Summary(streams, 8.9, "end of input", "tests/assets/tiny-lid", "cpu", "bfloat16")
    console = Console(record=True, width=width, file=io.StringIO())
    for renderable in summary_renderables(summary):
        console.print(renderable)
    text = console.export_text()
    assert "…" not in text
    for said in (f"{name}: 7.5 s", "latency median 28 ms, p95 113 ms", "fra", "3.0 s"):
        assert said in text.replace("\n", " "), text
    wide = Console(record=True, width=140, file=io.StringIO())
    for renderable in summary_renderables(summary):
        wide.print(renderable)
    assert "28/113 ms" in wide.export_text()  # wide enough: the tables


def test_a_feed_that_never_connected_is_summed_up_as_such_not_as_zero_reconnects():
    refused = StreamSummary(
        "radio", "http://x/radio.mp3", 0.0, 0.0, {}, 0, 0, 0, 0.0, None, None, (),
        outage_s=12.0, never_connected=True, down_reason="Server returned 404 Not Found",
    )  # fmt: skip
    fine = StreamSummary("mic", "mic", 6.0, 4.0, {"eng": 4.0}, 1, 4, 0, 0.0, 0.1, 0.2, ())
    summary = Summary((refused, fine), 12.5, "interrupted")
    text = "\n".join(summary_lines(summary))
    assert "radio: 0.0 s audio" in text
    assert "feed: never connected (Server returned 404 Not Found)" in text
    assert "reconnect" not in text
    console = Console(record=True, width=140, file=io.StringIO())
    for renderable in summary_renderables(summary):
        console.print(renderable)
    text = console.export_text()
    rows = [line for line in text.splitlines() if line.lstrip().startswith("radio ")]
    assert any("never connected (Server returned 404 Not Found)" in row for row in rows), text
    assert not any("0×" in row for row in rows), text


def test_two_feeds_of_one_server_are_told_apart_in_the_summary_tables():
    """Names were cut at their end, so both feeds read 'https://radio.example.o…' in each
    table; the end of a name, which tells them apart, is kept."""
    streams = tuple(
        StreamSummary(url, url, 6.0, 4.0, {"fra": 4.0}, 1, 4, 0, 0.0, 0.1, 0.2, ())
        for url in ("https://radio.example.org/un.mp3", "https://radio.example.org/zwei.aac")
    )
    console = Console(record=True, width=160, file=io.StringIO())
    for renderable in summary_renderables(Summary(streams, 6.5, "interrupted")):
        console.print(renderable)
    text = console.export_text()
    assert "100/200 ms" in text  # the tables, not the lines
    for tail in ("un.mp3", "zwei.aac"):
        rows = [line for line in text.splitlines() if tail in line]
        assert len(rows) == 2, text  # one row in each table


def test_a_summary_table_wider_than_the_terminal_gives_way_to_lines():
    """At 120 columns the health table was drawn cut: both feeds' names read
    'http://127.0.0.…' and 'never connected (Connection ref' lost its end (rich counts a
    column that does not wrap at its longest word). Lines say it all instead."""
    up = "http://127.0.0.1:8765/live"
    refused = StreamSummary(
        "http://127.0.0.1:1/dead.mp3", "http://127.0.0.1:1/dead.mp3", 0.0, 0.0, {}, 0, 0, 0,
        0.0, None, None, (), outage_s=25.0, never_connected=True, down_reason="Connection refused",
    )  # fmt: skip
    streams = (
        StreamSummary(up, up, 25.3, 20.0, {"ita": 20.0}, 3, 47, 0, 0.0, 0.034, 0.134, ()),
        refused,
        StreamSummary("it.wav", "it.wav", 9.7, 9.7, {"ita": 9.7}, 1, 12, 0, 0.0, 0.06, 0.2, ()),
    )
    console = Console(record=True, width=120, file=io.StringIO())
    for renderable in summary_renderables(Summary(streams, 25.8, "interrupted")):
        console.print(renderable)
    text = console.export_text()
    assert "…" not in text, text
    assert "never connected (Connection refused)" in text, text


def test_plain_summary_counts_in_the_singular_and_the_plural():
    one = StreamSummary("mic", "mic", 6.0, 4.0, {"eng": 4.0}, 1, 1, 1, 0.5, 0.1, 0.2, ())
    two = StreamSummary("mic", "mic", 6.0, 4.0, {"eng": 4.0}, 2, 2, 2, 0.5, 0.1, 0.2, ())
    text = "\n".join(summary_lines(Summary((one,), 7.0, "end of input")))
    assert "1 window, 1 change" in text and "skipped 1 window," in text
    text = "\n".join(summary_lines(Summary((two,), 7.0, "end of input")))
    assert "2 windows, 2 changes" in text and "skipped 2 windows," in text


# -- choosing the view ------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_view_picks_live_only_for_a_terminal(monkeypatch):
    from streamlid.ui.live import LiveView

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert isinstance(make_view(Config(), stdout_taken=False), PlainPrinter)  # piped
    assert type(make_view(Config(ui="none"), stdout_taken=False)) is WarningPrinter  # headless
    assert isinstance(make_view(Config(ui="rich"), stdout_taken=False), LiveView)
    monkeypatch.setattr(sys, "stdout", _Tty())
    assert isinstance(make_view(Config(), stdout_taken=False), LiveView)
    assert isinstance(make_view(Config(ui="plain"), stdout_taken=False), PlainPrinter)
    assert isinstance(make_view(Config(), stdout_taken=True), PlainPrinter)  # JSONL on stdout
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(make_view(Config(), stdout_taken=False), PlainPrinter)


def test_importing_the_package_does_not_import_rich():
    code = "import sys, streamlid, streamlid.ui; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the live sink: threads, pause, close -----------------------------------------------------


def test_live_view_draws_on_its_own_thread_and_closes_with_the_summary(clock):
    from streamlid.ui.live import LiveView

    out = io.StringIO()
    console = Console(file=out, width=80, height=24, force_terminal=True, color_system=None)
    view = LiveView(ViewState(clock=clock), console, screen=False, redirect_stdout=False)
    script = Script(view, clock)  # the view is a sink: same events, same calls
    script.started()
    script.speech(0.5, True)
    script.talk(0.5, 4.0, "fra", FRENCH)
    deadline = time.monotonic() + 5
    while view.frames < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view.frames >= 3
    assert [t.name for t in threading.enumerate()].count("view") == 1

    view.toggle_pause()
    assert view.paused
    frozen = view._renderable().snapshot
    script.talk(4.5, 6.0, "deu", GERMAN)
    assert view._renderable().snapshot is frozen  # the picture holds still...
    assert view.state.snapshot().streams[0].language == "deu"  # ...the state does not
    view.toggle_pause()

    view.handle(Summary((), 6.0, "interrupted"))
    view.close()
    view.close()  # idempotent
    assert "view" not in [t.name for t in threading.enumerate()]
    assert view.render_error is None
    assert "streamlid · interrupted after 6.0 s" in out.getvalue()
    assert "French · fra · 82% confidence" in out.getvalue()


def test_live_view_handle_does_not_wait_for_drawing(clock):
    """A slow terminal must not slow the event thread: handle() takes microseconds."""
    from streamlid.ui.live import LiveView

    class SlowFile(io.StringIO):
        def write(self, text: str) -> int:
            time.sleep(0.05)
            return super().write(text)

    console = Console(file=SlowFile(), width=80, height=24, force_terminal=True)
    view = LiveView(ViewState(clock=clock), console, screen=False, redirect_stdout=False)
    script = Script(view, clock)
    script.started()
    time.sleep(0.2)
    started = time.perf_counter()
    for i in range(200):
        view.handle(Level("mic", i * 0.1, -20.0, True))
    per_event_s = (time.perf_counter() - started) / 200
    view.close()
    assert per_event_s < 0.005


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_keys_are_read_in_cbreak_mode_and_the_terminal_is_restored():
    import termios

    from streamlid.ui.keys import KeyReader

    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        pressed: list[str] = []
        got_r = threading.Event()
        keys = KeyReader(
            {
                "q": lambda: pressed.append("q"),
                "p": lambda: pressed.append("p"),
                "r": lambda: (pressed.append("r"), got_r.set()),
            },
            stream=os.fdopen(slave, closefd=False),
        )
        assert keys.start()
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
        os.write(master, b"\x1b[A")  # an arrow key is not a command
        time.sleep(0.2)
        os.write(master, b"pQx")
        time.sleep(0.2)
        os.write(master, b"r")
        assert got_r.wait(2)
        keys.stop()
        keys.stop()  # idempotent, and returns at once
        assert keys.join(2.0)
        assert pressed == ["p", "q", "r"]
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_keys_still_work_after_the_shell_took_the_terminal_back():
    # Ctrl-Z then `fg`: the shell hands the terminal back cooked, where a key waits for Enter
    # (and is echoed over the view) unless the reader puts cbreak mode back.
    import termios

    from streamlid.ui.keys import KeyReader

    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        got_p = threading.Event()
        keys = KeyReader({"p": got_p.set}, stream=os.fdopen(slave, closefd=False))
        assert keys.start()
        termios.tcsetattr(slave, termios.TCSANOW, before)  # what the shell does on `fg`
        time.sleep(0.3)
        os.write(master, b"p")
        assert got_p.wait(2), "p waited for Enter: the terminal stayed cooked"
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
        assert keys.join(2.0)
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_the_terminal_is_held_unechoed_before_reading_and_keys_typed_meanwhile_are_dropped():
    """The run takes the terminal before the model loads; a p typed then is neither echoed nor
    a command once the reader starts; a p typed after is."""
    import termios

    from streamlid.ui.keys import KeyReader

    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        got_p = threading.Event()
        keys = KeyReader({}, stream=os.fdopen(slave, closefd=False))
        assert keys.hold() and keys.hold()  # idempotent
        held = termios.tcgetattr(slave)
        assert not held[3] & termios.ECHO and not held[3] & termios.ICANON
        os.write(master, b"p")  # while the model loads
        time.sleep(0.1)
        keys.bind({"p": got_p.set})
        assert keys.start()
        assert not got_p.wait(0.5)
        os.write(master, b"p")
        assert got_p.wait(2)
        assert keys.join(2.0)
        assert termios.tcgetattr(slave) == before  # the settings from before hold(), not its own
    finally:
        os.close(master)
        os.close(slave)


def test_key_reader_refuses_what_is_not_a_terminal():
    from streamlid.ui.keys import KeyReader

    assert KeyReader({"q": lambda: None}, stream=io.StringIO()).start() is False


# -- q is Ctrl-C, and r reaches the smoothing ---------------------------------------------------


class _FakeEngine:
    """What the supervisor's loop sees of an engine: it ends only when stopped."""

    def __init__(self) -> None:
        self.stopped: list[str] = []
        self.errors: list[str] = []
        self.output_errors: list[str] = []
        self.summary = None

    def start(self) -> None:
        pass

    def stop(self, reason: str = "interrupted") -> None:
        self.stopped.append(reason)

    def wait(self, timeout_s: float | None = None) -> bool:
        if self.stopped:
            self.summary = SimpleNamespace(reason=self.stopped[0])
            return True
        time.sleep(timeout_s or 0)
        return False


def test_q_takes_the_same_stop_path_as_a_signal():
    import signal

    from streamlid.run import SignalWatch, supervise

    watch = SignalWatch()
    engine = _FakeEngine()
    threading.Timer(0.3, watch.request_quit).start()
    started = time.monotonic()
    assert supervise(engine, watch) == 0  # q: the user's choice, not a failure
    assert engine.stopped == ["interrupted"]
    assert time.monotonic() - started < 2

    with SignalWatch() as watch:
        engine = _FakeEngine()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        assert supervise(engine, watch) == 128 + signal.SIGTERM
    assert engine.stopped == ["interrupted"]


def _write_wav(path: Path, seconds: float) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    # voiced-looking audio: a buzz with harmonics, loud enough for the speech gate
    signal = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 450, 600), 1))
    signal = 0.3 * signal / np.max(np.abs(signal)) + 0.01 * rng.standard_normal(len(t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((signal * 32767).astype("<i2").tobytes())


def test_engine_reset_smoothing_resets_every_smoother_on_the_worker_thread(tmp_path):
    from streamlid.audio.open import open_source
    from streamlid.engine import Engine

    class Model:
        labels = ("eng", "fra")

        def classify(self, windows):
            return np.tile([0.2, 0.8], (len(windows), 1))

    wav = tmp_path / "buzz.wav"
    _write_wav(wav, 4.0)
    engine = Engine(Config(), [open_source(str(wav), realtime=False)], Model(), [])
    resets: list[str] = []
    for state in engine.streams.values():
        original = state.smoother.reset

        def counting(original=original):
            resets.append(threading.current_thread().name)
            original()

        state.smoother.reset = counting
    engine.reset_smoothing()
    engine.run()
    assert resets == ["worker"]


def test_a_full_timeline_scrolls_with_now_at_the_right_edge(state, clock):
    script = Script(state, clock)
    script.started()
    script.speech(0.0, True)
    script.predict(1.0, "fra", FRENCH)
    script.change(1.0, 0.0, None, "fra", "French", 0.82)
    script.talk(1.5, 69.0, "fra", FRENCH)
    script.predict(70.0, "deu", GERMAN)
    script.change(70.0, 69.5, "fra", "deu", "German", 0.77)
    text = screen(state)
    row = timeline_row(text)
    assert len(row) == 76 and set(row) == {"█"}  # 60 s of speech fill the width
    markers = next(r for r in panel_rows(text) if "▲" in r)
    assert markers.rstrip().endswith("▲deu") and "▲fra" not in markers  # fra began >60 s ago
    assert "last 60 s  █ French  █ German" in text


def test_a_change_right_after_a_reset_is_marked_at_the_start(state, clock):
    script = french_then_german(state, clock)
    state.reset()
    script.talk(18.5, 20.0, None, UNSURE)
    script.predict(20.5, "deu", GERMAN)
    script.change(20.5, 17.0, None, "deu", "German", 0.77)  # began before the reset
    markers = next(r for r in panel_rows(screen(state)) if "▲" in r)
    assert markers.startswith("▲deu")


def test_after_a_reset_the_same_language_is_still_there_since_it_began(state, clock):
    """`r` starts the picture afresh; the next answer naming German again (no change event)
    says German is spoken since it began, not since the reset."""
    script = french_then_german(state, clock)
    state.reset()
    script.talk(18.5, 22.0, "deu", GERMAN)
    assert "German · deu · 77% confidence · since 10.2 s" in screen(state)


def test_a_broken_event_does_not_break_the_display_or_the_exit(clock):
    from streamlid.ui.live import LiveView

    out = io.StringIO()
    console = Console(file=out, width=80, height=24, force_terminal=True, color_system=None)
    view = LiveView(ViewState(clock=clock), console, screen=False, redirect_stdout=False)
    Script(view, clock).started()
    view.handle(Level("mic", "not a number", -20.0, True))  # type: ignore[arg-type]
    Script(view, clock).level(1.0, -20.0, True)
    view.close()
    assert "view" not in [t.name for t in threading.enumerate()]
    assert "The live view failed" in out.getvalue()


def test_a_drawing_failure_is_reported_as_text_at_exit(clock):
    """The failure's traceback quotes what broke (a name with "[/]"): printed as markup, it
    raised again in close() and the summary never came."""
    from streamlid.ui.live import LiveView

    out = io.StringIO()
    console = Console(file=out, width=80, height=24, force_terminal=True, color_system=None)
    view = LiveView(ViewState(clock=clock), console, screen=False, redirect_stdout=False)
    view.render_error = "rich.errors.MarkupError: closing tag '[/]' at position 5"
    view.handle(Summary((), 1.0, "interrupted"))
    view.close()
    assert "streamlid · interrupted after 1.0 s" in out.getvalue()
    assert "closing tag '[/]' at position 5" in out.getvalue()


def test_headless_lines_are_a_streams_troubles_only():
    """`--ui none`: a feed down, reconnecting or back and an alert are a stream's warnings, said
    on standard error as a damaged file is; a feed that simply connects, and the answers, not."""
    out = io.StringIO()
    printer = WarningPrinter(out)
    printer.handle(FeedState("radio", 0.0, "connected", "", 0, 0.0))
    printer.handle(FeedState("radio", 12.0, "disconnected", "no audio for 10 s (stalled)", 0, 10.0))
    printer.handle(FeedState("radio", 14.0, "retrying", "no audio for 10 s (stalled)", 1, 12.0))
    printer.handle(StreamAlert("radio", 20.0, "down", True, "radio down for 15 s"))
    printer.handle(Prediction("radio", 1.0, 4.0, FRENCH, FRENCH, "fra", "French", 0.8, 0.1, 1.0))
    # A feed that comes up only after its first attempts failed: it was down until then.
    printer.handle(FeedState("late", 9.0, "connected", "Connection refused", 3, 9.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert "down" in lines[0] and "stalled" in lines[0]
    assert "reconnecting" in lines[1]
    assert "ALERT" in lines[2] and "radio down for 15 s" in lines[2]
    assert "[late]" in lines[3] and "9.0 s without audio" in lines[3]


def test_plain_lines_say_the_held_language_is_challenged_not_that_it_is_at_3_percent():
    """In the second or two before a switch is confirmed the held language's smoothed share
    is low: "French (fra) 3%" read as an answer given at 3 %. The line says who challenges it."""
    out = io.StringIO()
    printer = PlainPrinter(out)
    leading = scores([("deu", "German", 0.62), ("fra", "French", 0.03)])
    window = scores([("deu", "German", 0.9), ("fra", "French", 0.02)])
    printer.handle(Prediction("radio", 3.0, 6.0, window, leading, "fra", "French", 0.03, 0.1, 1.0))
    french = scores(FRENCH)
    printer.handle(Prediction("radio", 4.0, 7.0, french, french, "fra", "French", 0.8, 0.1, 1.0))
    challenged, held = out.getvalue().splitlines()
    now = challenged.split("now:")[1].split("window:")[0]
    assert "French (fra)" in now and "challenged" in now and "deu 62%" in now
    assert "3%" not in now
    assert re.search(r"now: French \(fra\) 80%", held)


def test_plain_lines_say_a_stream_ended_while_the_others_go_on():
    """Of several feeds, one served file ends: the live view says "ended", the metrics say it is
    down; the plain log said nothing, its answers just stopped, as a feed's do in a silence."""
    out = io.StringIO()
    printer = PlainPrinter(out)
    printer.handle(StreamEnded("radio", 8.06))
    assert out.getvalue().splitlines() == ["[radio]     8.1s  ended: its input is over"]
    # A stream whose error said it stopped is not said to have ended as well.
    printer.handle(Notice("tv", 3.0, "error", "tv stopped: the feed is down; gave up"))
    printer.handle(StreamEnded("tv", 3.0))
    assert out.getvalue().splitlines()[1:] == ["[tv] error: tv stopped: the feed is down; gave up"]


def test_a_file_beside_feeds_has_no_feed_down_figures_in_the_summary():
    """With a feed in the run the health table gains a 'feed down' column, and a file's cell
    read '0× 0.0 s', as if it were a feed that never dropped. The reducer marks feeds (they send
    FeedState), and the summary JSON carries it as `feed`."""
    from streamlid.streams import StreamsReducer

    reducer = StreamsReducer()
    reducer.handle(SpeechChange("it.wav", 0.0, True))
    reducer.handle(FeedState("radio", 0.0, "connected", "", 0, 0.0))
    reducer.handle(FeedState("radio", 5.0, "disconnected", "server closed", 0, 0.0))
    reducer.handle(FeedState("radio", 5.0, "recovered", "", 1, 2.5))
    summary = Summary(reducer.summaries(), 9.0, "interrupted")
    feeds = {s.stream: s.feed for s in summary.streams}
    assert feeds == {"it.wav": False, "radio": True}
    console = Console(record=True, width=160, file=io.StringIO())
    for renderable in summary_renderables(summary):
        console.print(renderable)
    rows = {line.split()[0]: line for line in console.export_text().splitlines() if line.strip()}
    assert rows["radio"].rstrip().endswith("1× 2.5 s"), rows
    assert rows["it.wav"].rstrip().endswith("–") and "×" not in rows["it.wav"], rows
