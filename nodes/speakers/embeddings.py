"""Audio files -> speaker embeddings for enrolment, verification and identification (CAM++ via nodes.embedding)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from stream.errors import AudioError

MODELS = ("campplus",)  # speaker encoders a store can be made with
DIM = {"campplus": 192}


def embed_paths(model: str, paths: list[Path]) -> np.ndarray:
    """[N, dim] raw embeddings of the files, in order; any file that cannot be embedded raises AudioError naming it
    (an enrolment or a decision must not silently drop audio)."""
    from tqdm import tqdm

    from nodes.embedding.api import load_campplus
    from nodes.embedding.files import embed_files

    if not paths:
        raise AudioError("no audio files given")
    with tqdm(total=len(paths), unit="file", desc="embed", disable=not sys.stderr.isatty()) as bar:
        emb, errors = embed_files(load_campplus(model), list(paths), progress=bar.update)
    if errors:
        lines = "; ".join(f"{paths[i]}: {reason}" for i, reason in errors.items())
        raise AudioError(f"{len(errors)} of {len(paths)} files could not be embedded: {lines}")
    return emb
