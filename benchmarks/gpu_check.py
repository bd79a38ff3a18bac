"""One GPU check, in steps that benchmarks/gpu_check.sh runs each under its own hard timeout.

Every step builds the full-size mms-lid-256 architecture with random weights directly on the
GPU (nothing downloaded; speed does not depend on weight values) and appends its figures as one
JSON line to OUT/gpu_check.jsonl (and prints them).

    python benchmarks/gpu_check.py model   --out DIR     # batch-1 latency, batched windows/s
    python benchmarks/gpu_check.py graphs  --out DIR     # batch-1 latency with a CUDA graph
    python benchmarks/gpu_check.py compile --out DIR     # torch.compile(mode="reduce-overhead")
    python benchmarks/gpu_check.py streams --out DIR --streams 200 --seconds 90
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RATE_HZ = 16000
WINDOW_S = 3.0


def emit(out: Path, record: dict) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "gpu_check.jsonl").open("a") as handle:
        handle.write(line + "\n")


DEVICE = "cuda"  # --device cpu: a dry run of the script's own code, nothing more


def load(dtype: str):
    from streamlid.classifier import RANDOM_SHAPES, Classifier

    started = time.monotonic()
    classifier = Classifier(
        str(RANDOM_SHAPES["mms-lid-256"]),
        device=DEVICE,
        dtype=dtype,
        display_name="mms-lid-256 (random weights)",
        random_weights=True,
    )
    return classifier, time.monotonic() - started


def sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed_ms(fn, runs: int) -> list[float]:
    fn()
    sync()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        sync()
        times.append(1000 * (time.perf_counter() - started))
    return times


def inputs(batch: int, dtype):
    import torch

    torch.manual_seed(0)
    return torch.randn(batch, round(WINDOW_S * RATE_HZ), device=DEVICE, dtype=dtype) * 0.1


def step_model(args) -> None:
    """The model alone: input on the GPU already, eager; batch-1 latency and batched rate."""
    import torch

    classifier, load_s = load(args.dtype)
    model, dtype = classifier._model, classifier._torch_dtype
    emit(args.out, {"step": "load", "dtype": args.dtype, "load_s": round(load_s, 2)})
    with torch.inference_mode():
        one = inputs(1, dtype)
        times = timed_ms(lambda: model(input_values=one).logits, args.runs)
        emit(
            args.out,
            {
                "step": "batch1_eager",
                "median_ms": round(statistics.median(times), 3),
                "p95_ms": round(float(np.percentile(times, 95)), 3),
            },
        )
        for batch in (int(b) for b in args.batches.split(",")):
            x = inputs(batch, dtype)
            classifier.reset_device_memory_peak()
            times = timed_ms(lambda x=x: model(input_values=x).logits, max(3, args.runs // 5))
            median = statistics.median(times)
            emit(
                args.out,
                {
                    "step": "batched_eager",
                    "batch": batch,
                    "median_ms": round(median, 3),
                    "windows_per_s": round(1000 * batch / median, 1),
                    "gpu_peak_gb": round((classifier.device_memory_peak_bytes() or 0) / 1e9, 2),
                },
            )
    # streamlid's own path, features included (numpy normalisation on the host)
    window = [np.random.default_rng(0).normal(0, 0.1, round(WINDOW_S * RATE_HZ)).astype("f4")]
    times = timed_ms(lambda: classifier.classify(window), args.runs)
    emit(args.out, {"step": "batch1_classify", "median_ms": round(statistics.median(times), 3)})


def step_graphs(args) -> None:
    """Batch 1 through a captured CUDA graph: one launch for the whole forward pass."""
    import torch

    classifier, _ = load(args.dtype)
    model = classifier._model
    static = inputs(1, classifier._torch_dtype)
    with torch.inference_mode():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                model(input_values=static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model(input_values=static).logits
        times = timed_ms(graph.replay, args.runs)
        eager = model(input_values=static).logits
    emit(
        args.out,
        {
            "step": "batch1_cuda_graph",
            "median_ms": round(statistics.median(times), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3),
            "max_abs_diff_vs_eager": float((out.float() - eager.float()).abs().max()),
        },
    )


def step_compile(args) -> None:
    """torch.compile(mode="reduce-overhead") at batch 1 (CUDA graphs through Inductor)."""
    import torch

    classifier, _ = load(args.dtype)
    compiled = torch.compile(classifier._model, mode="reduce-overhead")
    one = inputs(1, classifier._torch_dtype)
    with torch.inference_mode():
        started = time.monotonic()
        for _ in range(3):
            compiled(input_values=one)
        sync()
        compile_s = time.monotonic() - started
        times = timed_ms(lambda: compiled(input_values=one).logits, args.runs)
    emit(
        args.out,
        {
            "step": "batch1_compile_reduce_overhead",
            "compile_s": round(compile_s, 1),
            "median_ms": round(statistics.median(times), 3),
        },
    )


def speech_file(folder: Path, seconds: float) -> Path:
    """espeak-ng speech where it is installed; else a voiced synthetic signal (a 120 Hz
    harmonic source with a 4 Hz syllable envelope, which webrtcvad takes for speech)."""
    import soundfile

    path = folder / "speech.wav"
    text = (
        "Good morning everyone, today we will talk about the city, the market and the children "
        "who play in the garden after school while their parents are still at the office. "
    ) * 3
    try:
        subprocess.run(
            ["espeak-ng", "-v", "en", "-w", str(folder / "raw.wav"), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        import soxr

        raw, rate = soundfile.read(str(folder / "raw.wav"), dtype="float32", always_2d=True)
        audio = soxr.resample(raw.mean(axis=1), rate, RATE_HZ).astype(np.float32)
        source = "espeak-ng"
    except (OSError, subprocess.SubprocessError):
        t = np.arange(round(20 * RATE_HZ)) / RATE_HZ
        phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / RATE_HZ
        voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
        envelope = (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) ** 2
        audio = (voiced * envelope).astype(np.float32)
        audio /= 2 * np.abs(audio).max()
        source = "synthetic"
    audio = np.tile(audio, int(np.ceil(seconds * RATE_HZ / len(audio))) + 1)
    soundfile.write(str(path), audio[: round(seconds * RATE_HZ)], RATE_HZ, subtype="PCM_16")
    print(f"speech: {source}, {seconds:.0f} s", flush=True)
    return path


class LagSink:
    """Answer latencies and skipped windows of every stream (a sink: called on the bus thread)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.skipped: dict[str, int] = {}
        self.lock = threading.Lock()

    def handle(self, event) -> None:
        from streamlid.events import Prediction, Status

        with self.lock:
            if isinstance(event, Prediction):
                self.latencies.append(event.latency_s)
            elif isinstance(event, Status):
                self.skipped[event.stream] = max(
                    self.skipped.get(event.stream, 0), event.skipped_windows
                )

    def close(self) -> None:
        pass


def step_streams(args) -> None:
    """N live streams at a 1 s hop: --realtime copies of one speech file through the Engine."""
    from streamlid.audio.open import open_source
    from streamlid.config import load_config
    from streamlid.engine import Engine

    classifier, _ = load(args.dtype)
    classifier.classify([np.zeros(round(WINDOW_S * RATE_HZ), np.float32)] * 8)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        path = speech_file(Path(tmp), args.seconds + 30)
        config = load_config(
            None,
            {"device": DEVICE, "dtype": args.dtype, "hop": 1.0, "batch": args.batch, "ui": "none"},
        )
        sources = [open_source(str(path), realtime=True) for _ in range(args.streams)]
        sink = LagSink()
        info = classifier.info
        engine = Engine(config, sources, classifier, [sink], (info.model, info.device, info.dtype))
        started = time.monotonic()
        engine.start()
        engine.wait(args.seconds)
        engine.stop("time limit")
        engine.wait(30)
        wall_s = time.monotonic() - started
    summary = engine.summary
    latencies = sink.latencies or [float("nan")]
    skipped = sum(s.skipped_windows for s in summary.streams) if summary else None
    emit(
        args.out,
        {
            "step": "live_streams",
            "streams": args.streams,
            "hop_s": 1.0,
            "batch": args.batch,
            "seconds": round(wall_s, 1),
            "predictions": len(sink.latencies),
            "predictions_per_stream_per_s": round(
                len(sink.latencies) / args.streams / max(wall_s, 1e-9), 3
            ),
            "latency_median_s": round(float(np.median(latencies)), 3),
            "latency_p95_s": round(float(np.percentile(latencies, 95)), 3),
            "latency_max_s": round(float(np.max(latencies)), 3),
            "skipped_windows": skipped,
            "overflow_s": round(sum(s.overflow_s for s in summary.streams), 2) if summary else None,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("model", "graphs", "compile", "streams"))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "gpu_check")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script only")
    parser.add_argument("--batches", default="8,32,64,128", help="model step: batch sizes")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    {"model": step_model, "graphs": step_graphs, "compile": step_compile}.get(
        args.step, step_streams
    )(args)


if __name__ == "__main__":
    main()
