"""silero-vad as a detector: its TorchScript model on 512-sample frames, state carried across.

The model ships inside the `silero-vad` wheel, so it loads offline. The package itself is not
imported: its `__init__` calls `torch.set_num_threads(1)` for the whole process, which would
slow the classifier. Instead the model file is found by path and loaded with torch.jit.

One frame is a few hundred microseconds of work; spread over torch's thread pool it costs far
more (threads wake and wait for each other, worst on a busy machine), so inference runs on one
thread. torch keeps that setting per thread, but new threads copy a process-wide value; the
first call on each thread pins that thread to one and puts the process-wide value back.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE_HZ
from ..errors import ConfigError
from .detectors import SILERO_FRAME_N


def model_path() -> Path:
    """The TorchScript model inside the installed silero-vad package (found, not imported)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "vad-engine silero needs the silero-vad package: pip install silero-vad, "
            "or use --vad-engine webrtc."
        )
    return Path(spec.origin).parent / "data" / "silero_vad.jit"


_PIN_LOCK = threading.Lock()  # two streams pinning at once must not restore each other's 1


def _one_thread_here(torch) -> None:
    """Pins the calling thread to one torch thread without changing it for other threads."""
    with _PIN_LOCK:
        process_wide = torch.get_num_threads()  # also initialises this thread's setting
        torch.set_num_threads(1)
        restore = threading.Thread(target=torch.set_num_threads, args=(process_wide,))
        restore.start()
        restore.join()


class SileroDetector:
    frame_n = SILERO_FRAME_N

    def __init__(self) -> None:
        import torch

        self._torch = torch
        with warnings.catch_warnings():  # torch 2.13 calls jit.load deprecated; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            self._model = torch.jit.load(str(model_path()), map_location="cpu").eval()
        self._pinned: set[int] = set()

    def speech_probability(self, frame: np.ndarray) -> float:
        torch = self._torch
        if threading.get_ident() not in self._pinned:
            _one_thread_here(torch)
            self._pinned.add(threading.get_ident())
        x = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).unsqueeze(0)
        with torch.inference_mode():
            return float(self._model(x, SAMPLE_RATE_HZ).item())

    def reset(self) -> None:
        self._model.reset_states()
