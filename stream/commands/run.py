"""`stream run CONFIG [--source FILE|DEVICE] [--duration S]`: run a graph in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a graph of nodes (one process each) until Ctrl-C or end of input")
    p.add_argument("config", type=Path, help="graph TOML, e.g. configs/demo.toml")
    p.add_argument("--source", help="audio file, or input device index/name (see `stream devices`); "
                   "default: the graph's own source (the demo: a generated test signal)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--run-dir", type=Path, help="folder for sockets, checkpoints, metrics (default: a new temp dir)")
    p.add_argument("--health", type=_host_port, metavar="HOST:PORT",
                   help="serve /livez and /readyz here for an orchestrator's probes (e.g. 0.0.0.0:8080; off by default)")
    p.set_defaults(func=_run)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 0.0.0.0:8080")
    return host, int(port)


def _run(args: argparse.Namespace) -> int:
    from stream.graph import run

    return run(args.config, source=args.source, duration_s=args.duration, run_dir=args.run_dir, health=args.health)
