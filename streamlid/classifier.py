"""Classifier: the only module that knows torch and transformers.

Loads an audio-classification checkpoint (facebook/mms-lid-256 or any sibling) from a hub id or
a folder, safetensors only and never remote code (modelfiles.py checks the folder first and hands
transformers only the checked files); picks device and dtype; turns batches of 16 kHz windows
into language probabilities (softmax in float32, over a language subset if asked).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
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

# Architectures without weights, shipped for `streamlid bench --random-weights`.
RANDOM_SHAPES = {"mms-lid-256": Path(__file__).parent / "shapes" / "mms-lid-256"}
# The architecture may ask for this many times the weights' numbers before loading is refused
# unread (smaller differences are the loader's to name: a missing tensor, a shape).
SIZE_SLACK = 1.5
TRAINING_ONLY = "masked_spec_embed"  # a tensor inference never reads; a checkpoint may lack it
LONG_REASON_CHARS = 200  # a library's reason longer than this is cut to its first sentence
# Windows are padded to a multiple of this before the model (see `Classifier.input_length`).
PAD_TO_S = 0.25


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
    """bf16 where it is fast and safe, fp16 on older GPUs; on CPUs without native bf16, int8
    where it measures faster than fp32, else fp32 (fp16 LayerNorm in wav2vec2 can overflow, so
    bf16 is preferred whenever the hardware has it)."""
    import torch

    if requested == "int8" and device != "cpu":
        raise ConfigError(
            f"dtype = 'int8' runs on CPUs only, not on {device!r}; use --device cpu, or "
            "--dtype auto (bf16/fp16 on a GPU)."
        )
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "cpu":
        from .quantize import CpuCapabilities, choose_cpu_dtype, measure_int8_speedup

        if cpu_has_fast_bf16():
            return choose_cpu_dtype(CpuCapabilities(bf16_native=True, int8_speedup=None))
        return choose_cpu_dtype(CpuCapabilities(False, measure_int8_speedup()))
    return "float32"


def _load(model: str, folder: Path, files: ModelFiles, torch_dtype: Any) -> tuple[Any, Any]:
    """The model and its feature extractor from a staged folder of checked files: safetensors
    only and no remote code, each failure one sentence."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoFeatureExtractor

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(
            f"Model {model!r} has no usable config.json ({_first_line(exc, folder)}); is it a "
            "transformers checkpoint?"
        ) from None
    _check_size(model, config, files)
    try:
        loaded, loading_info = load_model_lean(folder, files, config, torch_dtype)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelLoadError(
                f"Model {model!r} ({config.model_type}) is not an audio classifier; use a "
                "language-ID checkpoint such as facebook/mms-lid-256."
            ) from None
        said = _first_line(exc, folder)
        raise ModelLoadError(f"Model {model!r} cannot be loaded: {said}.") from None
    except (RuntimeError, OSError, KeyError, TypeError, SafetensorError) as exc:
        # A size mismatch or a tensor the architecture does not have: the weights do not fit.
        detail = _first_line(exc, folder)
        if "ignore_mismatched_sizes" in detail:  # it points at a report it logged, not shown
            detail = "a tensor's shape is not the one config.json's sizes give"
        raise ModelLoadError(
            f"Model {model!r}: its weights do not fit its config.json ({detail}); "
            "use the files that came together with the checkpoint."
        ) from None
    # masked_spec_embed is only read in training (SpecAugment); some conversions leave it out.
    missing = sorted(k for k in loading_info["missing_keys"] if not k.endswith(TRAINING_ONLY))
    if missing:
        # transformers fills them with random values, and the model answers noise.
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ModelLoadError(
            f"Model {model!r}: its weights lack {missing[0]}{more}, which the architecture in "
            "config.json needs; use the complete weights that came with the checkpoint."
        )
    if files.preprocessor_bytes is None:
        raise ModelLoadError(
            f"Model {model!r} has no preprocessor_config.json; copy the one of its base "
            "checkpoint into the folder."
        )
    try:
        extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:
        said = _first_line(exc, folder)
        raise ModelLoadError(
            f"Model {model!r}: preprocessor_config.json is not usable ({said}); copy the one "
            "of its base checkpoint into the folder."
        ) from None
    return loaded, extractor


def _check_size(model: str, config: Any, files: ModelFiles) -> None:
    """The architecture config.json describes, built on the meta device (no memory, a fraction
    of a second), must not need more numbers than the weights hold: transformers allocates and
    fills at random every tensor whose shape disagrees before it says so (a pos-conv kernel of
    a million took 18 GB and minutes)."""
    import torch
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING

    try:
        with torch.device("meta"):
            skeleton = MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING[type(config)](config)
    except Exception:  # not an audio classifier, or a config it refuses: the loader says which
        return
    wanted_n = sum(param.numel() for param in skeleton.parameters())
    if wanted_n > SIZE_SLACK * files.elements_n:
        raise ModelLoadError(
            f"Model {model!r}: config.json describes a model of {wanted_n / 1e6:,.1f} M "
            f"weights but its weights hold {files.elements_n / 1e6:,.1f} M; use the config.json "
            "that came with these weights."
        )


def _first_line(exc: BaseException, staged_folder: Path | None = None) -> str:
    """transformers' word on a failure, short: its first line, and of a long line its first
    sentence (an unknown feature extractor came with 1400 characters of model types). The
    private folder it loaded from is gone by the time anyone reads this: not named."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if staged_folder is not None:
        line = line.replace(f" in {staged_folder}", "").replace(str(staged_folder), "the folder")
    if len(line) > LONG_REASON_CHARS and ". " in line:
        line = line.split(". ")[0]
    return line.rstrip(".")


def _stored_dtype(handle: Any) -> Any:
    """The dtype of a safetensors file's floating-point tensors (the first one found)."""
    import torch

    names = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    for key in handle.keys():  # noqa: SIM118 - a safe_open handle, not a dict
        stored = handle.get_slice(key).get_dtype()
        if stored in names:
            return names[stored]
    return None


def load_model_lean(
    folder: Path, files: ModelFiles, config: Any, torch_dtype: Any
) -> tuple[Any, dict[str, Any]]:
    """The audio classifier of `folder`, built in `torch_dtype` while holding little more memory
    than the loaded model, and transformers' loading info (`missing_keys`: tensors the
    architecture has and the weights lack, filled at random).

    `from_pretrained(folder)` memory-maps the safetensors file, and every page read stays in
    the process's resident memory until loading ends: loading the 3.9 GB fp32 mms-lid-256 into
    bf16 peaked at 6.0 GB for a 2.3 GB model. Here the same loader gets the tensors lazily
    through `pread` instead, one at a time, each cast to `torch_dtype` and its float32 copy freed:
    the peak is the model plus one tensor. Key renaming, missing-key checks and weight-norm
    handling stay transformers' own. Where nothing is cast, the mapped file is used in place (a
    model about to be quantized then hands its pages back layer by layer: `_quantize_in_place`)."""
    from safetensors import safe_open
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING

    try:
        model_class = MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        raise ValueError(f"Unrecognized configuration class {type(config).__name__}") from None

    def open_lean(path: Path) -> Any:
        try:
            return safe_open(str(path), framework="pt", device="cpu", backend="pread")
        except TypeError:  # safetensors before 0.7 has no pread backend: memory-map then
            return safe_open(str(path), framework="pt", device="cpu")

    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(open_lean(folder / name)) for name in files.weights]
        if all(_stored_dtype(handle) == torch_dtype for handle in handles):
            # Nothing to cast: memory-mapped tensors are used in place, without a copy, and
            # their pages stay evictable page cache.
            return model_class.from_pretrained(
                folder,
                use_safetensors=True,
                trust_remote_code=False,
                dtype=torch_dtype,
                output_loading_info=True,
            )
        lazy = {key: handle.get_slice(key) for handle in handles for key in handle.keys()}  # noqa: SIM118
        # The concrete class: the Auto class deep-copies its arguments, which slices refuse.
        return model_class.from_pretrained(
            None, config=config, state_dict=lazy, dtype=torch_dtype, output_loading_info=True
        )


def build_random_model(config: Any, torch_dtype: Any, device: str = "cpu") -> Any:
    """The architecture of `config` with random weights, created directly in `torch_dtype` on
    `device` (a GPU initialises 1B parameters in a second; no float32 copy on the host)."""
    import torch
    from transformers import AutoModelForAudioClassification

    with torch.device(device):
        return AutoModelForAudioClassification.from_config(config, dtype=torch_dtype)


def _return_freed_memory() -> None:
    """Hands the float weights that quantization freed back to the OS. glibc keeps freed
    medium-sized blocks in its heap, so without this the process stays at the float32 size."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def _quantize_in_place(model: Any) -> None:
    """int8 Linear layers for a float32 model whose weights may still lie in the mapped
    checkpoint file (see mapped.py): each float weight's pages go back to the OS as soon as its
    int8 copy exists, and what stays float (convolutions, norms, the head) is copied out of the
    file so the mapping itself goes away. Peak and steady memory are then both near the int8
    model's (5.3 GB peak and steady for mms-lid-256 without this)."""
    from .mapped import MappedPages
    from .quantize import quantize_linear_layers

    pages = MappedPages()
    quantize_linear_layers(
        model, release=lambda weight: pages.release(weight.data_ptr(), weight.nbytes)
    )
    for module in model.modules():
        for param in module.parameters(recurse=False):
            param.data = param.data.clone()
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None:
                setattr(module, name, buffer.clone())
    _return_freed_memory()


def _random(shape: Path, torch_dtype: Any, device: str) -> tuple[Any, Any]:
    """The architecture of a shipped shape folder (config + preprocessor only) with random
    weights, for `streamlid bench --random-weights`. Our own package data, so no checks."""
    from transformers import AutoConfig, AutoFeatureExtractor

    config = AutoConfig.from_pretrained(shape, trust_remote_code=False)
    extractor = AutoFeatureExtractor.from_pretrained(shape, trust_remote_code=False)
    return build_random_model(config, torch_dtype, device), extractor


def power_of_two_chunks(groups: Iterable[list[int]]) -> Iterator[list[int]]:
    """Each group cut into chunks of power-of-two sizes, largest first (7: 4, 2, 1)."""
    for group in groups:
        start = 0
        while start < len(group):
            size = 1 << ((len(group) - start).bit_length() - 1)
            yield group[start : start + size]
            start += size


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
        random_weights: bool = False,
    ) -> None:
        """`random_weights`: `model` is a folder with only config.json and
        preprocessor_config.json (see RANDOM_SHAPES); the model is built from it in memory, for
        `streamlid bench`, since speed does not depend on weight values."""
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # keep the terminal for our own messages
        hf_logging.disable_progress_bar()  # the CLI shows its own spinner while loading
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        # int8 loads as float32, then its Linear layers are quantized (see quantize.py).
        torch_dtype = torch.float32 if self.dtype == "int8" else getattr(torch, self.dtype)
        if random_weights:
            self._model, self._extractor = _random(Path(model), torch_dtype, self.device)
        else:
            files = check_model_folder(resolve_model_folder(model, announce), model)
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
        # A random-weights shape has placeholder labels by design (timing needs no names).
        odd = [] if random_weights else not_language_codes(all_labels)
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
        if self.dtype == "int8":
            _quantize_in_place(self._model)
        elif self.device == "cpu" and self.dtype in ("bfloat16", "float16"):
            from .kernel_check import guard_half_convolutions

            guard_half_convolutions(self._model)  # some CPU kernels get bf16 convolutions wrong
        self._masks_padding = bool(getattr(self._extractor, "return_attention_mask", False))
        self.info = ModelInfo(
            model=display_name or model, device=self.device, dtype=self.dtype, labels=self.labels
        )

    def input_length(self, n_samples: int) -> int:
        """The length (samples) a window of `n_samples` is padded to before the model.

        Every distinct input length costs the CPU backend its own cached kernels (about 4 MB
        each with the full-size model in bf16, never freed), and live windows come in any
        length at speech starts and ends, so a monitor's memory grew for hours. Padding to a
        multiple of `PAD_TO_S` bounds the lengths to a dozen. Only models that take an
        attention mask are padded: their answer is then the same (padded frames are masked
        out of the encoder and the pooling); a model without one would hear the zeros."""
        if not self._masks_padding:
            return n_samples
        step = round(PAD_TO_S * SAMPLE_RATE_HZ)
        return -(-n_samples // step) * step

    def classify(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities [N, L] (float32, rows sum to 1) for N windows of 16 kHz audio.

        Windows padded to the same `input_length` share a forward pass; a window's padding
        depends only on its own length, so its answer never depends on what it was batched
        with. A pass holds a power of two of them (7 windows: 4, 2 and 1): with the lengths
        padded to a few, the model then sees few distinct input shapes, and its kernel
        library caches kernels for every shape it meets, for good (docs/feeds-soak.md)."""
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, window in enumerate(windows):
            by_length.setdefault(self.input_length(len(window)), []).append(i)
        with self._torch.inference_mode():
            for length, group in by_length.items():
                for indices in power_of_two_chunks([group]):
                    out[indices] = self._forward([windows[i] for i in indices], length)
        return out

    def _forward(self, batch: list[np.ndarray], length: int) -> np.ndarray:
        """Probabilities for windows padded to `length` samples, in one forward pass."""
        features = self._extractor(
            batch,
            sampling_rate=SAMPLE_RATE_HZ,
            return_tensors="pt",
            padding="max_length",
            max_length=length,
        )
        inputs: dict[str, Any] = {
            "input_values": features["input_values"].to(self.device, self._torch_dtype)
        }
        if "attention_mask" in features:
            inputs["attention_mask"] = features["attention_mask"].to(self.device)
        logits = self._model(**inputs).logits.float()
        if self._subset is not None:
            logits = logits[:, self._subset]
        return self._torch.softmax(logits, dim=-1).cpu().numpy()

    def reset_device_memory_peak(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.reset_peak_memory_stats(self.device)

    def device_memory_peak_bytes(self) -> int | None:
        """Most GPU memory torch has held since the last reset; None off CUDA."""
        if not self.device.startswith("cuda"):
            return None
        return int(self._torch.cuda.max_memory_allocated(self.device))
