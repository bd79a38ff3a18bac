"""Which files of a model folder streamlid reads, checked before transformers sees any of them.

A checkpoint is config.json, preprocessor_config.json and weights in `.safetensors` files:
`model.safetensors`, or shards named by `model.safetensors.index.json`. Nothing else is read.
A folder that asks for custom code (`auto_map`), names weights in another format, or points
outside itself is refused with one sentence; transformers is then handed a private folder
holding only the checked files, so it cannot pick up a pickle, an adapter or a Python file
that happens to lie beside them. Also here: finding a hub id in the cache or downloading it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import re
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

CONFIG_NAME = "config.json"
PREPROCESSOR_NAME = "preprocessor_config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
SHARD_PATTERN = "model-*.safetensors"  # save_pretrained names shards model-00001-of-00002...
# What a hub download fetches: exactly what loading reads. No *.txt, no *.bin, no *.py.
HUB_PATTERNS = [CONFIG_NAME, PREPROCESSOR_NAME, WEIGHTS_NAME, INDEX_NAME, SHARD_PATTERN]

JSON_CAP_BYTES = 16 * 1024 * 1024  # mms-lid-4017's config (4017 labels twice) is ~0.3 MB
SAFETENSORS_HEADER_CAP_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
LABEL_CAP_CHARS = 64  # a label is a language code or a name, never a paragraph
# safetensors dtypes a weight may have; anything else is cast by the loader without a word.
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
# Last name parts of learned tensors (weight norm's parts included); integer buffers such as
# position ids or batch-norm counters keep their own names.
PARAMETER_NAMES = ("weight", "bias", "weight_g", "weight_v", "original0", "original1")
# config.json key -> the tensor names that number its layers (wav2vec2 and its siblings).
LAYER_COUNT_KEYS = {
    "num_hidden_layers": ("encoder layers", re.compile(r"(?:^|\.)encoder\.layers?\.(\d+)\.")),
    "conv_dim": ("convolution layers", re.compile(r"(?:^|\.)conv_layers\.(\d+)\.")),
}
# Keys that make transformers import code or read weights from a file it chooses itself.
FORBIDDEN_KEYS = {
    "auto_map": "asks to run Python code shipped with the model (auto_map)",
    "transformers_weights": "names its own weights file (transformers_weights)",
}


@dataclass(frozen=True)
class ModelFiles:
    """A checked checkpoint: the JSON files' exact bytes and the weight files to read."""

    folder: Path
    config_bytes: bytes
    preprocessor_bytes: bytes | None  # None: the folder has none (the loader says what to do)
    index_bytes: bytes | None  # None: the weights are one model.safetensors
    weights: tuple[str, ...]  # file names inside `folder`, each a checked .safetensors file
    config: dict[str, Any]
    elements_n: int = 0  # numbers the weights hold, all tensors together


def say_on_stderr(message: str) -> None:
    """The default `announce`: a line on stderr, beside (never inside) the output."""
    print(message, file=sys.stderr, flush=True)


# -- reading ------------------------------------------------------------------------------


def read_capped(path: Path, cap_bytes: int) -> bytes | None:
    """At most `cap_bytes` of `path`; None when the file holds more (a device or FIFO
    included: never more than cap + 1 bytes are read)."""
    with path.open("rb") as handle:
        data = handle.read(cap_bytes + 1)
    return None if len(data) > cap_bytes else data


def _read_json(name: str, path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        data = read_capped(path, JSON_CAP_BYTES)
    except OSError as exc:
        raise ModelLoadError(
            f"Model {name!r}: {path.name} cannot be read ({exc.strerror or exc}); check its "
            "permissions."
        ) from None
    if data is None:
        raise ModelLoadError(
            f"Model {name!r}: {path.name} is larger than {JSON_CAP_BYTES // 2**20} MB, which no "
            "checkpoint's settings need; use the file that came with the model."
        )
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"Model {name!r}: {path.name} is not valid JSON ({exc}); use the file that came "
            "with the model."
        ) from None
    if not isinstance(value, dict):
        raise ModelLoadError(
            f"Model {name!r}: {path.name} holds a JSON {type(value).__name__}, not the object "
            "of settings a checkpoint has; use the file that came with the model."
        )
    for key, what in FORBIDDEN_KEYS.items():
        if key in value:
            raise ModelLoadError(
                f"Model {name!r}: {path.name} {what}, which streamlid never does; remove "
                f"{key!r} from it, or use a checkpoint built from transformers' own classes."
            )
    return data, value


def safetensors_tensors(name: str, path: Path) -> dict[str, Any]:
    """The tensor table of a .safetensors file, after checking that the file holds all the data
    its header promises (a cut download fails here in one sentence, not in the loader)."""
    shown = path.name
    damaged = (
        f"Model {name!r}: {shown} is not a safetensors file or is damaged; download or convert "
        "it again (save_pretrained writes safetensors)."
    )
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelLoadError(damaged)
            header_n = int.from_bytes(prefix, "little")
            if header_n > SAFETENSORS_HEADER_CAP_BYTES or 8 + header_n > size:
                raise ModelLoadError(damaged)
            header = json.loads(handle.read(header_n).decode("utf-8"))
    except OSError as exc:
        raise ModelLoadError(
            f"Model {name!r}: {shown} cannot be read ({exc.strerror or exc}); check its "
            "permissions."
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelLoadError(damaged) from None
    if not isinstance(header, dict):
        raise ModelLoadError(damaged)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    try:
        data_n = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise ModelLoadError(damaged) from None
    expected = 8 + header_n + data_n
    if size < expected:
        raise ModelLoadError(
            f"Model {name!r}: {shown} is truncated ({size / 1e6:.1f} MB of the "
            f"{expected / 1e6:.1f} MB its header promises); download or copy it again."
        )
    if size > expected:
        raise ModelLoadError(damaged)
    return tensors


# -- checking a folder --------------------------------------------------------------------


def _index_shards(name: str, folder: Path, index: dict[str, Any]) -> tuple[str, ...]:
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(
            f"Model {name!r}: {INDEX_NAME} has no weight_map; use the index that came with "
            "the weights."
        )
    shards: list[str] = []
    for shard in weight_map.values():
        if not isinstance(shard, str):
            raise ModelLoadError(
                f"Model {name!r}: {INDEX_NAME} maps a weight to {shard!r}, not a file name; "
                "use the index that came with the weights."
            )
        plain = shard == os.path.basename(shard) and "/" not in shard and "\\" not in shard
        if not (plain and shard.endswith(".safetensors") and not shard.startswith(".")):
            raise ModelLoadError(
                f"Model {name!r}: {INDEX_NAME} points at {shard!r}, which is not a .safetensors "
                "file in the model folder; streamlid reads weights only from .safetensors files "
                "beside config.json (other formats can run code)."
            )
        if not (folder / shard).is_file():
            raise ModelLoadError(
                f"Model {name!r}: weight shard {shard!r} named by {INDEX_NAME} is missing; "
                "download or copy the whole checkpoint again."
            )
        if shard not in shards:
            shards.append(shard)
    return tuple(shards)


def check_model_folder(folder: Path, name: str | None = None) -> ModelFiles:
    """The files streamlid will read from `folder`, each checked; a ModelLoadError naming the
    problem and the fix otherwise. Nothing here imports torch or transformers."""
    name = str(folder) if name is None else name
    if not (folder / CONFIG_NAME).is_file():
        raise ModelLoadError(
            f"Model folder {name!r} has no {CONFIG_NAME}, so it is not a transformers "
            "checkpoint; give the folder that holds config.json and model.safetensors, or a "
            "hub id such as facebook/mms-lid-256."
        )
    config_bytes, config = _read_json(name, folder / CONFIG_NAME)
    preprocessor_bytes = None
    if (folder / PREPROCESSOR_NAME).is_file():
        preprocessor_bytes, _ = _read_json(name, folder / PREPROCESSOR_NAME)
    index_bytes = None
    shards: tuple[str, ...] = ()
    if (folder / INDEX_NAME).is_file():
        # Checked even when model.safetensors is there: an index that points at a pickle is
        # never harmless, whichever file a loader would prefer.
        index_bytes, index = _read_json(name, folder / INDEX_NAME)
        shards = _index_shards(name, folder, index)
    if (folder / WEIGHTS_NAME).is_file():
        index_bytes, weights = None, (WEIGHTS_NAME,)
    elif shards:
        weights = shards
    else:
        raise ModelLoadError(
            f"Model {name!r} has no {WEIGHTS_NAME}; streamlid loads weights only from "
            ".safetensors files (pickled .bin files can run code). Convert it with "
            "save_pretrained(..., safe_serialization=True)."
        )
    tensors: dict[str, Any] = {}
    for weight in weights:
        tensors.update(safetensors_tensors(name, folder / weight))
    _check_weight_dtypes(name, tensors)
    _check_layer_counts(name, config, tensors)
    _check_labels(name, config, tensors)
    elements_n = sum(math.prod(info.get("shape") or []) for info in tensors.values())
    return ModelFiles(
        folder, config_bytes, preprocessor_bytes, index_bytes, weights, config, elements_n
    )


def _check_weight_dtypes(name: str, tensors: dict[str, Any]) -> None:
    """A weight or bias stored as integers (a quantized or mangled file) would be cast to float
    by the loader without a word, and the model would answer noise."""
    for key, info in tensors.items():
        if key.rsplit(".", 1)[-1] in PARAMETER_NAMES and info.get("dtype") not in FLOAT_DTYPES:
            raise ModelLoadError(
                f"Model {name!r}: its weights store {key} as {info.get('dtype')}, not as "
                "floating point; use the float16, bfloat16 or float32 weights that "
                "save_pretrained writes."
            )


def _check_layer_counts(name: str, config: dict[str, Any], tensors: dict[str, Any]) -> None:
    """config.json's layer counts must be the weights' own. The loader builds every layer
    config.json asks for before it reads a weight: 100 000 layers took minutes and gigabytes
    before failing, while the file held three."""
    for key, (what, pattern) in LAYER_COUNT_KEYS.items():
        wanted = config.get(key)
        if isinstance(wanted, list):  # conv_dim: one convolution per entry
            wanted = len(wanted)
        indices = {int(m.group(1)) for t in tensors if (m := pattern.search(t))}
        if not indices or not isinstance(wanted, int):
            continue  # another architecture's names: the loader checks what it builds
        held = max(indices) + 1
        if wanted != held:
            raise ModelLoadError(
                f"Model {name!r}: config.json asks for {wanted} {what} ({key}) but the weights "
                f"hold {held}; use the config.json that came with these weights."
            )


def _check_labels(name: str, config: dict[str, Any], tensors: dict[str, Any]) -> None:
    """config.json's labels and the classifier head must agree, or every answer is misnamed."""
    id2label = config.get("id2label")
    head = tensors.get("classifier.weight")
    if not isinstance(head, dict):
        return  # not an audio classifier's files: the loader names that problem
    if not isinstance(id2label, dict) or not id2label:
        raise ModelLoadError(
            f"Model {name!r}: config.json has no id2label, so the languages its outputs stand "
            "for are unknown; use the config.json that came with these weights."
        )
    numbers = sorted(str(key) for key in id2label)
    if numbers != sorted(str(i) for i in range(len(id2label))):
        raise ModelLoadError(
            f"Model {name!r}: config.json's id2label must number its labels 0 to "
            f"{len(id2label) - 1}, one per output, but its keys are {_some(numbers)}; use the "
            "config.json that came with these weights."
        )
    num_labels = config.get("num_labels")
    if num_labels is not None and num_labels != len(id2label):
        raise ModelLoadError(
            f"Model {name!r}: config.json says num_labels = {num_labels!r} but its id2label "
            f"names {len(id2label)} labels; use the config.json that came with these weights."
        )
    shape = head.get("shape")
    if isinstance(shape, list) and shape and shape[0] != len(id2label):
        raise ModelLoadError(
            f"Model {name!r}: config.json names {len(id2label)} labels but the classifier "
            f"weights have {shape[0]} outputs; use the config.json that came with these weights."
        )


def _some(items: list[str]) -> str:
    shown = ", ".join(repr(clean_label(item)) for item in items[:3])
    return shown + (" …" if len(items) > 3 else "")


@contextlib.contextmanager
def staged(files: ModelFiles) -> Iterator[Path]:
    """A private folder holding only the checked files, for transformers to load from: the
    JSON files as the exact bytes that were checked, the weights as links to the originals.
    Removed on exit (loaded weights do not need it)."""
    stage: Path | None = None
    try:
        stage = Path(tempfile.mkdtemp(prefix="streamlid-model-"))
        (stage / CONFIG_NAME).write_bytes(files.config_bytes)
        if files.preprocessor_bytes is not None:
            (stage / PREPROCESSOR_NAME).write_bytes(files.preprocessor_bytes)
        if files.index_bytes is not None:
            (stage / INDEX_NAME).write_bytes(files.index_bytes)
        for weight in files.weights:
            os.symlink((files.folder / weight).resolve(), stage / weight)
    except OSError as exc:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        raise ModelLoadError(
            f"A private folder for loading the model cannot be made in {tempfile.gettempdir()} "
            f"({exc.strerror or exc}); point TMPDIR at a writable folder."
        ) from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# -- labels -------------------------------------------------------------------------------


def clean_label(raw: object) -> str:
    """A label as it may reach a terminal: control, format and line-breaking characters (escape
    sequences among them) written as \\xNN or \\uNNNN, and at most LABEL_CAP_CHARS long."""
    text = str(raw)
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    cleaned = "".join(out).strip() or "?"
    if len(cleaned) > LABEL_CAP_CHARS:
        cleaned = cleaned[: LABEL_CAP_CHARS - 1] + "…"
    return cleaned


def not_language_codes(labels: tuple[str, ...]) -> list[str]:
    """The labels that are not language tags (ISO 639 codes such as eng, or BCP 47 tags)."""
    import langcodes

    return [label for label in labels if not langcodes.tag_is_valid(label)]


# -- finding or downloading a hub checkpoint ----------------------------------------------


def _is_unreachable(exc: BaseException) -> bool:
    """No connection (offline mode, DNS, refused, timed out): the Hub was never heard from.
    Matched by class name too, as huggingface_hub's HTTP library has changed between versions."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectError", "ConnectTimeout", "Timeout"})


def _download_error(model: str, exc: BaseException, downloading: bool) -> ModelLoadError:
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        RepositoryNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return ModelLoadError(
            f"Model {model!r} is gated on the Hugging Face Hub; accept its terms there and log "
            "in with `hf auth login`, or pass --model FOLDER."
        )
    if isinstance(exc, (RepositoryNotFoundError, HFValidationError)):
        return ModelLoadError(
            f"Model {model!r} was not found on the Hugging Face Hub; check the id "
            "(e.g. facebook/mms-lid-256) or pass a local folder."
        )
    if _is_unreachable(exc):
        if downloading:
            return ModelLoadError(
                f"The Hugging Face Hub cannot be reached, so {model!r} cannot be downloaded; "
                "connect this machine to the network and try again, or download it on a "
                "connected machine and copy the checkpoint folder here (then pass --model FOLDER)."
            )
        return ModelLoadError(
            f"Model {model!r} is not in the local cache and the Hugging Face Hub cannot be "
            f"reached; connect to the network, run `streamlid download {model}` on a machine "
            "that can, or pass --model FOLDER."
        )
    first_line = (str(exc).splitlines() or [""])[0]
    return ModelLoadError(
        f"Model {model!r} could not be downloaded ({type(exc).__name__}: {first_line}); "
        "check the network, or download it elsewhere and pass --model FOLDER."
    )


def resolve_model_folder(
    model: str, announce: Callable[[str], None] = say_on_stderr, *, downloading: bool = False
) -> Path:
    """A local folder holding the checkpoint: `model` itself, or the hub cache (downloading
    once if needed). `downloading` is set by `streamlid download`, whose advice differs."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        # Often the weights file itself (model.safetensors): its folder is what loads.
        raise ModelLoadError(
            f"Model {model!r} is a file, not a folder; give the folder that holds config.json "
            f"and model.safetensors (this file's folder: {str(path.parent)!r})."
        )
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelLoadError(
            f"Model folder {model!r} does not exist; give a checkpoint folder or a hub id "
            "such as facebook/mms-lid-256."
        )
    from huggingface_hub import HfApi, snapshot_download

    with contextlib.suppress(Exception):  # not cached yet (or not completely)
        return Path(snapshot_download(model, allow_patterns=HUB_PATTERNS, local_files_only=True))
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        if downloading:
            raise ModelLoadError(
                f"HF_HUB_OFFLINE is set, so {model!r} cannot be downloaded; unset it "
                "(`unset HF_HUB_OFFLINE`) on a connected machine and run this again."
            )
        raise ModelLoadError(
            f"Model {model!r} is not in the local cache and HF_HUB_OFFLINE is set; download it "
            f"on a connected machine (`streamlid download {model}`) or pass --model FOLDER."
        )
    try:
        # Ask first, so that "Downloading" is said only once the Hub has answered, with the
        # real size, and a repository without safetensors weights fails before any transfer.
        info = HfApi().model_info(model, files_metadata=True)
        wanted = [
            s
            for s in info.siblings or []
            if any(fnmatch.fnmatch(s.rfilename, p) for p in HUB_PATTERNS)
        ]
        if not any(s.rfilename.endswith(".safetensors") for s in wanted):
            raise ModelLoadError(
                f"Model {model!r} on the Hugging Face Hub has no .safetensors weights; "
                "streamlid loads only safetensors (pickled .bin files can run code). Convert it "
                "with save_pretrained(..., safe_serialization=True) and pass --model FOLDER."
            )
        size_gb = sum(s.size or 0 for s in wanted) / 1e9
        announce(
            f"Downloading {model} ({size_gb:.1f} GB) from the Hugging Face Hub into its cache; "
            "later runs start from the cache."
        )
        return Path(snapshot_download(model, allow_patterns=HUB_PATTERNS, revision=info.sha))
    except ModelLoadError:
        raise
    except Exception as exc:
        raise _download_error(model, exc, downloading) from None
