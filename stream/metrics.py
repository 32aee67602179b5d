"""Prometheus metrics: the standard names (../DESIGN.md) and one endpoint for the whole graph.

Why multiprocess mode: every node is its own OS process, yet users scrape one endpoint. The supervisor gives each
node process `PROMETHEUS_MULTIPROC_DIR=<run dir>/metrics`; prometheus_client then keeps each metric in a memory-
mapped file per process, and the supervisor's endpoint (`serve`) sums them. Counters and histograms of a crashed
process stay in its files, so counts survive restarts; gauges are `livemax` and vanish with their process (the
supervisor calls `mark_dead`). `stream_node_restarts_total` lives in the supervisor and joins the same endpoint.
Without the variable (a node used bare, a test) the metrics live in the process's default registry.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from stream.errors import ConfigError

# 5 ms .. 5 s, dense over 10 ms - 2 s where real-time latencies live.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
PROCESS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

EVENT_LATENCY = Histogram(
    "stream_event_latency_seconds",
    "Capture time of the audio to publish time of the event, seconds.",
    ["node", "event"],
    buckets=LATENCY_BUCKETS,
)
TRANSPORT_LATENCY = Histogram(
    "stream_transport_latency_seconds",
    "Capture time of the audio to receipt of a message by a node, seconds (per receiving node and sender).",
    ["node", "sender"],
    buckets=LATENCY_BUCKETS,
)
PROCESS_SECONDS = Histogram(
    "stream_node_process_seconds", "Time a node spends in process() per message, seconds.", ["node"],
    buckets=PROCESS_BUCKETS,
)
PROCESS_CPU = Counter(
    "stream_node_process_cpu_seconds", "CPU time of the node's process while process() ran, seconds: its rate is the "
    "node's own real-time factor on one stream, untouched by waits for a busy core (the runtime's receiving and "
    "publishing not included).", ["node"],
)
MESSAGES = Counter(
    "stream_messages",
    "Messages received by a node, by result (ok, malformed, dropped, gap, out_of_order, duplicate, rejected, "
    "oversize).",
    ["node", "result"],
)
QUEUE_DEPTH = Gauge(
    "stream_queue_depth", "Messages received but not yet processed by a node.", ["node"], multiprocess_mode="livemax"
)
REALTIME_FACTOR = Gauge(
    "stream_realtime_factor", "Processing time over audio duration, over the last second of audio (<1 keeps up).",
    ["node"],
    multiprocess_mode="livemax",
)
AUTH_REFUSED = Counter(
    "stream_auth_refused", "Peers refused at a node's CURVE tcp:// output: key (client key not authorized), "
    "handshake (no CURVE, or the wrong server key).", ["node", "reason"],
)
CHECKPOINT_CORRUPT = Counter(
    "stream_checkpoint_corrupt", "Node checkpoints found unusable at a start (set aside; the node started fresh).",
    ["node"],
)
SINK_ERRORS = Counter("stream_sink_errors", "Events a sink failed to publish.", ["sink"])
CAPTURE_PROBLEMS = Counter(
    "stream_capture_problems", "Input blocks a capture device spoiled: overflow (device dropped samples), "
    "dropped (the node fell behind), nonfinite (NaN/inf samples, replaced by silence); network sources: "
    "disconnected (the input dropped after sending audio), connect_failed (an ffmpeg start that brought no audio), "
    "rejected (a WebSocket client refused: busy stream, wrong format).", ["node", "problem"],
)
CAPTURE_RECONNECTS = Counter(
    "stream_capture_reconnects", "Times a network source's audio came back after a drop (ffmpeg started again, a "
    "new WebSocket client).", ["node"],
)
CAPTURE_GAP = Counter(
    "stream_capture_gap_seconds", "Audio time a network source was away: the gap in the capture stamps between "
    "the last block before a drop and the first after it, seconds.", ["node"],
)

SED_GATED = Counter(
    "stream_sed_gated_patches", "Sound-event patches that could not raise an alert: silent (below a rule's "
    "gate_dbfs), clipped, nan.", ["node", "reason"],
)


def mark_dead(pid: int, directory: Path) -> None:
    """Drop the live gauges of a node process that exited (its counters and histograms stay)."""
    mark_process_dead(pid, str(directory))


class _Supervisor:
    """Exposes the supervisor's counts: `stream_node_restarts_total{node}`, `stream_control_malformed_total`."""

    def __init__(self, restarts: Callable[[], Mapping[str, int]], malformed: Callable[[], int]) -> None:
        self._restarts, self._malformed = restarts, malformed

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        family = CounterMetricFamily("stream_node_restarts", "Times the supervisor restarted a node.", labels=["node"])
        for node, count in self._restarts().items():
            family.add_metric([node], count)
        yield family
        yield CounterMetricFamily("stream_control_malformed", "Messages on the supervisor's control socket that "
                                  "were not heartbeats (skipped).", value=self._malformed())


class _RunCollector(MultiProcessCollector):
    """The run's per-process files, summed; a read that meets a file half made (a node process starting: created,
    not yet sized, `struct.error`) or half gone (a dead one's gauges being removed) is read again, so a scrape at a
    node's restart does not fail (it did, about once in three reads while files were being created)."""

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        for _ in range(READ_ATTEMPTS - 1):
            try:
                return list(super().collect())
            except (struct.error, RuntimeError, FileNotFoundError):
                time.sleep(0.005)
        return list(super().collect())  # the last attempt's error, if any, is the scrape's


READ_ATTEMPTS = 20  # a file is half made for microseconds


def run_registry(directory: Path) -> CollectorRegistry:
    """A registry that reads the metrics of every node process of a run (its `metrics` folder)."""
    registry = CollectorRegistry()
    _RunCollector(registry, path=str(directory))
    return registry


def serve(directory: Path, host: str, port: int, restarts: Callable[[], Mapping[str, int]],
          malformed: Callable[[], int] = lambda: 0):  # noqa: ANN201
    """Start the graph's endpoint on host:port (port 0 picks a free one); returns (server, thread)."""
    registry = run_registry(directory)
    registry.register(_Supervisor(restarts, malformed))
    try:
        return start_http_server(port, addr=host, registry=registry)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(
            f"cannot serve metrics on {host}:{port} ({reason}); set another [metrics] port (0 = any free one)"
        ) from exc
