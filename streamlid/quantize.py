"""int8 for CPUs: dynamic int8 quantization of a model's Linear layers, and when to use it.

A model backend of `classifier.py`, imported only by it (it imports torch). Weights are
quantized once, per output channel; activations per token at every call, so no calibration data
is needed. The matrix products run as int8 x int8 -> int32 (`torch._int_mm`, VNNI/AMX through
oneDNN); everything else (the convolutional front end, layer norms, the classification head, the
softmax) stays float32. `torch.ao.quantization.quantize_dynamic` did the same but is deprecated
since torch 2.10 and quantizes per tensor; this is per channel and per token, and as fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

INT8_QUANT_MAX = 127.0
# The micro-benchmark behind `auto`: one feed-forward matrix of mms-lid-256 on one 3 s window.
PROBE_TOKENS_N = 149
PROBE_IN_N = 1280
PROBE_OUT_N = 5120
PROBE_RUNS_N = 5
INT8_MIN_SPEEDUP = 1.2  # below this the measurement is within noise: keep fp32's exactness


@dataclass(frozen=True)
class CpuCapabilities:
    """What `auto` needs to know about a CPU."""

    bf16_native: bool  # oneDNN has native bf16 kernels (AVX512-BF16 / AMX)
    int8_speedup: float | None  # fp32 time / int8 time for one model-sized matrix; None: unknown


def choose_cpu_dtype(caps: CpuCapabilities) -> str:
    """`--dtype auto` on a CPU: bf16 where it is native; int8 where it was measured faster than
    fp32 by a clear margin; fp32 otherwise (emulated bf16 is several times slower than fp32)."""
    if caps.bf16_native:
        return "bfloat16"
    if caps.int8_speedup is not None and caps.int8_speedup >= INT8_MIN_SPEEDUP:
        return "int8"
    return "float32"


def int8_available() -> bool:
    return hasattr(torch, "_int_mm")


def measure_int8_speedup() -> float | None:
    """fp32 time over int8 time for one model-sized Linear (about 0.2 s); None where int8
    matrix products are missing or fail on this build."""
    import time

    if not int8_available():
        return None
    torch.manual_seed(0)
    linear = torch.nn.Linear(PROBE_IN_N, PROBE_OUT_N)
    x = torch.randn(1, PROBE_TOKENS_N, PROBE_IN_N)

    def best_s(fn: Any) -> float:
        fn()  # warm-up: oneDNN picks and caches its kernel on the first call
        times = []
        for _ in range(PROBE_RUNS_N):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    try:
        with torch.inference_mode():
            quantized = Int8Linear.from_linear(linear)
            return best_s(lambda: linear(x)) / best_s(lambda: quantized(x))
    except RuntimeError:
        return None


class Int8Linear(torch.nn.Module):
    """y = x W^T + b with W int8 per output channel and x int8 per token, at call time."""

    def __init__(self, weight_t: torch.Tensor, weight_scale: torch.Tensor, bias: Any) -> None:
        super().__init__()
        self.register_buffer("weight_t", weight_t)  # [in, out] int8, contiguous for _int_mm
        self.register_buffer("weight_scale", weight_scale)  # [out] float32
        self.register_buffer("bias", bias)  # [out] float32, or None
        self.in_features, self.out_features = weight_t.shape

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> Int8Linear:
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / INT8_QUANT_MAX
        quantized = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        return cls(quantized.t().contiguous(), scale, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        row_scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / INT8_QUANT_MAX
        rows_q = torch.round(rows / row_scale).to(torch.int8)
        y = torch._int_mm(rows_q, self.weight_t).float() * row_scale * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linear_layers(
    model: Any, release: Callable[[torch.Tensor], object] | None = None
) -> int:
    """Replaces the Linear layers of `model.base_model` (the transformer, where the time goes)
    by int8 ones, in place, freeing each float weight as it goes; the classification head keeps
    its float Linear layers. `release(weight)` is called with each float weight once its int8
    copy exists (to hand back the pages of a memory-mapped file). Returns how many layers were
    replaced."""
    base = getattr(model, "base_model", model)
    targets = [
        (name, module)
        for name, module in base.named_modules()
        if isinstance(module, torch.nn.Linear) and name
    ]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = base.get_submodule(parent_name) if parent_name else base
        setattr(parent, child, Int8Linear.from_linear(module))
        if release is not None:
            release(module.weight)
    return len(targets)
