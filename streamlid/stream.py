"""Per-stream state shared by its front end and the worker: counters and the live edge.

Each field has one writer: the front end writes `overflow_s` and `ended_at_s`; the worker writes
`windows`, `skipped_windows`, `lag_s` and `next_hop_s` (which the front end reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from .audio.ring import RingBuffer
from .audio.source import Source
from .smoothing import Smoother


@dataclass
class StreamState:
    name: str
    source: Source
    ring: RingBuffer
    smoother: Smoother
    windows: int = 0  # classified
    skipped_windows: int = 0  # dropped because the model could not keep up
    overflow_s: float = 0.0  # audio lost in the ring buffer
    ended_at_s: float = 0.0  # stream time reached by the front end
    lag_s: float | None = None  # how far behind live the last answer was (live streams)
    next_hop_s: float = 1.0  # speech to wait for before the next window (the adaptive hop)
    held_s: float = 0.0  # speech since the current language was named (the worker's)

    @property
    def live(self) -> bool:
        return self.source.live

    def live_edge_s(self) -> float:
        """Stream time of the newest audio captured: what "now" means for lag."""
        return self.ring.write_index / self.source.sample_rate_hz
