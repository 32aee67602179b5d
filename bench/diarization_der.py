"""DER of `stream diarize` on the 12 AMI clips at latency 0.5 s and 5 s, online and refined.

Runs exactly `stream eval der --reference R --uem U --audio AMI --latency L --refine --plots DIR` for each
latency and prints its tables (DER no collar / +-0.25 s collar, JER; overlap scored; UEM applied).

    .venv/bin/python bench/diarization_der.py [--plots /tmp/der-plots]
"""

from __future__ import annotations

import argparse

from stream.cli import main
from stream.paths import data_dir


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plots", default="/tmp/stream-der-plots")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.5, 5.0])
    args = parser.parse_args()
    ami = data_dir() / "diarization" / "ami"
    for latency in args.latency:
        print(f"\n=== latency {latency:g} s ===")
        main(["eval", "der", "--reference", str(ami / "reference.rttm"), "--uem", str(ami / "reference.uem"),
              "--audio", str(ami), "--latency", str(latency), "--refine", "--plots", f"{args.plots}/{latency:g}"])


if __name__ == "__main__":
    run()
