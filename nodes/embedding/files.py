"""Embed audio files: decode any rate/channels to 16 kHz mono, one CAM++ embedding per file.

Used by `stream embed` and `stream eval eer`. A file that cannot be embedded (unreadable, too short, silent,
NaN) is reported with its reason and skipped; the others are still embedded. Memory is bounded: files share a
CAM++ batch only within one length bucket, and files over 5 minutes are embedded in 5-minute chunks.
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
CHUNK_FRAMES = 30_000  # fbank frames (5 min): longer files are embedded as the length-weighted mean of their
#   chunks' embeddings, so memory stays bounded for hours of audio (one CAM++ pass over 10 min took ~2 GB)


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
    chunks: list[np.ndarray] = []  # fbank of every file, long files cut in CHUNK_FRAMES pieces
    owner: list[int] = []  # the file of each chunk
    for i, path in enumerate(paths):
        try:
            f = waveform_fbank(load_audio(path), SAMPLE_RATE)
            check_features(f, what="audio")
        except AudioError as exc:
            errors[i] = str(exc)
            if progress:
                progress(1)
            continue
        pieces = [f[s:s + CHUNK_FRAMES] for s in range(0, len(f), CHUNK_FRAMES)]
        if len(pieces) > 1 and len(pieces[-1]) < CHUNK_FRAMES // 2:  # no short tail of its own
            pieces[-2:] = [np.concatenate(pieces[-2:])]
        chunks += pieces
        owner += [i] * len(pieces)
    if chunks:
        whole = len(chunks) == len(set(owner))  # no file was cut: progress per batch, else at the end
        emb = embed_feature_list(params, chunks, batch_size, progress if whole else None, cfg)
        weights = np.array([len(c) for c in chunks], np.float64)
        for i in sorted(set(owner)):
            mine = [k for k, o in enumerate(owner) if o == i]
            out[i] = np.average(emb[mine], axis=0, weights=weights[mine])
        if progress and not whole:
            progress(len(set(owner)))
    return out, errors
