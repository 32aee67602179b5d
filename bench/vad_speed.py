"""Speed of Silero VAD in JAX on CPU: compile time, real-time factor, ratio to onnxruntime on the released ONNX.

    .venv/bin/python bench/vad_speed.py

Live: one 512-sample (32 ms) chunk per step, RTF = time per chunk / 32 ms. File mode: `speech_probabilities`.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import onnxruntime as ort
import soundfile as sf

from nodes.vad import SileroStream, speech_probabilities
from nodes.vad.model import CHUNK, CONTEXT
from stream.models import load_params
from stream.paths import data_dir, model_dir

CHUNK_S = CHUNK / 16000


def main() -> None:
    params = load_params("silero-vad")
    audio, _ = sf.read(data_dir() / "diarization" / "ami" / "trn09.flac", dtype="float32")
    live = SileroStream(params)
    start = time.perf_counter()
    live.warmup()
    print(f"live step compile {time.perf_counter() - start:.2f} s")
    times = []
    for first in range(0, len(audio) - CHUNK, CHUNK):
        start = time.perf_counter()
        live.push(audio[first : first + CHUNK])
        times.append(time.perf_counter() - start)
    ours = statistics.median(times)
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"JAX live: {ours * 1e3:.3f} ms/chunk (median of {len(times)}), RTF {ours / CHUNK_S:.4f}")

    start = time.perf_counter()
    speech_probabilities(params, audio)
    print(f"file mode compile + first run {time.perf_counter() - start:.2f} s")
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        speech_probabilities(params, audio)
        runs.append(time.perf_counter() - start)
    print(f"JAX file mode, 30 s: {min(runs):.3f} s, RTF {min(runs) / 30:.4f}")

    session = ort.InferenceSession(str(model_dir() / "silero-vad" / "silero_vad.onnx"))
    state, sr, times = np.zeros((2, 1, 128), np.float32), np.array(16000, np.int64), []
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio])
    for first in range(0, len(audio) - CHUNK, CHUNK):
        start = time.perf_counter()
        _, state = session.run(None, {"input": padded[None, first : first + CONTEXT + CHUNK], "state": state, "sr": sr})
        times.append(time.perf_counter() - start)
    theirs = statistics.median(times)
    print(f"onnxruntime live: {theirs * 1e3:.3f} ms/chunk, RTF {theirs / CHUNK_S:.4f}; JAX/ONNX time ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
