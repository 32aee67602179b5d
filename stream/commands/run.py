"""`stream run CONFIG [--source FILE|DEVICE|URL] [--duration S] [--web]`: run a graph in the foreground until Ctrl-C.

Around the supervisor (`stream.graph`): an MQTT sink without a URL gets one embedded mosquitto for the whole run
(started here, so its URL can be printed and it outlives restarts of the sinks node); once every node is ready,
one block says where everything is (events, metrics, the web page, the RTTM, the scene being played) and which
process runs which node; `--web` serves the live timeline (`stream.web`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

from stream.graph import SINKS_NODE, Graph, NodeEntry, Supervisor

WEB_PORT = 8765
DRAIN_S = 30.0  # s a stop waits for nodes to finish the audio already captured (a model behind the live edge)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a graph of nodes (one process each) until Ctrl-C or end of input")
    p.add_argument("config", type=Path, help="graph TOML, e.g. configs/demo.toml")
    p.add_argument("--source", help="audio file, input device index/name (see `stream devices`), ws://HOST:PORT "
                   "(serve a WebSocket input) or a stream URL for ffmpeg (rtsp://, http://, ...); default: the "
                   "graph's own source (the demo: a scene of recordings from ../shared/data)")
    p.add_argument("--duration", type=float, metavar="S", help="stop S seconds after the graph is ready")
    p.add_argument("--run-dir", type=Path, help="folder for sockets, checkpoints, metrics (default: a new temp dir)")
    p.add_argument("--web", action="store_true", help="serve a live timeline page on 127.0.0.1 (needs a zmq_pub sink)")
    p.add_argument("--web-port", type=int, default=WEB_PORT, help=f"port of the page (default {WEB_PORT}; 0 = any)")
    p.add_argument("--enrol-db", type=Path, default=Path("speakers.db"),
                   help="enrolment store the page's 'enrol' form writes to (default speakers.db)")
    p.add_argument("--health", type=_host_port, metavar="HOST:PORT",
                   help="serve /livez and /readyz here for an orchestrator's probes (e.g. 0.0.0.0:8080; off by default)")
    p.set_defaults(func=_run)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 0.0.0.0:8080")
    return host, int(port)


def _run(args: argparse.Namespace) -> int:
    from stream.graph import load_graph, with_source

    graph = load_graph(args.config)
    if args.source:
        graph = with_source(graph, args.source)
    return asyncio.run(_main(graph, args))


async def _main(graph: Graph, args: argparse.Namespace) -> int:
    from stream.broker import Broker

    with contextlib.ExitStack() as stack:
        if _needs_broker(graph):
            broker = stack.enter_context(Broker())
            graph = _with_broker(graph, broker.url)
        supervisor = Supervisor(graph, args.run_dir, grace_s=DRAIN_S, health=args.health)
        web = None
        if args.web:
            from stream.web.server import WebServer

            web = WebServer(graph, supervisor.run_dir, args.web_port, args.enrol_db)
            await web.start()
        summary = asyncio.ensure_future(_print_summary(graph, supervisor, web))
        try:
            return await supervisor.run(args.duration)
        finally:
            summary.cancel()
            if web is not None:
                await web.stop()


def _sink_tables(graph: Graph) -> list[dict]:
    sinks = next((n for n in graph.nodes if n.name == SINKS_NODE), None)
    return list(sinks.config.get("sinks", ())) if sinks else []


def _needs_broker(graph: Graph) -> bool:
    return any(t.get("kind") == "mqtt" and not t.get("url") for t in _sink_tables(graph))


def _with_broker(graph: Graph, url: str) -> Graph:
    """The graph with `url` in every MQTT sink that has none."""
    tables = [{**t, "url": url} if t.get("kind") == "mqtt" and not t.get("url") else t for t in _sink_tables(graph)]
    nodes = tuple(replace(n, config={**n.config, "sinks": tables}) if n.name == SINKS_NODE else n
                  for n in graph.nodes)
    return replace(graph, nodes=nodes)


async def _print_summary(graph: Graph, supervisor: Supervisor, web: object | None) -> None:
    """Once every node is ready: where events, metrics, the page and outputs are; which process is which node."""
    started = time.monotonic()
    await supervisor.ready.wait()
    print(summary(graph, supervisor, getattr(web, "url", ""), time.monotonic() - started), file=sys.stderr,
          flush=True)


def summary(graph: Graph, supervisor: Supervisor, web_url: str, startup_s: float) -> str:
    pids = ", ".join(f"{name} {proc.pid}" for name, proc in supervisor.procs.items())
    lines = [f"stream: graph {graph.name!r} ready after {startup_s:.1f} s; node processes: {pids}"]
    for table in _sink_tables(graph):
        if table.get("kind") == "zmq_pub":
            endpoint = table.get("endpoint", "")
            lines.append(f"  events  ZeroMQ {endpoint}  (stream listen --endpoint {endpoint})")
        elif table.get("kind") == "mqtt":
            lines.append(f"  events  MQTT {table['url']}, topics {table.get('base_topic', 'stream')}/"
                         f"{table.get('stream', 'default')}/#  (stream listen --mqtt {table['url']})")
    lines.append(f"  metrics http://{graph.metrics_host}:{supervisor.metrics_port}/metrics  (Prometheus)")
    if web_url:
        lines.append(f"  web     {web_url}  (live timeline)")
    lines += [f"  rttm    {n.config['rttm_dir']}/<stream>-<date>-<time>.rttm as turns close ({n.name})"
              for n in graph.nodes if n.kind == "diarization" and n.config.get("rttm_dir")]
    lines += [f"  scene   {part}" for n in graph.nodes for part in _scene(n)]
    return "\n".join(lines)


def _scene(node: NodeEntry) -> list[str]:
    """What a capture node playing a scene plays when, e.g. '0.0-30.0 s  diarization/ami/trn05.flac'."""
    if node.kind != "capture" or node.config.get("source") != "scene":
        return []
    from nodes.capture.sources import SceneSource

    source = SceneSource(tuple(node.config["scene"]), int(node.config.get("rate", 16000)))
    return [f"{a:5.1f}-{b:5.1f} s  {name}" for (a, b, _), name in zip(source.parts(), node.config["scene"])]
