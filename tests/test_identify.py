"""`streamlid identify`: one answer per file, in the order given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import write_wav

TINY_LID = Path(__file__).parent / "assets" / "tiny-lid"


def test_identify_json_gives_one_result_per_file_in_order(
    run_cli, tiny_model_dir, espeak, tmp_path
):
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(3 * 16000, np.float32))
    speech = espeak.wav("fr", lead_s=0.5)
    result = run_cli("identify", speech, silent, "--json", "--model", tiny_model_dir)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["file"] for a in answers] == [str(speech), str(silent)]

    spoken, quiet = answers
    assert spoken["windows"] > 0 and spoken["speech_s"] > 3.0
    assert spoken["language"] in {t["code"] for t in spoken["top"]}
    assert spoken["top"] == sorted(spoken["top"], key=lambda t: -t["probability"])
    # Random weights spread probability thinly: a best guess, not an answer.
    assert spoken["probability"] < 0.5 and spoken["confident"] is False

    assert quiet["language"] is None and quiet["name"] == "no speech found"
    assert quiet["windows"] == 0 and quiet["confident"] is False


def test_identify_table_marks_uncertain_guesses(run_cli, tiny_model_dir, espeak):
    result = run_cli("identify", espeak.wav("en"), "--model", tiny_model_dir)
    assert result.returncode == 0, result.stderr
    assert "(uncertain)" in result.stdout


def test_identify_names_the_language_with_a_real_model(run_cli, espeak):
    if not (TINY_LID / "model.safetensors").exists():
        pytest.skip("tests/assets/tiny-lid is missing; run tools/train_test_model.py")
    french = espeak.wav("fr")
    english = espeak.wav("en")
    result = run_cli("identify", french, english, "--json", "--model", TINY_LID)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["language"] for a in answers] == ["fra", "eng"]
    assert all(a["confident"] for a in answers)


def test_identify_with_a_missing_file_fails_before_loading_the_model(run_cli, tmp_path):
    result = run_cli("identify", tmp_path / "nope.wav", "--model", "/nonexistent/model")
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and "nope.wav" in result.stderr
    assert "Traceback" not in result.stderr
