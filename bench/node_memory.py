"""A node's memory over hours of audio at full speed, in one process (bench/RESULTS.md, "Reliability: faults and
soak", per-stream state and memory): does its RSS or its checkpointed state grow with stream time?

    nice -n 5 .venv/bin/python bench/node_memory.py vad [--hours 1.5] [--streams 2] [--every 0.1]

Looped AMI clips (one per stream) in 20 ms blocks go through the real runtime path (`Runner.receive` then
`.handle`, as the fuzzer drives nodes: decode, sequence tracking, metrics, publishing to a ZeroMQ socket). Every
`--every` hours of audio per stream: RSS (after `gc`), the size of the node's checkpoint (`state_dict()` as the
runtime packs it) and the wall time. No sleeping: hours of audio take minutes (the model's speed).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import psutil
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fuzz"))

from harness import PORT, Target  # noqa: E402
from stream.message import Message, encode  # noqa: E402
from stream.paths import data_dir  # noqa: E402
from stream.transport import topic  # noqa: E402

BLOCK = 320  # 20 ms at 16 kHz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", help="a node kind taking pcm (vad, sed, loudness, ...)")
    parser.add_argument("--hours", type=float, default=1.0, help="hours of audio per stream")
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--every", type=float, default=0.1, help="hours of audio per stream between samples")
    args = parser.parse_args()
    clips = sorted((data_dir() / "diarization" / "ami").glob("*.flac"))[: args.streams]
    audio = []
    for clip in clips:
        x, sr = sf.read(clip, dtype="float32")
        assert sr == 16000, f"{clip} is {sr} Hz"
        audio.append(x if x.ndim == 1 else x.mean(axis=1))
    target = Target.start(args.kind, Path(tempfile.mkdtemp()))
    proc, start = psutil.Process(), time.time()
    total, every = int(args.hours * 3600 * 16000), int(args.every * 3600 * 16000)
    done, seq, sample_at = 0, 0, every
    print(f"{args.kind}: RSS after setup {proc.memory_info().rss / 2**20:.1f} MiB", flush=True)
    while done < total:
        for s, x in enumerate(audio):
            at = done % (len(x) - BLOCK)
            t_ns = 10**9 + round(done / 16000 * 1e9)
            msg = Message.new(f"m{s}", "pcm", x[at:at + BLOCK, None], sr=16000, t_capture_ns=t_ns,
                              t_wall=1.7e9 + t_ns / 1e9, seq=seq)
            received = target.runner.receive(PORT, [topic("pcm", f"m{s}"), *encode(msg)])
            target.loop.run_until_complete(target.runner.handle(PORT, received))
        seq, done = seq + 1, done + BLOCK
        if done >= sample_at:
            sample_at += every
            gc.collect()
            print(f"audio {done / 16000 / 3600:.2f} h per stream: RSS {proc.memory_info().rss / 2**20:.1f} MiB, "
                  f"checkpoint {len(target.state())} B, wall {time.time() - start:.0f} s", flush=True)
    target.close()


if __name__ == "__main__":
    main()
