"""Speed of segmentation-3.0 in JAX on CPU: compile time, real-time factor, ratio to pyannote.audio's PyTorch model.

    .venv/bin/python bench/segmentation_speed.py
    PYTHONPATH=/tmp/pyaref .venv/bin/python bench/segmentation_speed.py   # adds the PyTorch reference
    (reference install: see tests/segmentation/make_golden.py)

RTF = compute time / audio time, best of 20 runs (the 2 cores are shared, so medians drift with the load). Live: one 5 s window per 0.5 s step, so RTF = time per window / 0.5 s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jax
import numpy as np
import soundfile as sf

from nodes.segmentation.segment import RollingConfig, RollingSegmenter, segment_file
from stream.models import load_params
from stream.paths import data_dir

REPEATS = 20


def _best_seconds(fn, repeats: int = REPEATS) -> float:
    """Fastest of `repeats` runs: the machine is shared, so the minimum is the least disturbed measure."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    params = load_params("segmentation-3.0")
    audio, _ = sf.read(data_dir() / "diarization" / "ami" / "trn09.flac", dtype="float32")
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; load average {os.getloadavg()[0]:.1f}")
    rows = []
    for window in (5.0, 10.0):
        live = RollingSegmenter(params, RollingConfig(window=window, step=0.5))
        start = time.perf_counter()
        live.warmup()
        compile_s = time.perf_counter() - start
        chunk = audio[: live.config.window_samples]
        per_window = _best_seconds(lambda: (live.reset(), live.push(chunk)))
        rows.append((window, compile_s, per_window))
        print(f"window {window:4.1f} s: compile {compile_s:.2f} s, {per_window * 1e3:.1f} ms/window, "
              f"window RTF {per_window / window:.4f}, live RTF at 0.5 s step {per_window / 0.5:.3f}")
    config = RollingConfig(window=5.0, step=0.5)
    segment_file(params, audio, config)  # compile the batch shape
    file_s = _best_seconds(lambda: segment_file(params, audio, config), repeats=3)
    print(f"file mode, 30 s AMI clip, 5 s / 0.5 s windows batched by 8: {file_s:.2f} s, RTF {file_s / 30:.3f}")

    try:
        import torch

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "segmentation"))
        from make_golden import reference_pyannet

        model = reference_pyannet()
    except ImportError as exc:
        print(f"PyTorch reference unavailable ({exc}); see tests/segmentation/make_golden.py")
        return
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    for window, _, ours in rows:
        x = torch.from_numpy(np.ascontiguousarray(audio[: int(window * 16000)]))[None, None]
        with torch.inference_mode():
            model(x)
            theirs = _best_seconds(lambda: model(x))
        print(f"window {window:4.1f} s: PyTorch {theirs * 1e3:.1f} ms/window; JAX/PyTorch time ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
