"""RemoteModel: the worker's `Model` seam (`classify(windows) -> probabilities`) answered by
the Serve deployment, so the pipeline around it does not learn about Ray.

Each window is one request: Serve batches them with every other feed's. The live rules hold
across the network: no answer is awaited past `timeout_s` (an ingest actor with live feeds uses
--max-lag), and a window that gets no answer (a timeout, a replica that died twice) comes back
as a row of NaN, which the worker counts as skipped. A replica that dies with a window in hand
is retried once, on whichever replica Serve picks, while time is left.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RETRIES_N = 1  # a request that failed (its replica died) is sent again this many times
LATENCIES_KEPT_N = 256  # round trips remembered for the cluster status


@dataclass
class RemoteCounts:
    """What went wrong so far (read by the cluster status): windows that timed out, failed
    for good, or were retried after a failure."""

    timed_out_n: int = 0
    failed_n: int = 0
    retried_n: int = 0
    answered_n: int = 0


class RemoteModel:
    def __init__(
        self, handle: Any, labels: Sequence[str], timeout_s: float, retries_n: int = RETRIES_N
    ) -> None:
        self._handle = handle.options(method_name="classify_window")
        self.labels = tuple(labels)
        self.timeout_s = timeout_s
        self._retries_n = retries_n
        self.counts = RemoteCounts()
        self._latencies_s: deque[float] = deque(maxlen=LATENCIES_KEPT_N)
        self._lock = threading.Lock()  # the worker writes, the status reader reads

    def classify(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        out = np.full((len(windows), len(self.labels)), np.nan, dtype=np.float32)
        started = time.monotonic()
        deadline = started + self.timeout_s
        responses = [self._handle.remote(window) for window in windows]
        for i, response in enumerate(responses):
            row = self._answer(response, windows[i], deadline)
            if row is not None:
                out[i] = row
        with self._lock:
            self._latencies_s.append(time.monotonic() - started)
        return out

    def latency_s(self, q: float) -> float | None:
        """Quantile `q` of the recent round trips (a whole classify call), or None."""
        with self._lock:
            values = sorted(self._latencies_s)
        if not values:
            return None
        return round(values[min(len(values) - 1, int(q * len(values)))], 4)

    def _answer(self, response: Any, window: np.ndarray, deadline: float) -> np.ndarray | None:
        retries_left = self._retries_n
        while True:
            remaining_s = deadline - time.monotonic()
            try:
                if remaining_s <= 0:
                    raise TimeoutError
                row = np.asarray(response.result(timeout_s=remaining_s), dtype=np.float32)
                self._count("answered_n")
                return row
            except TimeoutError:
                response.cancel()  # its answer would come too late to be of use
                self._count("timed_out_n")
                return None
            except Exception:  # the replica died (RayActorError) or the request was lost
                if retries_left <= 0 or deadline - time.monotonic() <= 0:
                    self._count("failed_n")
                    return None
                retries_left -= 1
                self._count("retried_n")
                response = self._handle.remote(window)

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.counts, name, getattr(self.counts, name) + 1)
