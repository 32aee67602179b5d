"""Make `yamnet_dev.npz`: what yamnet.tflite (LiteRT, default XNNPACK kernels) outputs on real 0.975 s windows.

Usage: .venv/bin/python tests/sed/golden/make_golden.py     (needs the `convert` extra: ai-edge-litert)

One window per class from ../shared/data/sed/dev (the first clip of the class, the loudest window on a 0.1 s grid).
The audio is not ours to publish, so the file keeps only the model's outputs (scores, embeddings) and where the
input was (clip path relative to STREAM_DATA_DIR, first sample); the test reads the audio from there.

The embedding (the global average pool before the classifier) runs inside LiteRT's XNNPACK delegate, where it
cannot be read; so the model is loaded with its log-mel output re-pointed at that tensor (one int32 of the
flatbuffer changed in memory). Its scores stay bit-identical to the unmodified file's.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
from ai_edge_litert.interpreter import Interpreter

from nodes.sed.convert import _Table
from stream.paths import data_dir, model_dir

CLASSES = ("dog_bark", "smoke_alarm", "siren", "cough", "glass_break", "speech", "music", "knock", "baby_cry",
           "gunshot", "laughter", "car_horn", "confusable_phone_tone", "room_background")
SAMPLES = 15600  # the TFLite model's fixed input: 0.975 s at 16 kHz
OUT = Path(__file__).with_name("yamnet_dev.npz")


def loudest_window(audio: np.ndarray) -> int:
    starts = np.arange(0, len(audio) - SAMPLES + 1, 1600)
    return int(starts[np.argmax([np.square(audio[s : s + SAMPLES]).mean() for s in starts])])


def with_embedding_output(tflite: bytes) -> bytes:
    """The model with its [96, 64] log-mel output replaced by the [1, 1024] pooled embedding."""
    buf = bytearray(tflite)
    graph = _Table(tflite, struct.unpack_from("<I", tflite, 0)[0]).tables(2)[0]
    names = [t.string(3) for t in graph.tables(0)]
    shapes = [tuple(int(d) for d in t.vector(0, "<i4")) for t in graph.tables(0)]
    outputs = graph._ref(2)  # SubGraph.outputs: [int32 count, indices...]
    slot = next(outputs + 4 + 4 * i for i in range(struct.unpack_from("<I", buf, outputs)[0])
                if shapes[struct.unpack_from("<i", buf, outputs + 4 + 4 * i)[0]] == (96, 64))
    struct.pack_into("<i", buf, slot, names.index("yamnet_frames/global_average_pooling2d/Mean"))
    return bytes(buf)


def main() -> None:
    tflite = (model_dir() / "yamnet" / "yamnet.tflite").read_bytes()
    interpreter = Interpreter(model_content=with_embedding_output(tflite))
    interpreter.allocate_tensors()
    outputs = {tuple(d["shape"]): d["index"] for d in interpreter.get_output_details()}
    paths, offsets, scores, embeddings = [], [], [], []
    for name in CLASSES:
        clip = sorted((data_dir() / "sed" / "dev" / "clips" / name).glob("*.flac"))[0]
        audio, rate = sf.read(clip, dtype="float32")
        assert rate == 16000 and audio.ndim == 1
        start = loudest_window(audio)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], audio[None, start : start + SAMPLES])
        interpreter.invoke()
        paths.append(str(clip.relative_to(data_dir())))
        offsets.append(start)
        scores.append(interpreter.get_tensor(outputs[(1, 521)])[0].copy())
        embeddings.append(interpreter.get_tensor(outputs[(1, 1024)])[0].copy())
    np.savez_compressed(OUT, paths=np.array(paths), offsets=np.array(offsets), scores=np.array(scores, np.float32),
                        embeddings=np.array(embeddings, np.float32))
    print(f"{OUT}: {len(paths)} windows")


if __name__ == "__main__":
    main()
