"""Shared inputs for embedding tests: converted CAM++ weights and a few LibriSpeech utterances."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from nodes.embedding.convert import campplus
from stream.models import unflatten

# Three speakers, cropped to <= 3.5 s so every test shares one compiled shape bucket (T <= 400 frames, B <= 4).
UTTERANCES = [
    "librispeech/librispeech_test-other/1688/1688-142285-0002.flac",
    "librispeech/librispeech_test-other/3331/3331-159605-0000.flac",
    "librispeech/librispeech_train-clean-100/5104-33406-0000.flac",
]
CROP_S = (3.5, 2.7, 1.9)


@pytest.fixture(scope="session")
def campplus_checkpoint(models: Path) -> Path:
    return models / "campplus" / "campplus_cn_en_common.pt"


@pytest.fixture(scope="session")
def campplus_params(campplus_checkpoint: Path):
    return jax.tree.map(jnp.asarray, unflatten(campplus(campplus_checkpoint)))


@pytest.fixture(scope="session")
def waves(data: Path) -> list[np.ndarray]:
    out = []
    for rel, crop in zip(UTTERANCES, CROP_S):
        wave, sr = sf.read(data / "speakers" / rel, dtype="float32")
        assert sr == 16000
        out.append(wave[: int(crop * sr)])
    return out
