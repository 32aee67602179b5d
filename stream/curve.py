"""ZeroMQ CURVE between hosts: key files, encrypted and authenticated `tcp://` endpoints, refused peers counted.

Why: nodes on other hosts join over `tcp://`, and audio or speaker events must not be readable, or injectable,
by anyone on the network. With a `[curve]` table in the graph every `tcp://` output is a CURVE server that only
accepts client keys found in the `authorized` folder, and every `tcp://` input checks its publisher's public key
(`servers`). `ipc://` stays as it is: a socket file in a private run folder.

    [curve]
    secret_key = "keys/host-b.key_secret"   # this graph's keypair (`stream keys host-b`): server and client key
    authorized = "keys/authorized"          # public keys (*.key) allowed to subscribe to its tcp:// outputs
    servers = { "tcp://10.0.0.1:5600" = "keys/host-a.key" }   # the publisher's public key per tcp:// input

Key files are ZeroMQ certificates (`zmq.auth.load_certificate` reads them). A secret key file readable by group
or others is refused: copy keys with their mode (`install -m 600`). Paths are relative to the working folder.

Refused peers: a ZAP handler in each node process authorizes client keys; a monitor on the output socket counts
every failed handshake in `stream_auth_refused_total{node,reason}` (`key`: a client key not authorized;
`handshake`: a peer without CURVE or with the wrong server key).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth
import zmq.utils.z85
from zmq.utils.monitor import parse_monitor_message

from stream import metrics
from stream.errors import ConfigError

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # fixed by the ZAP protocol (RFC 27)
ZAP_DOMAIN = b"stream"
_REFUSALS = {zmq.EVENT_HANDSHAKE_FAILED_AUTH: "key", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake",
             zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake"}


def write_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """`<directory>/<name>.key` (public, 0644) and `<name>.key_secret` (0600, created so: never readable by others
    in between); refuses to overwrite a key."""
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise ConfigError(f"{path} exists; remove it first or choose another name (keys are never overwritten)")
    old = os.umask(0o177)
    try:
        zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(old)
    public.chmod(0o644)
    return public, secret


def _read_key(path: Path, secret: bool) -> tuple[str, str | None]:
    """(public, secret) z85 strings of a certificate file, with a ConfigError saying how to fix a bad one."""
    if not path.is_file():
        raise ConfigError(f"key file {path} not found; make one with `stream keys NAME --dir {path.parent}`")
    if secret:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"secret key file {path} is readable by group or others (mode {mode:04o}); "
                              f"run `chmod 600 {path}`")
    try:
        public, private = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"key file {path} is not a ZeroMQ certificate ({exc}); make one with `stream keys`") from None
    keys = [public] + ([private] if secret else [])
    if secret and private is None:
        raise ConfigError(f"{path} holds no secret key: give the .key_secret file of `stream keys`")
    for key in keys:
        if len(key) != 40:
            raise ConfigError(f"key file {path} holds a malformed key (want 40 Z85 characters); make one with "
                              "`stream keys`")
    return public.decode(), private.decode() if secret else None


@dataclass(frozen=True)
class CurveKeys:
    """What a node process needs: its own keypair, the client keys it accepts, its publishers' public keys."""

    public: str
    secret: str
    authorized: tuple[str, ...] = ()
    servers: dict[str, str] = field(default_factory=dict)  # tcp:// input endpoint -> its publisher's public key

    @classmethod
    def load(cls, table: dict[str, Any]) -> CurveKeys:
        """From a graph's `[curve]` table (key files read and checked now, not in the node processes)."""
        unknown = sorted(set(table) - {"secret_key", "authorized", "servers"})
        if unknown:
            raise ConfigError(f"[curve]: unknown key(s) {unknown}; valid keys: ['authorized', 'secret_key', 'servers']")
        if not isinstance(table.get("secret_key"), str) or not isinstance(table.get("authorized"), str):
            raise ConfigError("[curve] needs secret_key (a .key_secret file) and authorized (a folder of .key files)")
        public, secret = _read_key(Path(table["secret_key"]), secret=True)
        folder = Path(table["authorized"])
        if not folder.is_dir():
            raise ConfigError(f"[curve] authorized folder {folder} not found; put the subscribers' .key files there")
        authorized = tuple(sorted(_read_key(p, secret=False)[0] for p in folder.glob("*.key")))
        servers = table.get("servers", {})
        if not isinstance(servers, dict):
            raise ConfigError('[curve] servers must be a table: { "tcp://HOST:PORT" = "PUBLISHER.key" }')
        return cls(public, secret, authorized,
                   {endpoint: _read_key(Path(path), secret=False)[0] for endpoint, path in servers.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"public": self.public, "secret": self.secret, "authorized": list(self.authorized),
                "servers": dict(self.servers)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CurveKeys:
        return cls(raw["public"], raw["secret"], tuple(raw["authorized"]), dict(raw["servers"]))

    def serve(self, sock: zmq.Socket) -> None:
        """Make a socket about to bind a CURVE server (before `bind`)."""
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt_string(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt_string(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)

    def connect_to(self, sock: zmq.Socket, endpoint: str) -> None:
        """Make a socket about to connect to `endpoint` a CURVE client that checks the publisher's key."""
        sock.setsockopt_string(zmq.CURVE_SERVERKEY, self.servers[endpoint])
        sock.setsockopt_string(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt_string(zmq.CURVE_SECRETKEY, self.secret)


def is_loopback(endpoint: str) -> bool:
    """True for tcp://127.x / [::1] / localhost (reachable from this host only); anything else may be reached
    from other hosts (0.0.0.0, *, a host name, an interface address)."""
    host = endpoint.removeprefix("tcp://").rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ZapHandler:
    """ZAP (RFC 27) in a node process: accepts a CURVE client whose public key is authorized, refuses the rest.

    One per ZeroMQ context, started before the first CURVE socket binds (ZeroMQ refuses every CURVE client of a
    ZAP_DOMAIN socket while no handler listens)."""

    def __init__(self, ctx: zmq.asyncio.Context, authorized: tuple[str, ...]) -> None:
        self.authorized = {zmq.utils.z85.decode(key) for key in authorized}
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)
        self._logged: set[bytes] = set()
        self._task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        while True:
            request = await self.sock.recv_multipart()
            version, request_id, _domain, address, _identity, mechanism, *credentials = request
            ok = mechanism == b"CURVE" and bool(credentials) and credentials[0] in self.authorized
            if not ok and address not in self._logged:
                self._logged.add(address)
                log.warning("refused a %s peer from %s: its key is not in [curve] authorized",
                            mechanism.decode(errors="replace"), address.decode(errors="replace"))
            await self.sock.send_multipart([version, request_id, b"200" if ok else b"400",
                                            b"OK" if ok else b"client key not authorized", b"", b""])

    def close(self) -> None:
        self._task.cancel()
        self.sock.close()


class RefusalCounter:
    """Counts failed handshakes on a CURVE server socket in `stream_auth_refused_total{node,reason}`."""

    def __init__(self, sock: zmq.asyncio.Socket, node: str) -> None:
        self.monitor = sock.get_monitor_socket(sum(_REFUSALS))
        self.counters = {reason: metrics.AUTH_REFUSED.labels(node, reason) for reason in set(_REFUSALS.values())}
        self._task = asyncio.ensure_future(self._count())

    async def _count(self) -> None:
        while True:
            event = parse_monitor_message(await self.monitor.recv_multipart())["event"]
            if event in _REFUSALS:
                self.counters[_REFUSALS[event]].inc()

    def close(self) -> None:
        self._task.cancel()
        self.monitor.close()
