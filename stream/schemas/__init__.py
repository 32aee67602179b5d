"""JSON Schemas of the events users receive, one file per event type: `<type>.json` (see `schema`)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from stream.errors import ConfigError


@cache
def schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of `event_type` (e.g. "level", "speaker.turn")."""
    path = resources.files(__package__) / f"{event_type}.json"
    if not path.is_file():
        known = sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))
        raise ConfigError(f"no schema for event type {event_type!r}; known: {known}")
    return json.loads(path.read_text())


@cache
def known_types() -> frozenset[str]:
    """Every event type with a schema: the only values a metric label takes from an event (any other string an
    upstream sends would add a time series per value, for good)."""
    return frozenset(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))
