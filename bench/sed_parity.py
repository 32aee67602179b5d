"""YAMNet in JAX vs LiteRT on yamnet.tflite, over many real windows; and how much LiteRT moves on its own.

    nice -n 10 .venv/bin/python bench/sed_parity.py [--every 3] [--stride 4]

Windows: every `--every`-th clip of ../shared/data/sed/dev, 0.975 s windows every `--stride` x 0.48 s. For each:
LiteRT's scores (default XNNPACK kernels, as Frigate runs it) against ours in both arithmetics ("tflite": the
file's int8 ops redone; "float": YAMNet's float front end and dequantised weights), and against LiteRT itself on
the same window made 0.001 dB louder (the model's own sensitivity to an inaudible change).
"""

from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf
from ai_edge_litert.interpreter import Interpreter

from nodes.sed.frontend import log_mel
from nodes.sed.yamnet import load_yamnet
from stream.paths import data_dir, model_dir

SAMPLES, HOP = 15600, 7680


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=3, help="take every N-th clip (sorted by path)")
    parser.add_argument("--stride", type=int, default=4, help="windows every N x 0.48 s within a clip")
    args = parser.parse_args()
    interpreter = Interpreter(model_path=str(model_dir() / "yamnet" / "yamnet.tflite"))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = next(d["index"] for d in interpreter.get_output_details() if tuple(d["shape"]) == (1, 521))

    def litert(window: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source, window[None])
        interpreter.invoke()
        return interpreter.get_tensor(target)[0].copy()

    models = {arithmetic: load_yamnet(max_batch=1, arithmetic=arithmetic) for arithmetic in ("tflite", "float")}
    rows: dict[str, list[tuple[float, bool]]] = {"tflite": [], "float": [], "LiteRT +0.001 dB": []}
    top3 = lambda s: list(np.argsort(-s)[:3])  # noqa: E731
    clips = sorted((data_dir() / "sed" / "dev" / "clips").glob("*/*.flac"))[:: args.every]
    for clip in clips:
        audio, _ = sf.read(clip, dtype="float32")
        for start in range(0, len(audio) - SAMPLES, HOP * args.stride):
            window = audio[start : start + SAMPLES]
            reference = litert(window)
            for arithmetic, model in models.items():
                scores = model(log_mel(window, arithmetic)[None])[0][0]
                rows[arithmetic].append((np.abs(scores - reference).max(), top3(scores) == top3(reference)))
            louder = litert(window * np.float32(10 ** (0.001 / 20)))
            rows["LiteRT +0.001 dB"].append((np.abs(louder - reference).max(), top3(louder) == top3(reference)))
    print(f"{len(rows['tflite'])} windows of {len(clips)} clips")
    print("| vs LiteRT (XNNPACK) | max abs score diff: median | 90th pct | max | top-3 identical (ordered) |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        diff, same = np.array([d for d, _ in values]), np.array([s for _, s in values])
        label = f"JAX, arithmetic \"{name}\"" if name in models else name
        print(f"| {label} | {np.median(diff):.4f} | {np.quantile(diff, 0.9):.4f} | {diff.max():.4f} | "
              f"{same.mean() * 100:.1f} % |")


if __name__ == "__main__":
    main()
