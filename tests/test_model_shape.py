"""The test models' shape comes from a copy of shared/mms/ (the real mms-lid-256 config); this
guards the copy against drifting from the original where the original is at hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelfactory import MMS_SHAPE

SHARED_MMS = Path(__file__).resolve().parents[2] / "shared" / "mms"


@pytest.mark.parametrize("name", ["config.json", "preprocessor_config.json"])
def test_copy_matches_the_shared_model_shape(name):
    original = SHARED_MMS / name
    if not original.exists():
        pytest.skip(f"no reference config to compare the copy with: {original} does not exist")
    assert json.loads((MMS_SHAPE / name).read_text()) == json.loads(original.read_text())


def test_shape_is_the_real_architecture():
    config = json.loads((MMS_SHAPE / "config.json").read_text())
    assert config["num_hidden_layers"] == 48 and config["hidden_size"] == 1280
    assert config["num_labels"] == 256
    assert config["conv_stride"] == [5, 2, 2, 2, 2, 2, 2]  # 320 samples per frame at 16 kHz
