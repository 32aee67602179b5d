"""A node process fed by the test over real ZeroMQ: the test is its upstream (XPUB) and its downstream (SUB)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from stream.paths import REPO_ROOT
from stream.runner import NodeSpec
from stream.transport import READY


@dataclass
class NodeUnderTest:
    proc: asyncio.subprocess.Process
    upstream: zmq.asyncio.Socket
    out: zmq.asyncio.Socket
    metrics_dir: Path
    subscriptions: list[bytes]  # the subscription events the node sent up to its ready token (verbose XPUB)

    async def send(self, frames: list[bytes]) -> None:
        await self.upstream.send_multipart(frames)

    async def events(self, n: int, timeout_s: float = 20.0) -> list[dict]:
        """The meta of the next `n` event messages the node publishes."""
        events = []
        while len(events) < n:
            frames = await asyncio.wait_for(self.out.recv_multipart(), timeout_s)
            if frames[0].startswith(b"event/"):
                events.append(msgpack.unpackb(frames[1])["meta"])
        return events


@pytest.fixture
async def node_process(tmp_path) -> AsyncIterator:
    """`await node_process(kind, config, **spec_fields)` starts a node whose upstream and downstream is the test."""
    ctx = zmq.asyncio.Context()
    procs, socks = [], []

    async def start(kind: str, config: dict | None = None, **spec: object) -> NodeUnderTest:
        (tmp_path / "metrics").mkdir(exist_ok=True)
        upstream = ctx.socket(zmq.XPUB)
        upstream.setsockopt(zmq.XPUB_VERBOSE, 1)
        upstream.setsockopt(zmq.SNDHWM, 100_000)
        upstream.bind(f"ipc://{tmp_path / 'up.sock'}")
        out = ctx.socket(zmq.SUB)
        out.setsockopt(zmq.SUBSCRIBE, b"")
        out.setsockopt(zmq.SUBSCRIBE, READY + b"probe")
        out.connect(f"ipc://{tmp_path / 'node.sock'}")
        socks.extend((upstream, out))
        node_spec = NodeSpec(name="node", kind=kind, config=config or {}, endpoint=f"ipc://{tmp_path / 'node.sock'}",
                             inputs={"capture": f"ipc://{tmp_path / 'up.sock'}"}, subscribers=["probe"], **spec)
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), PYTHONPATH=str(REPO_ROOT))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "stream.runner", env=env,
                                                    stdin=asyncio.subprocess.PIPE)
        procs.append(proc)
        proc.stdin.write(node_spec.to_json().encode() + b"\n")
        proc.stdin.close()
        subscriptions = []
        while subscriptions[-1:] != [b"\x01" + READY + b"node"]:
            subscriptions.append(await asyncio.wait_for(upstream.recv(), 30))
        # subscribed: nothing sent from now on is lost to a slow join
        return NodeUnderTest(proc, upstream, out, tmp_path / "metrics", subscriptions)

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    for sock in socks:  # closed here: ctx.destroy alone hung once a node subscribed to every topic (SlowStart)
        sock.close(linger=0)
    ctx.destroy(linger=0)
