"""The supervisor's health over HTTP, for orchestrators (Kubernetes liveness and readiness probes).

    GET /livez    200 while the supervisor's event loop turns (it restarts nodes, so it is what must live);
                  503 when the loop has not turned for `STALL_S` (a wedged supervisor: restart the pod)
    GET /readyz   200 when every node process runs and has reported ready (or has finished its stream);
                  503 while a node starts, restarts or is dead

Both answer JSON: `{"live": bool, "ready": bool, "nodes": {name: {"state", "restarts"}}}`. `stream run --health
HOST:PORT` serves it (in a pod: 0.0.0.0:8080); it is off by default.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stream.errors import ConfigError

STALL_S = 10.0  # s without a turn of the supervisor's loop after which it is not live


class Health:
    """Reads the supervisor's view (node states, restarts, live processes) and the time its loop last turned."""

    def __init__(self, nodes: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.nodes = nodes
        self.tick = time.monotonic()

    async def beat(self) -> None:
        """Runs on the supervisor's loop: proves it turns."""
        while True:
            self.tick = time.monotonic()
            await asyncio.sleep(1.0)

    def report(self) -> dict[str, Any]:
        nodes = self.nodes()
        live = time.monotonic() - self.tick < STALL_S
        ready = live and bool(nodes) and all(n["state"] in ("ready", "done") for n in nodes.values())
        return {"live": live, "ready": ready, "nodes": nodes}


def serve(health: Health, host: str, port: int) -> ThreadingHTTPServer:
    """Serve /livez and /readyz on host:port in a daemon thread (port 0: any free one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            report = health.report()
            key = {"/livez": "live", "/readyz": "ready"}.get(self.path)
            status = 404 if key is None else 200 if report[key] else 503
            body = json.dumps(report).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Probes come every few seconds: no access log."""

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ConfigError(f"cannot serve health on {host}:{port} ({exc.strerror}); give another --health "
                          "HOST:PORT") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
