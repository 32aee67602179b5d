"""Node configs from TOML tables: unknown keys and wrong types are errors that name node, key and valid keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from stream.errors import ConfigError
from stream.node import Node, parse_config


@dataclass(frozen=True)
class _Cfg:
    block_ms: float = 100.0
    channels: int = 1
    mode: Literal["rms", "peak"] = "rms"
    bands: tuple[float, ...] = (1.0,)
    device: str | int | None = None


def test_valid_table_is_coerced():
    cfg = parse_config(_Cfg, {"block_ms": 20, "bands": [1, 2.5], "device": 3, "mode": "peak"}, "n")
    assert cfg == _Cfg(block_ms=20.0, bands=(1.0, 2.5), device=3, mode="peak")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"blok_ms": 20}, ["'n'", "blok_ms", "valid keys", "block_ms"]),
        ({"channels": 1.5}, ["'n'", "channels", "int", "1.5"]),
        ({"channels": True}, ["channels"]),
        ({"mode": "loud"}, ["mode", "loud"]),
        ({"bands": "1,2"}, ["bands"]),
    ],
)
def test_bad_tables_raise_config_error_naming_the_key(table, words):
    with pytest.raises(ConfigError) as info:
        parse_config(_Cfg, table, "n")
    assert all(w in str(info.value) for w in words), str(info.value)


def test_node_from_table_uses_its_config_class():
    class _N(Node[_Cfg]):
        Config = _Cfg

    node = _N.from_table({"channels": 2}, name="x")
    assert (node.name, node.config.channels) == ("x", 2)
    with pytest.raises(ConfigError):
        _N.from_table({"nope": 1}, name="x")


def test_checkpoint_round_trips_arrays_and_plain_values(tmp_path):
    import numpy as np

    from stream.runner import load_state, save_state

    state = {"node": {"centroids": np.arange(6, dtype=np.float32).reshape(2, 3), "count": np.int64(7), "n": [1, 2]},
             "seq_in": {"capture\x00mic0": 41}}
    save_state(tmp_path / "s.msgpack", state)
    back = load_state(tmp_path / "s.msgpack")
    np.testing.assert_array_equal(back["node"]["centroids"], state["node"]["centroids"])
    assert back["node"]["centroids"].dtype == np.float32
    assert (back["node"]["count"], back["node"]["n"], back["seq_in"]) == (7, [1, 2], {"capture\x00mic0": 41})
    assert not (tmp_path / "s.tmp").exists()  # written atomically
