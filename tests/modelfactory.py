"""Builds Wav2Vec2ForSequenceClassification checkpoints shaped like facebook/mms-lid-256.

The architecture and preprocessing come from the real model's config (a copy of shared/mms/
ships in streamlid/shapes/mms-lid-256/ for `streamlid bench --random-weights`); only the sizes
shrink for tests.
"""

from __future__ import annotations

import json
from pathlib import Path

MMS_SHAPE = Path(__file__).resolve().parents[1] / "streamlid" / "shapes" / "mms-lid-256"

# ISO 639-3 codes, several with no two-letter code (yue, haw, ckb, cmn), as the real labels have.
TEST_LABELS = ("eng", "fra", "deu", "spa", "cmn", "yue", "haw", "ckb")

TINY_SIZES = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": [32, 32, 32, 32, 32, 32, 32],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "classifier_proj_size": 16,
}


def build_checkpoint(
    folder: Path,
    labels: tuple[str, ...] = TEST_LABELS,
    sizes: dict | None = None,
    seed: int = 0,
) -> Path:
    """Saves a random-weight model (safetensors) and the real feature extractor to `folder`."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    shape = json.loads((MMS_SHAPE / "config.json").read_text())
    shape.update(TINY_SIZES if sizes is None else sizes)
    shape["num_labels"] = len(labels)
    shape["id2label"] = {str(i): code for i, code in enumerate(labels)}
    shape["label2id"] = {code: i for i, code in enumerate(labels)}
    config = Wav2Vec2Config(**shape)
    torch.manual_seed(seed)
    model = Wav2Vec2ForSequenceClassification(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    extractor = Wav2Vec2FeatureExtractor(
        **json.loads((MMS_SHAPE / "preprocessor_config.json").read_text())
    )
    extractor.save_pretrained(folder)
    return folder
