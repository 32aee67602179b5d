"""Make `yamnet_dev.npz`: what yamnet.tflite (LiteRT, default XNNPACK kernels) scores on real 0.975 s windows.

Usage: .venv/bin/python tests/sed/golden/make_golden.py     (needs the `convert` extra: ai-edge-litert)

One window per class from ../shared/data/sed/dev (the first clip of the class, the loudest window on a 0.1 s grid).
The audio is not ours to publish, so the file keeps only the model's outputs (scores) and where the input was
(clip path relative to STREAM_DATA_DIR, first sample); the test reads the audio from there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from ai_edge_litert.interpreter import Interpreter

from stream.paths import data_dir, model_dir

CLASSES = ("dog_bark", "smoke_alarm", "siren", "cough", "glass_break", "speech", "music", "knock", "baby_cry",
           "gunshot", "laughter", "car_horn", "confusable_phone_tone", "room_background")
SAMPLES = 15600  # the TFLite model's fixed input: 0.975 s at 16 kHz
OUT = Path(__file__).with_name("yamnet_dev.npz")


def loudest_window(audio: np.ndarray) -> int:
    starts = np.arange(0, len(audio) - SAMPLES + 1, 1600)
    return int(starts[np.argmax([np.square(audio[s : s + SAMPLES]).mean() for s in starts])])


def main() -> None:
    interpreter = Interpreter(model_path=str(model_dir() / "yamnet" / "yamnet.tflite"))
    interpreter.allocate_tensors()
    scores_index = next(d["index"] for d in interpreter.get_output_details() if tuple(d["shape"]) == (1, 521))
    paths, offsets, scores = [], [], []
    for name in CLASSES:
        clip = sorted((data_dir() / "sed" / "dev" / "clips" / name).glob("*.flac"))[0]
        audio, rate = sf.read(clip, dtype="float32")
        assert rate == 16000 and audio.ndim == 1
        start = loudest_window(audio)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], audio[None, start : start + SAMPLES])
        interpreter.invoke()
        paths.append(str(clip.relative_to(data_dir())))
        offsets.append(start)
        scores.append(interpreter.get_tensor(scores_index)[0].copy())
    np.savez_compressed(OUT, paths=np.array(paths), offsets=np.array(offsets), scores=np.array(scores, np.float32))
    print(f"{OUT}: {len(paths)} windows")


if __name__ == "__main__":
    main()
