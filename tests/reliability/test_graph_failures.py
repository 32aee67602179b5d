"""Issue #22, bugs 4 and 7: the supervisor's control socket, the embedded broker, and configuration errors.

A graph must survive garbage on its control socket, leave no orphan mosquitto when its sinks node is killed, and
stop with one clear error (no restart loop, no graph quietly running without a sink) when its configuration cannot
work. Each test failed on main before the fix.
"""

from __future__ import annotations

import asyncio
import socket
import time

import psutil
import pytest
import zmq

from stream.broker import Broker
from stream.errors import ConfigError
from stream.graph import Supervisor, load_graph

SIGNAL = """
[graph]
name = "g"
{graph}
[metrics]
{metrics}
[[nodes]]
name = "capture"
kind = "capture"
config = {{ source = "signal", block_ms = 100.0 }}
{endpoint}
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["capture"]
[[sinks]]
kind = "{sink}"
{sink_config}
"""


def _graph(tmp_path, graph="", metrics="port = 0", endpoint="", sink="console", sink_config="every = 1000"):
    path = tmp_path / "g.toml"
    path.write_text(SIGNAL.format(graph=graph, metrics=metrics, endpoint=endpoint, sink=sink,
                                  sink_config=sink_config))
    return path


@pytest.mark.parametrize("graph, metrics, endpoint", [
    ('hwm = "lots"', "port = 0", ""), ("heartbeat_s = 0", "port = 0", ""), ("", 'port = "abc"', ""),
    ("", "port = 70000", ""), ("", "port = 0", 'endpoint = "garbage"'),
    ("", "port = 0", 'endpoint = "tcp://127.0.0.1:notaport"'), ("hang_s = 0.5", "port = 0", ""),
])
def test_bug7_bad_graph_values_are_one_config_error(tmp_path, graph, metrics, endpoint):
    with pytest.raises(ConfigError, match=r"hwm|heartbeat_s|hang_s|port|endpoint"):
        load_graph(_graph(tmp_path, graph, metrics, endpoint))


async def _run(path, tmp_path, timeout_s: float) -> tuple[int, Supervisor, float]:
    supervisor = Supervisor(load_graph(path), tmp_path / "run")
    start = time.monotonic()
    code = await asyncio.wait_for(supervisor.run(duration_s=timeout_s), timeout_s + 15)
    return code, supervisor, time.monotonic() - start


async def test_bug7_node_port_in_use_stops_the_graph_without_restarts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = _graph(tmp_path, endpoint=f'endpoint = "tcp://127.0.0.1:{port}"')
        code, supervisor, took = await _run(path, tmp_path, 20)
    assert code != 0
    assert sum(supervisor.restarts.values()) == 0
    assert took < 15  # stopped on the error, not at the 20 s duration


async def test_bug7_sink_port_in_use_stops_the_graph(tmp_path):
    ctx = zmq.Context()
    taken = ctx.socket(zmq.PUB)
    port = taken.bind_to_random_port("tcp://127.0.0.1")
    try:
        path = _graph(tmp_path, sink="zmq_pub", sink_config=f'endpoint = "tcp://127.0.0.1:{port}"')
        code, supervisor, took = await _run(path, tmp_path, 20)
    finally:
        ctx.destroy(linger=0)
    assert code != 0 and took < 15
    assert sum(supervisor.restarts.values()) == 0


async def test_bug7_wrong_mqtt_password_stops_the_graph(tmp_path):
    with Broker(users={"stream": "right"}) as broker:
        path = _graph(tmp_path, sink="mqtt",
                      sink_config=f'url = "{broker.url}"\nusername = "stream"\npassword = "wrong"')
        code, _, took = await _run(path, tmp_path, 60)
    assert code != 0 and took < 45  # stopped on the refusal, not at the 60 s duration


async def test_bug4_garbage_on_the_control_socket_is_counted_and_kills_nothing(tmp_path):
    path = _graph(tmp_path, graph="heartbeat_s = 0.2\nhang_s = 2.0")  # hung after 2 s without heartbeats
    supervisor = Supervisor(load_graph(path), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=8))
    while set(supervisor.states.values()) != {"ready"} or len(supervisor.states) < 3:
        await asyncio.sleep(0.1)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"ipc://{tmp_path / 'run' / 'control.sock'}")
    for garbage in (b"\xc1not msgpack", b"\x93\x01\x02\x03", b"\x81\xa4node\x01", b"x" * 100_000):
        push.send(garbage)
    push.close(linger=1000)
    ctx.term()
    assert await asyncio.wait_for(run, 30) == 0
    assert sum(supervisor.restarts.values()) == 0  # heartbeats still heard: no node was killed as hung
    assert supervisor.bad_beats == 3  # the 100 kB frame is refused by the socket itself


async def test_bug4_killed_sinks_node_leaves_no_mosquitto(tmp_path):
    path = _graph(tmp_path, sink="mqtt", sink_config="")
    supervisor = Supervisor(load_graph(path), tmp_path / "run")
    run = asyncio.ensure_future(supervisor.run(duration_s=30))
    while supervisor.states.get("sinks") != "ready":
        await asyncio.sleep(0.1)
    sinks = psutil.Process(supervisor.procs["sinks"].pid)
    (broker,) = [p for p in sinks.children() if p.name() == "mosquitto"]
    sinks.kill()
    await asyncio.sleep(0.5)
    gone, _ = psutil.wait_procs([broker], timeout=5)
    supervisor.stopping.set()
    await asyncio.wait_for(run, 30)
    assert gone, "mosquitto outlived the sinks node that started it"
