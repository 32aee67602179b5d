"""The Node base: a typed, validated `Config`, an async `process` step, explicit restartable state.

A node knows nothing about sockets: the runtime (`stream.runner`) feeds it messages and publishes what it returns,
so the same node runs bare in a REPL or a test. A node kind is a package `nodes/<kind>/node.py` exposing `NODE`
(the class); `kind = "loudness"` in a graph TOML resolves to `nodes.loudness.node:NODE`, a dotted
"pkg.module:Class" to anything else.

Example (bare, no sockets):
    >>> import asyncio, numpy as np
    >>> from dataclasses import dataclass
    >>> from stream.message import Message
    >>> @dataclass(frozen=True)
    ... class GainConfig:
    ...     gain: float = 2.0  # linear factor
    >>> class Gain(Node[GainConfig]):
    ...     Config = GainConfig
    ...     async def process(self, msg, port=""):
    ...         return [msg.derive("pcm", msg.data * self.config.gain)]
    >>> node = Gain.from_table({"gain": 3.0}, name="gain")
    >>> x = Message.new("s", "pcm", np.ones(4, np.float32), sr=16000, t_capture_ns=0, t_wall=0.0)
    >>> asyncio.run(node.process(x))[0].data.tolist()
    [3.0, 3.0, 3.0, 3.0]

Sources (capture) subclass `Source` and implement `produce()`, an async iterator of messages; the runtime
publishes each one as it comes and stops iterating on shutdown.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from stream.errors import ConfigError
from stream.message import Message

C = TypeVar("C")


@dataclass(frozen=True)
class NoConfig:
    """For nodes without knobs."""


class Node(Generic[C]):
    """Base of every node. Subclasses set `Config` (a frozen dataclass) and override `process`.

    `accepts` lists the message kinds the node subscribes to (empty: all); the runtime filters on ZeroMQ topics,
    so e.g. the sinks node never receives pcm.
    """

    Config: ClassVar[type] = NoConfig
    accepts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: C | None = None, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.config: C = config if config is not None else self.Config()

    @classmethod
    def from_table(cls, table: Mapping[str, Any], name: str) -> Node[C]:
        """Build from a TOML table, rejecting unknown keys and wrong types (ConfigError naming node and key)."""
        return cls(parse_config(cls.Config, table, name), name=name)

    async def setup(self) -> None:
        """Load models and warm up JIT before the first message (the runtime waits for this before `ready`)."""

    async def process(self, msg: Message, port: str = "") -> list[Message]:
        """Handle one message from input `port` (the upstream node's name); return messages to publish."""
        raise NotImplementedError(f"{type(self).__name__} must implement process()")

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a restart (msgpack-able values and NumPy arrays); checkpointed by the runtime."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (called before `setup` after a restart)."""

    async def close(self) -> list[Message]:
        """Flush at end of stream or shutdown: return the last messages to publish (e.g. a final event)."""
        return []


class Source(Node[C]):
    """A node without inputs: `produce()` yields messages (e.g. audio blocks stamped with capture time)."""

    def produce(self) -> AsyncIterator[Message]:
        raise NotImplementedError(f"{type(self).__name__} must implement produce()")

    def position(self, msg: Message) -> int | None:
        """The seq of `msg` from where it lies in its stream, or None for the runtime's counter. A source that
        resumes from its checkpoint (a file) re-sends or skips blocks after a restart: numbered by position,
        downstream drops the ones it had as duplicates and counts the skipped ones as dropped."""
        return None


def resolve(kind: str) -> type[Node[Any]]:
    """"loudness" -> nodes.loudness.node:NODE; "pkg.mod:Class" -> that class."""
    module, _, attr = kind.partition(":") if ":" in kind else (f"nodes.{kind}.node", ":", "NODE")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"node kind {kind!r} not found ({exc}); use a package name under nodes/ or 'package.module:Class'"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise ConfigError(f"node kind {kind!r} resolves to {cls!r}, which is not a stream.node.Node")
    return cls


def parse_config(config_cls: type[C], table: Mapping[str, Any], node: str) -> C:
    """A `config_cls` from a TOML table: unknown keys and wrong types raise ConfigError (naming node and key)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(config_cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"node {node!r}: unknown config key(s) {unknown}; valid keys: {sorted(fields)}")
    values = {}
    for key, value in table.items():
        try:
            values[key] = _coerce(value, hints[key])
        except TypeError:
            raise ConfigError(
                f"node {node!r}: config key {key!r} must be {_type_name(hints[key])}, got {value!r}"
            ) from None
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"node {node!r}: {exc}") from exc


def _coerce(value: Any, hint: Any) -> Any:
    """`value` as type `hint` (int accepted for float, list for tuple); TypeError when it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option)
            except TypeError:
                continue
        raise TypeError
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeError
    if hint is type(None):
        if value is None:
            return None
        raise TypeError
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if origin is tuple:
            if len(args) != len(value):
                raise TypeError
            return tuple(_coerce(v, a) for v, a in zip(args, value))
        return [_coerce(v, args[0]) for v in value] if args else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise TypeError
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and hint is not bool and hint is not Any:
        raise TypeError  # TOML true is not a number
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        return value
    raise TypeError


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
