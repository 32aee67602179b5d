"""`stream listen [--endpoint E] [--topic T] [--json]`: subscribe to a graph's ZeroMQ PUB sink, print events."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from stream.sinks.zmq_pub import DEFAULT_ENDPOINT

    p = sub.add_parser("listen", help="print the events a running graph publishes")
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT,
                   help=f"the zmq_pub sink's address (default {DEFAULT_ENDPOINT})")
    p.add_argument("--topic", action="append", default=[],
                   help="topic prefix, e.g. 'level/' or 'speaker.' (repeatable)")
    p.add_argument("--json", action="store_true", help="print raw JSON lines instead of formatted events")
    p.add_argument("--count", type=int, default=0, help="exit after this many events (0: until Ctrl-C)")
    p.add_argument("--mqtt", metavar="URL", help="read from an MQTT broker instead: mqtt[s]://[user:pass@]host[:port]")
    p.set_defaults(func=_listen)


def _listen(args: argparse.Namespace) -> int:
    if args.mqtt:
        return _listen_mqtt(args)
    import zmq

    from stream.sinks.console import format_event

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    for topic in args.topic or [""]:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    sock.connect(args.endpoint)
    seen = 0
    try:
        while not args.count or seen < args.count:
            _topic, payload = sock.recv_multipart()
            event = json.loads(payload)
            print(payload.decode() if args.json else format_event(event), flush=True)
            seen += 1
    finally:
        sock.close(linger=0)
        ctx.term()
    return 0


def _listen_mqtt(args: argparse.Namespace) -> int:
    """The same output from the MQTT sink's event topics (`stream/<id>/...`); --topic filters as for ZeroMQ."""
    import asyncio

    from stream.sinks.console import format_event
    from stream.sinks.mqtt_listen import events

    async def listen() -> None:
        seen = 0
        async for event in events(args.mqtt, availability=True):
            if args.topic and not any(f"{event['type']}/{event['stream']}".startswith(t) for t in args.topic):
                continue
            print(json.dumps(event) if args.json else format_event(event), flush=True)
            seen += 1
            if seen == args.count:
                return

    asyncio.run(listen())
    return 0
