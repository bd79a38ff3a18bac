"""A stand-in model of fixed service time: `classify` sleeps `service_s` per batch (plus
`per_window_s` per window) and answers a fixed, distinct probability vector per window length.

For benchmarks and tests of the orchestration (Serve batching, replicas, ingest actors), so the
figures show the cluster, not this machine's cores. Served through `ModelSpec(factory=
"streamlid.cluster.standin:SleepModel", kwargs={...})`."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..classifier import ModelInfo


class SleepModel:
    def __init__(
        self, labels_n: int = 256, service_s: float = 0.01, per_window_s: float = 0.0
    ) -> None:
        self.labels = tuple(f"l{i:03d}" for i in range(labels_n))
        self.service_s = service_s
        self.per_window_s = per_window_s
        self.info = ModelInfo(
            model=f"stand-in ({service_s * 1000:g} ms per batch)",
            device="cpu",
            dtype="none",
            labels=self.labels,
        )
        self.batches_n = 0  # forward passes so far (the benchmark reads the batch sizes)

    def classify(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        time.sleep(self.service_s + self.per_window_s * len(windows))
        self.batches_n += 1
        out = np.full((len(windows), len(self.labels)), 0.1 / len(self.labels), dtype=np.float32)
        for i, window in enumerate(windows):
            out[i, len(window) % len(self.labels)] += 0.9
        return out
