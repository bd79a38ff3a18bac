"""Memory of this process over time, for the soak scripts: so "flat" is judged by a slope.

`MemoryTimeline.sample()` records, every call, the resident set (and its anonymous part) from
/proc/self/status, what glibc's malloc holds from the system and how much of it is in use
(`mallinfo2`, summed over every arena) and the number of malloc arenas and threads. Growth in
`in use` is live allocations (objects, buffers); growth in what malloc holds with `in use` flat
is fragmentation or per-thread arenas; growth in RSS beyond malloc is mmap (large tensors,
numpy buffers), libraries' own pools, or pages touched for the first time.

`report()` prints a table, a sparkline and the least-squares slope in MB/min over the samples
after the warm-up and over the last half of the run (two points say nothing about a trend).
Linux and glibc only; fields it cannot read are left out.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import re
import tempfile
import time
import tracemalloc
from dataclasses import dataclass

MB = 2**20
SPARK = "▁▂▃▄▅▆▇█"


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes from the system by sbrk and in secondary arenas' heaps
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in chunks mmapped one by one (large allocations)
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free inside the arenas
            "keepcost",
        )
    ]


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        return ctypes.CDLL(name)
    return None


_LIBC = _libc()


def _status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (kB) and Threads from /proc/self/status."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0])
    return out


def rss_mb() -> float:
    """This process's resident set now, MB."""
    return _status()["VmRSS"] / 1024


def malloc_mb() -> tuple[float, float] | None:
    """(MB malloc holds from the system, MB of it in use), all arenas; None without glibc."""
    fn = getattr(_LIBC, "mallinfo2", None)
    if fn is None:
        return None
    fn.restype = _Mallinfo2
    info = fn()
    held = info.arena + info.hblkhd
    used = info.uordblks + info.hblkhd
    return held / MB, used / MB


def malloc_arenas() -> int | None:
    """How many malloc arenas exist (malloc_info's <heap> elements), None without glibc."""
    if _LIBC is None or not hasattr(_LIBC, "malloc_info"):
        return None
    _LIBC.fopen.restype = ctypes.c_void_p
    _LIBC.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    _LIBC.fclose.argtypes = [ctypes.c_void_p]
    _LIBC.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r", suffix=".xml") as handle:
        stream = _LIBC.fopen(handle.name.encode(), b"w")
        if not stream:
            return None
        _LIBC.malloc_info(0, stream)
        _LIBC.fclose(stream)
        return len(re.findall(r"<heap nr=", handle.read()))


@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since the timeline started
    rss_mb: float
    anon_mb: float
    malloc_held_mb: float | None
    malloc_used_mb: float | None
    arenas: int | None
    threads: int


def take_sample(t_s: float) -> Sample:
    status = _status()
    malloc = malloc_mb()
    return Sample(
        t_s=t_s,
        rss_mb=status["VmRSS"] / 1024,
        anon_mb=status.get("RssAnon", 0) / 1024,
        malloc_held_mb=None if malloc is None else malloc[0],
        malloc_used_mb=None if malloc is None else malloc[1],
        arenas=malloc_arenas(),
        threads=status.get("Threads", 0),
    )


def slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute; None under 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var_t * 60.0


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))] for v in values)


class MemoryTimeline:
    """Samples taken every `every_s` (call `maybe_sample()` often, or `sample()`), judged after
    `warm_up_s`. With `trace_top_n`, tracemalloc runs and `report()` lists the lines whose
    Python allocations grew most between the warm-up and the end."""

    def __init__(self, every_s: float, warm_up_s: float, trace_top_n: int = 0) -> None:
        self.every_s = every_s
        self.warm_up_s = warm_up_s
        self.trace_top_n = trace_top_n
        self.samples: list[Sample] = []
        self._t0 = time.monotonic()
        self._warm_snapshot: tracemalloc.Snapshot | None = None
        if trace_top_n:
            tracemalloc.start(8)

    def start(self) -> None:
        """Time zero (the run's start) and the first sample."""
        self._t0 = time.monotonic()
        self.sample()

    def sample(self) -> Sample:
        sample = take_sample(time.monotonic() - self._t0)
        self.samples.append(sample)
        if self.trace_top_n and self._warm_snapshot is None and sample.t_s >= self.warm_up_s:
            self._warm_snapshot = tracemalloc.take_snapshot()
        return sample

    def maybe_sample(self) -> Sample | None:
        last = self.samples[-1].t_s if self.samples else -self.every_s
        if time.monotonic() - self._t0 - last >= self.every_s:
            return self.sample()
        return None

    def after_warm_up(self) -> list[Sample]:
        return [s for s in self.samples if s.t_s >= self.warm_up_s]

    def last_half(self) -> list[Sample]:
        judged = self.after_warm_up()
        if not judged:
            return []
        middle_s = (judged[0].t_s + judged[-1].t_s) / 2
        return [s for s in judged if s.t_s >= middle_s]

    def slope(self, samples: list[Sample], field: str = "rss_mb") -> float | None:
        points = [(s.t_s, getattr(s, field)) for s in samples if getattr(s, field) is not None]
        return slope_mb_per_min(points)

    def report(self, print_fn=print) -> None:
        judged = self.after_warm_up()
        print_fn(
            f"{'t':>6} {'RSS MB':>7} {'anon':>6} {'malloc':>7} {'in use':>7} "
            f"{'arenas':>6} {'threads':>7}"
        )
        for s in self.samples:
            held = "" if s.malloc_held_mb is None else f"{s.malloc_held_mb:.1f}"
            used = "" if s.malloc_used_mb is None else f"{s.malloc_used_mb:.1f}"
            arenas = "" if s.arenas is None else str(s.arenas)
            print_fn(
                f"{s.t_s:>5.0f}s {s.rss_mb:>7.1f} {s.anon_mb:>6.1f} {held:>7} {used:>7} "
                f"{arenas:>6} {s.threads:>7}"
            )
        print_fn(f"RSS {sparkline([s.rss_mb for s in self.samples])}")
        for label, samples in (
            (f"after the {self.warm_up_s:g} s warm-up", judged),
            ("over the last half", self.last_half()),
        ):
            parts = []
            for field, name in (
                ("rss_mb", "RSS"),
                ("malloc_held_mb", "malloc held"),
                ("malloc_used_mb", "malloc in use"),
            ):
                value = self.slope(samples, field)
                if value is not None:
                    parts.append(f"{name} {value:+.2f}")
            print_fn(f"slope {label} (MB/min): {', '.join(parts) or 'too few samples'}")
        if self.trace_top_n and self._warm_snapshot is not None:
            end = tracemalloc.take_snapshot()
            print_fn(f"tracemalloc: top {self.trace_top_n} growths since the warm-up")
            for stat in end.compare_to(self._warm_snapshot, "lineno")[: self.trace_top_n]:
                print_fn(f"  {stat}")
            current, peak = tracemalloc.get_traced_memory()
            print_fn(f"  traced now {current / MB:.1f} MB, peak {peak / MB:.1f} MB")
