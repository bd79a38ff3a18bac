"""What streamlid reads from a model folder: sharded safetensors checkpoints load, labels reach
the terminal only as harmless text, and labels that are not language codes are pointed out."""

from __future__ import annotations

import json
from pathlib import Path

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
