"""Drawing: a ViewSnapshot -> rich renderables. Pure functions of the snapshot and the size.

Every row of a stream's panel is one terminal line (no wrapping, long text ends in "…"), so
the layout can count rows exactly: each panel gets a share of the screen's height and keeps
its most important rows (the current language, warnings, the meter, the timeline) when there
is no room for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..events import Notice, StreamSummary, Summary
from ..languages import language_name
from ..printable import printable
from ..sinks import never_connected_text, summary_lines
from .bigtext import big_lines
from .state import SILENCE, UNCLEAR, UNKNOWN_COLOUR, Alert, StreamSnapshot, ViewSnapshot

UNKNOWN_CODE = "unknown"  # the summary's key for speech in no named language
METER_MIN_DBFS = -60.0
METER_WARN_DBFS = -9.0  # yellow from here (speech peaks near clipping)
METER_CLIP_DBFS = -3.0  # red from here
PANEL_MIN_WIDTH = 60  # below this two panels do not go side by side
NAME_MIN_WIDTH = 8  # the compact table cuts stream names no shorter than this
NATURAL_WIDTH_N = 10_000  # columns to measure a table in: its widths unclamped
SUMMARY_NAME_MAX = 24  # the summary's tables shorten a longer stream name in its middle
SPEECH_GLYPH = "█"
UNCLEAR_GLYPH = "▒"
SILENCE_GLYPH = "·"
SILENCE_STYLE = "grey35"
DIM = "grey50"
EIGHTHS = " ▏▎▍▌▋▊▉"
CAPTION = "table.caption"  # rich's style for a table's caption
HEALTH_CAPTION = (
    "hop: mean speech between answers · latency: median/95th percentile · "
    "lost: audio dropped by lagging"
)


def fmt_time(t_s: float) -> str:
    """Stream time for people: "9.7 s" under a minute, then "1:02" and "1:02:03"."""
    if t_s < 60:
        return f"{t_s:.1f} s"
    whole = int(t_s)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_span(seconds: float) -> str:
    """A length of time, for labels: "60 s", "5 min", "2 h"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def fmt_ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{1000 * seconds:.0f} ms"


def pct(p: float) -> str:
    value = 100 * p
    return "<1%" if 0 < value < 0.5 else f"{value:.0f}%"


def _line(*parts: str | tuple[str, str] | Text) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for part in parts:
        if isinstance(part, tuple):
            text.append(*part)
        else:
            text.append(part)
    return text


# -- one stream ---------------------------------------------------------------------------------


@dataclass
class Section:
    order: int  # where it goes, top to bottom
    priority: int  # what stays when rows are short (higher stays longer)
    lines: list[Text]
    spacer: bool = False


def _now_sections(s: StreamSnapshot, width: int) -> list[Section]:
    """The big answer and its caption; silence is shown as silence, never as a language."""
    if not s.speech and s.ended_at_s is not None:
        # An ended file listens to nothing: say so, and what it said last (its clock has
        # stopped, so "ago" would stay at its last value for good).
        big, big_style = "ended", f"bold {DIM}"
        caption = _line(("ended", "bold grey70"), (f" at {fmt_time(s.ended_at_s)}", DIM))
        heard = s.language_name if s.language else s.last_language_name
        if heard:
            caption.append(f"   last heard {heard}", DIM)
            if s.silent_for_s is not None and s.silent_for_s >= 0.05:
                caption.append(f", {fmt_time(s.silent_for_s)} before the end", DIM)
    elif not s.speech:
        big, big_style = "listening…", "bold grey58"
        caption = _line(("no speech", "bold grey70"), (" · listening…", DIM))
        if s.last_language_name and s.silent_for_s is not None:
            caption.append(
                f"   last heard {s.last_language_name}, {fmt_time(s.silent_for_s)} ago", DIM
            )
    elif s.language is None:
        if s.identifying:
            big, big_style = "…", "bold grey70"
            caption = _line(("speech", "bold green"), (" · identifying…", DIM))
        else:
            big, big_style = "unknown", "bold grey70"
            caption = _line(("speech", "bold green"), (" · language unclear", "bold grey70"))
            if s.bars:
                best = max(s.bars, key=lambda bar: bar.probability)
                caption.append(f"   best guess {best.name} {pct(best.probability)}", DIM)
    else:
        big, big_style = s.language_name, f"bold {s.language_colour}"
        # While another language leads the smoothed bars (the second or two before a switch is
        # confirmed, or refused), the held one's own share is low: "16% confidence" would read
        # as an answer given at 16 %. The plain view says the same (sinks.now_text).
        leader = max(s.bars, key=lambda bar: bar.probability) if s.bars else None
        challenged = leader is not None and leader.code != s.language
        caption = _line(
            (s.language_name, f"bold {s.language_colour}"),
            (" · ", DIM),
            (s.language, "bold"),
            (" · ", DIM),
            (f"challenged: {leader.name} {pct(leader.probability)}", "bold yellow")
            if challenged
            else (f"{pct(s.confidence)} confidence", "bold"),
        )
        if s.since_s is not None:
            caption.append(f" · since {fmt_time(s.since_s)}", DIM)
    sections = [Section(20, 100, [caption])]
    lines = big_lines(big, width)
    if lines is not None:
        sections.append(Section(10, 55, [_line((row, big_style)) for row in lines]))
    return sections


def _bar_lines(s: StreamSnapshot, width: int) -> list[Text]:
    if not s.bars:
        return []
    name_w = min(16, max(len(b.name) for b in s.bars))
    code_w = max(len(b.code) for b in s.bars)
    bar_w = max(4, width - name_w - code_w - 8)
    lines = []
    for bar in s.bars:
        style = bar.colour if s.speech else f"dim {bar.colour}"
        filled = max(0.0, min(1.0, bar.probability)) * bar_w
        whole = int(filled)
        part = EIGHTHS[int((filled - whole) * 8)] if whole < bar_w else ""
        rest = bar_w - whole - len(part.strip())
        name = bar.name if len(bar.name) <= name_w else bar.name[: name_w - 1] + "…"
        lines.append(
            _line(
                (f"{name:<{name_w}} ", "bold" if s.speech else DIM),
                (f"{bar.code:<{code_w}} ", DIM),
                (SPEECH_GLYPH * whole + part.strip(), style),
                ("─" * rest, "grey23"),
                (f" {pct(bar.probability):>4}", "bold" if s.speech else DIM),
            )
        )
    return lines


def _cells(s: StreamSnapshot, cols: int) -> list[str | None]:
    """The timeline's buckets squeezed (or stretched) into `cols` cells; None: not yet."""
    n = s.timeline_buckets
    cells: list[str | None] = []
    for j in range(cols):
        a = j * n // cols
        b = max(a + 1, (j + 1) * n // cols)
        values = s.timeline[a:b]
        if not values:
            cells.append(None)
            continue
        speech = [v for v in values if v != SILENCE]
        if 2 * len(speech) < len(values):
            cells.append(SILENCE)
            continue
        counts = Counter(speech)
        known = [(c, k) for k, c in counts.items() if k != UNCLEAR]
        if known and max(known)[0] * 2 >= counts.get(UNCLEAR, 0):
            # the most frequent language; among equals, the one heard last
            best = max(known)[0]
            cells.append(next(v for v in reversed(speech) if counts[v] == best and v != UNCLEAR))
        else:
            cells.append(UNCLEAR)
    return cells


def _timeline_sections(s: StreamSnapshot, width: int) -> list[Section]:
    colours = {code: colour for code, _, colour in s.legend}
    colours.update({code: colour for _, code, colour in s.changes})
    row = Text(no_wrap=True, overflow="crop")
    for cell in _cells(s, width):
        if cell is None:
            row.append(" ")
        elif cell == SILENCE:
            row.append(SILENCE_GLYPH, SILENCE_STYLE)
        elif cell == UNCLEAR:
            row.append(UNCLEAR_GLYPH, UNKNOWN_COLOUR)
        else:
            row.append(SPEECH_GLYPH, colours.get(cell, UNKNOWN_COLOUR))

    # Language changes: "▲fra" under the moment the new language began; later ones win.
    markers = [" "] * width
    styles: list[str | None] = [None] * width
    taken_from = width + 1  # column of the marker to the right, plus the gap it needs
    for since_s, code, colour in reversed(s.changes):
        col = int((since_s - s.timeline_start_s) / s.timeline_s * width)
        label = "▲" + code
        col = max(0, min(col, width - len(label)))
        if col + len(label) >= taken_from:  # keep a gap: "▲fra▲deu" reads as one word
            continue
        for k, ch in enumerate(label):
            markers[col + k] = ch
            styles[col + k] = colour
        taken_from = col
    marker_row = Text(no_wrap=True, overflow="crop")
    for ch, style in zip(markers, styles, strict=True):
        marker_row.append(ch, style or "")

    legend = _line((f"last {fmt_span(s.timeline_s)}", DIM))
    for _, name, colour in s.legend:
        legend.append("  ")
        legend.append(SPEECH_GLYPH, colour)
        legend.append(f" {name}")
    legend.append("  ")
    legend.append(UNCLEAR_GLYPH, UNKNOWN_COLOUR)
    legend.append(" unclear  ", DIM)
    legend.append(SILENCE_GLYPH, SILENCE_STYLE)
    legend.append(" silence", DIM)
    sections = [Section(50, 80, [row]), Section(52, 60, [legend])]
    if s.changes:
        sections.append(Section(51, 45, [marker_row]))
    return sections


def _input_line(s: StreamSnapshot, width: int) -> Text:
    gate = ("● speech", "bold green") if s.speech else ("○ no speech", "grey62")
    if s.speech_prob is not None:  # how sure the speech detector is, right now
        gate = (f"{gate[0]} {s.speech_prob:.2f}", gate[1])
    if s.ended_at_s is not None and s.level_dbfs is None:  # no signal, as expected
        return _line(("input ", DIM), ("ended", DIM))
    if s.level_dbfs is None:
        return _line(("input ", DIM), ("no signal", "bold yellow"), "   ", gate)
    meter_w = max(8, min(30, width - 32))
    level = max(METER_MIN_DBFS, min(0.0, s.level_dbfs))
    lit = round((level - METER_MIN_DBFS) / -METER_MIN_DBFS * meter_w)
    line = _line(("input ", DIM))
    for k in range(meter_w):
        cell_dbfs = METER_MIN_DBFS + (k + 1) * -METER_MIN_DBFS / meter_w
        if k >= lit:
            line.append("▯", "grey30")
        elif cell_dbfs > METER_CLIP_DBFS:
            line.append("▮", "red")
        elif cell_dbfs > METER_WARN_DBFS:
            line.append("▮", "yellow")
        else:
            line.append("▮", "green3")
    line.append(f" {s.level_dbfs:5.0f} dBFS   ")
    line.append(*gate)
    return line


def _health_lines(s: StreamSnapshot) -> tuple[Text, Text]:
    rate = "–" if s.windows_per_s is None else f"{s.windows_per_s:.1f}"
    figures = _line((rate, "bold"), (" win/s", DIM))
    figures.append(" · latency ", DIM)
    figures.append(fmt_ms(s.latency_median_s), "bold")
    figures.append(", p95 ", DIM)
    figures.append(fmt_ms(s.latency_p95_s), "bold")
    figures.append(" · lag ", DIM)
    if s.lag_s is None:
        figures.append("–" if not s.live else "…", "bold")
    else:
        figures.append(f"{s.lag_s:.1f} s", "bold yellow" if s.lag_s > 1.0 else "bold")
    figures.append(" · lost ", DIM)
    figures.append(f"{s.overflow_s:.1f} s", "bold red" if s.overflow_s > 0 else "bold")
    figures.append(" · skipped ", DIM)
    figures.append(str(s.skipped_windows), "bold red" if s.skipped_windows else "bold")
    # The effective hop: how much speech lies between answers (adaptive, or stretched by a
    # slow model).
    where = _line(("hop ", DIM), ("–" if s.hop_s is None else f"{s.hop_s:.1f} s", "bold"))
    where.append(" · source ", DIM)
    where.append(printable(s.source or s.name))
    if s.model:
        where.append(" · model ", DIM)
        where.append(s.model)
        where.append(f" ({s.device}/{s.dtype})", DIM)
    return figures, where


def _alert_line(alerts: tuple[Alert, ...]) -> Text:
    first = alerts[0]
    style = "bold red" if first.severity == "error" else "bold yellow"
    line = _line(("⚠ " + first.message, style))
    if len(alerts) > 1:
        line.append(f"  (+{len(alerts) - 1} more)", DIM)
    return line


def stream_sections(s: StreamSnapshot, width: int) -> list[Section]:
    sections = _now_sections(s, width)
    for i, line in enumerate(_bar_lines(s, width)):
        sections.append(Section(30 + i, (78, 74, 52, 48, 44)[i] if i < 5 else 40 - i, [line]))
    sections += _timeline_sections(s, width)
    sections.append(Section(60, 85, [_input_line(s, width)]))
    figures, where = _health_lines(s)
    sections += [Section(70, 70, [figures]), Section(71, 40, [where])]
    if s.warnings:
        sections.append(Section(80, 95, [_alert_line(s.warnings)]))
    for order in (25, 45, 55):  # breathing room between the groups, first to go
        sections.append(Section(order, 20, [Text("")], spacer=True))
    return sections


def fit_sections(sections: list[Section], rows: int) -> list[Text]:
    """The most important sections that fit in `rows` lines, in display order."""
    chosen: list[Section] = []
    used = 0
    for section in sorted(sections, key=lambda sec: (-sec.priority, sec.order)):
        if used + len(section.lines) <= rows:
            chosen.append(section)
            used += len(section.lines)
    chosen.sort(key=lambda sec: sec.order)
    # a spacer only between two real rows, never two in a row
    kept: list[Section] = []
    for section in chosen:
        if section.spacer and (not kept or kept[-1].spacer):
            continue
        kept.append(section)
    while kept and kept[-1].spacer:
        kept.pop()
    return [line for section in kept for line in section.lines]


def stream_panel(s: StreamSnapshot, width: int, rows: int) -> tuple[Panel, int]:
    """A panel for one stream using at most `rows` lines inside its border; and those lines."""
    inner = max(10, width - 4)
    lines = fit_sections(stream_sections(s, inner), rows)
    title = Text.assemble((f" {s.name} ", "bold"))
    where = "ended" if s.ended_at_s is not None else "live" if s.live else "file"
    subtitle = Text(f" {where} · {fmt_time(s.t_s)} ", style=DIM)
    panel = Panel(
        Group(*lines),
        title=title,
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        border_style="red" if any(a.severity == "error" for a in s.warnings) else "grey50",
        padding=(0, 1),
        height=len(lines) + 2,
    )
    return panel, len(lines)


NOTE_MIN_WIDTH = 8  # below this a note is no use: the compact table drops its column
# The compact table's columns that give way when the terminal is narrow, the first to go first:
# the stream, its language and confidence stay whole.
COMPACT_DROP_ORDER = ("note", "lost", "input", "lag")


def streams_table(streams: tuple[StreamSnapshot, ...], rows: int, width: int) -> Table:
    """Many streams on a small screen: one line each. The figures keep their width; the
    name (and the note, when there is one) share what is left, so a long name is cut short
    before the language is. Where even that does not fit, whole columns go (note, lost,
    input, lag) rather than every figure being cut to '0.…'."""
    shown = streams[: max(0, rows - 1)]
    columns: dict[str, list[Text | str]] = {
        "stream": [Text(s.name) for s in shown],  # names are text, never markup ("News [/] FR")
        "now": [_compact_now(s) for s in shown],
        "": [pct(s.confidence) if s.speech and s.language else "" for s in shown],
        "input": ["–" if s.level_dbfs is None else f"{s.level_dbfs:.0f} dB" for s in shown],
        "lag": ["–" if s.lag_s is None else f"{s.lag_s:.1f} s" for s in shown],
        "lost": [f"{s.overflow_s:.1f} s" for s in shown],
    }
    if any(s.warnings for s in shown):
        columns["note"] = [
            Text(s.warnings[0].message, "yellow") if s.warnings else "" for s in shown
        ]
    for name in COMPACT_DROP_ORDER:
        if _compact_width(columns) <= width:
            break
        columns.pop(name, None)
    # Cut in their middle, not at their end: feeds of one server all read "https://rad…".
    name_width = _compact_name_width(columns, width)
    columns["stream"] = [Text(shorten_middle(s.name, name_width)) for s in shown]
    table = Table(box=None, expand=True, pad_edge=False, header_style=DIM)
    for name in columns:
        flexible = name in ("stream", "note")
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            ratio=1 if flexible else None,
            width=NAME_MIN_WIDTH if name == "stream" else None,
        )
    for cells in zip(*columns.values(), strict=True):
        table.add_row(*cells)
    return table


def _compact_name_width(columns: dict[str, list[Text | str]], width: int) -> int:
    """The stream column's width: its least, and its share of what is left (the note, when
    there is one, takes the same share)."""
    spare = max(0, width - _compact_width(columns))
    return NAME_MIN_WIDTH + (spare // 2 if "note" in columns else spare)


def _compact_now(s: StreamSnapshot) -> Text:
    if not s.speech and s.ended_at_s is not None:
        return Text("ended", DIM)
    if s.feed_down:  # not "listening…": on a narrow screen its note's column is dropped
        return Text("down", "bold red")
    if not s.speech:
        return Text("listening…", DIM)
    if s.language is None:
        return Text("unclear", "bold grey70")
    return Text(s.language_name, f"bold {s.language_colour}")


def _compact_width(columns: dict[str, list[Text | str]]) -> int:
    """The least width the compact table needs with these columns: the flexible ones at
    their smallest, the others whole, two spaces between columns."""
    least = {"stream": NAME_MIN_WIDTH, "note": NOTE_MIN_WIDTH}
    widths = [
        least.get(name, max([len(name), *(len(str(cell)) for cell in cells)]))
        for name, cells in columns.items()
    ]
    return sum(widths) + 2 * (len(widths) - 1)


def _footer(paused: bool, keys: bool, width: int) -> Text:
    hint = " q quit · p pause · r reset" if keys else " Ctrl-C to stop"
    right = " ⏸ PAUSED — p to resume " if paused else ""
    line = Text(hint, style=DIM, no_wrap=True, overflow="ellipsis")
    if right:
        line.pad_right(max(1, width - len(hint) - len(right)))
        line.append(right, "bold black on yellow")
    return line


def render_view(
    snapshot: ViewSnapshot, width: int, height: int, *, paused: bool = False, keys: bool = False
) -> RenderableType:
    """Exactly `height` lines (footer at the bottom) when they fit; rows are dropped, never
    wrapped, when they do not."""
    footer: list[Text] = []
    if snapshot.notices:
        footer.append(_alert_line(snapshot.notices))
    footer.append(_footer(paused, keys, width))
    available = max(0, height - len(footer))
    streams = snapshot.streams
    body: list[RenderableType] = []
    used = 0
    if not streams:
        body.append(Text(" waiting for audio…", style=DIM))
        used = 1
    else:
        cols = max(1, min(len(streams), width // PANEL_MIN_WIDTH, 3))
        grid_rows = -(-len(streams) // cols)
        per_panel = available // grid_rows - 2
        if per_panel < 1:
            body.append(streams_table(streams, available, width))
            used = min(available, len(streams) + 1)
        else:
            col_w = width // cols
            for r in range(grid_rows):
                group = streams[r * cols : (r + 1) * cols]
                built = [stream_panel(s, col_w, per_panel) for s in group]
                tallest = max(n for _, n in built)
                if cols == 1:
                    body.append(built[0][0])
                else:
                    grid = Table.grid(expand=True)
                    for _ in range(cols):
                        grid.add_column(ratio=1)
                    for panel, _ in built:
                        panel.height = tallest + 2
                    cells = [p for p, _ in built] + [Text("")] * (cols - len(built))
                    grid.add_row(*cells)
                    body.append(grid)
                used += tallest + 2
    padding = [Text("") for _ in range(max(0, available - used))]
    return Group(*body, *padding, *footer)


class ViewRenderable:
    """Renders a snapshot at whatever size the console (or the Live screen) has now."""

    def __init__(self, snapshot: ViewSnapshot, *, paused: bool = False, keys: bool = False):
        self.snapshot = snapshot
        self.paused = paused
        self.keys = keys

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or console.height
        yield render_view(
            self.snapshot, options.max_width, height, paused=self.paused, keys=self.keys
        )


# -- exit summary ---------------------------------------------------------------------------


def shorten_middle(name: str, width: int = SUMMARY_NAME_MAX) -> str:
    """`name` in at most `width` cells, cut in its middle: feeds of one server share their
    start ("https://radio.example.o…"), so the end, which tells them apart, is kept."""
    if cell_len(name) <= width:
        return name
    head_n = (width - 1) * 2 // 5
    tail_n = width - 1 - head_n
    head = set_cell_size(name, head_n)
    tail = set_cell_size(name[::-1], tail_n)[::-1]
    return f"{head}…{tail}"


def table_minimum_width(console: Console, options: ConsoleOptions, table: Table) -> int:
    """The width below which `table` cuts what it shows. Rich's own minimum counts a no_wrap
    column at its longest word, yet cuts such a column's cells to '…' below their whole
    width: it is counted here at its widest cell."""
    minimum = Measurement.get(console, options, table).minimum
    for column in table.columns:
        if column.no_wrap:
            cells = [column.header, *column.cells]
            widths = [Measurement.get(console, options, cell) for cell in cells]
            minimum += max(w.maximum for w in widths) - max(w.minimum for w in widths)
    return minimum


def feed_down(s: StreamSummary) -> Text:
    """The summary's "feed down" cell: reconnects and time without audio, or that it never
    connected (a refused feed is not one that ran without a drop)."""
    if s.never_connected:
        return Text(never_connected_text(s), style="bold red")
    if not s.feed:  # a file beside feeds: it cannot drop, "0× 0.0 s" would say it did not
        return Text("–", style=DIM)
    return Text(f"{s.reconnects}× {s.outage_s:.1f} s", style="yellow" if s.outage_s else "")


class TablesOrLines:
    """The summary's tables where the terminal is wide enough for them, else the plain view's
    lines: a table squeezed into a narrow terminal cut every figure and name to '…'."""

    def __init__(self, tables: Sequence[RenderableType], lines: Text) -> None:
        self.tables = list(tables)
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(NATURAL_WIDTH_N)
        fits = all(
            # Below its minimum a table cuts what cannot wrap (figures, headers) to '…'.
            table_minimum_width(console, unbounded, table) <= options.max_width
            for table in self.tables
            if isinstance(table, Table)
        )
        yield from self.tables if fits else [self.lines]


def summary_renderables(
    summary: Summary, history: Sequence[Notice] = (), total_notices: int | None = None
) -> list:
    """Tables printed when the live view has closed: what was heard, and how the run went;
    then the last few distinct warnings (`history`, of `total_notices` in all)."""
    failed = summary.reason.startswith("error")
    title = f"streamlid · {summary.reason} after {fmt_time(summary.wall_s)}"
    speech = Table(
        box=box.SIMPLE_HEAD,
        title=Text(title, style="bold red" if failed else "bold"),
        title_justify="left",
    )
    speech.add_column("stream", no_wrap=True)
    speech.add_column("language")
    speech.add_column("code")
    speech.add_column("speech", justify="right")
    speech.add_column("share", justify="right")
    for s in summary.streams:
        total = sum(s.speech_s_by_language.values()) or 1.0
        items = list(s.speech_s_by_language.items()) or [("", 0.0)]
        for i, (code, seconds) in enumerate(items):
            known = code not in ("", UNKNOWN_CODE)
            speech.add_row(
                Text(shorten_middle(s.stream) if i == 0 else ""),  # text, never markup
                Text(language_name(code) if known else (code or "no speech")),
                Text(code if known else "–" if code else ""),
                fmt_time(seconds) if code else "",
                pct(seconds / total) if code else "",
                end_section=i == len(items) - 1,
            )

    health = Table(
        title=Text("health", style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    health.add_column("stream", no_wrap=True)
    feeds = any(s.reconnects or s.outage_s or s.never_connected for s in summary.streams)
    for column in ("audio", "changes", "windows", "hop", "latency", "skipped", "lost"):
        health.add_column(column, justify="right", no_wrap=True)
    if feeds:  # network feeds that dropped: reconnects and time without audio
        health.add_column("feed down", justify="right", no_wrap=True)
    for s in summary.streams:
        latency = (
            "–"
            if s.latency_median_s is None
            else f"{1000 * s.latency_median_s:.0f}/{1000 * (s.latency_p95_s or 0):.0f} ms"
        )
        health.add_row(
            Text(shorten_middle(s.stream)),
            fmt_time(s.duration_s),
            str(s.changes),
            str(s.windows),
            "–" if s.hop_mean_s is None else f"{s.hop_mean_s:.2f} s",
            latency,
            Text(str(s.skipped_windows), style="bold red" if s.skipped_windows else ""),
            Text(f"{s.overflow_s:.1f} s", style="bold red" if s.overflow_s else ""),
            *([feed_down(s)] if feeds else []),
        )
    # Captions under the tables, not in them: a table's caption wraps at the table's width,
    # which is narrower than the terminal.
    tables: list = [speech]
    if summary.model:
        tables.append(Text(f"model {summary.model} on {summary.device}/{summary.dtype}", CAPTION))
    tables += [health, Text(HEALTH_CAPTION, CAPTION)]
    out: list = [TablesOrLines(tables, Text("\n".join(summary_lines(summary))))]
    if history:
        counts = Counter((n.severity, n.message) for n in history)
        total = len(history) if total_notices is None else total_notices
        lines = Text(f"{total} warnings/errors during the run; the last:\n", style=DIM)
        recent: dict[tuple[str, str], None] = {}
        for n in reversed(history):
            recent.setdefault((n.severity, n.message), None)
            if len(recent) == 5:
                break
        for severity, message in recent:
            times = counts[(severity, message)]
            lines.append(
                f"  {severity}: {message}" + (f" (×{times})" if times > 1 else "") + "\n",
                style="red" if severity == "error" else "yellow",
            )
        out.append(lines)
    return out
