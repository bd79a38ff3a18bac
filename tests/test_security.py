"""A model folder is data, never code: each folder an attacker could hand over is refused in one
sentence before transformers opens it, and nothing in it runs.

Every payload here is live (a pickle or a Python file that writes a marker file when loaded),
and a guard test proves it, so "the marker was never written" means something.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from streamlid.classifier import Classifier
from streamlid.errors import ModelLoadError


class _Payload:
    """Unpickling this runs code: it writes `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _evil_python(marker: Path) -> str:
    """A module that writes `marker` when imported, then looks like a feature extractor."""
    return (
        f"open({str(marker)!r}, 'w').write('code ran')\n"
        "from transformers import Wav2Vec2Config as EvilConfig\n"
        "from transformers import Wav2Vec2FeatureExtractor as EvilExtractor\n"
        "from transformers import Wav2Vec2ForSequenceClassification as EvilModel\n"
    )


def _copy_model(tiny_model_dir: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _index_to(folder: Path, target: str) -> None:
    """An index mapping every weight of the model to `target`."""
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", framework="pt") as f:
        names = list(f.keys())
    index = {"metadata": {"total_size": 1}, "weight_map": {name: target for name in names}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def _pickle_index(tiny: Path, root: Path, marker: Path, weights: str, decoy: str) -> Path:
    """The issue's folder: an index naming a pickle, beside a real safetensors file as decoy."""
    folder = _copy_model(tiny, root / "model")
    (folder / weights).write_bytes(pickle.dumps(_Payload(marker)))
    _index_to(folder, weights)
    (folder / "model.safetensors").rename(folder / decoy)
    return folder


def _outside_index(tiny: Path, root: Path, marker: Path, absolute: bool) -> Path:
    folder = _copy_model(tiny, root / "model")
    outside = root / "outside.safetensors"
    shutil.copy(folder / "model.safetensors", outside)
    _index_to(folder, str(outside) if absolute else "../outside.safetensors")
    (folder / "model.safetensors").rename(folder / "decoy.safetensors")
    return folder


def _explicit_weights(tiny: Path, root: Path, marker: Path) -> Path:
    """config.json's `transformers_weights` makes transformers read the file it names, and
    transformers admits `adapter_model.bin`, a pickle."""
    folder = _copy_model(tiny, root / "model")
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["transformers_weights"] = "adapter_model.bin"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _auto_map(tiny: Path, root: Path, marker: Path, where: str) -> Path:
    folder = _copy_model(tiny, root / "model")
    (folder / "evil.py").write_text(_evil_python(marker))
    path = folder / where
    settings = json.loads(path.read_text())
    if where == "config.json":
        settings["auto_map"] = {
            "AutoConfig": "evil.EvilConfig",
            "AutoModelForAudioClassification": "evil.EvilModel",
        }
    else:
        # Without a feature_extractor_type transformers has only the folder's code to go by,
        # which is when it asks "run the custom code? [y/N]".
        settings.pop("feature_extractor_type", None)
        settings["auto_map"] = {"AutoFeatureExtractor": "evil.EvilExtractor"}
    path.write_text(json.dumps(settings))
    return folder


# name -> (builder(tiny, root, marker) -> folder, words the refusal must contain)
MALICIOUS = {
    "index-to-bin": (
        lambda t, r, m: _pickle_index(t, r, m, "weights.bin", "decoy.safetensors"),
        ["weights.bin", "not a .safetensors file"],
    ),
    "index-to-txt": (
        lambda t, r, m: _pickle_index(t, r, m, "weights.txt", "decoy.safetensors"),
        ["weights.txt", "not a .safetensors file"],
    ),
    "index-to-bin-decoy-named-model": (
        lambda t, r, m: _pickle_index(t, r, m, "weights.bin", "model.safetensors"),
        ["weights.bin", "not a .safetensors file"],
    ),
    "index-outside-relative": (
        lambda t, r, m: _outside_index(t, r, m, absolute=False),
        ["../outside.safetensors", "in the model folder"],
    ),
    "index-outside-absolute": (
        lambda t, r, m: _outside_index(t, r, m, absolute=True),
        ["outside.safetensors", "in the model folder"],
    ),
    "config-names-a-pickle": (_explicit_weights, ["transformers_weights"]),
    "config-auto-map": (
        lambda t, r, m: _auto_map(t, r, m, "config.json"),
        ["config.json", "auto_map"],
    ),
    "preprocessor-auto-map": (
        lambda t, r, m: _auto_map(t, r, m, "preprocessor_config.json"),
        ["preprocessor_config.json", "auto_map"],
    ),
}


def test_the_payloads_are_live(tmp_path):
    """Guard: the pickle and the Python file really run code when loaded the unsafe way."""
    pickled = tmp_path / "pickled"
    pickle.loads(pickle.dumps(_Payload(pickled)))  # proving the payload works
    assert pickled.read_text() == "code ran"
    imported = tmp_path / "imported"
    exec(_evil_python(imported), {})
    assert imported.read_text() == "code ran"


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_malicious_folder_is_refused_in_one_line_and_nothing_runs(case, tiny_model_dir, tmp_path):
    build, words = MALICIOUS[case]
    marker = tmp_path / "marker"
    folder = build(tiny_model_dir, tmp_path, marker)
    with pytest.raises(ModelLoadError) as caught:
        Classifier(str(folder), device="cpu", dtype="float32", announce=lambda m: None)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"
    assert not marker.exists(), "code from the model folder ran"


@pytest.mark.parametrize("where", ["preprocessor_config.json", "config.json"])
def test_custom_code_is_refused_without_a_prompt_even_when_the_answer_is_yes(
    where, tiny_model_dir, tmp_path, espeak, run_cli
):
    """The real CLI, with "y" waiting on stdin for a "run the custom code? [y/N]" prompt."""
    marker = tmp_path / "marker"
    folder = _auto_map(tiny_model_dir, tmp_path, marker, where)
    result = run_cli(espeak.wav("en"), "--model", folder, "--ui", "none", stdin=b"y\n" * 4)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "[y/N]" not in result.stderr + result.stdout
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "auto_map" in line and where in line
    assert not marker.exists(), "the folder's Python file ran"


def test_a_loaded_model_reads_only_safetensors_even_with_pickles_beside_them(
    tiny_model_dir, tmp_path
):
    """A good checkpoint with a booby-trapped pytorch_model.bin and adapter files beside it
    loads from model.safetensors, and the pickle is never opened."""
    marker = tmp_path / "marker"
    folder = _copy_model(tiny_model_dir, tmp_path / "model")
    for name in ("pytorch_model.bin", "adapter_model.bin"):
        (folder / name).write_bytes(pickle.dumps(_Payload(marker)))
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x/y"}))
    (folder / "evil.py").write_text(_evil_python(marker))
    loaded = Classifier(str(folder), device="cpu", dtype="float32", announce=lambda m: None)
    assert loaded.labels
    assert not marker.exists()
