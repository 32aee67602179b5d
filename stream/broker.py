"""An embedded MQTT broker: Debian's mosquitto on a free localhost port, for the demo graph and the tests.

When a graph has an MQTT sink but no broker URL, it starts one of these so events have somewhere to go; tests
start their own to exercise restarts, passwords and last wills against the real thing. The broker lives in a
private temporary folder (generated config, password file, persistence) that goes away on `stop()`.

    with Broker() as broker:          # mosquitto on 127.0.0.1:<free port>
        url = broker.url              # "mqtt://127.0.0.1:41873"
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from stream.errors import StreamError

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


class BrokerError(StreamError):
    """An MQTT broker could not be started, reached, or refused us; the message names the broker and the cause."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it; a tiny race remains until we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Broker:
    """One mosquitto process on `host:port`; `stop()` then `start()` restarts it on the same port.

    users: username -> password; when given, anonymous clients are refused.
    persistence: keep retained messages and persistent sessions across restarts (saved on a clean stop).
    tls: PEM files (CA, server certificate, server key): the listener speaks TLS only (`mqtts://`).
    require_certificate: with tls, clients must present a certificate signed by that CA (mutual TLS).
    die_with_parent: the kernel stops mosquitto when the thread that started it ends (a killed sinks node
        leaves no orphan broker); start it from a thread that lives as long as the process.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        persistence: bool = False,
        tls: tuple[Path, Path, Path] | None = None,
        require_certificate: bool = False,
        die_with_parent: bool = False,
    ) -> None:
        if not Path(MOSQUITTO).exists():
            raise BrokerError(f"{MOSQUITTO} not found: install Debian's mosquitto package (apt-get install mosquitto)")
        self.host = host
        self.port = port or free_port(host)
        self.users = dict(users or {})
        self.persistence = persistence
        self.tls = tls
        self.require_certificate = require_certificate
        self.die_with_parent = die_with_parent
        self._dir = Path(tempfile.mkdtemp(prefix="stream-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "set_tcp_nodelay true",  # events are small and latency matters: no Nagle delay towards subscribers
            "max_queued_messages 10000",  # per slow or offline QoS-1 subscriber before mosquitto drops (default 1000)
            "user root",  # we run as whoever started us; never drop to the `mosquitto` user who can't read our folder
        ]
        if self.users:
            passwd = self._dir / "passwd"
            passwd.touch(mode=0o600)
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True, capture_output=True)
            lines.append(f"password_file {passwd}")
        if self.tls:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}",
                      f"require_certificate {'true' if self.require_certificate else 'false'}"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self._dir}/"]
        (self._dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 5.0) -> None:
        """Start mosquitto and wait until it accepts TCP connections (BrokerError with its log if it does not)."""
        if self.running:
            return
        log = open(self._dir / "mosquitto.log", "ab")  # noqa: SIM115 - the child holds it; closed in stop()
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self._dir / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_terminate_with_parent if self.die_with_parent else None,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if _accepts(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not start on {self.url}: {self.log()[-2000:] or 'no output'}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop mosquitto cleanly (SIGTERM: it saves persistence), killing it if it does not exit in time."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def log(self) -> str:
        """What mosquitto wrote so far (errors and warnings)."""
        path = self._dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Stop and remove the private folder."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
