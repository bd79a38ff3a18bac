"""Classifier: the only module that knows torch and transformers.

Loads an audio-classification checkpoint (facebook/mms-lid-256 or any sibling) from a hub id or
a folder, safetensors only and never remote code (modelfiles.py checks the folder first and hands
transformers only the checked files); picks device and dtype; turns batches of 16 kHz windows
into language probabilities (softmax in float32, over a language subset if asked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .errors import ConfigError, ModelLoadError
from .languages import match_languages
from .modelfiles import (
    ModelFiles,
    check_model_folder,
    clean_label,
    not_language_codes,
    resolve_model_folder,
    say_on_stderr,
    staged,
)


@dataclass(frozen=True)
class ModelInfo:
    model: str
    device: str
    dtype: str
    labels: tuple[str, ...]


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device = {requested!r} but torch sees no CUDA GPU; use --device cpu or auto."
            )
        if ":" in requested and int(requested.split(":")[1]) >= torch.cuda.device_count():
            raise ConfigError(
                f"device = {requested!r} but only {torch.cuda.device_count()} GPU(s) exist."
            )
    if requested == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("device = 'mps' but this torch has no MPS backend; use auto or cpu.")
    return requested


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16 / AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def pick_dtype(requested: str, device: str) -> str:
    """bf16 where it is fast and safe, fp16 on older GPUs, fp32 elsewhere (fp16 LayerNorm in
    wav2vec2 can overflow, so bf16 is preferred whenever the hardware has it)."""
    import torch

    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "cpu" and cpu_has_fast_bf16():
        return "bfloat16"
    return "float32"


def _load(model: str, folder: Path, files: ModelFiles, torch_dtype: Any) -> tuple[Any, Any]:
    """The model and its feature extractor from a staged folder of checked files: safetensors
    only and no remote code, each failure one sentence."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(
            f"Model {model!r} has no usable config.json ({_first_line(exc)}); is it a "
            "transformers checkpoint?"
        ) from None
    try:
        loaded = AutoModelForAudioClassification.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, dtype=torch_dtype
        )
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelLoadError(
                f"Model {model!r} ({config.model_type}) is not an audio classifier; use a "
                "language-ID checkpoint such as facebook/mms-lid-256."
            ) from None
        raise ModelLoadError(f"Model {model!r} cannot be loaded: {_first_line(exc)}.") from None
    except (RuntimeError, OSError, KeyError, TypeError, SafetensorError) as exc:
        # A size mismatch or a tensor the architecture does not have: the weights do not fit.
        raise ModelLoadError(
            f"Model {model!r}: its weights do not fit its config.json ({_first_line(exc)}); "
            "use the files that came together with the checkpoint."
        ) from None
    if files.preprocessor_bytes is None:
        raise ModelLoadError(
            f"Model {model!r} has no preprocessor_config.json; copy the one of its base "
            "checkpoint into the folder."
        )
    try:
        extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(
            f"Model {model!r}: preprocessor_config.json is not usable ({_first_line(exc)}); "
            "copy the one of its base checkpoint into the folder."
        ) from None
    return loaded, extractor


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Classifier:
    """Loaded once, shared by every stream. `classify` is called from the worker thread only."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        languages: Sequence[str] = (),
        announce: Callable[[str], None] = say_on_stderr,
        display_name: str | None = None,
    ) -> None:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # keep the terminal for our own messages
        hf_logging.disable_progress_bar()  # the CLI shows its own spinner while loading
        files = check_model_folder(resolve_model_folder(model, announce), model)
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        torch_dtype = getattr(torch, self.dtype)
        # transformers sees only the checked files, and never runs code from them.
        with staged(files) as folder:
            self._model, self._extractor = _load(model, folder, files, torch_dtype)
        rate = getattr(self._extractor, "sampling_rate", SAMPLE_RATE_HZ)
        if rate != SAMPLE_RATE_HZ:
            raise ModelLoadError(
                f"Model {model!r} expects {rate} Hz audio; streamlid feeds 16 kHz models only."
            )
        id2label = self._model.config.id2label
        all_labels = tuple(clean_label(id2label[i]) for i in range(len(id2label)))
        odd = not_language_codes(all_labels)
        if odd:
            examples = ", ".join(f"'{label}'" for label in odd[:3])  # already escaped
            announce(
                f"warning: {len(odd)} of the {len(all_labels)} labels of model {model!r} are not "
                f"language codes ({examples}); they are shown as they are, without names."
            )
        self._subset: list[int] | None = None
        if languages:
            self._subset = match_languages(languages, all_labels)
        self.labels = tuple(all_labels[i] for i in self._subset) if self._subset else all_labels
        self._torch = torch
        self._torch_dtype = torch_dtype
        self._model.to(self.device).eval()
        self.info = ModelInfo(
            model=display_name or model, device=self.device, dtype=self.dtype, labels=self.labels
        )

    def classify(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities [N, L] (float32, rows sum to 1) for N windows of 16 kHz audio.

        Windows of equal length share a forward pass; different lengths are not padded
        together, so a window's answer never depends on what it was batched with."""
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, window in enumerate(windows):
            by_length.setdefault(len(window), []).append(i)
        torch = self._torch
        with torch.inference_mode():
            for indices in by_length.values():
                batch = [windows[i] for i in indices]
                features = self._extractor(batch, sampling_rate=SAMPLE_RATE_HZ, return_tensors="pt")
                inputs: dict[str, Any] = {
                    "input_values": features["input_values"].to(self.device, self._torch_dtype)
                }
                if "attention_mask" in features:
                    inputs["attention_mask"] = features["attention_mask"].to(self.device)
                logits = self._model(**inputs).logits.float()
                if self._subset is not None:
                    logits = logits[:, self._subset]
                probs = torch.softmax(logits, dim=-1).cpu().numpy()
                out[indices] = probs
        return out
