"""int8: the Linear layers quantized, the answers kept; and when `--dtype auto` picks it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from speech import SENTENCES, espeak_missing, speech

from streamlid.classifier import Classifier, pick_dtype
from streamlid.config import load_config
from streamlid.errors import ConfigError
from streamlid.quantize import (
    INT8_MIN_SPEEDUP,
    CpuCapabilities,
    Int8Linear,
    choose_cpu_dtype,
    quantize_linear_layers,
)

TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"
RATE_HZ = 16000


def quiet(message: str) -> None:
    pass


def speech_windows(folder: Path, window_s: float = 3.0, hop_s: float = 1.0) -> list[np.ndarray]:
    """3 s windows at a 1 s hop over 12 s of each test language's espeak-ng speech."""
    out = []
    for language in SENTENCES:
        audio = speech(language, folder, seconds=12.0)
        window_n, hop_n = round(window_s * RATE_HZ), round(hop_s * RATE_HZ)
        out += [audio[i : i + window_n] for i in range(0, len(audio) - window_n + 1, hop_n)]
    return out


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        (CpuCapabilities(bf16_native=True, int8_speedup=3.0), "bfloat16"),  # native bf16 wins
        (CpuCapabilities(bf16_native=True, int8_speedup=None), "bfloat16"),
        (CpuCapabilities(bf16_native=False, int8_speedup=INT8_MIN_SPEEDUP + 0.5), "int8"),
        (CpuCapabilities(bf16_native=False, int8_speedup=INT8_MIN_SPEEDUP - 0.1), "float32"),
        (CpuCapabilities(bf16_native=False, int8_speedup=None), "float32"),  # int8 missing
    ],
)
def test_auto_dtype_on_a_cpu_follows_the_capabilities(caps, expected):
    assert choose_cpu_dtype(caps) == expected


def test_int8_linear_is_close_to_the_float_one():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(2, 30, 64)
    with torch.inference_mode():
        exact = linear(x)
        approx = Int8Linear.from_linear(linear)(x)
    assert approx.shape == exact.shape and approx.dtype == torch.float32
    # Per-channel weights and per-token activations: about 1 % of the output's scale.
    assert float((approx - exact).abs().max()) < 0.02 * float(exact.abs().max())


def test_quantizing_replaces_the_backbone_linears_and_keeps_the_head(tiny_model_dir):
    model = Classifier(str(tiny_model_dir), device="cpu", dtype="float32", announce=quiet)._model
    replaced = quantize_linear_layers(model)
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    assert replaced > 0
    assert not any(k == "Linear" for n, k in kinds.items() if n.startswith("wav2vec2."))
    assert kinds["classifier"] == "Linear" and kinds["projector"] == "Linear"


def test_int8_keeps_the_trained_models_answers(tmp_path):
    """Top-1 agreement with fp32 on real speech windows, with the trained test model."""
    if reason := espeak_missing():
        pytest.skip(reason)
    windows = speech_windows(tmp_path)
    fp32 = Classifier(str(TINY_LID), device="cpu", dtype="float32", announce=quiet)
    int8 = Classifier(str(TINY_LID), device="cpu", dtype="int8", announce=quiet)
    assert int8.info.dtype == "int8"
    exact, approx = fp32.classify(windows), int8.classify(windows)
    np.testing.assert_allclose(approx.sum(axis=1), 1.0, atol=1e-5)
    agreement = float(np.mean(exact.argmax(axis=1) == approx.argmax(axis=1)))
    assert agreement >= 0.95, agreement
    assert float(np.abs(approx - exact).max()) < 0.1


def test_int8_on_a_gpu_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="int8 runs on CPUs only"):
        load_config(overrides={"dtype": "int8", "device": "cuda"})
    with pytest.raises(ConfigError, match="runs on CPUs only"):
        pick_dtype("int8", "mps")


def test_int8_is_a_valid_dtype_on_a_cpu():
    assert load_config(overrides={"dtype": "int8", "device": "cpu"}).dtype == "int8"
    assert pick_dtype("int8", "cpu") == "int8"
