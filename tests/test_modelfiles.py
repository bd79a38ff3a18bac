"""What streamlid reads from a model folder: sharded safetensors checkpoints load, labels reach
the terminal only as harmless text, and labels that are not language codes are pointed out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from modelfactory import TEST_LABELS, build_checkpoint

from streamlid.classifier import Classifier
from streamlid.errors import ModelLoadError
from streamlid.modelfiles import (
    HUB_PATTERNS,
    INDEX_NAME,
    check_model_folder,
    clean_label,
    not_language_codes,
)

ESCAPE_LABEL = "\x1b[2J\x1b]0;owned\x07fra"  # clears the screen and retitles the terminal


def load(folder: Path, announce=lambda m: None, **kwargs) -> Classifier:
    return Classifier(str(folder), device="cpu", dtype="float32", announce=announce, **kwargs)


def test_a_sharded_safetensors_checkpoint_loads(tiny_model_dir, tmp_path):
    from transformers import Wav2Vec2ForSequenceClassification

    folder = tmp_path / "sharded"
    model = Wav2Vec2ForSequenceClassification.from_pretrained(tiny_model_dir)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="100KB")
    for name in ("preprocessor_config.json",):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    assert (folder / INDEX_NAME).is_file() and not (folder / "model.safetensors").exists()
    files = check_model_folder(folder)
    assert len(files.weights) > 1
    assert all(w.startswith("model-") and w.endswith(".safetensors") for w in files.weights)
    assert load(folder).labels == TEST_LABELS


def test_a_shard_named_by_the_index_but_missing_is_one_line(tiny_model_dir, tmp_path):
    from transformers import Wav2Vec2ForSequenceClassification

    folder = tmp_path / "sharded"
    model = Wav2Vec2ForSequenceClassification.from_pretrained(tiny_model_dir)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="100KB")
    shard = sorted(folder.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(ModelLoadError, match="missing") as caught:
        check_model_folder(folder)
    assert shard.name in str(caught.value)


def test_hub_patterns_fetch_only_what_loading_reads():
    import fnmatch

    def fetched(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in HUB_PATTERNS)

    for wanted in ("config.json", "preprocessor_config.json", "model.safetensors", INDEX_NAME):
        assert fetched(wanted)
    assert fetched("model-00001-of-00003.safetensors")
    for unwanted in ("pytorch_model.bin", "weights.txt", "vocab.txt", "modeling_x.py", "x.pkl"):
        assert not fetched(unwanted)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("eng", "eng"),
        (ESCAPE_LABEL, "\\x1b[2J\\x1b]0;owned\\x07fra"),
        ("en\rg", "en\\x0dg"),
        ("a\u202eb", "a\\u202eb"),  # right-to-left override: reverses what follows on screen
        ("x" * 500, "x" * 63 + "…"),
        ("", "?"),
        (7, "7"),
    ],
)
def test_labels_are_made_safe_for_a_terminal(raw, clean):
    assert clean_label(raw) == clean


def test_escape_codes_in_labels_never_reach_the_loaded_labels(tmp_path):
    folder = build_checkpoint(tmp_path / "m", labels=("eng", ESCAPE_LABEL, "deu"))
    labels = load(folder).labels
    assert all("\x1b" not in label and "\x07" not in label for label in labels)
    assert labels[1] == clean_label(ESCAPE_LABEL)


def test_labels_that_are_not_language_codes_give_one_warning_and_still_load(tmp_path):
    folder = build_checkpoint(tmp_path / "m", labels=("eng", "LABEL_1", ESCAPE_LABEL, "fra"))
    said: list[str] = []
    loaded = load(folder, announce=said.append)
    assert len(loaded.labels) == 4
    (line,) = said
    assert line.startswith("warning:")
    assert "2 of the 4 labels" in line and "'LABEL_1'" in line
    assert "'" + clean_label(ESCAPE_LABEL) + "'" in line  # escaped once, not twice
    assert "\n" not in line and "\x1b" not in line


def test_language_codes_give_no_warning(tiny_model_dir):
    said: list[str] = []
    load(tiny_model_dir, announce=said.append)
    assert said == []
    assert not_language_codes(TEST_LABELS) == []


def test_escape_codes_in_labels_stay_off_the_terminal(tmp_path, espeak, run_cli):
    labels = tuple(f"\x1b[31m{code}" for code in TEST_LABELS)
    folder = build_checkpoint(tmp_path / "m", labels=labels)
    out = tmp_path / "events.jsonl"
    result = run_cli(espeak.wav("en"), "--model", folder, "--ui", "plain", "--jsonl", out)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "\\x1b[31m" in result.stdout  # shown, escaped
    events = [json.loads(line) for line in out.read_text().splitlines()]
    codes = {s["code"] for e in events if e["type"] == "prediction" for s in e["top"]}
    assert codes and all(code.startswith("\\x1b[31m") for code in codes)


def test_the_private_loading_folder_is_removed_after_loading(tiny_model_dir, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert load(tiny_model_dir).labels == TEST_LABELS
    assert list(scratch.iterdir()) == []


def test_no_writable_temp_folder_is_one_line(tiny_model_dir, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-there"))
    with pytest.raises(ModelLoadError, match="TMPDIR") as caught:
        load(tiny_model_dir)
    assert "\n" not in str(caught.value)


def _copy_with_config(tiny: Path, folder: Path, **changes) -> Path:
    """`tiny` copied to `folder`, its config.json changed (a value None removes the key)."""
    folder.mkdir()
    for source in tiny.iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        # The loader would build all of them before reading a weight: minutes and gigabytes.
        ({"num_hidden_layers": 100_000}, ["100000 encoder layers", "hold 2"]),
        ({"conv_dim": [32] * 5000}, ["5000 convolution layers", "hold 7"]),
        # Numbered from 100: the loaded labels would be looked up from 0 (a KeyError).
        (
            {"id2label": {str(100 + i): c for i, c in enumerate(TEST_LABELS)}},
            ["0 to 7", "'100'"],
        ),
        ({"id2label": None, "label2id": None}, ["no id2label"]),
        ({"num_labels": 5}, ["num_labels = 5", "8 labels"]),
    ],
)
def test_a_config_that_does_not_describe_its_weights_is_refused_before_loading(
    tiny_model_dir, tmp_path, changes, words
):
    folder = _copy_with_config(tiny_model_dir, tmp_path / "model", **changes)
    with pytest.raises(ModelLoadError) as caught:
        check_model_folder(folder)
    for word in words:
        assert word in str(caught.value)


def test_weights_stored_as_integers_are_refused(tiny_model_dir, tmp_path):
    """Cast to float by the loader without a word, they would make every answer noise."""
    from safetensors.numpy import load_file, save_file

    folder = _copy_with_config(tiny_model_dir, tmp_path / "model")
    weights = load_file(folder / "model.safetensors")
    weights["classifier.weight"] = weights["classifier.weight"].astype("int8")
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"classifier\.weight as I8"):
        check_model_folder(folder)


def test_weights_that_lack_tensors_are_refused_not_filled_at_random(tiny_model_dir, tmp_path):
    """transformers fills a missing tensor with random values: the model would still name a
    language for every window, from noise."""
    from safetensors.numpy import load_file, save_file

    folder = _copy_with_config(tiny_model_dir, tmp_path / "model")
    weights = load_file(folder / "model.safetensors")
    del weights["projector.weight"]
    save_file(weights, folder / "model.safetensors")
    check_model_folder(folder)  # well-formed files: only the loader knows what is missing
    for dtype in ("float32", "bfloat16"):  # loaded in place, and cast tensor by tensor
        with pytest.raises(ModelLoadError, match=r"lack projector\.weight"):
            Classifier(str(folder), device="cpu", dtype=dtype, announce=lambda m: None)


def test_weights_saved_by_an_older_transformers_load_without_a_missing_tensor(
    tiny_model_dir, tmp_path
):
    """facebook/mms-lid-256 was saved before weight norm became a parametrization: its
    position convolution is weight_g/weight_v, which the loader renames. The refusal of
    missing tensors must not take those for missing, nor a lacking masked_spec_embed (read
    only in training), or the real checkpoint would be refused."""
    from safetensors.numpy import load_file, save_file

    folder = _copy_with_config(tiny_model_dir, tmp_path / "model")
    weights = load_file(folder / "model.safetensors")
    renamed = {
        key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): value
        for key, value in weights.items()
        if not key.endswith("masked_spec_embed")
    }
    assert "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in renamed
    save_file(renamed, folder / "model.safetensors", metadata={"format": "pt"})
    probe = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    for dtype, atol in (("float32", 1e-5), ("bfloat16", 1e-2)):  # in place, and cast on loading
        reference = Classifier(
            str(tiny_model_dir), device="cpu", dtype=dtype, announce=lambda m: None
        )
        older = Classifier(str(folder), device="cpu", dtype=dtype, announce=lambda m: None)
        np.testing.assert_allclose(older.classify([probe]), reference.classify([probe]), atol=atol)


def test_a_config_far_larger_than_its_weights_is_refused_before_anything_is_allocated(
    tiny_model_dir, tmp_path
):
    """transformers allocates, and fills at random, each tensor whose shape disagrees with the
    weights before it says so: a position-convolution kernel of a million took 18 GB and
    minutes. The architecture is measured on the meta device first."""
    folder = _copy_with_config(tiny_model_dir, tmp_path / "model", num_conv_pos_embeddings=100_000)
    with pytest.raises(ModelLoadError, match=r"config\.json describes a model of") as caught:
        load(folder)
    assert "came with these weights" in str(caught.value)
