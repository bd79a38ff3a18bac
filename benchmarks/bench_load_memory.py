"""Peak host memory while loading a model, against the loaded model's steady state.

Each load runs in a fresh Python process, so its peak (ru_maxrss) belongs to that load alone.
"steady" is the process's resident memory once loading is over; the target is a peak of at most
1.5 times it (a laptop with 8 GB must not swap while loading the 2.3 GB bf16 model).

    python benchmarks/bench_load_memory.py --model /path/to/mms-lid-256 --dtype bfloat16 float32
    python benchmarks/bench_load_memory.py --model FOLDER --mmap   # also transformers' own path

`--mmap` adds a row per dtype for plain `AutoModelForAudioClassification.from_pretrained`
(memory-mapped safetensors), which is where the old 6.0 GB peak came from.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc, json, resource, sys, time
sys.path.insert(0, sys.argv[1])
folder, dtype, path = sys.argv[2], sys.argv[3], sys.argv[4]

def rss_gb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1e6
    return float("nan")

import torch, transformers  # imported before the baseline: their cost is not the model's
before = rss_gb()
started = time.monotonic()
if path == "streamlid":
    from streamlid.classifier import Classifier
    model = Classifier(folder, device="cpu", dtype=dtype, announce=lambda m: None)
else:
    from transformers import AutoModelForAudioClassification
    model = AutoModelForAudioClassification.from_pretrained(folder, dtype=getattr(torch, dtype))
load_s = time.monotonic() - started
gc.collect()
scale = 1e9 if sys.platform == "darwin" else 1e6  # ru_maxrss: bytes on macOS, KiB on Linux
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
print(json.dumps({"before_gb": before, "steady_gb": rss_gb(), "peak_gb": peak, "load_s": load_s}))
"""


def measure(folder: str, dtype: str, path: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), folder, dtype, path],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"loading failed ({path}, {dtype}): {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint folder (safetensors)")
    parser.add_argument("--dtype", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--mmap", action="store_true", help="also plain from_pretrained")
    args = parser.parse_args()

    paths = ["streamlid", "from_pretrained"] if args.mmap else ["streamlid"]
    print(f"model {args.model}")
    print(f"{'loader':16} {'dtype':9} {'peak GB':>8} {'steady GB':>10} {'peak/steady':>12} load s")
    for dtype in args.dtype:
        for path in paths:
            if path == "from_pretrained" and dtype == "int8":
                continue  # transformers has no int8 load of this kind
            m = measure(args.model, dtype, path)
            ratio = m["peak_gb"] / m["steady_gb"]
            print(
                f"{path:16} {dtype:9} {m['peak_gb']:8.2f} {m['steady_gb']:10.2f} "
                f"{ratio:12.2f} {m['load_s']:6.1f}   (before loading {m['before_gb']:.2f} GB)",
                flush=True,
            )


if __name__ == "__main__":
    main()
