"""Speed of YAMNet in JAX vs LiteRT on yamnet.tflite: time per patch and real-time factor per stream.

    nice -n 10 .venv/bin/python bench/sed_speed.py [--clip sed/dev/clips/siren/sirenfr_ambulance1_0.flac] [--repeats 40]

Per patch: LiteRT runs the whole file (front end + network) on one 0.975 s window per invoke (the peer's way,
Frigate); ours runs the front end once per 10 ms frame (`StreamingLogMel`, shared by overlapping patches) and the
network on patches, one at a time (live, one stream) or in batches of 32 (many streams in one node).
RTF per stream at hop H: the CPU seconds one second of audio needs = front end per second + (1/H) x network per
patch; LiteRT recomputes the front end inside every patch. Both run on one thread, and times are CPU time of
the process (time.process_time), so a machine shared with other work still gives the cost, not the queueing.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread for NumPy too

import statistics  # noqa: E402  (XLA_FLAGS must be set before JAX loads)
import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from nodes.sed.frontend import HOP, SAMPLE_RATE, StreamingLogMel, log_mel  # noqa: E402
from nodes.sed.yamnet import PATCH_FRAMES, load_yamnet  # noqa: E402
from stream.paths import data_dir, model_dir  # noqa: E402

TFLITE_SAMPLES = 15600
HOPS = (0.48, 0.24, 0.16, 0.08)  # s between patches (0.08: the node's default)


def _median_time(fn, repeats: int) -> float:
    """Median CPU seconds of one call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="sed/dev/clips/siren/sirenfr_ambulance1_0.flac")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    audio, rate = sf.read(data_dir() / args.clip, dtype="float32")
    assert rate == SAMPLE_RATE
    audio = np.tile(audio, 1 + 4 * SAMPLE_RATE // len(audio))[: 4 * SAMPLE_RATE]  # 4 s

    interpreter = Interpreter(model_path=str(model_dir() / "yamnet" / "yamnet.tflite"), num_threads=1)
    interpreter.allocate_tensors()
    window = audio[None, :TFLITE_SAMPLES]

    def tflite() -> None:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], window)
        interpreter.invoke()

    theirs = _median_time(tflite, args.repeats)

    yamnet = load_yamnet(max_batch=args.batch)
    start = time.perf_counter()
    yamnet.warmup()
    compile_s = time.perf_counter() - start
    frontend = StreamingLogMel()
    second = audio[:SAMPLE_RATE]
    front_per_s = _median_time(lambda: (frontend.reset(), frontend.push(second)), args.repeats)
    patches = np.stack([log_mel(audio[i * 3 * HOP : i * 3 * HOP + TFLITE_SAMPLES]) for i in range(args.batch)])
    assert patches.shape[1] == PATCH_FRAMES
    single = _median_time(lambda: yamnet(patches[:1]), args.repeats)
    batched = _median_time(lambda: yamnet(patches), max(3, args.repeats // 8)) / args.batch

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; one thread each; "
          f"JAX compile of {len(yamnet.buckets)} buckets {compile_s:.1f} s")
    print(f"| CPU time | LiteRT (XNNPACK) | JAX, 1 patch | JAX, batch {args.batch} |")
    print("|---|---|---|---|")
    print(f"| ms per patch (network; LiteRT incl. its front end) | {theirs * 1e3:.2f} | {single * 1e3:.2f} | "
          f"{batched * 1e3:.2f} |")
    print(f"| JAX / LiteRT time per patch | 1 | {single / theirs:.2f} | {batched / theirs:.2f} |")
    print(f"| front end, ms per second of audio | (in the patch) | {front_per_s * 1e3:.2f} | {front_per_s * 1e3:.2f} |")
    for hop in HOPS:
        per_s = 1 / hop
        print(f"| RTF per stream, hop {hop} s | {theirs * per_s:.4f} | {front_per_s + single * per_s:.4f} | "
              f"{front_per_s + batched * per_s:.4f} |")


if __name__ == "__main__":
    main()
