"""`streamlid bench`: how much of the configured model this machine sustains.

For each window length and batch size the model classifies batches of noise windows (speed does
not depend on the audio, nor on weight values: `--random-weights` builds the real architecture
in memory, nothing to download) and the figures follow from the forward times:

- smallest hop one live stream sustains = the median batch-1 forward time at that window length
  (a live stream classifies its newest window, one at a time; a shorter hop piles up);
- live streams sustained at the hop = floor(hop × batch / forward median), batches of `batch`
  windows from as many streams; 0 where one forward pass alone exceeds --max-lag, since such a
  batch's answers come out too late to be live.
"""

from __future__ import annotations

import math
import resource
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .errors import ConfigError

NOISE_RMS = 0.1  # windows of noise: the feature extractor normalises them like speech
MAX_RUNS = 1000
MAX_BATCH = 256


@dataclass(frozen=True)
class BenchRow:
    window_s: float
    batch: int
    forward_median_s: float  # one forward pass of `batch` windows
    forward_p95_s: float
    per_window_s: float  # forward median / batch
    windows_per_s: float
    min_hop_s: float  # smallest hop one live stream sustains (batch-1 median)
    streams_at_hop: int  # live streams sustained at the configured hop with this batch
    device_peak_gb: float | None  # GPU memory held during this row; None off CUDA


@dataclass(frozen=True)
class BenchReport:
    model: str
    device: str
    dtype: str
    hop_s: float
    max_lag_s: float
    runs: int
    load_s: float
    host_model_gb: float  # resident memory once the model is loaded
    host_peak_gb: float  # peak resident memory of the whole run, loading included
    rows: tuple[BenchRow, ...]
    rows_asked: int = 0  # windows × batches asked for; more than len(rows) when interrupted
    interrupted: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


class BenchInterrupted(KeyboardInterrupt):
    """A stop signal (Ctrl-C) while timing: `report` holds every row finished before it."""

    def __init__(self, report: BenchReport, signum: int) -> None:
        super().__init__(signum)
        self.report = report
        self.signum = signum


def parse_list(text: str, name: str, kind: type, low: float, high: float) -> tuple:
    """ "1,3" -> (1, 3) as `kind`, each within [low, high], or one sentence on what is wrong."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise ConfigError(f"--{name} is empty; give comma-separated values such as 1,4.")
    values = []
    for item in items:
        try:
            value = kind(item)
        except ValueError:
            kind_name = "whole numbers" if kind is int else "numbers"
            raise ConfigError(
                f"--{name} {text!r}: {item!r} is not a number; use {kind_name}."
            ) from None
        if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
            raise ConfigError(f"--{name} {text!r}: {item} is out of range; use {low} to {high}.")
        values.append(value)
    return tuple(dict.fromkeys(values))  # in order given, repeats dropped


def check_runs(runs: int) -> int:
    if not 1 <= runs <= MAX_RUNS:
        raise ConfigError(f"--runs {runs} is out of range; use 1 to {MAX_RUNS}.")
    return runs


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def make_row(
    window_s: float,
    batch: int,
    times_s: Sequence[float],
    batch1_median_s: float,
    hop_s: float,
    max_lag_s: float,
    device_peak_gb: float | None = None,
) -> BenchRow:
    """The figures of one (window, batch) from its forward times (see the module docstring)."""
    # Every figure of the row from the median as reported (to the microsecond), so a reader
    # who recomputes one from another gets the same number.
    median = max(round(statistics.median(times_s), 6), 1e-6)
    fits = median <= max_lag_s
    return BenchRow(
        window_s=window_s,
        batch=batch,
        forward_median_s=median,
        forward_p95_s=round(percentile(times_s, 95), 6),
        per_window_s=round(median / batch, 6),
        windows_per_s=round(batch / median, 3),
        min_hop_s=round(batch1_median_s, 6),
        streams_at_hop=math.floor(hop_s * batch / median) if fits else 0,
        device_peak_gb=device_peak_gb,
    )


def host_peak_gb() -> float:
    """Peak resident memory of this process (ru_maxrss: KiB on Linux, bytes on macOS)."""
    scale = 1e9 if sys.platform == "darwin" else 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def host_now_gb() -> float:
    """Resident memory now, where /proc tells it; else the peak so far."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return host_peak_gb()


def run_bench(
    classifier,
    *,
    window_s: Sequence[float],
    batches: Sequence[int],
    runs: int,
    hop_s: float,
    max_lag_s: float,
    load_s: float,
    advance: Callable[[str], None] = lambda label: None,
) -> BenchReport:
    """Times `classifier.classify` on every (window, batch): one warm-up pass, then `runs`.
    `advance(label)` is called once per pass, for a progress bar. Batch 1 is always timed first
    (the smallest hop needs it) but reported only if asked for. A stop signal raises
    BenchInterrupted with the rows finished so far: minutes of timing are not thrown away."""
    host_model = host_now_gb()
    rng = np.random.default_rng(0)
    rows: list[BenchRow] = []
    finished: dict[int, BenchRow] = {}  # the current window length's rows, by batch

    def report(interrupted: bool) -> BenchReport:
        info = classifier.info
        return BenchReport(
            model=info.model,
            device=info.device,
            dtype=info.dtype,
            hop_s=hop_s,
            max_lag_s=max_lag_s,
            runs=runs,
            load_s=round(load_s, 3),
            host_model_gb=round(host_model, 3),
            host_peak_gb=round(host_peak_gb(), 3),
            rows=(*rows, *(finished[b] for b in batches if b in finished)),
            rows_asked=len(window_s) * len(batches),
            interrupted=interrupted,
        )

    try:
        for seconds in window_s:
            n = round(seconds * SAMPLE_RATE_HZ)
            batch1_median = 0.0
            for batch in sorted({1, *batches}):
                windows = [(rng.standard_normal(n) * NOISE_RMS).astype(np.float32)] * batch
                classifier.reset_device_memory_peak()
                label = f"{seconds:g} s × {batch}"
                classifier.classify(windows)  # warm-up: kernels, allocator, autotuning
                advance(label)
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    classifier.classify(windows)  # returns numpy: the GPU has finished
                    times.append(time.perf_counter() - started)
                    advance(label)
                peak = classifier.device_memory_peak_bytes()
                peak_gb = None if peak is None else round(peak / 1e9, 3)
                if batch == 1:
                    batch1_median = statistics.median(times)
                if batch in batches:
                    finished[batch] = make_row(
                        seconds, batch, times, batch1_median, hop_s, max_lag_s, peak_gb
                    )
            rows.extend(finished[b] for b in batches)
            finished.clear()
    except KeyboardInterrupt as exc:
        raise BenchInterrupted(report(True), getattr(exc, "signum", signal.SIGINT)) from exc
    return report(False)


def passes_needed(window_s: Sequence[float], batches: Sequence[int], runs: int) -> int:
    return len(window_s) * len({1, *batches}) * (runs + 1)


def render_table(report: BenchReport):
    """A rich Table of the report (built here so the CLI stays thin)."""
    from rich.table import Table

    title = (
        f"{report.model} on {report.device}/{report.dtype}: hop {report.hop_s:g} s, "
        f"max lag {report.max_lag_s:g} s, {report.runs} runs"
    )
    table = Table(title=title)
    columns = [
        "window",
        "batch",
        "median",
        "p95",
        "per window",
        "windows/s",
        "min hop",
        f"streams @{report.hop_s:g} s",
    ]
    on_gpu = any(row.device_peak_gb is not None for row in report.rows)
    if on_gpu:
        columns.append("GPU peak")
    for column in columns:
        table.add_column(column, justify="right", overflow="fold")
    for row in report.rows:
        cells = [
            f"{row.window_s:g} s",
            str(row.batch),
            f"{row.forward_median_s:.3f} s",
            f"{row.forward_p95_s:.3f} s",
            f"{row.per_window_s:.3f} s",
            f"{row.windows_per_s:.1f}",
            f"{row.min_hop_s:.2f} s",
            str(row.streams_at_hop),
        ]
        if on_gpu:
            cells.append("-" if row.device_peak_gb is None else f"{row.device_peak_gb:.2f} GB")
        table.add_row(*cells)
    if report.interrupted:
        table.title += f" (interrupted: {len(report.rows)} of {report.rows_asked} rows)"
    table.caption = (
        "median, p95: one forward pass of the batch. min hop: the smallest hop one live stream "
        "sustains (batch-1 median). streams: live streams sustained at the hop, "
        "floor(hop × batch / median), 0 where one pass exceeds the max lag. Host memory "
        f"{report.host_model_gb:.2f} GB with the model loaded, peak {report.host_peak_gb:.2f} GB; "
        f"loaded in {report.load_s:.1f} s."
    )
    return table
