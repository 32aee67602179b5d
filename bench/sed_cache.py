"""Bench-only cache of the node's own YAMNet outputs (JAX) per file, so decoder sweeps take seconds.

    outputs(path) -> Outputs(scores [patches, 521], embeddings [patches, 1024], levels [patches]) at hop 0.08 s
    Replay(path, hop) -> a stand-in for the node's `Yamnet` that serves those rows to `detect_file`

Patch k starts at frame 8k of the node's streaming log-mel (`StreamingLogMel`, the same frames the node cuts its
patches from), so any hop that is a multiple of 0.08 s is a subsample of the cache: the bench runs the node's code
(`nodes.sed.files.detect_file`) with `Replay` in place of the network and gets what `stream detect` would write.
Cached in $STREAM_CACHE_DIR/sed-bench/jax/ by file content hash (float32).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.sed.decode import Level, level
from nodes.sed.detector import PATCH_SAMPLES
from nodes.sed.frontend import HOP, StreamingLogMel
from nodes.sed.yamnet import PATCH_FRAMES, Yamnet, load_yamnet
from stream.paths import cache_dir

CACHE_HOP_FRAMES = 8  # 0.08 s


@dataclass(frozen=True)
class Outputs:
    scores: np.ndarray  # [patches, 521] float32
    embeddings: np.ndarray  # [patches, 1024] float32
    levels: list[Level]

    def every(self, hop: float) -> Outputs:
        step = round(hop * 100) // CACHE_HOP_FRAMES
        assert step * CACHE_HOP_FRAMES == round(hop * 100), f"hop {hop} is not a multiple of 0.08 s"
        return Outputs(self.scores[::step], self.embeddings[::step], self.levels[::step])


@cache
def _model() -> Yamnet:
    return load_yamnet()


def read(path: Path) -> np.ndarray:
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == 16000, path
    return x.mean(1)


def outputs(path: Path) -> Outputs:
    x = read(path)
    key = hashlib.sha1(x.tobytes()).hexdigest()[:20]
    file = cache_dir() / "sed-bench" / "jax" / f"{key}.npz"
    frames = StreamingLogMel().push(x)
    starts = list(range(0, len(frames) - PATCH_FRAMES + 1, CACHE_HOP_FRAMES))
    levels = [level(x[f * HOP:f * HOP + PATCH_SAMPLES]) for f in starts]
    if file.exists():
        with np.load(file) as z:
            return Outputs(z["scores"], z["embeddings"], levels)
    if starts:
        scores, emb = _model()(np.stack([frames[f:f + PATCH_FRAMES] for f in starts]))
    else:
        scores, emb = np.zeros((0, 521), np.float32), np.zeros((0, 1024), np.float32)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, scores=scores, embeddings=emb)
    return Outputs(scores, emb, levels)


class Replay:
    """Serves a file's cached (scores, embeddings) to `detect_file` in patch order, in place of `Yamnet`."""

    def __init__(self, path: Path, hop: float, class_names: list[str]) -> None:
        out = outputs(path).every(hop)
        self.scores, self.embeddings, self.class_names, self.next = out.scores, out.embeddings, class_names, 0

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k, self.next = self.next, self.next + len(patches)
        assert self.next <= len(self.scores), "more patches than cached"
        return self.scores[k:self.next], self.embeddings[k:self.next]


if __name__ == "__main__":
    import sys

    for folder in sys.argv[1:]:
        for wav in sorted(Path(folder).rglob("*.wav")):
            outputs(wav)
        print(folder, "cached")
