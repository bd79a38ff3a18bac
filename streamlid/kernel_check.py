"""Half-precision convolutions on the CPU, checked against float32 once at load.

A model backend of `classifier.py`, imported only by it (it imports torch). Some CPU kernels
compute wrong answers in bf16: on an Intel Xeon with AMX (torch 2.13, oneDNN), a grouped
Conv1d with 2-12 channels per group and a kernel of 16 or more returns values unrelated to the
input (relative error 1.0 against float32, where bf16 rounding gives 0.003). wav2vec2's
positional convolution is such a layer in a small model (the test stand-in: 96 channels in 8
groups, kernel 16), and the whole model then names the wrong language with confidence. mms-lid's own
(80 channels per group) is computed right on that CPU, but a kernel library is not ours to
trust: every convolution of a bf16/fp16 model on the CPU is run once on random input in its
own dtype and in float32, and one whose answers differ by more than rounding runs in float32
from then on (a few percent of the model's work; the rest keeps the fast kernels).
"""

from __future__ import annotations

import logging
import types
from typing import Any

import torch

log = logging.getLogger(__name__)

PROBE_FRAMES_MIN = 256  # input length of the check: several kernels' widths, a few ms each
WRONG_ABOVE = 0.05  # relative error; bf16 rounding alone gives about 0.003


def guard_half_convolutions(model: torch.nn.Module) -> list[str]:
    """Runs every Conv1d of `model` (in bf16 or fp16, on the CPU) once against float32 and
    makes each one whose answer is wrong compute in float32. Returns their names."""
    generator = torch.Generator().manual_seed(0)
    moved = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Conv1d):
            continue
        weight = module.weight  # computed here when the layer has a weight-norm parametrization
        if weight.dtype not in (torch.bfloat16, torch.float16) or weight.device.type != "cpu":
            continue
        if relative_error(module, generator) > WRONG_ABOVE:
            module.forward = types.MethodType(_float32_forward, module)
            moved.append(name)
    if moved:
        log.info("CPU half-precision convolution kernels wrong for %s: run in float32", moved)
    return moved


def relative_error(conv: torch.nn.Conv1d, generator: torch.Generator) -> float:
    """|half - float32| / |float32| of the layer's answer to random input, with the same
    (half-precision) weights and input in both."""
    frames = max(PROBE_FRAMES_MIN, 4 * conv.kernel_size[0])
    half = conv.weight.dtype
    x = torch.randn(1, conv.in_channels, frames, generator=generator).to(half)
    with torch.inference_mode():
        got = conv(x).float()
        want = _float32_forward(conv, x.float())
    return float((got - want).norm() / want.norm().clamp_min(1e-12))


def _float32_forward(self: torch.nn.Conv1d, x: torch.Tensor) -> Any:
    bias = None if self.bias is None else self.bias.float()
    return self._conv_forward(x.float(), self.weight.float(), bias).to(x.dtype)
