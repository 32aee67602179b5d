"""A node's heartbeat, sent from its own thread so that a long model call is not taken for a hang.

Before, the event loop sent the heartbeats: a JAX call of 5 s (one batched segmentation step on a loaded machine)
silenced them and the supervisor killed a node that was working. Now a thread beats every `heartbeat_s` whatever
the loop does, and tells the supervisor two things it needs to judge a hang itself (`stream.graph.hang_limit_s`):

- `stalled_s`: how long the event loop has not turned (a ticker task on the loop stamps the time);
- `step_s`: the node's slowest recent `process` call, so the limit scales with the node's own step time.

A frozen process (SIGSTOP, or a native call holding the GIL) sends nothing at all: the supervisor's silence
limit still catches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable

import msgpack
import zmq

RECENT_STEPS = 200  # process() calls whose slowest one is `step_s`


class Pulse:
    """Beats for one node process on `control` (the supervisor's PULL socket) until `close()`."""

    def __init__(self, ctx: zmq.Context, control: str, node: str, period_s: float,
                 state: Callable[[], str], on_orphaned: Callable[[], None]) -> None:
        self.node, self.period_s = node, period_s
        self._state, self._on_orphaned = state, on_orphaned
        self._ctx = zmq.Context.shadow(ctx.underlying)  # sockets of one ZeroMQ context, used from this thread
        self._control = control
        self._turned = time.monotonic()
        self._steps: deque[float] = deque(maxlen=RECENT_STEPS)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pulse-{node}", daemon=True)

    def start(self) -> None:
        self._turned = time.monotonic()
        self._thread.start()

    def step(self, seconds: float) -> None:
        """Record one process() call's duration (called on the loop)."""
        self._steps.append(seconds)

    async def tick(self) -> None:
        """Runs on the event loop: stamps the time each turn, so a stuck loop shows as `stalled_s`."""
        while True:
            self._turned = time.monotonic()
            await asyncio.sleep(self.period_s / 4)

    def beat(self) -> dict[str, object]:
        return {"node": self.node, "pid": os.getpid(), "state": self._state(), "t": time.time(),
                "stalled_s": max(0.0, time.monotonic() - self._turned - self.period_s / 4),
                "step_s": max(self._steps, default=0.0)}

    def close(self) -> None:
        """Send a last beat (the final state) and stop the thread."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        sock = self._ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, 10)
        sock.setsockopt(zmq.LINGER, 500)
        sock.connect(self._control)
        parent = os.getppid()
        try:
            while True:
                self._send(sock)
                if self._done.wait(self.period_s):
                    self._send(sock)  # the final state ("done")
                    return
                if os.getppid() != parent:  # nodes run in their own session: nothing else would end them
                    self._on_orphaned()
                    parent = os.getppid()
        finally:
            sock.close()

    def _send(self, sock: zmq.Socket) -> None:
        with contextlib.suppress(zmq.Again):  # never block: a supervisor that is not reading is not our problem
            sock.send(msgpack.packb(self.beat()), zmq.NOBLOCK)
