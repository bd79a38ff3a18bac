"""Model speed on this machine: seconds per window and real-time factor, full-size mms-lid-256.

Speed does not depend on weight values, so the model is built with random weights from the real
architecture (streamlid/shapes/mms-lid-256/config.json, 48 layers, hidden 1280, 256 labels),
saved as safetensors and loaded through streamlid's own Classifier, exactly as the real
checkpoint would be.

    python benchmarks/bench_classifier.py                       # auto device/dtype
    python benchmarks/bench_classifier.py --dtype float32 bfloat16 --batch 1 4 8
    python benchmarks/bench_classifier.py --model facebook/mms-lid-256   # the real weights

Prints one row per (dtype, batch): median and p95 seconds per forward pass, windows per second,
and the real-time factor for one stream (hop / seconds per window; above 1 keeps up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def build_full_size(folder: Path) -> Path:
    from modelfactory import build_checkpoint

    if not (folder / "model.safetensors").exists():
        print(f"building a full-size random mms-lid-256 in {folder} (3.6 GB, once)…", flush=True)
        labels = tuple(f"l{i:03d}" for i in range(256))  # speed does not depend on labels
        build_checkpoint(folder, labels=labels, sizes={})
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint (default: full-size random, built once)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "streamlid-full"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", nargs="+", default=["auto"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import torch

    from streamlid.classifier import Classifier

    model = args.model or str(build_full_size(Path(args.cache)))
    rng = np.random.default_rng(0)
    n = int(args.window * 16000)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, window {args.window} s")
    print(
        f"{'device':<8}{'dtype':<10}{'batch':>6}{'median s':>10}{'p95 s':>9}"
        f"{'win/s':>8}{'RTF 1 stream':>14}{'load s':>8}"
    )
    for dtype in args.dtype:
        started = time.monotonic()
        clf = Classifier(model, device=args.device, dtype=dtype)
        load_s = time.monotonic() - started
        for batch in args.batch:
            windows = [rng.standard_normal(n).astype(np.float32) * 0.1 for _ in range(batch)]
            clf.classify(windows)  # warm-up: kernels, allocator, autotuning
            if clf.device.startswith("cuda"):
                torch.cuda.synchronize()
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                clf.classify(windows)
                if clf.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            p95 = sorted(times)[min(len(times) - 1, int(0.95 * len(times)))]
            per_window = median / batch
            print(
                f"{clf.device:<8}{clf.dtype:<10}{batch:>6}{median:>10.3f}{p95:>9.3f}"
                f"{1 / per_window:>8.2f}{args.hop / median:>14.2f}{load_s:>8.1f}",
                flush=True,
            )
        del clf


if __name__ == "__main__":
    main()
