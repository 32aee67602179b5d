"""The CI profile of the fuzzer (tests/fuzz/harness.py): up to 200 generated inputs per node within 2.5 s,
300 for the wire decoder, 60 per node config, 150 graph tables; derandomized.

Targets: the wire decoder, graph configs (every node kind's Config and the [graph]/[metrics]/[[nodes]] tables),
and every node that takes messages, found in nodes/*/node.py (new nodes are covered when they land). The full
profile (10,000 inputs per node) is `bench/fuzz.py`; figures in bench/RESULTS.md ("Reliability").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness import GRAPH_TABLES, MAX_STREAMS, Target, config_classes, config_tables, node_kinds, wire_frames
from stream.errors import ConfigError, MessageError
from stream.graph import graph_from_table
from stream.message import decode
from stream.node import parse_config

EXAMPLES, BUDGET_S = 200, 2.5  # inputs per node, at most BUDGET_S of them (model nodes run a model per input)
CI = settings(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("kind", node_kinds())
def test_node_survives_generated_messages(kind, tmp_path):
    target = Target.start(kind, tmp_path)
    accepts = target.runner.node.accepts
    deadline = time.monotonic() + BUDGET_S

    @settings(CI, max_examples=EXAMPLES, phases=[Phase.explicit, Phase.generate])  # a failure shows its input as is
    @given(frames=wire_frames(accepts, target.clocks))
    def check(frames: list[bytes]) -> None:
        # past the budget the remaining examples are generated but not fed (a loaded machine still feeds 10: the
        # first may compile); returning, not raising, so Hypothesis never replays a "failing" example
        if time.monotonic() <= deadline or target.tried < 10:
            target.feed(frames)

    try:
        check()
        assert target.tried >= 10
        ok = target.results.get("ok", 0)  # the generator reaches past the checks into the node's state machine
        assert ok >= 0.2 * target.tried or target.tried < 20, f"{ok} of {target.tried} inputs accepted"
        assert target.rss_growth() < 300 * 2**20  # state is capped at MAX_STREAMS streams
        assert len(target.runner.tracker.streams()) <= MAX_STREAMS
    finally:
        target.close()


@settings(CI, max_examples=300)
@given(frames=st.lists(st.binary(max_size=128), max_size=4))
def test_wire_decoder_never_crashes(frames):
    try:
        msg = decode(frames)
    except MessageError:
        return
    assert msg.data.nbytes == len(frames[1]) and msg.data.shape == msg.header.shape


@pytest.mark.parametrize("kind, config", sorted(config_classes().items()))
def test_node_config_is_accepted_or_one_config_error(kind, config):
    @settings(CI, max_examples=60)
    @given(table=config_tables(config))
    def check(table: dict) -> None:
        try:
            parse_config(config, table, kind)
        except ConfigError:
            pass

    check()


@settings(CI, max_examples=150)
@given(raw=GRAPH_TABLES)
def test_graph_config_is_accepted_or_one_config_error(raw):
    try:
        graph_from_table(raw, Path("fuzz.toml"))
    except ConfigError:
        pass
