"""Embed audio files: decode any rate/channels to 16 kHz mono, one CAM++ embedding per file.

Used by `stream embed` and `stream eval eer`. A file that cannot be embedded (unreadable, too short, silent,
NaN) is reported with its reason and skipped; the others are still embedded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nodes.capture.files import read_blocks
from nodes.embedding.api import SAMPLE_RATE, check_features, embed_feature_list, waveform_fbank
from nodes.embedding.campplus import CampplusConfig
from stream.errors import AudioError
from stream.models import Params

EMBEDDING_SIZE = 192


def load_audio(path: Path) -> np.ndarray:
    """The whole file as 16 kHz mono float32 in [-1, 1] (channels averaged, resampled with soxr)."""
    blocks = list(read_blocks(Path(path), SAMPLE_RATE))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def embed_files(params: Params, paths: list[Path], batch_size: int = 8,
                progress: Callable[[int], None] | None = None,
                cfg: CampplusConfig = CampplusConfig()) -> tuple[np.ndarray, dict[int, str]]:
    """([N, 192] embeddings, {index: reason} of failed files); failed rows are NaN.

    Files are decoded one at a time; embeddings run in batches of similar length (`batch_size` rows).
    `progress(n)` is called as files finish (failed ones at once, the others after each batch); `cfg` is the
    CAM++ definition (`api.campplus_config(name)`).
    """
    out = np.full((len(paths), EMBEDDING_SIZE), np.nan, np.float32)
    errors: dict[int, str] = {}
    feats: dict[int, np.ndarray] = {}
    for i, path in enumerate(paths):
        try:
            f = waveform_fbank(load_audio(path), SAMPLE_RATE)
            check_features(f, what="audio")
            feats[i] = f
        except AudioError as exc:
            errors[i] = str(exc)
            if progress:
                progress(1)
    rows = list(feats)
    if rows:
        out[rows] = embed_feature_list(params, [feats[i] for i in rows], batch_size, progress, cfg)
    return out, errors
