"""A graph TOML -> one OS process per node, wired over ZeroMQ, supervised (restart with back-off, clean stop).

Graph format (see configs/demo.toml for a commented example):

    [graph]
    name = "demo"
    checkpoint_s = 1.0      # node state checkpoint period, s
    heartbeat_s = 0.5       # node -> supervisor heartbeat period, s
    hang_s = 10.0           # s without a heartbeat (or with the loop stuck for this long and 10 x its slowest
                            # step) = hung: killed and restarted; >= 2 heartbeats
    hwm = 1000              # messages buffered per socket before ZeroMQ drops (drops are counted downstream)
    max_streams = 64        # stream ids one node keeps state for (messages of more are rejected, counted)
    max_message_mb = 16.0   # frames over this many MiB are refused at the socket (counted)
    replay_s = 10.0         # s of its output each node keeps to replay to a restarted subscriber (0 = off)
    replay_mb = 32.0        # bound of that replay ring per node, MiB (oldest evicted first)
    plaintext_tcp = false   # allow tcp:// to/from other hosts without CURVE (a trusted private network only)

    [curve]                 # encrypt and authenticate tcp:// endpoints across hosts (see stream/curve.py)
    secret_key = "keys/this-host.key_secret"
    authorized = "keys/authorized"

    [metrics]
    host = "127.0.0.1"      # one Prometheus endpoint for the whole graph
    port = 9464             # 0 = any free port

    [[nodes]]
    name = "capture"        # unique; also the input port name downstream nodes see
    kind = "capture"        # nodes.<kind>.node:NODE, or "package.module:Class"
    [nodes.config]          # the node's Config fields (validated: unknown keys and wrong types are errors)
    source = "signal"

    [[nodes]]
    name = "loudness"
    kind = "loudness"
    inputs = ["capture"]    # upstream node names, or endpoints of nodes on other hosts ("tcp://host:port")
    # endpoint = "tcp://0.0.0.0:5601"   # bind here instead of ipc://<run dir>/<name>.sock (other hosts; needs [curve])

    [[sinks]]               # events of every node go to every sink (one "sinks" process)
    kind = "jsonl"          # zmq_pub | jsonl | console | mqtt | "package.module:Class"
    path = "events.jsonl"

Run folder (a fresh temp dir, removed at the end, unless `--run-dir` names one to keep): `<name>.sock`
endpoints, `control.sock` (heartbeats), `state/` (checkpoints), `metrics/` (prometheus_client multiprocess files).

Restarts: a crashed node (non-zero exit, or heartbeats stopped) is restarted at once, then after 0.1 s, doubling
to 5 s while it keeps crashing. The supervisor keeps one standby process with its imports done, so a restart
takes milliseconds; the node restores its checkpoint, its upstreams replay what it missed since (`replay_s`), and
its downstream nodes reconnect by themselves and drop what it re-makes (stream.runner). A node
failing with a StreamError (missing file or model) stops the graph instead: a restart cannot fix it.

Stopping: SIGINT/SIGTERM (or `duration`) stops the sources; end-of-stream then drains through the graph (a node
whose upstreams are gone gets SIGTERM: it drains and exits), and whatever is still alive `grace_s` later is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from stream import metrics
from stream.curve import CurveKeys, is_loopback
from stream.errors import ConfigError
from stream.health import Health
from stream.health import serve as serve_health
from stream.message import NAME_RULE, valid_name
from stream.node import Source, resolve
from stream.paths import REPO_ROOT
from stream.runner import EXIT_FATAL, NodeSpec

log = logging.getLogger(__name__)

SINKS_NODE = "sinks"
STATE_SUSPECT_AFTER = 3  # quick crashes in a row after which a node's checkpoint is set aside
_GRAPH_KEYS = {"name", "checkpoint_s", "heartbeat_s", "hang_s", "hwm", "max_streams",
               "max_message_mb", "plaintext_tcp", "replay_s", "replay_mb"}
_NODE_KEYS = {"name", "kind", "config", "inputs", "endpoint"}
_ENDPOINT = re.compile(r"ipc://\S+|tcp://(\*|[\w.\-]+|\[[0-9a-fA-F:]+\]):\d{1,5}")
MAX_CONTROL_BYTES = 4096  # a heartbeat is ~60 bytes; anything bigger on the control socket is refused
HANG_STEPS = 10  # a step this many times the node's slowest recent one is a hang (when over hang_s)
START_S = 120.0  # s of start-up after which `duration` counts anyway
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".m4a"}  # --source names a file


@dataclass(frozen=True)
class NodeEntry:
    name: str
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    endpoint: str = ""  # "" = ipc in the run folder


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[NodeEntry, ...]
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    checkpoint_s: float = 1.0
    heartbeat_s: float = 0.5
    hang_s: float = 10.0  # s of silence that make a node hung; over a 5 s pause (SIGSTOP, a debugger, a starved
    #   process): was 10 heartbeats, 5 s, and a node stopped for 5 s was killed, losing what was queued for it
    hwm: int = 1000
    plaintext_tcp: bool = False  # tcp:// beyond loopback without CURVE, explicitly allowed
    curve: CurveKeys | None = None
    max_streams: int = 64
    max_message_mb: float = 16.0
    replay_s: float = 10.0  # a restarted node gets what it missed replayed from here (stream.transport)
    replay_mb: float = 32.0

    def __post_init__(self) -> None:
        """Ranges of the [graph] and [metrics] values (types are checked by `load_graph`)."""
        for key, low, high in (("checkpoint_s", 0.01, 3600.0), ("heartbeat_s", 0.01, 60.0),
                               ("hang_s", 0.02, 3600.0), ("max_message_mb", 0.001, 4096.0),
                               ("replay_s", 0.0, 3600.0), ("replay_mb", 0.0, 4096.0)):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"[graph] {key} must be in [{low}, {high}], got {value}")
        if self.hang_s < 2 * self.heartbeat_s:
            raise ConfigError(f"[graph] hang_s ({self.hang_s} s) must be at least 2 heartbeats (heartbeat_s = "
                              f"{self.heartbeat_s} s): one late beat is no hang")
        for key, low, high in (("hwm", 1, 10_000_000), ("max_streams", 1, 100_000)):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"[graph] {key} must be an integer in [{low}, {high}], got {value}")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"[metrics] port must be in 0..65535 (0 = any free port), got {self.metrics_port}")

    def node(self, name: str) -> NodeEntry:
        return next(n for n in self.nodes if n.name == name)

    def subscribers(self, name: str) -> list[str]:
        return [n.name for n in self.nodes if name in n.inputs]


def _table(raw: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(keys)}")
    return raw


def _typed(table: dict[str, Any], where: str, types: dict[str, type]) -> dict[str, Any]:
    """The keys of `table` that `types` names, checked (an int is accepted for a float; TOML true is no number)."""
    out = {}
    for key, kind in types.items():
        if key not in table:
            continue
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool) \
                or (kind is float and not math.isfinite(value)):
            expected = {float: "a number", bool: "true or false"}.get(kind, f"a {kind.__name__}")
            raise ConfigError(f"{where} {key} must be {expected}, got {value!r}")
        out[key] = value
    return out


def load_graph(path: Path) -> Graph:
    """Parse and check a graph TOML: names, kinds, inputs, node configs (errors name the node and key)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"graph file {path} not found; see configs/demo.toml for an example") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"graph file {path} is not valid TOML: {exc}") from None
    return graph_from_table(raw, Path(path))


def graph_from_table(raw: dict[str, Any], path: Path) -> Graph:
    """A checked Graph from a parsed graph TOML (`path` names it in errors and gives the default name)."""
    _table(raw, str(path), {"graph", "metrics", "nodes", "sinks", "curve"})
    head = _table(raw.get("graph", {}), "[graph]", _GRAPH_KEYS)
    met = _table(raw.get("metrics", {}), "[metrics]", {"host", "port"})
    for key in ("nodes", "sinks"):
        if not isinstance(raw.get(key, []), list):
            raise ConfigError(f"{path}: {key} must be an array of tables ([[{key}]] blocks), got {raw[key]!r}")
    entries = []
    for i, node in enumerate(raw.get("nodes", [])):
        node = _table(node, f"[[nodes]] #{i + 1}", _NODE_KEYS)
        if not node.get("name") or not node.get("kind"):
            raise ConfigError(f"[[nodes]] #{i + 1} needs a name and a kind")
        node = {**node, **_typed(node, f"[[nodes]] {node['name']!r}", {"name": str, "kind": str, "config": dict,
                                                                      "inputs": list, "endpoint": str})}
        if not all(isinstance(i, str) for i in node.get("inputs", [])):
            raise ConfigError(f"[[nodes]] {node['name']!r}: inputs must be node names or endpoints (strings)")
        entries.append(NodeEntry(node["name"], node["kind"], dict(node.get("config", {})),
                                 tuple(node.get("inputs", ())), node.get("endpoint", "")))
    if raw.get("sinks"):
        entries.append(NodeEntry(SINKS_NODE, "stream.sinks.node:SinksNode", {"sinks": list(raw["sinks"])},
                                 tuple(e.name for e in entries)))
    head = _typed(head, "[graph]", {"name": str, "checkpoint_s": float, "heartbeat_s": float, "hang_s": float,
                                    "hwm": int,
                                    "max_streams": int, "max_message_mb": float, "plaintext_tcp": bool,
                                    "replay_s": float, "replay_mb": float})
    met = _typed(met, "[metrics]", {"host": str, "port": int})
    graph = Graph(
        name=head.pop("name", Path(path).stem), nodes=tuple(entries),
        metrics_host=met.get("host", "127.0.0.1"), metrics_port=met.get("port", 9464),
        curve=CurveKeys.load(raw["curve"]) if "curve" in raw else None, **head,
    )
    check(graph)
    return graph


def check(graph: Graph) -> None:
    """Unique names, known inputs, no cycles, every node's config valid."""
    names = [n.name for n in graph.nodes]
    if len(set(names)) != len(names) or not names:
        raise ConfigError(f"graph {graph.name!r}: node names must be unique and non-empty, got {names}")
    for node in graph.nodes:
        if not valid_name(node.name):
            raise ConfigError(f"node name {node.name!r} must be {NAME_RULE}")
        if node.endpoint and not _ENDPOINT.fullmatch(node.endpoint):
            raise ConfigError(f"node {node.name!r}: endpoint {node.endpoint!r} must be ipc://PATH or tcp://HOST:PORT")
        for upstream in node.inputs:
            if "://" in upstream and not _ENDPOINT.fullmatch(upstream):
                raise ConfigError(f"node {node.name!r}: input {upstream!r} must be ipc://PATH or tcp://HOST:PORT")
            if upstream not in names and "://" not in upstream:
                raise ConfigError(f"node {node.name!r}: input {upstream!r} is neither a node ({names}) nor an endpoint")
        cls = resolve(node.kind)
        if issubclass(cls, Source) == bool(node.inputs):
            raise ConfigError(f"node {node.name!r} ({node.kind}): a source takes no inputs, any other node needs "
                              f"inputs = [upstream names]")
        cls.from_table(node.config, node.name)
    _check_tcp(graph)
    _order(graph)


def _check_tcp(graph: Graph) -> None:
    """No tcp:// beyond loopback in the clear unless `plaintext_tcp`; with CURVE, a key for every tcp:// input."""
    for node in graph.nodes:
        sinks = node.config.get("sinks", ()) if node.name == SINKS_NODE else ()
        sink_endpoints = [sink.get("endpoint", "") for sink in sinks if isinstance(sink, dict)]
        for endpoint in (node.endpoint, *node.inputs, *sink_endpoints):
            if not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
                continue
            curved = graph.curve is not None and endpoint not in sink_endpoints
            if not (curved or graph.plaintext_tcp or is_loopback(endpoint)):
                raise ConfigError(
                    f"node {node.name!r}: {endpoint} is reachable from other hosts, unencrypted; add a [curve] table "
                    "(keys from `stream keys`), or set [graph] plaintext_tcp = true on a trusted network only")
            if curved and endpoint in node.inputs and endpoint not in graph.curve.servers:
                raise ConfigError(f"node {node.name!r}: input {endpoint} has no publisher key; add it to [curve] "
                                  f'servers: {{ "{endpoint}" = "PUBLISHER.key" }}')


def _order(graph: Graph) -> list[str]:
    """Topological order (sources first); ConfigError on a cycle."""
    done: list[str] = []
    pending = {n.name: {i for i in n.inputs if "://" not in i} for n in graph.nodes}
    while pending:
        ready = [name for name, ins in pending.items() if ins <= set(done)]
        if not ready:
            raise ConfigError(f"graph {graph.name!r} has a cycle among {sorted(pending)}")
        done.extend(ready)
        for name in ready:
            del pending[name]
    return done


def with_source(graph: Graph, source: str) -> Graph:
    """Point every capture node at `source`: ws://HOST:PORT (serve a WebSocket input there), a stream URL for
    ffmpeg (rtsp://, http://, ...), an existing file, else a device index or name."""
    if source.startswith("ws://"):
        change = {"source": "websocket", "listen": source.removeprefix("ws://").partition("/")[0]}
    elif "://" in source:
        change = {"source": "url", "url": source}
    elif Path(source).is_file():
        change = {"source": "file", "path": str(Path(source).resolve())}
    elif "/" in source or Path(source).suffix.lower() in AUDIO_SUFFIXES:
        raise ConfigError(f"--source {source}: no such file; give an existing audio file, an input device "
                          "index or name from `stream devices`, ws://127.0.0.1:PORT or a stream URL")
    else:
        change = {"source": "device", "device": int(source) if source.isdigit() else source}
    nodes = tuple(replace(n, config={**n.config, **change}) if n.kind == "capture" else n for n in graph.nodes)
    if nodes == graph.nodes:
        raise ConfigError(f"graph {graph.name!r} has no capture node to take --source")
    graph = replace(graph, nodes=nodes)
    check(graph)
    return graph


class Supervisor:
    """Starts, watches and stops the node processes of one graph run."""

    def __init__(self, graph: Graph, run_dir: Path | None = None, grace_s: float = 5.0,
                 health: tuple[str, int] | None = None) -> None:
        self.graph = graph
        self.health = health  # (host, port) to serve /livez and /readyz on (stream.health), or None
        self.health_port = 0
        self.run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix=f"stream-{graph.name}-"))
        self._own_dir = run_dir is None  # a temp folder we made is removed at the end; a given one is kept
        self.grace_s = grace_s
        self.restarts: dict[str, int] = {n.name: 0 for n in graph.nodes}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.beats: dict[str, float] = {}  # when each node's last heartbeat arrived (monotonic s)
        self.last_beat: dict[str, dict[str, Any]] = {}
        self.states: dict[str, str] = {}
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()  # set once every node reported "ready" (start-up is over)
        self.metrics_port = 0
        self.bad_beats = 0  # malformed messages on the control socket
        self._spare: asyncio.Task[asyncio.subprocess.Process] | None = None

    def endpoint(self, node: NodeEntry) -> tuple[str, str]:
        """(bind address, connect address) of a node's output."""
        if not node.endpoint:
            address = f"ipc://{self.run_dir / (node.name + '.sock')}"
            return address, address
        return node.endpoint, node.endpoint.replace("0.0.0.0", "127.0.0.1").replace("*", "127.0.0.1")

    def spec(self, node: NodeEntry) -> NodeSpec:
        inputs = {u: u if "://" in u else self.endpoint(self.graph.node(u))[1] for u in node.inputs}
        return NodeSpec(
            name=node.name, kind=node.kind, config=node.config, endpoint=self.endpoint(node)[0], inputs=inputs,
            subscribers=self.graph.subscribers(node.name), control=f"ipc://{self.run_dir / 'control.sock'}",
            state_path=str(self.run_dir / "state" / f"{node.name}.msgpack"), hwm=self.graph.hwm,
            heartbeat_s=self.graph.heartbeat_s, checkpoint_s=self.graph.checkpoint_s, curve=self._curve(node),
            max_streams=self.graph.max_streams, max_message_bytes=round(self.graph.max_message_mb * 2**20),
            replay_s=self.graph.replay_s, replay_bytes=round(self.graph.replay_mb * 2**20),
        )

    def _curve(self, node: NodeEntry) -> dict[str, Any] | None:
        """The node's keys; an input from a tcp:// node of this graph is served with this graph's own key."""
        if self.graph.curve is None:
            return None
        own = {self.endpoint(self.graph.node(u))[1]: self.graph.curve.public
               for u in node.inputs if "://" not in u and self.graph.node(u).endpoint}
        return replace(self.graph.curve, servers={**self.graph.curve.servers, **own}).to_dict()

    async def run(self, duration_s: float | None = None) -> int:
        """Run until every node has finished (end of stream) or a stop; 0 if all ended cleanly."""
        for folder in ("state", "metrics"):
            (self.run_dir / folder).mkdir(parents=True, exist_ok=True)
        try:
            server, _ = metrics.serve(self.run_dir / "metrics", self.graph.metrics_host, self.graph.metrics_port,
                                      lambda: self.restarts, lambda: self.bad_beats)
        except ConfigError:
            self._remove_run_dir()
            raise
        self.metrics_port = server.server_port
        log.info("graph %s: run folder %s, metrics on http://%s:%d/metrics", self.graph.name, self.run_dir,
                 self.graph.metrics_host, self.metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        ctx = zmq.asyncio.Context()
        control = ctx.socket(zmq.PULL)
        control.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_BYTES)
        control.bind(f"ipc://{self.run_dir / 'control.sock'}")
        helpers = [asyncio.ensure_future(self._listen(control)), asyncio.ensure_future(self._stop_when_asked())]
        health_server = None
        if self.health is not None:
            health = Health(self._node_health)
            health_server = serve_health(health, *self.health)
            self.health_port = health_server.server_port
            helpers.append(asyncio.ensure_future(health.beat()))
        if duration_s is not None:
            helpers.append(asyncio.ensure_future(self._stop_after(duration_s)))
        try:
            codes = await asyncio.gather(*(self._supervise(n) for n in self.graph.nodes))
        finally:
            for task in helpers:
                task.cancel()
            if self._spare is not None:
                spare = await self._spare
                spare.stdin.close()  # no spec: it exits
                await spare.wait()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            control.close()
            ctx.term()
            server.shutdown()
            server.server_close()
            if health_server is not None:
                health_server.shutdown()
                health_server.server_close()
            self._remove_run_dir()
        return 0 if all(code == 0 for code in codes) else 1

    def _remove_run_dir(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _node_health(self) -> dict[str, dict[str, Any]]:
        """Per node: its state as its heartbeats tell ("dead" between a crash and its restart), its restarts."""
        return {name: {"state": self.states.get(name, "starting") if proc.returncode is None else "dead",
                       "restarts": self.restarts[name]} for name, proc in list(self.procs.items())}

    async def _standby(self) -> asyncio.subprocess.Process:
        """A node process with its imports done, waiting for its spec on stdin (see `stream.runner.main`).

        Own session: Ctrl-C reaches only the supervisor, which stops the graph in order (sources first)."""
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(self.run_dir / "metrics"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        kinds = sorted({n.kind for n in self.graph.nodes})
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "stream.runner", *kinds, env=env,
                                                    stdin=asyncio.subprocess.PIPE, start_new_session=True)

    async def _spawn(self, node: NodeEntry) -> asyncio.subprocess.Process:
        """Hand `node` to the standby process and start the next standby."""
        spare, self._spare = self._spare, asyncio.ensure_future(self._standby())
        proc = await (spare or self._standby())
        proc.stdin.write(self.spec(node).to_json().encode() + b"\n")
        proc.stdin.close()
        (log.warning if self.restarts[node.name] else log.info)("node %s: pid %d", node.name, proc.pid)
        self.procs[node.name] = proc
        self.beats[node.name] = time.monotonic()
        self.states[node.name] = "starting"
        return proc

    async def _supervise(self, node: NodeEntry) -> int:
        """Keep one node running: restart on a crash with back-off; return its final exit code."""
        failures = 0
        while True:
            started = time.monotonic()
            proc = await self._spawn(node)
            watchdog = asyncio.ensure_future(self._watch(node.name, proc))
            code = await proc.wait()
            watchdog.cancel()
            metrics.mark_dead(proc.pid, self.run_dir / "metrics")
            if code == 0 or self.stopping.is_set():
                if code:
                    log.warning("node %s exited with %d while the graph stopped", node.name, code)
                return code
            if code == EXIT_FATAL:
                log.error("node %s cannot run (its error is above); stopping the graph", node.name)
                self.stopping.set()
                return code
            failures = 1 if time.monotonic() - started > 10.0 else failures + 1
            if failures == STATE_SUSPECT_AFTER:
                self._set_state_aside(node.name)
            self.restarts[node.name] += 1
            delay = 0.0 if failures == 1 else min(5.0, 0.1 * 2 ** (failures - 2))
            log.warning("node %s exited with %d; restart #%d in %.1f s", node.name, code,
                        self.restarts[node.name], delay)
            await asyncio.sleep(delay)
            if self.stopping.is_set():
                return code

    def _set_state_aside(self, name: str) -> None:
        """A node that keeps crashing right after its start may be crashing on its checkpoint (state the node
        accepted but cannot run with): move it aside as `<node>.corrupt`, so the next start is fresh."""
        state = self.run_dir / "state" / f"{name}.msgpack"
        if state.is_file():
            state.replace(state.with_suffix(".corrupt"))
            log.warning("node %s crashed %d times in a row after its start; its checkpoint is set aside (%s) and it "
                        "starts fresh", name, STATE_SUSPECT_AFTER, state.with_suffix(".corrupt"))

    async def _watch(self, name: str, proc: asyncio.subprocess.Process) -> None:
        """Kill a hung node (`_supervise` then restarts it): silent for `hang_s` (frozen), or its event loop stuck
        for longer than `hang_limit_s` (its beats come from a thread, see `stream.pulse`)."""
        silence_s = self.graph.hang_s
        woke = time.monotonic()
        while True:
            await asyncio.sleep(self.graph.heartbeat_s)
            late_s, woke = time.monotonic() - woke - self.graph.heartbeat_s, time.monotonic()
            if self.states.get(name) != "ready" or late_s > self.graph.heartbeat_s:
                continue  # this supervisor was itself starved of CPU: beats may be waiting unread on the socket
            beat = self.last_beat.get(name, {})
            limit_s = hang_limit_s(self.graph.hang_s, beat.get("step_s", 0.0))
            if time.monotonic() - self.beats[name] > silence_s:
                reason = f"sent no heartbeat for {silence_s:.1f} s"
            elif beat.get("stalled_s", 0.0) > limit_s:
                reason = (f"is stuck in one step for {beat['stalled_s']:.1f} s (limit {limit_s:.1f} s: its slowest "
                          f"recent step took {beat.get('step_s', 0.0):.2f} s)")
            else:
                continue
            log.warning("node %s %s: killing it", name, reason)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return

    async def _listen(self, control: zmq.asyncio.Socket) -> None:
        """Heartbeats in; anything else on the socket is counted (`stream_control_malformed_total`) and skipped."""
        while True:
            beat = parse_beat(await control.recv())
            if beat is None:
                self.bad_beats += 1
                if self.bad_beats == 1:
                    log.warning("malformed message on the control socket; counting, ignoring")
                continue
            proc = self.procs.get(beat["node"])
            if proc is not None and proc.pid == beat["pid"]:
                self.beats[beat["node"]] = time.monotonic()
                self.last_beat[beat["node"]] = beat
                self.states[beat["node"]] = beat["state"]
                if not self.ready.is_set() and all(self.states.get(n.name) in ("ready", "done")
                                                   for n in self.graph.nodes):
                    self.ready.set()

    async def _stop_after(self, seconds: float) -> None:
        """Stop `seconds` after the graph is ready: start-up (models loading) does not count, unless it takes
        longer than `START_S` (a node that keeps crashing never gets ready)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ready.wait(), START_S)
        await asyncio.sleep(seconds)
        self.stopping.set()

    async def _stop_when_asked(self) -> None:
        """Stop in graph order so nothing accepted is lost: SIGTERM the sources; every other node ends by itself
        once its upstreams' end-of-stream arrived, or gets SIGTERM (drain and exit) 1 s after they exited; any
        node left after `grace_s` more is killed."""
        await self.stopping.wait()
        deadline = time.monotonic() + self.grace_s
        for name in _order(self.graph):
            upstreams = [u for u in self.graph.node(name).inputs if u in self.procs]
            if upstreams:
                await self._exited(upstreams, deadline - time.monotonic())
                await self._exited([name], 1.0)
            self._signal(name, signal.SIGTERM)
        if not await self._exited(list(self.procs), self.grace_s):
            for name in self.procs:
                self._signal(name, signal.SIGKILL)

    def _signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    async def _exited(self, names: list[str], timeout_s: float) -> bool:
        """Wait up to `timeout_s` for these nodes' current processes to exit."""
        deadline = time.monotonic() + timeout_s
        while any(self.procs[n].returncode is None for n in names):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


def hang_limit_s(hang_s: float, step_s: float) -> float:
    """How long a node's event loop may stay in one step before it counts as hung: `hang_s`, or `HANG_STEPS`
    times its slowest recent step when that is longer (a model node on a loaded machine)."""
    return max(hang_s, HANG_STEPS * step_s)


def parse_beat(raw: bytes) -> dict[str, Any] | None:
    """A heartbeat {node, pid, state, t, stalled_s, step_s} from the control socket (see `stream.pulse`), or None
    when it is not one."""
    try:
        beat = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError):
        return None
    if not (isinstance(beat, dict) and isinstance(beat.get("node"), str) and isinstance(beat.get("pid"), int)
            and beat.get("state") in ("starting", "ready", "done")):
        return None
    for key in ("stalled_s", "step_s"):
        value = beat.setdefault(key, 0.0)
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1e9:
            return None
    return beat
