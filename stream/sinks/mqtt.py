"""MQTT sink: events as JSON on `stream/<id>/<kind>`, retained states, last will, Home Assistant discovery.

Why a buffer and one sender task: `publish(event)` never waits on the network; it files the event in a bounded
buffer (`mqtt_buffer`) and returns. The sender connects (and reconnects, with backoff up to `reconnect_max_s`),
then delivers the buffer oldest first in windows of `window` messages, removing each window only once the broker
acknowledged it (QoS 1). So a broker restart loses nothing while the buffer holds (`buffer_size` messages; past
it the oldest are dropped and counted in `stream_mqtt_dropped_total`), and order is kept.

Retained states (active speaker, alert ON/OFF, tempo) are not queued: the latest value per topic is kept and
re-sent after each window and on every (re)connect, so a broker without persistence gets them back too.

On connect, in order: delete discovery configs of entities we no longer have, announce ours, publish `online`
on the availability topic (its last will says `offline`), then drain the buffer, re-sending every current state
after the first window. Home
Assistant's birth message (`homeassistant/status` = `online`) triggers a re-announce.

A broker that refuses our credentials is a configuration error, not an outage: `start()` raises `BrokerError`
naming the broker and the cause, and `publish` keeps raising it (the runtime counts it; other sinks go on).
With no URL, the sink starts an embedded mosquitto (`stream.broker`) on a free port and logs its URL.

In a graph TOML (fields of `MqttConfig`):

    [[sinks]]
    kind = "mqtt"
    url = "mqtts://homeassistant.local:8883"   # leave out for an embedded broker
    stream = "mic0"
    username = "stream"
    password = "secret"
    ca_file = "/etc/stream/ca.pem"
    rules = ["Smoke alarm", "Dog barking"]     # one HA binary_sensor each
    rules_file = "configs/alerts.toml"         # ... and one per rule of the SED node's rules file
    buffer_path = "/var/lib/stream/mqtt-outbox.sqlite"
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from prometheus_client import Counter, Gauge, Histogram

from stream.broker import Broker, BrokerError
from stream.errors import ConfigError
from stream.metrics import LATENCY_BUCKETS
from stream.sinks import mqtt_discovery
from stream.sinks.mqtt_buffer import Buffer, DiskBuffer, MemoryBuffer, Outgoing
from stream.sinks.base import Sink
from stream.sinks.mqtt_topics import States, encode, event_topic, idle

log = logging.getLogger(__name__)

BUFFERED = Gauge(
    "stream_mqtt_buffered", "Events waiting for the MQTT broker's acknowledgement.", ["sink"], multiprocess_mode="livemax"
)
DROPPED = Counter("stream_mqtt_dropped", "Events dropped because the MQTT reconnect buffer was full.", ["sink"])
DELIVERED = Counter("stream_mqtt_delivered", "Events the MQTT broker acknowledged.", ["sink"])
CONNECTED = Gauge("stream_mqtt_connected", "1 while connected to the MQTT broker.", ["sink"], multiprocess_mode="livemax")
RECONNECTS = Counter("stream_mqtt_connects", "Successful connections to the MQTT broker.", ["sink"])
SINK_LATENCY = Histogram(
    "stream_sink_latency_seconds", "Sink's publish() call to the broker's acknowledgement, seconds.", ["sink"],
    buckets=LATENCY_BUCKETS,
)

# CONNACK reason codes (MQTT 5 numbering, which paho uses for 3.1.1 too) that retrying cannot fix.
_REFUSED = {
    134: "bad user name or password: check the username/password in the graph or the URL",
    135: "not authorized: wrong or missing username/password, or this user may not connect",
    133: "client identifier not valid: set a different client_id",
    132: "unsupported protocol version",
}


@dataclass(frozen=True)
class MqttConfig:
    """Where and how to publish. Credentials may be in the URL (`mqtt://user:pass@host`) or the fields below."""

    url: str = ""  # mqtt://host[:1883] or mqtts://host[:8883]; "" starts an embedded mosquitto
    stream: str = "default"  # stream id: availability topic and Home Assistant device
    client_id: str = ""  # "" -> stream-<stream>
    qos: int = 1  # 0 at most once, 1 at least once (lossless across reconnects), 2 exactly once
    username: str = ""
    password: str = ""
    ca_file: str = ""  # PEM CA bundle for mqtts:// (default: the system's)
    cert_file: str = ""  # PEM client certificate for mutual TLS
    key_file: str = ""  # PEM key of cert_file
    base_topic: str = "stream"
    discovery: bool = True  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"
    rules: tuple[str, ...] = ()  # alert rules to announce as binary sensors
    rules_file: str = ""  # an alert rules TOML (the sed node's `rules`): its rules are announced too
    speaker: bool = True  # announce the active-speaker sensor and speaker-turn events
    tempo: bool = False  # announce the tempo sensor
    music: bool = False  # announce the music genre and chord sensors
    speaker_hold_s: float = 0.5  # [0, 10] s a speaker state waits before saying "none" / 0 talking / OFF (a turn
    #   starting meanwhile cancels it), so Home Assistant sees "A, then B", not "A, none, B", between two turns
    buffer_size: int = 10_000  # [1, 10^7] events held while the broker is away; oldest dropped past it
    buffer_path: str = ""  # SQLite file to keep the buffer on disk (survives graph restarts); "" = memory
    window: int = 64  # [1, 1000] events in flight before waiting for acknowledgements
    keepalive_s: int = 10  # [2, 600] MQTT keepalive: the broker fires the last will after 1.5x this of silence
    reconnect_max_s: float = 5.0  # (0, 300] longest wait between connection attempts
    connect_timeout_s: float = 5.0  # (0, 60] how long start() waits for the first connection

    def __post_init__(self) -> None:
        if self.url:
            endpoint(self)  # validates the URL
        checks = {
            "qos": self.qos in (0, 1, 2),
            "buffer_size": 1 <= self.buffer_size <= 10**7,
            "window": 1 <= self.window <= 1000,
            "keepalive_s": 2 <= self.keepalive_s <= 600,
            "reconnect_max_s": 0 < self.reconnect_max_s <= 300,
            "connect_timeout_s": 0 < self.connect_timeout_s <= 60,
            "speaker_hold_s": 0 <= self.speaker_hold_s <= 10,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"mqtt sink: {name}={getattr(self, name)!r} is out of range (see MqttConfig)")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("mqtt sink: cert_file and key_file go together (mutual TLS needs both)")
        for name in ("ca_file", "cert_file", "key_file"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                raise ConfigError(f"mqtt sink: {name} {getattr(self, name)!r} is not a file (PEM expected)")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    username: str
    password: str

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def redact(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


def endpoint(config: MqttConfig, url: str | None = None) -> Endpoint:
    """Parse the broker URL; fields in the config win over credentials in the URL. Errors never show a password."""
    shown = redact(url or config.url)
    try:
        parts = urlsplit(url or config.url)
    except ValueError as exc:
        raise ConfigError(f"MQTT broker URL {shown!r} is malformed ({exc})") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"MQTT broker URL {shown!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"MQTT broker URL {shown!r}: the port is not a number in 1..65535") from None
    return Endpoint(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=config.username or unquote(parts.username or ""),
        password=config.password or unquote(parts.password or ""),
    )


def client(config: MqttConfig, where: Endpoint, *, client_id: str, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
    """An aiomqtt client for `where` with the config's TLS and credentials (shared by the sink and `listen`)."""
    tls = None
    if where.tls:
        tls = ssl.create_default_context(cafile=config.ca_file or None)
        if config.cert_file:
            tls.load_cert_chain(config.cert_file, config.key_file)
    mqtt = aiomqtt.Client(
        where.host,
        where.port,
        username=where.username or None,
        password=where.password or None,
        identifier=client_id,
        will=will,
        keepalive=config.keepalive_s,
        timeout=config.connect_timeout_s,
        tls_context=tls,
        clean_session=True,
        max_inflight_messages=config.window,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # small messages: no Nagle delay
    )
    mqtt.pending_calls_threshold = config.window  # a full window in flight is normal, not worth a warning
    return mqtt


def refusal(where: Endpoint, exc: Exception) -> BrokerError | None:
    """A BrokerError when the broker refused us for a reason retrying cannot fix, else None."""
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(exc, aiomqtt.MqttCodeError) and code in _REFUSED:
        return BrokerError(f"MQTT broker {where} refused the connection: {_REFUSED[code]}")
    if not isinstance(exc, aiomqtt.MqttError) or "CERTIFICATE" in str(exc).upper():
        return BrokerError(f"MQTT broker {where}: TLS failed ({exc}); check ca_file, cert_file and key_file")
    return None


@dataclass
class _Connection:
    """Per-connection bookkeeping of the sender task."""

    old_configs: set[str] = field(default_factory=set)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class MqttSink(Sink):
    """Publishes graph events to an MQTT broker; see the module docstring for the delivery guarantees."""

    Config = MqttConfig
    name = "mqtt"

    def __init__(self, config: MqttConfig) -> None:
        super().__init__(config)
        self.config: MqttConfig = config
        self.client_id = config.client_id or f"stream-{config.stream}"
        self.root = f"{config.base_topic}/{config.stream}"
        self.availability = f"{self.root}/availability"
        rules = config.rules + (mqtt_discovery.rule_names(config.rules_file) if config.rules_file else ())
        self.entities = mqtt_discovery.Entities(config.stream, tuple(dict.fromkeys(rules)), config.speaker,
                                                config.tempo, config.music)
        self._buffer: Buffer = (
            DiskBuffer(Path(config.buffer_path), config.buffer_size)
            if config.buffer_path
            else MemoryBuffer(config.buffer_size)
        )
        self._tracker = States(config.base_topic)
        self._states: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._holds: dict[str, tuple[asyncio.TimerHandle, str]] = {}  # state topic -> its deferred idle value
        self._strangers: set[Any] = set()  # stream ids of events that are not ours (warned once each)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while the sender has nothing left to send
        self._announce = False
        self._error: BrokerError | None = None
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._broker: Broker | None = None
        self.where: Endpoint | None = None
        self.connected = False
        self._labels = {"sink": self.client_id}

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        """Connect (starting an embedded broker if no URL); raises BrokerError if the broker refuses us."""
        if self.config.url:
            self.where = endpoint(self.config)
        else:
            self._broker = Broker(die_with_parent=True)
            self._broker.start()  # in the loop's thread, which lives as long as the node (no orphan broker)
            self.where = endpoint(self.config, self._broker.url)
            log.warning("no MQTT broker configured: started an embedded mosquitto at %s", self._broker.url)
        self._task = asyncio.create_task(self._run(self.where), name=f"mqtt-sink-{self.client_id}")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.config.connect_timeout_s)
        if self._error:
            raise self._error

    async def publish(self, event: dict[str, Any]) -> None:
        """File `event` for delivery (never waits on the network); raises the broker's refusal if there was one."""
        if self._error:
            raise self._error
        if event.get("stream") != self.config.stream and event.get("stream") not in self._strangers:
            self._strangers.add(event.get("stream"))
            log.warning("MQTT sink announces stream %r to Home Assistant, but got an event of stream %r: it goes to "
                        "its topics without discovery or availability (set `stream` in the sink's table)",
                        self.config.stream, event.get("stream"))
        states = self._tracker.update(event)
        label = event.get("label")
        if self.config.speaker and isinstance(label, str) and label not in self.entities.labels:
            self.entities = dataclasses.replace(self.entities, labels=(*self.entities.labels, label))
            self._announce = True  # its "speaking" binary_sensor
        dropped = self._buffer.push(Outgoing(event_topic(self.config.base_topic, event), encode(event), time.time()))
        if dropped:
            DROPPED.labels(**self._labels).inc(dropped)
        for topic, value in states.items():
            self._set_state(topic, value)
        BUFFERED.labels(**self._labels).set(len(self._buffer))
        self._idle.clear()
        self._wake.set()

    def _set_state(self, topic: str, value: str) -> None:
        """Retained state to (re)send; a speaker state going idle ("none", 0 talking, a speaker OFF) waits
        `speaker_hold_s` (hysteresis)."""
        held = self._holds.pop(topic, None)
        if held is not None:
            held[0].cancel()
        if self.config.speaker_hold_s > 0 and idle(topic, value):
            timer = asyncio.get_running_loop().call_later(self.config.speaker_hold_s, self._release, topic, value)
            self._holds[topic] = (timer, value)
            return
        self._states[topic] = value
        self._dirty.add(topic)

    def _release(self, topic: str, value: str) -> None:
        """The held idle state is due: send it."""
        del self._holds[topic]
        self._states[topic] = value
        self._dirty.add(topic)
        self._idle.clear()
        self._wake.set()

    async def stop(self, flush_s: float = 2.0) -> None:
        """Deliver what is buffered (up to `flush_s` seconds), say `offline`, disconnect, stop an embedded broker.

        What is still undelivered then stays on disk with `buffer_path` (sent on the next start); an in-memory
        buffer's rest is lost, logged and counted as dropped.
        """
        for topic, (timer, value) in list(self._holds.items()):  # the last word: nobody speaks
            timer.cancel()
            self._release(topic, value)
        if self._task:
            deadline = time.monotonic() + flush_s
            while not self._idle.is_set() and self.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._buffer and not self.config.buffer_path:
            log.warning("MQTT sink stopped with %d undelivered events (broker %s); they are lost",
                        len(self._buffer), self.where)
            DROPPED.labels(**self._labels).inc(len(self._buffer))
        self._buffer.close()
        if self._broker:
            await asyncio.to_thread(self._broker.close)
            self._broker = None

    # -- sender task ---------------------------------------------------------------------------------------------

    async def _run(self, where: Endpoint) -> None:
        """Connect, run sessions, reconnect with exponential backoff; end only on a refusal (or cancel)."""
        backoff = 0.05
        will = aiomqtt.Will(self.availability, b"offline", qos=1, retain=True)
        while True:
            try:
                async with client(self.config, where, client_id=self.client_id, will=will) as mqtt:
                    self.connected = True
                    CONNECTED.labels(**self._labels).set(1)
                    RECONNECTS.labels(**self._labels).inc()
                    self._first_attempt.set()
                    backoff = 0.05
                    try:
                        await self._session(mqtt)
                    finally:
                        self.connected = False
                        CONNECTED.labels(**self._labels).set(0)
                        # A clean disconnect does not fire the last will: say `offline` ourselves (fails fast if
                        # the connection is already gone).
                        with contextlib.suppress(aiomqtt.MqttError, asyncio.CancelledError):
                            await asyncio.shield(mqtt.publish(self.availability, b"offline", qos=1, retain=True))
            except (aiomqtt.MqttError, OSError) as exc:  # OSError: TLS files that cannot be loaded
                self._error = refusal(where, exc)
                self._first_attempt.set()
                if self._error:
                    log.error("%s", self._error)
                    return
                log.warning("MQTT broker %s: %s; retrying in %.2f s", where, exc or type(exc).__name__, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.reconnect_max_s)

    async def _session(self, mqtt: aiomqtt.Client) -> None:
        """One connection's life: sync discovery, announce, then deliver until the connection drops."""
        conn = _Connection()
        reader = asyncio.create_task(self._read(mqtt, conn))
        writer = asyncio.create_task(self._write(mqtt, conn))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)

    async def _read(self, mqtt: aiomqtt.Client, conn: _Connection) -> None:
        """Incoming messages: our old discovery configs, the sync token, Home Assistant's birth message."""
        prefix = self.config.discovery_prefix
        async for message in mqtt.messages:
            topic = str(message.topic)
            if topic == f"{prefix}/status":
                if message.payload == b"online":
                    self._announce = True
                    self._idle.clear()
                    self._wake.set()
            elif topic == f"{self.root}/sync/{self.client_id}":
                if message.payload == conn.token.encode():
                    conn.synced.set()
            elif message.payload:
                conn.old_configs.add(topic)

    async def _write(self, mqtt: aiomqtt.Client, conn: _Connection) -> None:
        """Everything we send on this connection, in order."""
        qos = self.config.qos
        if self.config.discovery:
            await self._sync_discovery(mqtt, conn)
        self._announce = True
        while True:
            if self._announce:
                self._announce = False
                await self._announce_all(mqtt)
            batch = self._buffer.peek(self.config.window)
            if batch:
                await asyncio.gather(*(mqtt.publish(item.topic, item.payload, qos=qos) for _, item in batch))
                self._buffer.ack(batch[-1][0])
                now = time.time()
                for _, item in batch:
                    SINK_LATENCY.labels(**self._labels).observe(now - item.t_enqueue)
                DELIVERED.labels(**self._labels).inc(len(batch))
                BUFFERED.labels(**self._labels).set(len(self._buffer))
            dirty, self._dirty = self._dirty, set()
            try:
                for topic in sorted(dirty):
                    await mqtt.publish(topic, self._states[topic], qos=1, retain=True)
            except BaseException:
                self._dirty |= dirty
                raise
            if not self._buffer and not self._dirty and not self._announce:
                self._wake.clear()
                self._idle.set()
                await self._wake.wait()
                self._idle.clear()

    async def _sync_discovery(self, mqtt: aiomqtt.Client, conn: _Connection) -> None:
        """Delete retained configs of entities this graph no longer has (found by subscribing to our device's)."""
        prefix = self.config.discovery_prefix
        sync = f"{self.root}/sync/{self.client_id}"
        wildcard = mqtt_discovery.config_filter(prefix, self.config.stream)
        await mqtt.subscribe([(f"{prefix}/status", 1), (wildcard, 1), (sync, 1)])
        # Retained configs arrive right after the SUBACK; our own token, published after, arrives after them.
        await mqtt.publish(sync, conn.token, qos=1)
        try:
            await asyncio.wait_for(conn.synced.wait(), self.config.connect_timeout_s)
        except asyncio.TimeoutError:
            raise aiomqtt.MqttError("no echo of our discovery sync message; reconnecting") from None
        await mqtt.unsubscribe([wildcard, sync])
        current = mqtt_discovery.configs(self.config.discovery_prefix, self.config.base_topic, self.entities)
        for topic in sorted(conn.old_configs - current.keys()):
            await mqtt.publish(topic, b"", qos=1, retain=True)

    async def _announce_all(self, mqtt: aiomqtt.Client) -> None:
        """Discovery configs, then `online`, then every current state (HA wants configs before availability)."""
        if self.config.discovery:
            configs = mqtt_discovery.configs(self.config.discovery_prefix, self.config.base_topic, self.entities)
            for topic, payload in configs.items():
                await mqtt.publish(topic, json.dumps(payload), qos=1, retain=True)
        await mqtt.publish(self.availability, b"online", qos=1, retain=True)
        self._dirty = set(self._states)


SINK = MqttSink
