"""Bench-only cache of YAMNet outputs per file and patch, for tuning the decoder without re-running the model.

    scores(path, hop_frames, backend) -> (class scores [patches, 521], window levels [patches])

Patch k covers frames [k * hop, k * hop + 96) of the streaming log-mel, i.e. samples [k * hop * 160, + 15600):
exactly the node's patches. Backend "tflite" runs ../shared/models/yamnet/yamnet.tflite on the raw window
(the reference the JAX port matches); the node and `stream detect` use the JAX model. Cached in
$STREAM_CACHE_DIR/sed-bench/<backend>/ by file content hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.sed.decode import Level, level
from stream.paths import cache_dir, model_dir

WINDOW_SAMPLES = 15600  # 96 frames of 25 ms at a 10 ms hop
FRAME_HOP = 160


def windows(x: np.ndarray, hop_frames: int) -> np.ndarray:
    """[patches, 15600] views of x at the node's patch positions."""
    step = hop_frames * FRAME_HOP
    n = 0 if len(x) < WINDOW_SAMPLES else 1 + (len(x) - WINDOW_SAMPLES) // step
    return np.stack([x[k * step:k * step + WINDOW_SAMPLES] for k in range(n)]) if n else np.zeros((0, WINDOW_SAMPLES))


class _Tflite:
    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(model_dir() / "yamnet" / "yamnet.tflite"), num_threads=1)
        self.it.allocate_tensors()
        self.input = self.it.get_input_details()[0]["index"]
        self.output = next(o["index"] for o in self.it.get_output_details() if tuple(o["shape"]) == (1, 521))

    def __call__(self, w: np.ndarray) -> np.ndarray:
        self.it.set_tensor(self.input, w[None].astype(np.float32))
        self.it.invoke()
        return self.it.get_tensor(self.output)[0].copy()


_MODELS: dict[str, object] = {}


def scores(path: Path, hop_frames: int, backend: str = "tflite") -> tuple[np.ndarray, list[Level]]:
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == 16000, path
    x = x.mean(1)
    key = hashlib.sha1(x.tobytes() + f"{hop_frames}".encode()).hexdigest()[:20]
    cache = cache_dir() / "sed-bench" / backend / f"{key}.npz"
    w = windows(x, hop_frames)
    levels = [level(v) for v in w]
    if cache.exists():
        return np.load(cache)["scores"], levels
    if backend not in _MODELS:
        _MODELS[backend] = _Tflite()
    model = _MODELS[backend]
    out = np.stack([model(v) for v in w]) if len(w) else np.zeros((0, 521), np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, scores=out)
    return out, levels
